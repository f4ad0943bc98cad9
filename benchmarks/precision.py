"""Every precision against ONNX Runtime FP32 on this CPU, in one run: encode/decode speed-up,
first-stage (and per-stage) code agreement, decoded-audio SNR, on held-out speech.

    python benchmarks/precision.py --fp32 DIR --int8 DIR [--int8 DIR2] [--fp16 DIR]
                                   [--seconds 10] [--runs 3]

Graph sets measured: fp32; int8 cpu-dynamic (the directory's default graphs, for ORT CPU);
int8 trt-qdq (the TensorRT Q/DQ graphs, run here by ORT CPU for accuracy: their speed is
TensorRT's business); fp16 (ORT CPU has few float16 kernels: accuracy only, speed for the
record). Timings are interleaved so drift hits all alike; medians of ``--runs``.

It also measures this machine's GEMM peaks, float32 (BLAS/oneDNN) and int8 (ONNX Runtime
MatMulInteger), because their ratio bounds any int8 speed-up: the held-out speech is the bundled
espeak-ng sentences, which no calibration set contains. With `xyrt synth` checkpoints the
weights are synthetic: their codes are far more sensitive to small numerical changes than a
trained model's, so agreement numbers are a lower bound.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

import xyrt.runtime
from xyrt.bench.peak import measure_peak
from xyrt.data import heldout_speech
from xyrt.runtime.compare import compare_codes, snr_db
from xyrt.runtime.modeldir.manifest import read_manifest


def held_out(seconds: float) -> np.ndarray:
    speech = np.concatenate(list(heldout_speech().values()))
    return np.resize(speech, int(seconds * 16000)).astype(np.float32)


def once(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fp32", required=True)
    ap.add_argument("--int8", action="append", required=True, help="repeat to compare several")
    ap.add_argument("--fp16")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--fp16-runs", type=int, default=1, help="fp16 on CPU is slow; fewer runs")
    args = ap.parse_args()
    models = {"fp32": xyrt.runtime.load(args.fp32)}
    for path in args.int8:
        tag = Path(path).name
        models[f"{tag} cpu-dyn"] = xyrt.runtime.load(path)
        if "tensorrt" in read_manifest(path).data.get("targets", {}):
            models[f"{tag} trt-qdq"] = xyrt.runtime.load(path, target="tensorrt")
    if args.fp16:
        models["fp16"] = xyrt.runtime.load(args.fp16)
    wav = held_out(args.seconds)
    ref = models["fp32"].encode(wav)
    ref_audio = models["fp32"].decode(ref)
    rows = {}
    for name, model in models.items():  # warm-up and accuracy
        codes = model.encode(wav)
        rows[name] = {
            "agreement": compare_codes(ref, codes).per_stage,
            "snr": snr_db(ref_audio, model.decode(ref)),
            "encode": [],
            "decode": [],
        }
    for i in range(args.runs):
        for name, model in models.items():
            if name == "fp16" and i >= args.fp16_runs:
                continue
            rows[name]["encode"].append(once(lambda m=model: m.encode(wav)))
            rows[name]["decode"].append(once(lambda m=model: m.decode(ref)))
    peak = measure_peak()
    print(f"{args.seconds:g} s held-out speech, ONNX Runtime CPU, median of {args.runs} runs")
    head = f"{'graphs':<26}{'encode s':>9}{'x fp32':>8}{'decode s':>9}{'x fp32':>8}"
    print(head + f"{'stage-0':>9}{'stages 1-7 (%)':>34}{'SNR dB':>8}")
    base = {op: statistics.median(rows["fp32"][op]) for op in ("encode", "decode")}
    for name, r in rows.items():
        enc, dec = statistics.median(r["encode"]), statistics.median(r["decode"])
        rest = " ".join(f"{100 * a:.0f}" for a in r["agreement"][1:])
        print(
            f"{name:<26}{enc:>9.3f}{base['encode'] / enc:>7.2f}x{dec:>9.3f}"
            f"{base['decode'] / dec:>7.2f}x{100 * r['agreement'][0]:>8.1f}%{rest:>34}"
            f"{r['snr']:>8.1f}"
        )
    int8 = peak.get("int8_gops")
    if int8:
        print(
            f"GEMM peak on this machine: float32 {peak['gflops']:.0f} GFLOP/s, int8 "
            f"{int8:.0f} GOP/s: int8 GEMM is at most {int8 / peak['gflops']:.2f}x float32 here"
        )


if __name__ == "__main__":
    main()
