"""Streaming encode and decode against offline, before and after the streams follow the offline
plan (window positions, offline window bounds, the offline mel floor), in one run.

    python benchmarks/streaming.py --model DIR [--model INT8_DIR ...] [--seconds 10]
        [--hops 0.08,0.16,0.32] [--contexts 1,2,5] [--lookaheads 0.16,0.32]
        [--realtime 0.16/2/0.32,...] [--json FILE]

Quality (deterministic: the steps do not depend on pace or chunking, so the grid runs flat out):
- encode: stage-0 and all-stage agreement of streamed codes with the offline codes of the audio;
- decode: SNR (dB) of the joined streamed audio against the offline decode of the same codes.
"before" is ``match_offline=False`` (positions from 0 in every sliding window, the window's own
mel floor, windows crossing offline-window bounds); "after" is the default.

The models after the first ``--grid-models`` get the centre setting only.

Pace (``--realtime`` settings hop/context/lookahead, before and after): the speech file played at
its own pace into the encode stream (first-code latency, p50/p95 capture-to-emission latency, RTF),
and its codes fed at 12.5 frames/s into the decode stream (first audio, RTF, gapless playback
start). RTF = compute / audio seconds: below 1 keeps up.

With random (synthetic) weights every code and sample depends on its context far more than a
trained model's would, so agreement and SNR are lower bounds; say so with any number.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

import xyrt.runtime
from xyrt.data import speech_clip
from xyrt.runtime.compare import compare_codes
from xyrt.runtime.formats.audio import write_wav
from xyrt.runtime.realtime.encode_loop import FileSource, run_stream

FRAME = 0.08
CENTER = (0.16, 2.0, 0.32)  # hop, context, lookahead of the acceptance setting


def floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def snr_db(reference: np.ndarray, test: np.ndarray) -> float:
    noise = float(np.sum((reference - test) ** 2))
    return float("inf") if noise == 0 else 10 * np.log10(float(np.sum(reference**2)) / noise)


def encode_flat(codec, wav: np.ndarray, **options) -> np.ndarray:
    stream = codec.create_stream(**options)
    stream.accept_waveform(16000, wav)
    stream.input_finished()
    while codec.is_ready(stream):
        codec.encode_stream(stream)
    return np.stack([f.codes for f in stream.pop_codes()], axis=1)


def decode_flat(codec, codes: np.ndarray, **options) -> np.ndarray:
    stream = codec.create_decode_stream(**options)
    pieces = []
    for i in range(codes.shape[1]):  # one frame at a time, as a TTS model emits them
        stream.accept_codes(codes[:, i : i + 1])
        while codec.is_ready(stream):
            codec.decode_stream(stream)
        pieces.append(stream.pop_audio())
    stream.input_finished()
    while codec.is_ready(stream):
        codec.decode_stream(stream)
    return np.concatenate([*pieces, stream.pop_audio()])


class _Collect:
    def __init__(self) -> None:
        self.frames: list = []
        self.first_at: float | None = None
        self.t0 = time.monotonic()

    def write(self, frame) -> None:
        if self.first_at is None:
            self.first_at = time.monotonic() - self.t0
        self.frames.append(frame)


def encode_realtime(codec, path: Path, match_offline: bool, *setting: float) -> dict:
    sink = _Collect()
    stream = codec.create_stream(*setting, match_offline=match_offline)
    stats = run_stream(codec, FileSource(path, realtime=True), sink, stream)
    return {
        "first_code_s": sink.first_at,
        "latency_p50_ms": stats.percentile(50),
        "latency_p95_ms": stats.percentile(95),
        "rtf": stats.rtf,
        "overruns": stats.overruns,
    }


def decode_realtime(codec, codes: np.ndarray, match_offline: bool, *setting: float) -> dict:
    """Codes arrive at 12.5 frames/s from t = 0; the stream decodes as steps become ready."""
    stream = codec.create_decode_stream(*setting, match_offline=match_offline)
    n, rate = codes.shape[1], codec.output_sample_rate
    pieces, times, compute, arrived = [], [], 0.0, 0
    t0 = time.perf_counter()
    while True:
        due = min(n, int((time.perf_counter() - t0) / FRAME) + 1)
        if due > arrived:
            stream.accept_codes(codes[:, arrived:due])
            arrived = due
            if arrived == n:
                stream.input_finished()
        if codec.is_ready(stream):
            start = time.perf_counter()
            codec.decode_stream(stream)
            compute += time.perf_counter() - start
            pieces.append(stream.pop_audio())
            times.append(time.perf_counter() - t0)
        elif stream.finished:
            break
        else:
            time.sleep(max(0.0, arrived * FRAME - (time.perf_counter() - t0)))
    total = sum(len(p) for p in pieces)
    before = np.cumsum([0] + [len(p) for p in pieces[:-1]]) / rate
    return {
        "first_audio_s": times[0],
        "rtf": compute / (total / rate),
        "gapless_from_s": float(np.max(np.array(times) - before)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, help="model directory (repeat)")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--hops", type=floats, default=floats("0.08,0.16,0.32"))
    ap.add_argument("--contexts", type=floats, default=floats("1,2,5"))
    ap.add_argument("--lookaheads", type=floats, default=floats("0.16,0.32"))
    ap.add_argument("--grid-models", type=int, default=1, help="quality grid on the first N")
    ap.add_argument(
        "--grid",
        choices=("sweep", "full"),
        default="sweep",
        help="sweep: one setting varied at a time around hop 0.16 / context 2 / lookahead 0.32; "
        "full: every combination",
    )
    ap.add_argument("--realtime", default="0.16/2/0.32", help="hop/context/lookahead,...")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    wav = speech_clip(args.seconds)
    path = write_wav(Path(tempfile.mkdtemp()) / "speech.wav", wav, 16000)
    out: dict = {"seconds": args.seconds, "quality": [], "realtime": [], "offline": {}}
    print(f"{args.seconds:g} s of bundled speech; agreement/SNR vs offline; before -> after")
    print(
        f"{'model':<14}{'hop':>5}{'ctx':>5}{'look':>6}"
        f"{'stage-0 %':>18}{'all-stage %':>18}{'decode SNR dB':>18}"
    )
    for m, model_dir in enumerate(args.model):
        name = Path(model_dir).name
        codec = xyrt.runtime.load(model_dir, threads=args.threads)
        t = time.perf_counter()
        offline = codec.encode(wav)
        enc_s = time.perf_counter() - t
        t = time.perf_counter()
        audio = codec.decode(offline)
        dec_s = time.perf_counter() - t
        out["offline"][name] = {
            "encode_rtf": enc_s / args.seconds,
            "decode_rtf": dec_s / args.seconds,
        }
        grid = [
            (h, c, la)
            for h in args.hops
            for c in args.contexts
            for la in args.lookaheads
            if (args.grid == "full" or sum(map(float.__ne__, (h, c, la), CENTER)) <= 1)
            and (m < args.grid_models or (h, c, la) == CENTER)
        ]
        for hop, ctx, la in grid:
            row = {"model": name, "hop": hop, "context": ctx, "lookahead": la}
            for label, match in (("before", False), ("after", True)):
                opts = dict(hop=hop, context=ctx, lookahead=la, match_offline=match)
                agreement = compare_codes(offline, encode_flat(codec, wav, **opts))
                row[f"stage0_{label}"] = 100 * agreement.per_stage[0]
                row[f"all_{label}"] = 100 * agreement.identical
                row[f"snr_{label}"] = snr_db(audio, decode_flat(codec, offline, **opts))
            out["quality"].append(row)
            print(
                f"{name:<14}{hop:>5.2f}{ctx:>5.1f}{la:>6.2f}"
                f"{row['stage0_before']:>8.1f} -> {row['stage0_after']:>5.1f}"
                f"{row['all_before']:>9.1f} -> {row['all_after']:>5.1f}"
                f"{row['snr_before']:>9.1f} -> {row['snr_after']:>5.1f}",
                flush=True,
            )
        for setting in (s for s in args.realtime.split(",") if s):
            hop, ctx, la = (float(v) for v in setting.split("/"))
            row = {"model": name, "hop": hop, "context": ctx, "lookahead": la}
            for label, match in (("before", False), ("after", True)):
                enc = encode_realtime(codec, path, match, hop, ctx, la)
                dec = decode_realtime(codec, offline, match, hop, ctx, la)
                row[label] = {"encode": enc, "decode": dec}
                print(
                    f"{name} {label}: real time at hop {hop} / context {ctx} / lookahead {la}: "
                    f"encode first code {enc['first_code_s']:.2f} s, latency p50 "
                    f"{enc['latency_p50_ms']:.0f} ms p95 {enc['latency_p95_ms']:.0f} ms, RTF "
                    f"{enc['rtf']:.2f}; decode first audio {dec['first_audio_s']:.2f} s, RTF "
                    f"{dec['rtf']:.2f}, gapless from {dec['gapless_from_s']:.2f} s",
                    flush=True,
                )
            out["realtime"].append(row)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
