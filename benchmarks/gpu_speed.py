"""Where the GPU time of the torch backend goes, and what each of its speed options buys.

    python benchmarks/gpu_speed.py --out DIR [--checkpoint CKPT] [--budget 240]

Full-size model with SEEDED SYNTHETIC WEIGHTS unless --checkpoint is given (built as in
`gpu_check.py`). Sections (each timed, failures recorded, skipped past --budget):
- profile: the CUDA kernels of one bf16 batch-64 encode and decode of 10 s windows (eager),
  grouped into matmul / attention / other, top kernels by time;
- encode_variants / decode_variants: 10 s clips through ``xyrt.runtime.load`` with each option
  (CUDA graphs on/off, autocast or whole-stack bf16/fp16, SDPA kernels, torch.compile), audio
  seconds per second and code agreement with float32;
- stream_variants: steady-state encode and decode stream steps with the same options;
- memory: one 60 min file, GPU memory the encode itself needs (peak minus what was allocated).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_check import (  # noqa: E402
    SR,
    Check,
    agreement,
    clips_10s,
    common_args,
    decode_steps,
    encode_steps,
    pct,
)

MATMUL = ("gemm", "nvjet", "cutlass", "sm90", "cublas", "xmma")
ATTENTION = ("fmha", "flash", "attention", "attn", "cudnn_sdpa")


def kernel_groups(events) -> dict:
    groups = {"matmul": 0.0, "attention": 0.0, "other": 0.0}
    rows = []
    for e in events:
        ms = getattr(e, "device_time_total", getattr(e, "cuda_time_total", 0.0)) / 1e3
        if ms <= 0 or e.key.startswith(("aten::", "cuda", "Memcpy", "Memset")):
            continue
        name = e.key.lower()
        kind = "other"
        if any(k in name for k in ATTENTION):
            kind = "attention"
        elif any(k in name for k in MATMUL):
            kind = "matmul"
        groups[kind] += ms
        rows.append((ms, e.count, kind, e.key[:100]))
    rows.sort(reverse=True)
    total = sum(groups.values())
    return {
        "kernel_ms": {k: round(v, 2) for k, v in groups.items()},
        "share": {k: round(v / total, 3) for k, v in groups.items()} if total else {},
        "top": [{"ms": round(m, 2), "calls": c, "kind": k, "name": n} for m, c, k, n in rows[:15]],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_args(ap, 240.0)
    ap.add_argument("--variants", help="comma-separated subset of the variants (default: all)")
    ap.add_argument("--synthetic", action="store_true", help="--checkpoint is from xyrt synth")
    args = ap.parse_args()
    keep = None if args.variants is None else set(args.variants.split(","))
    import torch

    import xyrt.runtime

    ck = Check(args.out.resolve(), args.budget, args.sections, name="gpu_speed")
    ck.report["schema"] = "xyrt-gpu-speed/1"
    args.out = args.out.resolve()
    dev, q = args.device, args.quick
    cuda = dev.startswith("cuda")
    ck.report["run"] = {
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "torch": torch.__version__,
        "weights": "SYNTHETIC (xyrt synth seed 0)"
        if args.synthetic or not args.checkpoint
        else "given checkpoint",
    }
    ckpt = args.checkpoint.resolve() if args.checkpoint else None
    if ckpt is None:
        from xyrt.export.synth import synth_checkpoint

        ckpt = Path(tempfile.mkdtemp(prefix="xyrt-gpu-")) / "synth" / "model.ckpt"
        t = time.perf_counter()
        synth_checkpoint(ckpt, seed=0)
        ck.log(f"synthetic checkpoint in {time.perf_counter() - t:.1f} s")
    n = 16 if q else 256
    clips = clips_10s(n)
    batch = 4 if q else 64
    low = "bf16" if cuda else "fp32"

    def sdpa(names: tuple[str, ...] | None):
        import contextlib

        if names is None or not cuda:
            return contextlib.nullcontext()
        from torch.nn.attention import SDPBackend, sdpa_kernel

        return sdpa_kernel([getattr(SDPBackend, x) for x in names])

    ref = xyrt.runtime.load(ckpt, device=dev, precision="fp32")
    ref.batch_size = 32 if cuda else 4
    ref_codes = ref.encode(clips)
    ref.close()
    del ref

    def profile() -> dict:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as prof

        codec = xyrt.runtime.load(ckpt, device=dev, precision=low, cuda_graphs=False)
        codec.batch_size = batch
        part = clips[:batch]
        codes = codec.encode(part)
        codec.decode(codes)
        out = {}
        acts = [ProfilerActivity.CUDA] if cuda else [ProfilerActivity.CPU]
        for op, fn in (
            ("encode", lambda: codec.encode(part)),
            ("decode", lambda: codec.decode(codes)),
        ):
            with prof(activities=acts) as p:
                t = time.perf_counter()
                fn()
                wall = time.perf_counter() - t
            out[op] = {
                "wall_ms": round(wall * 1e3, 2),
                "batch": batch,
                **kernel_groups(p.key_averages()),
            }
            try:
                table = p.key_averages().table(sort_by="device_time_total", row_limit=25)
            except Exception:  # noqa: BLE001 - older PyTorch names the key cuda_time_total
                table = p.key_averages().table(sort_by="cpu_time_total", row_limit=25)
            with open(args.out / "gpu_speed_profile.txt", "a") as f:
                f.write(f"== {op}, batch {batch}, 10 s windows, {low} eager ==\n{table}\n")
        codec.close()
        return out

    def encode_variants() -> dict:
        variants = [
            ("autocast_graphs", {}, None),
            ("autocast_eager", {"cuda_graphs": False}, None),
            ("autocast_eager_sdpa_efficient", {"cuda_graphs": False}, ("EFFICIENT_ATTENTION",)),
            ("autocast_eager_sdpa_cudnn", {"cuda_graphs": False}, ("CUDNN_ATTENTION",)),
            ("wholestack_graphs", {"autocast": False}, None),
            ("wholestack_eager", {"autocast": False, "cuda_graphs": False}, None),
            ("wholestack_compile_graphs", {"autocast": False, "compile": True}, None),
            ("fp16_wholestack_graphs", {"autocast": False, "precision": "fp16"}, None),
        ]
        out = {"clips": n, "batch": batch}
        variants = [v for v in variants if keep is None or v[0] in keep]
        for name, kw, kernels in variants:
            if ck.elapsed() > args.budget - 30:
                out[name] = "skipped: budget"
                continue
            kw = {"precision": low, **kw}
            if not cuda:
                kw.pop("precision")
                kw["precision"] = "bf16" if "fp16" not in str(kw) else "fp32"
            t0 = time.perf_counter()
            try:
                codec = xyrt.runtime.load(ckpt, device=dev, **kw)
                codec.batch_size = batch
                with sdpa(kernels):
                    codec.encode(clips[: 2 * batch])
                    codec.encode(clips[: 2 * batch])
                    ready = time.perf_counter() - t0
                    t = time.perf_counter()
                    codes = codec.encode(clips)
                    dt = time.perf_counter() - t
                out[name] = {
                    "x_realtime": round(n * 10 / dt, 1),
                    "ready_seconds": round(ready, 1),
                    **agreement(ref_codes, codes),
                }
                codec.close()
            except Exception as exc:  # noqa: BLE001 - a variant that cannot run is a result
                out[name] = f"failed: {type(exc).__name__}: {exc}"[:300]
            ck.log(f"  encode {name}: {out[name]}")
            if cuda:
                torch.cuda.empty_cache()
        return out

    def decode_variants() -> dict:
        codes = ref_codes
        variants = [
            ("autocast_graphs", {}),
            ("autocast_eager", {"cuda_graphs": False}),
            ("wholestack_graphs", {"autocast": False}),
            ("wholestack_compile_graphs", {"autocast": False, "compile": True}),
        ]
        ref = xyrt.runtime.load(ckpt, device=dev, precision="fp32")
        ref.batch_size = batch
        ref_audio = ref.decode(codes[:16])
        ref.close()
        out = {"items": n, "batch": batch}
        variants = [v for v in variants if keep is None or v[0] in keep]
        for name, kw in variants:
            if ck.elapsed() > args.budget - 30:
                out[name] = "skipped: budget"
                continue
            t0 = time.perf_counter()
            try:
                codec = xyrt.runtime.load(ckpt, device=dev, precision=low, **kw)
                codec.batch_size = batch
                codec.decode(codes[: 2 * batch])
                codec.decode(codes[: 2 * batch])
                ready = time.perf_counter() - t0
                t = time.perf_counter()
                audio = codec.decode(codes)
                dt = time.perf_counter() - t
                from xyrt.runtime.compare import snr_db

                snr = np.mean([snr_db(r, a) for r, a in zip(ref_audio, audio[:16], strict=True)])
                out[name] = {
                    "x_realtime": round(n * 10 / dt, 1),
                    "ready_seconds": round(ready, 1),
                    "snr_db_vs_fp32": round(float(snr), 1),
                }
                codec.close()
            except Exception as exc:  # noqa: BLE001
                out[name] = f"failed: {type(exc).__name__}: {exc}"[:300]
            ck.log(f"  decode {name}: {out[name]}")
        return out

    def stream_variants() -> dict:
        long = clips_10s(1, 12.0)[0]
        out = {}
        variants = (
            ("autocast_graphs", {}),
            ("wholestack_graphs", {"autocast": False}),
            ("wholestack_compile_graphs", {"autocast": False, "compile": True}),
        )
        for name, kw in [v for v in variants if keep is None or v[0] in keep]:
            if ck.elapsed() > args.budget - 40:
                out[name] = "skipped: budget"
                continue
            try:
                codec = xyrt.runtime.load(ckpt, device=dev, precision=low, **kw)
                enc = encode_steps(codec, long, 0.32, 2.0, 0.32)
                dec = decode_steps(codec, codec.encode(long), 0.32, 2.0, 0.16)
                out[name] = {
                    "encode_step_ms": pct(enc[len(enc) // 2 :]),
                    "decode_step_ms": pct(dec[len(dec) // 2 :]),
                }
                codec.close()
            except Exception as exc:  # noqa: BLE001
                out[name] = f"failed: {type(exc).__name__}: {exc}"[:300]
            ck.log(f"  stream {name}: {out[name]}")
        return out

    def memory() -> dict:
        from xyrt.data import speech_clip

        audio = speech_clip((2 if q else 60) * 60.0)
        codec = xyrt.runtime.load(ckpt, device=dev, precision=low)
        out = {"minutes": len(audio) / SR / 60}
        for b in (8, 32):
            codec.batch_size = b
            codec.encode(audio[: 120 * SR])
            if cuda:
                torch.cuda.synchronize()
                base = torch.cuda.memory_allocated()
                torch.cuda.reset_peak_memory_stats()
            t = time.perf_counter()
            codec.encode(audio)
            dt = time.perf_counter() - t
            row = {"x_realtime": round(len(audio) / SR / dt, 1)}
            if cuda:
                row["allocated_before_mib"] = round(base / 2**20)
                row["encode_working_mib"] = round(
                    (torch.cuda.max_memory_allocated() - base) / 2**20
                )
            out[f"batch{b}"] = row
        codec.close()
        return out

    ck.section("profile", profile, 30)
    ck.section("memory", memory, 20)
    ck.section("encode_variants", encode_variants, 60)
    ck.section("decode_variants", decode_variants, 40)
    ck.section("stream_variants", stream_variants, 60)
    ck.report["total_seconds"] = round(ck.elapsed(), 1)
    ck.save()
    ck.log("done")


if __name__ == "__main__":
    main()
