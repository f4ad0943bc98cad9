"""One benchmarked backend, in its own process (clean peak memory and thread pools).

    python -m xyrt.bench.worker < spec.json > result.json

Spec: {"backend", "kind": "torch"|"torch-cuda"|"ort"|"openvino"|"tensorrt", "precision":
"fp32"|"bf16"|"f32"|"int8"|...,
"checkpoint", "model_dir", "pad_to_30s", "providers", "threads", "seconds": [...],
"batch": [...], "runs", "warmup"}.
Result: raw latencies (ms) and stage times per (op, seconds, batch); statistics are the
driver's job.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np

from xyrt.config import INPUT_SAMPLE_RATE, SAMPLES_PER_CODE_IN
from xyrt.runtime.audio import speech_clip
from xyrt.runtime.graph_io import window_feed

STAGE_RUNS = 2  # instrumented/profiled runs per case for the stage breakdown (means)


def _runner(spec: dict):
    from xyrt.bench.runners import OpenVinoRunner, OrtRunner, TorchRunner, TrtRunner

    if spec["kind"] in ("torch", "torch-cuda"):
        device = "cuda" if spec["kind"] == "torch-cuda" else "cpu"
        return TorchRunner(
            spec["checkpoint"],
            spec["pad_to_30s"],
            spec.get("threads"),
            device,
            spec.get("precision", "fp32"),
        )
    if spec["kind"] == "tensorrt":
        return TrtRunner(spec["model_dir"])
    if spec["kind"] == "openvino":
        return OpenVinoRunner(spec["model_dir"], spec["precision"], spec.get("threads"))
    return OrtRunner(spec["model_dir"], spec.get("providers"), spec.get("threads"))


def peak_rss_mib() -> float:
    """This process's own peak resident memory (MiB).

    Linux: VmHWM of /proc/self/status. Not ru_maxrss: across fork + exec it keeps the parent's
    high-water mark, so every worker would report the driver's peak.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(fn, runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def _mean_stages(measured: list[tuple[dict, float]]) -> tuple[dict, float]:
    names = sorted({k for st, _ in measured for k in st})
    stages = {k: float(np.mean([st.get(k, 0.0) for st, _ in measured])) for k in names}
    return stages, float(np.mean([total for _, total in measured]))


def _add_stages(runner, jobs: list[tuple[dict, str, tuple]], runs: int) -> None:
    """Fill each case's stages_ms / stages_total_ms (means over ``runs`` runs)."""
    if getattr(runner, "no_stages", False):
        for case, _, _ in jobs:
            case["stages_ms"], case["stages_total_ms"] = {}, 0.0
        return
    if hasattr(runner, "encode_stages"):
        for case, op, args in jobs:
            fn = runner.encode_stages if op == "encode" else runner.decode_stages
            case["stages_ms"], case["stages_total_ms"] = _mean_stages(
                [fn(*args) for _ in range(runs)]
            )
        return
    for op, graph in (("encode", "encoder"), ("decode", "decoder")):
        mine = [(case, args) for case, o, args in jobs if o == op]
        results = runner.profile(graph, [(window_feed(graph, *args), runs) for _, args in mine])
        for (case, _), measured in zip(mine, results, strict=True):
            case["stages_ms"], case["stages_total_ms"] = _mean_stages(measured)


def run(spec: dict) -> dict:
    """Measure one backend: raw latencies and stage means per case, peak RSS, load time."""
    t0 = time.perf_counter()
    runner = _runner(spec)
    load_s = time.perf_counter() - t0
    cases, stage_jobs = [], []
    for seconds in spec["seconds"]:
        for batch in spec["batch"]:
            wav, lengths = runner.pack([speech_clip(seconds)] * batch)
            frames = int(seconds * INPUT_SAMPLE_RATE) // SAMPLES_PER_CODE_IN
            codes = runner.encode(wav, lengths)[:, :, :frames]
            codes = np.ascontiguousarray(codes)
            for op, args in (("encode", (wav, lengths)), ("decode", (codes,))):
                fn = runner.encode if op == "encode" else runner.decode
                cases.append(
                    {
                        "op": op,
                        "seconds": seconds,
                        "batch": batch,
                        "window_samples": int(wav.shape[1]),
                        "codes": int(codes.shape[2]),
                        "latencies_ms": _timed(
                            lambda fn=fn, a=args: fn(*a), spec["runs"], spec["warmup"]
                        ),
                    }
                )
                stage_jobs.append((cases[-1], op, args))
    peak_mib = peak_rss_mib()
    if spec.get("accuracy"):  # held-out speech vs the FP32 reference (xyrt.bench.accuracy)
        from xyrt.bench.accuracy import save_outputs

        acc = spec["accuracy"]
        save_outputs(acc["out"], runner.encode, runner.decode, runner.pack, acc["reference"])
    # after the peak: ORT profiling opens extra sessions
    _add_stages(runner, stage_jobs, min(spec["runs"], STAGE_RUNS))
    return {"load_seconds": load_s, "peak_rss_mib": peak_mib, "cases": cases}


def main() -> None:
    spec = json.loads(sys.stdin.read())
    print(json.dumps(run(spec)))


if __name__ == "__main__":
    main()
