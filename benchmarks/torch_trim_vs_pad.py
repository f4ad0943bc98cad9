"""PyTorch encode/decode time of one clip: trimmed windows (xyrt) against pad_to_30s (published).

    python benchmarks/torch_trim_vs_pad.py --checkpoint CKPT [--seconds 10] [--runs 3]

Both variants run in the same process, interleaved, after a warm-up; the codes must be
identical except reference float32 near-ties (xyrt.runtime.compare).
With a synthetic checkpoint (xyrt synth) the weights are random: timings are real, audio is not.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from xyrt.data import speech_clip
from xyrt.runtime.backends.pytorch.codec import XYCodec
from xyrt.runtime.compare import compare_codes


def timed(fn, runs: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--config")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    trim = XYCodec.from_checkpoint(args.checkpoint, args.config)
    pad = XYCodec(trim.model, pad_to_30s=True)
    wav = speech_clip(args.seconds)
    trim.encode(wav)  # warm-up
    t_pad, codes_pad = timed(lambda: pad.encode(wav), args.runs)
    t_trim, codes_trim = timed(lambda: trim.encode(wav), args.runs)
    agreement = compare_codes(pad.encode_reference(wav), codes_trim)
    t_dec, audio = timed(lambda: trim.decode(codes_trim), args.runs)

    print(f"clip {args.seconds:.1f} s, {args.threads} threads, median of {args.runs} runs")
    print(f"{'stage':<28}{'time (s)':>10}{'RTF':>8}")
    for name, t in [
        ("encode, pad_to_30s (pub.)", t_pad),
        ("encode, trimmed (xyrt)", t_trim),
        ("decode (xyrt = published)", t_dec),
    ]:
        print(f"{name:<28}{t:>10.3f}{t / args.seconds:>8.3f}")
    print(
        f"encode speed-up trimmed vs pad_to_30s: {t_pad / t_trim:.2f}x "
        f"(trimmed costs {t_trim / t_pad:.0%} of published)"
    )
    print(f"codes, trimmed vs pad_to_30s: {agreement.describe()}")
    print(f"decoded {len(audio)} samples at {trim.output_sample_rate} Hz")
    if not agreement.ok:
        raise SystemExit("codes differ between trimmed and pad_to_30s beyond float32 near-ties")


if __name__ == "__main__":
    main()
