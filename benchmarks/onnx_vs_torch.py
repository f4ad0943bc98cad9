"""Full-size ONNX export and ONNX Runtime FP32 against PyTorch, in one run.

    python benchmarks/onnx_vs_torch.py --checkpoint CKPT [--out DIR] [--seconds 10] [--runs 3]

Measures: export wall time and peak memory (export runs in a child process), graph sizes, then
encode and decode of one clip with PyTorch (trimmed windows) and ONNX Runtime (CPU), interleaved
in the same process after a warm-up. With `xyrt synth` checkpoints the weights are synthetic.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

import xyrt.runtime
from xyrt.data import speech_clip
from xyrt.runtime.backends.pytorch.codec import XYCodec
from xyrt.runtime.compare import compare_codes, max_error_ratio, snr_db
from xyrt.runtime.modeldir.manifest import read_manifest


def export(checkpoint: str, out: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (GiB) of `xyrt export` in a child process."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "xyrt.cli", "export", "--checkpoint", checkpoint, "-o", str(out)]
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, peak_kib / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--out", default=None, help="export directory (default: beside checkpoint)")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--skip-export", action="store_true", help="reuse an existing export")
    args = ap.parse_args()
    out = Path(args.out or Path(args.checkpoint).parent / "onnx-fp32")

    if not args.skip_export:
        wall, peak = export(args.checkpoint, out)
        print(f"export: {wall:.1f} s wall, peak RSS {peak:.2f} GiB (child process)")
    for name, g in read_manifest(out).data["graphs"].items():
        print(f"  {name}.onnx: {g['bytes'] / 2**20:.1f} MiB, external data: {g['external_data']}")

    wav = speech_clip(args.seconds)
    pt = XYCodec.from_checkpoint(args.checkpoint)
    ort = xyrt.runtime.load(out)
    reference = pt.encode_reference(wav)  # codes and their float32 tie margins
    ref_codes, ort_codes = reference.codes, ort.encode(wav)  # warm-up and agreement
    pt.decode(ref_codes), ort.decode(ref_codes)
    times: dict[str, list[float]] = {k: [] for k in ("pt_enc", "ort_enc", "pt_dec", "ort_dec")}
    for _ in range(args.runs):
        for key, fn in [
            ("pt_enc", lambda: pt.encode(wav)),
            ("ort_enc", lambda: ort.encode(wav)),
            ("pt_dec", lambda: pt.decode(ref_codes)),
            ("ort_dec", lambda: ort.decode(ref_codes)),
        ]:
            t0 = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    agreement = compare_codes(reference, ort_codes)
    a_pt, a_ort = pt.decode(ref_codes), ort.decode(ref_codes)
    print(f"clip {args.seconds:.0f} s, {torch.get_num_threads()} threads, median of {args.runs}")
    print(f"{'':<10}{'PyTorch':>10}{'ORT FP32':>10}{'speed-up':>10}")
    for stage in ("enc", "dec"):
        p, o = med[f"pt_{stage}"], med[f"ort_{stage}"]
        print(f"{stage + 'ode':<10}{p:>9.3f}s{o:>9.3f}s{p / o:>9.2f}x")
    print(
        f"codes vs PyTorch: {agreement.describe()} "
        f"(per stage: {', '.join(f'{100 * s:.1f}' for s in agreement.per_stage)})"
    )
    print(
        f"audio: max error {max_error_ratio(a_pt, a_ort):.2e} x peak, "
        f"SNR {snr_db(a_pt, a_ort):.1f} dB"
    )
    if not np.isfinite(a_ort).all():
        raise SystemExit("ORT audio has NaN/Inf")
    if not agreement.ok:
        raise SystemExit("ORT codes differ from PyTorch beyond float32 near-ties")


if __name__ == "__main__":
    main()
