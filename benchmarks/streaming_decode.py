"""Streaming decode at real-time pace: codes arrive at 12.5 frames/s, as a TTS model emits them;
time to first audio, sustained RTF, when gapless playback can start, and SNR of the joined
stream against offline decode, per window setting and model, in one run.

    python benchmarks/streaming_decode.py --model DIR [--model DIR2 ...] [--seconds 10]
        [--settings HOP/MAX_HOP/CONTEXT/LOOKAHEAD,...] [--threads N] [--json FILE]

The codes are the model's own encoding of bundled speech; the offline decode of the same codes
(one 30 s window) is the reference and its time the baseline. The first code arrives at t = 0,
code i at i x 0.08 s, and the stream is told the utterance ended when the last one arrives.
- first audio: t of the first decoded audio (the target for TTS is <= 0.5 s);
- RTF: decode compute / audio seconds (below 1: keeps up with the code rate);
- gapless from: the earliest t a player could start and never run dry (>= first audio);
- end lag: last audio out - last code in;
- SNR: joined stream vs offline decode (dB), which rises as context and lookahead grow. With
  random (synthetic) weights the decoder depends far more on the window's absolute positions
  and far context than a trained one is expected to, so these SNRs are lower bounds.
Decoding runs in this process while the codes "arrive"; a real TTS model would share the CPU.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import xyrt.runtime
from xyrt.data import speech_clip

FRAME = 0.08  # seconds between codes
DEFAULT_SETTINGS = (  # hop/max_hop/context/lookahead, seconds
    "0.32/0.32/0/0,0.08/1.28/0.48/0,0.08/1.28/1/0.16,0.16/1.6/2/0.32,0.32/0.32/2/0.16"
)


@dataclass
class Result:
    model: str
    hop: float
    max_hop: float
    context: float
    lookahead: float
    steps: int
    first_audio_s: float
    rtf: float
    gapless_from_s: float
    end_lag_s: float
    snr_db: float


def snr_db(reference: np.ndarray, test: np.ndarray) -> float:
    noise = float(np.sum((reference - test) ** 2))
    return float("inf") if noise == 0 else 10 * np.log10(float(np.sum(reference**2)) / noise)


def realtime_run(codec, codes: np.ndarray, offline: np.ndarray, setting, model: str) -> Result:
    hop, max_hop, context, lookahead = setting
    stream = codec.create_decode_stream(hop, context, lookahead, max_hop)
    n, rate = codes.shape[1], codec.output_sample_rate
    pieces, times, compute, steps, arrived = [], [], 0.0, 0, 0
    t0 = time.perf_counter()
    while True:
        now = time.perf_counter() - t0
        due = min(n, int(now / FRAME) + 1)
        if due > arrived:
            stream.accept_codes(codes[:, arrived:due])
            arrived = due
            if arrived == n:
                stream.input_finished()
        if codec.is_ready(stream):
            start = time.perf_counter()
            codec.decode_stream(stream)
            compute += time.perf_counter() - start
            steps += 1
            pieces.append(stream.pop_audio())
            times.append(time.perf_counter() - t0)
        elif stream.finished:
            break
        else:
            time.sleep(max(0.0, arrived * FRAME - (time.perf_counter() - t0)))
    audio = np.concatenate(pieces)
    before = np.cumsum([0] + [len(p) for p in pieces[:-1]]) / rate
    return Result(
        model=model,
        hop=hop,
        max_hop=max_hop,
        context=context,
        lookahead=lookahead,
        steps=steps,
        first_audio_s=times[0],
        rtf=compute / (len(audio) / rate),
        gapless_from_s=float(np.max(np.array(times) - before)),
        end_lag_s=times[-1] - (n - 1) * FRAME,
        snr_db=snr_db(offline, audio),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, help="model directory (repeat)")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--settings", default=DEFAULT_SETTINGS, help="hop/max_hop/context/lookahead,")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--json", type=Path, help="also write the results as JSON")
    args = ap.parse_args()
    settings = [tuple(float(v) for v in s.split("/")) for s in args.settings.split(",")]
    results = []
    print(f"{args.seconds:g} s of speech, codes arriving at 12.5 frames/s (times in s)")
    header = (
        f"{'model':<12}{'hop':>6}{'max':>6}{'ctx':>6}{'look':>6}{'steps':>6}{'first':>7}"
        f"{'RTF':>7}{'gapless':>9}{'end lag':>9}{'SNR dB':>8}"
    )
    for model_dir in args.model:
        codec = xyrt.runtime.load(model_dir, threads=args.threads)
        name = Path(model_dir).name
        codes = codec.encode(speech_clip(args.seconds))
        codec.decode(codes[:, :4])  # warm-up
        start = time.perf_counter()
        offline = codec.decode(codes)
        offline_rtf = (time.perf_counter() - start) / args.seconds
        print(f"\n{model_dir}: offline decode RTF {offline_rtf:.3f} (baseline, same run)")
        print(header)
        for setting in settings:
            r = realtime_run(codec, codes, offline, setting, name)
            results.append({**asdict(r), "offline_rtf": offline_rtf})
            print(
                f"{name:<12}{r.hop:>6.2f}{r.max_hop:>6.2f}{r.context:>6.2f}{r.lookahead:>6.2f}"
                f"{r.steps:>6}{r.first_audio_s:>7.2f}{r.rtf:>7.2f}{r.gapless_from_s:>9.2f}"
                f"{r.end_lag_s:>9.2f}{r.snr_db:>8.1f}"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
