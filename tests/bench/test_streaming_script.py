"""benchmarks/streaming.py on the tiny golden model: the before/after quality grid and the
real-time pace, before and after, in one short run (the full-size form is in the README)."""

import json
import math
import subprocess
import sys
from pathlib import Path

from helpers import exported

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "streaming.py"


def test_streaming_benchmark_reports_quality_and_pace_before_and_after(tmp_path):
    out = tmp_path / "streaming.json"
    cmd = [sys.executable, str(SCRIPT), "--model", str(exported("tiny_16k")), "--seconds", "3"]
    cmd += ["--hops", "0.16", "--contexts", "2", "--lookaheads", "0.32"]
    cmd += ["--realtime", "0.32/1/0.32", "--threads", "1", "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())

    (row,) = report["quality"]
    assert (row["hop"], row["context"], row["lookahead"]) == (0.16, 2.0, 0.32)
    # Following the offline plan is the point of the change: on the tiny model it moves both
    # measures by far more than a float32 near-tie could (README: 4.8% -> 35.2%, 0.6 -> 10.5 dB
    # on 10 s).
    assert row["stage0_after"] > row["stage0_before"] + 5, row
    assert row["snr_after"] > row["snr_before"] + 3, row

    (pace,) = report["realtime"]
    for label in ("before", "after"):
        enc, dec = pace[label]["encode"], pace[label]["decode"]
        assert 0 < enc["first_code_s"] < 30 and enc["overruns"] >= 0, pace
        assert enc["latency_p50_ms"] <= enc["latency_p95_ms"], pace
        assert 0 < dec["first_audio_s"] < 30 and dec["gapless_from_s"] >= 0, pace
        assert all(math.isfinite(v) and v > 0 for v in (enc["rtf"], dec["rtf"])), pace
    assert set(report["offline"]) == {"onnx"}
