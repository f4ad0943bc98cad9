"""ONNX Runtime INT8 (cpu-dynamic) against FP32 on this CPU, in one run: encode and decode
speed-up and agreement (codes per RVQ stage, decoded audio SNR) on speech not used elsewhere.

    python benchmarks/int8_vs_fp32.py --fp32 DIR --int8 DIR [--seconds 10] [--runs 3]

The "held-out" speech is espeak-ng audio synthesised here, not part of any bundled set. With
`xyrt synth` checkpoints the weights are synthetic: their codes are far more sensitive to small
numerical changes than a trained model's, so agreement numbers are a lower bound.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

import xyrt.runtime
from xyrt.runtime.audio import load_audio, speech_clip
from xyrt.runtime.compare import compare_codes, snr_db

SENTENCES = [
    "Turn the volume down a little and play something calm.",
    "The meeting has been moved to half past three on Thursday.",
    "How many kilometres is it from here to the nearest station?",
]


def held_out(seconds: float) -> np.ndarray:
    if shutil.which("espeak-ng") is None:
        print("espeak-ng not found: using the bundled speech instead (not held out)")
        return speech_clip(seconds)
    folder = Path(tempfile.mkdtemp())
    parts = []
    for i, text in enumerate(SENTENCES):
        wav = folder / f"{i}.wav"
        subprocess.run(["espeak-ng", "-v", "en-gb", "-s", "140", "-w", str(wav), text], check=True)
        parts.append(load_audio(wav))
    return np.resize(np.concatenate(parts), int(seconds * 16000)).astype(np.float32)


def timed(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fp32", required=True)
    ap.add_argument("--int8", required=True)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    fp32, int8 = xyrt.runtime.load(args.fp32), xyrt.runtime.load(args.int8)
    wav = held_out(args.seconds)
    ref, got = fp32.encode(wav), int8.encode(wav)  # warm-up and agreement
    a32, a8 = fp32.decode(ref), int8.decode(ref)
    t = {}
    for _ in range(args.runs):  # interleaved, so drift hits both alike
        t.setdefault("fp32 encode", []).append(timed(lambda: fp32.encode(wav), 1))
        t.setdefault("int8 encode", []).append(timed(lambda: int8.encode(wav), 1))
        t.setdefault("fp32 decode", []).append(timed(lambda: fp32.decode(ref), 1))
        t.setdefault("int8 decode", []).append(timed(lambda: int8.decode(ref), 1))
    med = {k: statistics.median(v) for k, v in t.items()}
    agreement = compare_codes(ref, got)
    print(f"{args.seconds:g} s held-out speech, median of {args.runs}")
    for op in ("encode", "decode"):
        print(
            f"{op}: fp32 {med['fp32 ' + op]:.3f} s, int8 {med['int8 ' + op]:.3f} s, "
            f"speed-up {med['fp32 ' + op] / med['int8 ' + op]:.2f}x"
        )
    print(
        "codes identical to fp32 per stage: "
        + ", ".join(f"{100 * s:.1f}%" for s in agreement.per_stage)
    )
    print(f"decoder (same fp32 codes): int8 audio SNR vs fp32 {snr_db(a32, a8):.1f} dB")


if __name__ == "__main__":
    main()
