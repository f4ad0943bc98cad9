"""ORT int8 with the attention products quantized (``xyrt quantize --quantize-attention``)
against plain cpu-dynamic int8 and FP32, in one run: encode of one window (10 s, 30 s) and a
batch of windows, interleaved timings (medians), stage-0 agreement with FP32 on the same audio.

    python benchmarks/int8_attention.py --fp32 DIR --int8 DIR --int8-attention DIR \\
        [--seconds 10,30] [--batch 4] [--runs 3] [--threads 2]

The audio is the bundled held-out speech repeated to each length. Full-size numbers from
`xyrt synth` checkpoints are SYNTHETIC weights: timings are real, agreement is a lower bound.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import xyrt.runtime
from xyrt.data import heldout_speech
from xyrt.runtime.compare import compare_codes


def clip(seconds: float) -> np.ndarray:
    speech = np.concatenate(list(heldout_speech().values()))
    return np.resize(speech, int(seconds * 16000)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fp32", required=True)
    parser.add_argument("--int8", required=True)
    parser.add_argument("--int8-attention", required=True)
    parser.add_argument("--seconds", default="10,30")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    dirs = {"fp32": args.fp32, "int8": args.int8, "int8-attention": args.int8_attention}
    codecs = {
        k: xyrt.runtime.load(d, threads=args.threads, batch_size=args.batch)
        for k, d in dirs.items()
    }
    cases = [(float(s), 1) for s in args.seconds.split(",")] + [(10.0, args.batch)]
    print("ORT CPU, threads", args.threads, "(shared machine: compare ratios, not times)")
    for seconds, batch in cases:
        wavs = [clip(seconds)] * batch
        codes = {k: c.encode(wavs if batch > 1 else wavs[0]) for k, c in codecs.items()}
        times: dict[str, list[float]] = {k: [] for k in codecs}
        for _ in range(args.runs):  # interleaved: drift hits every model alike
            for k, c in codecs.items():
                t0 = time.perf_counter()
                c.encode(wavs if batch > 1 else wavs[0])
                times[k].append(time.perf_counter() - t0)
        ref = codes["fp32"] if batch == 1 else codes["fp32"][0]
        fp32_s = statistics.median(times["fp32"])
        for k in codecs:
            got = codes[k] if batch == 1 else codes[k][0]
            agree = compare_codes(ref, got)
            med = statistics.median(times[k])
            print(
                f"encode {seconds:g} s x{batch}: {k:<15} {med:7.3f} s  "
                f"{fp32_s / med:5.2f}x fp32  stage-0 {100 * agree.per_stage[0]:5.1f}%  "
                f"all {100 * agree.identical:5.1f}%"
            )


if __name__ == "__main__":
    main()
