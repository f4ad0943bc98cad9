"""INT8 agreement and speed on this CPU and on an emulated AVX2 CPU: int8 weights and their twin.

    python benchmarks/int8_hosts.py --fp32 D/onnx-fp32 --out benchmarks/results/int8_hosts.json

The encoder of an FP32 export is quantized by ``cpu-dynamic`` (every quantizable MatMul INT8,
no sensitivity pass: the front end, the residual VQ and the attention stay float as always)
with int8 weights, and its uint8 twin is made (`xyrt.calib.schemes.u8_twin`: the same weights
+ 128, what the ONNX Runtime backend runs on x86 CPUs without VNNI since issue 26). Each graph
encodes the six bundled speech clips (10 s windows), natively and under ``qemu-x86_64 -cpu
Haswell`` (AVX2 and FMA, no AVX-512, no VNNI: ONNX Runtime picks its kernels from CPUID), and
its codes are compared with the FP32 graph's on the same CPU: stage-0 and all-stage agreement.
Latency is the median of ``--runs`` encodes of one 10 s clip, the graphs interleaved, native
only (an emulated CPU's time says nothing about a real one).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HASWELL = "Haswell,-pcid,-x2apic,-tsc-deadline,-hle,-invpcid,-rtm"
VARIANTS = ("int8", "u8twin")


def clips(seconds: float = 10.0) -> list[np.ndarray]:
    with np.load(ROOT / "tests" / "fixtures" / "tiny_16k" / "golden.npz") as g:
        return [g[f"speech_{i}/wav"][: int(16000 * seconds)] for i in range(6)]


def make_variants(fp32: Path, work: Path) -> dict[str, Path]:
    from xyrt.calib import schemes
    from xyrt.runtime.graph_io import FLOAT_SCOPES
    from xyrt.runtime.modeldir.manifest import read_manifest

    src = read_manifest(fp32).check_graph("encoder")
    keep = schemes.nodes_under(src, FLOAT_SCOPES)
    s8, u8 = work / "encoder.int8.onnx", work / "encoder.u8twin.onnx"
    if not s8.exists():
        t = time.perf_counter()
        schemes.write_cpu_dynamic(src, s8, keep, "fused")
        print(f"int8 weights: {time.perf_counter() - t:.0f} s", file=sys.stderr)
    if not u8.exists():
        schemes.u8_twin(s8, u8)
    return {"fp32": src, "int8": s8, "u8twin": u8}


def measure(graphs: dict[str, Path], runs: int, threads: int) -> dict:
    """Agreement with FP32 (and native latency) of each variant on this CPU."""
    import onnxruntime as ort

    from xyrt.runtime import hostcpu
    from xyrt.runtime.graph_io import encoder_feed, pack_windows

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    feeds = [encoder_feed(*pack_windows([wav])) for wav in clips()]
    sessions = {
        name: ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        for name, path in graphs.items()
    }
    codes = {name: [s.run(None, f)[0][:, 0] for f in feeds] for name, s in sessions.items()}
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(runs):  # interleaved, so drift of the host hits every graph alike
        for name, sess in sessions.items():
            t = time.perf_counter()
            sess.run(None, feeds[0])
            times[name].append(time.perf_counter() - t)
    latency = {n: round(1000 * float(np.median(t)), 1) for n, t in times.items() if t}
    out = {"isa": hostcpu.isa(), "int8_dot": hostcpu.int8_dot(), "onnxruntime": ort.__version__}
    for name in VARIANTS:
        pairs = list(zip(codes["fp32"], codes[name], strict=True))
        frames = sum(a.shape[1] for a, _ in pairs)
        out[name] = {
            "stage0_agreement": round(sum(int((a[0] == b[0]).sum()) for a, b in pairs) / frames, 4),
            "all_stage_agreement": round(
                sum(int((a == b).all(0).sum()) for a, b in pairs) / frames, 4
            ),
            "frames": frames,
        }
    if latency:
        out["latency_ms_10s"] = latency
    return out


def save(out: Path | None, report: dict) -> None:
    if out is not None:
        from xyrt.atomic import atomic_write

        with atomic_write(out) as tmp:
            Path(tmp).write_text(json.dumps(report, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fp32", type=Path, required=True, help="an FP32 export (xyrt export)")
    ap.add_argument("--out", type=Path, help="write the JSON here")
    ap.add_argument("--work", type=Path, help="keep the quantized graphs here (default: temp)")
    ap.add_argument("--runs", type=int, default=5, help="timed encodes per graph (native)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--hosts", default="native,avx2", help="native, avx2 (emulated) or both")
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # one host's part, as JSON
    args = ap.parse_args()
    if args.measure is not None:  # the emulated half: graphs already made
        graphs = json.loads(args.measure.read_text())
        print(json.dumps(measure({k: Path(v) for k, v in graphs.items()}, 0, args.threads)))
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="xyrt-int8-hosts-"))
    work.mkdir(parents=True, exist_ok=True)
    graphs = make_variants(args.fp32, work)
    from provenance import run_facts

    report = {"run": run_facts(), "model": str(args.fp32)}
    hosts = args.hosts.split(",")
    if "native" in hosts:
        report["native"] = measure(graphs, args.runs, args.threads)
        print(json.dumps(report["native"]), file=sys.stderr)
        save(args.out, report)  # the native half now: the emulated one can take hours
    if "avx2" in hosts:
        plan = work / "graphs.json"
        plan.write_text(json.dumps({k: str(v) for k, v in graphs.items()}))
        t = time.perf_counter()
        cmd = ["qemu-x86_64", "-cpu", HASWELL, sys.executable, __file__, "--fp32", str(args.fp32)]
        cmd += ["--measure", str(plan), "--threads", str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
        if proc.returncode != 0:
            sys.exit(f"emulated run failed: {proc.stderr[-2000:]}")
        report["avx2_emulated"] = json.loads(proc.stdout.strip().splitlines()[-1])
        report["avx2_emulated"]["wall_seconds"] = round(time.perf_counter() - t)
        print(json.dumps(report["avx2_emulated"]), file=sys.stderr)
    save(args.out, report)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
