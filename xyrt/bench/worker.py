"""One benchmarked backend, in its own process (clean peak memory and thread pools).

    python -m xyrt.bench.worker < spec.json > result.json

Spec: {"backend" (the bench name), "registry" (the registry's backend name), "options" (its
`Options` fields), "device", "source" (checkpoint or model directory), "pad_to_30s", "threads",
"seconds": [...], "batch": [...], "runs", "warmup"}.
Every case runs through the runtime `Backend` the spec names (the same classes `xyrt encode`
uses); stage times come from its `StageProfiler`, where it has one.
Result: raw latencies (ms) and stage times per (op, seconds, batch) and how the stages were
timed; statistics are the driver's job.
"""

from __future__ import annotations

import functools
import json
import resource
import sys
import time

import numpy as np

from xyrt.config import INPUT_SAMPLE_RATE, SAMPLES_PER_CODE_IN
from xyrt.data import speech_clip
from xyrt.runtime.backends.base import (
    UNATTRIBUTED,
    Backend,
    StageProfiler,
    StageTimes,
    limits_of,
)
from xyrt.runtime.graph_io import DECODER, ENCODER, pack_windows, window_feed

STAGE_RUNS = 2  # instrumented/profiled runs per case for the stage breakdown (means)
NO_STAGES = "none (end-to-end only)"


def make_backend(spec: dict) -> Backend:
    """The runtime backend a worker spec names, opened through the registry (the same path as
    `xyrt encode`) with the options of its bench variant (`registry.Variant`), unloaded."""
    from xyrt.runtime.backends.registry import open_backend

    backend = open_backend(
        spec["source"], spec["registry"], threads=spec.get("threads"), **spec["options"]
    )
    if spec["pad_to_30s"]:  # the published cost: eager, with PyTorch's own (TF32) flags
        backend.ieee = False
    return backend


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


def gpu_peak_mib(spec: dict) -> float | None:
    """Peak GPU memory PyTorch allocated in this process (MiB); None off CUDA or without
    PyTorch (a backend that never imported it allocated nothing through it)."""
    if spec["device"] != "cuda" or "torch" not in sys.modules:
        return None
    import torch

    return torch.cuda.max_memory_allocated() / 2**20


def _timed(fn, runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def _mean_stages(measured: list[StageTimes]) -> tuple[dict, float]:
    """Mean ms per stage over the runs, with the time no stage accounts for as its own row
    (`UNATTRIBUTED`), and the mean run."""
    names = sorted({k for m in measured for k in m.stages_ms})
    stages = {k: float(np.mean([m.stages_ms.get(k, 0.0) for m in measured])) for k in names}
    total = float(np.mean([m.total_ms for m in measured]))
    rest = total - sum(stages.values())
    if rest > 0:
        stages[UNATTRIBUTED] = rest
    return stages, total


def _add_stages(
    profiler: StageProfiler | None, jobs: list[tuple[dict, str, tuple]], runs: int
) -> None:
    """Fill each case's stages_ms / stages_total_ms (means over ``runs`` runs)."""
    if profiler is None:
        for case, _, _ in jobs:
            case["stages_ms"], case["stages_total_ms"] = {}, 0.0
        return
    for op, graph in (("encode", ENCODER), ("decode", DECODER)):
        mine = [(case, args) for case, o, args in jobs if o == op]
        results = profiler.profile(graph, [(window_feed(graph, *args), runs) for _, args in mine])
        for (case, _), measured in zip(mine, results, strict=True):
            case["stages_ms"], case["stages_total_ms"] = _mean_stages(measured)


def run(spec: dict) -> dict:
    """Measure one backend: raw latencies and stage means per case, peak RSS, load time."""
    t0 = time.perf_counter()
    backend = make_backend(spec).load()  # sessions/engines now, not inside a timed run
    load_s = time.perf_counter() - t0
    cases, stage_jobs = [], []
    # a graphed CUDA backend captures a shape on its second call: never time the capture
    graphed = limits_of(backend).max_graphs is not None
    warmup = max(spec["warmup"], 2) if graphed else spec["warmup"]
    for seconds in spec["seconds"]:
        for batch in spec["batch"]:
            wav, lengths = pack_windows([speech_clip(seconds)] * batch, spec["pad_to_30s"])
            frames = int(seconds * INPUT_SAMPLE_RATE) // SAMPLES_PER_CODE_IN
            codes = backend.encode_window(wav, lengths)[:, :, :frames]
            codes = np.ascontiguousarray(codes)
            for op, args in (("encode", (wav, lengths)), ("decode", (codes,))):
                fn = backend.encode_window if op == "encode" else backend.decode_window
                cases.append(
                    {
                        "op": op,
                        "seconds": seconds,
                        "batch": batch,
                        "window_samples": int(wav.shape[1]),
                        "codes": int(codes.shape[2]),
                        "latencies_ms": _timed(lambda fn=fn, a=args: fn(*a), spec["runs"], warmup),
                    }
                )
                stage_jobs.append((cases[-1], op, args))
    peak_mib = peak_rss_mib()
    gpu_mib = gpu_peak_mib(spec)
    if spec.get("accuracy"):  # held-out speech vs the FP32 reference (xyrt.bench.accuracy)
        from xyrt.bench.accuracy import save_outputs

        acc = spec["accuracy"]
        pack = functools.partial(pack_windows, pad_to_30s=spec["pad_to_30s"])
        save_outputs(
            acc["out"], backend.encode_window, backend.decode_window, pack, acc["reference"]
        )
    # after the peak: ORT profiling opens extra sessions
    profiler = backend.stage_profiler()
    _add_stages(profiler, stage_jobs, min(spec["runs"], STAGE_RUNS))
    backend.close()
    return {
        "load_seconds": load_s,
        "peak_rss_mib": peak_mib,
        "gpu_peak_mib": gpu_mib,
        "stage_method": profiler.method if profiler else NO_STAGES,
        "cases": cases,
    }


def main() -> None:
    spec = json.loads(sys.stdin.read())
    print(json.dumps(run(spec)))


if __name__ == "__main__":
    main()
