"""`xyrt bench`: every available backend, each in its own process, measured in one run.

Honest numbers: warm-up runs first, repeated runs give p50/p90/p99, every backend is set
against the published implementation's cost (PyTorch, windows padded to 30 s) measured in the
same run, and achieved GFLOP/s against a float32 GEMM peak measured on this machine.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xyrt.bench.accuracy import REFERENCE_ORDER, agreement
from xyrt.bench.flops import decode_flops, encode_flops
from xyrt.bench.peak import measure_gpu_peak, measure_peak
from xyrt.checks import threads as check_threads
from xyrt.config import INPUT_SAMPLE_RATE, SAMPLES_PER_CODE_IN, XYConfig
from xyrt.errors import XyrtError
from xyrt.runtime.backends.registry import (
    REGISTRY,
    BackendEntry,
    Options,
    Variant,
    resolve,
    source_kind,
)

SCHEMA = "xyrt-bench/1"


@dataclass(frozen=True)
class BenchCase:
    """One backend as bench measures it: a registry entry and one of its `Variant`s."""

    entry: BackendEntry
    variant: Variant

    @property
    def precision(self) -> str:
        """The precision it runs, as reported: the one asked for, else the model's stored one
        ("engines" for a TensorRT engine directory)."""
        return self.variant.precision or self.variant.stored

    @property
    def device(self) -> str:
        """ "cuda" where it runs on an NVIDIA GPU, else "cpu" (the registry's rule)."""
        return self.entry.device(Options(**self.variant.options())).split(":")[0]


def _cases() -> dict[str, BenchCase]:
    """Every backend's bench variants (`BackendEntry.bench`): the CPU ones first, each
    device's published baseline first."""
    cases = [BenchCase(e, v) for e in REGISTRY for v in e.bench]
    cases.sort(key=lambda c: (c.device != "cpu", not c.variant.published))  # stable
    return {c.variant.label: c for c in cases}


BENCH_BACKENDS = _cases()
# Old spellings of backend names users may have in scripts -> the current ones
BENCH_ALIASES = {"openvino-f32": "openvino-fp32"}
# The published cost on each device: windows padded to 30 s, eager PyTorch with its default
# flags (TF32 convolutions on CUDA). Every backend's "vs pub" is against its own device's.
BASELINES = {c.device: name for name, c in BENCH_BACKENDS.items() if c.variant.published}
BASELINE = BASELINES["cpu"]
DEFAULT_BACKENDS = tuple(name for name, c in BENCH_BACKENDS.items() if c.variant.default)


def model_dir_key(name: str) -> str:
    """Which --model directory (by its precision; "engines", "checkpoint") a backend runs."""
    return BENCH_BACKENDS[name].variant.stored


@dataclass(frozen=True)
class BenchOptions:
    """What to measure; validated on construction."""

    checkpoint: Path | None = None
    model_dirs: tuple[Path, ...] = ()
    backends: tuple[str, ...] = DEFAULT_BACKENDS
    seconds: tuple[float, ...] = (1.0, 5.0, 10.0, 30.0)
    batch: tuple[int, ...] = (1,)
    runs: int = 5
    warmup: int = 1
    threads: int | None = None
    synthetic: bool = False
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = tuple(BENCH_ALIASES.get(b, b) for b in self.backends)
        object.__setattr__(self, "backends", names)
        if not self.backends:
            raise XyrtError(
                f"--backends names no backend; choose from: {', '.join(BENCH_BACKENDS)}"
            )
        unknown = [b for b in self.backends if b not in BENCH_BACKENDS]
        if unknown:
            raise XyrtError(
                f"unknown backend(s) {unknown}; choose from: {', '.join(BENCH_BACKENDS)}"
            )
        if not self.seconds or any(not 0 < s <= 30 for s in self.seconds):
            raise XyrtError(
                f"--seconds must be in (0, 30] (one window; longer audio is 30 s windows), "
                f"got {list(self.seconds)}"
            )
        if any(s * INPUT_SAMPLE_RATE < SAMPLES_PER_CODE_IN for s in self.seconds):
            raise XyrtError("--seconds must be at least 0.08 (one code)")
        if not self.batch or any(b < 1 for b in self.batch):
            raise XyrtError(
                f"--batch-size values must be positive integers, got {list(self.batch)}"
            )
        if self.runs < 1 or self.warmup < 0:
            raise XyrtError(f"--runs must be >= 1 and warm-up >= 0, got {self.runs}/{self.warmup}")
        check_threads(self.threads, "--threads")


def _model_dirs_by_precision(dirs: Sequence[Path]) -> dict[str, Path]:
    from xyrt.runtime.modeldir.manifest import read_manifest

    out: dict[str, Path] = {}
    for d in dirs:
        if source_kind(d) == "engines":  # xyrt build output: the tensorrt backend
            precision = "engines"
        else:
            precision = read_manifest(d).data.get("precision", "fp32")
        if precision in out:
            raise XyrtError(
                f"two --model directories hold {precision} models: {out[precision]}, {d}"
            )
        out[precision] = Path(d)
    return out


def availability(name: str, opts: BenchOptions, dirs: dict[str, Path]) -> str | None:
    """None if the backend can run here, else why not: its package, its model, and all the
    registry decides before loading (providers installed, a CUDA device, a CPU with BF16, a
    directory's int8 graphs)."""
    case = BENCH_BACKENDS[name]
    missing = case.entry.available()  # packages, from the registry
    if missing is not None:
        return missing
    stored = case.variant.stored
    if stored == "checkpoint" and opts.checkpoint is None:
        return "no checkpoint (pass --checkpoint)"
    if stored == "engines" and stored not in dirs:
        return "no engine directory given (--model ENGINE_DIR from xyrt build)"
    if stored not in ("checkpoint", "engines") and stored not in dirs:
        hint = "xyrt export" if stored == "fp32" else f"xyrt quantize --precision {stored}"
        return f"no {stored} model directory given (--model DIR from {hint})"
    source = opts.checkpoint if stored == "checkpoint" else dirs[stored]
    try:
        resolve(source, case.entry.name, **case.variant.options())
    except XyrtError as exc:
        return str(exc)
    return None


def _percentiles(values: list[float]) -> dict[str, float]:
    a = np.asarray(values)
    return {
        "p50": float(np.percentile(a, 50)),
        "p90": float(np.percentile(a, 90)),
        "p99": float(np.percentile(a, 99)),
        "mean": float(a.mean()),
        "min": float(a.min()),
    }


def summarize(case: dict, cfg: XYConfig, peak_gflops: float) -> dict:
    """Latency percentiles, RTF, throughput and achieved GFLOP/s of one (op, seconds, batch)."""
    lat = _percentiles(case["latencies_ms"])
    audio_seconds = case["seconds"] * case["batch"]
    if case["op"] == "encode":
        flops = sum(encode_flops(cfg, case["window_samples"], case["batch"]).values())
    else:
        flops = sum(decode_flops(cfg, case["codes"], case["batch"]).values())
    gflops = flops / (lat["p50"] / 1e3) / 1e9
    return {
        **{k: case[k] for k in ("op", "seconds", "batch", "window_samples", "codes")},
        "audio_seconds": audio_seconds,
        "runs": len(case["latencies_ms"]),
        "latency_ms": lat,
        "rtf": lat["p50"] / 1e3 / audio_seconds,
        "throughput": audio_seconds / (lat["p50"] / 1e3),
        "gflop": flops / 1e9,
        "gflops": gflops,
        "peak_fraction": gflops / peak_gflops,
        "stages_ms": case["stages_ms"],
        "stages_total_ms": case["stages_total_ms"],
    }


def _run_worker(spec: dict) -> dict:
    cmd = [sys.executable, "-m", "xyrt.bench.worker"]
    proc = subprocess.run(cmd, input=json.dumps(spec), capture_output=True, text=True)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-3:]
        raise XyrtError(f"worker for {spec['backend']} failed: {' | '.join(tail)}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def device_of(name: str) -> str:
    """ "cuda" for the backends that run on an NVIDIA GPU, else "cpu"."""
    return BENCH_BACKENDS[name].device


def _add_ratios(backends: list[dict]) -> None:
    """Each backend's speed-up against the published cost on its own device, same run."""
    ok = {b["name"]: b for b in backends if b["status"] == "ok"}
    for b in ok.values():
        base = ok.get(BASELINES[device_of(b["name"])])
        if base is None:
            continue
        ref = {(c["op"], c["seconds"], c["batch"]): c["latency_ms"]["p50"] for c in base["cases"]}
        b["published_baseline"] = base["name"]
        for c in b.get("cases", []):
            key = (c["op"], c["seconds"], c["batch"])
            if key in ref:
                c["speedup_vs_published"] = ref[key] / c["latency_ms"]["p50"]


def run_bench(opts: BenchOptions, cfg: XYConfig, log: Callable[[str], None] = print) -> dict:
    """Measure every requested backend; returns the JSON-able report (schema xyrt-bench/1),
    with the seconds each phase took ("phases": the CPU/GPU peaks, then each backend)."""
    dirs = _model_dirs_by_precision(opts.model_dirs)
    available = {n: availability(n, opts, dirs) for n in opts.backends}
    runnable = [n for n in opts.backends if available[n] is None]
    peak: dict = {}
    phases: dict[str, float] = {}  # seconds per phase, in the order they ran
    t0 = time.perf_counter()
    if any(device_of(n) == "cpu" for n in runnable):
        log("measuring the GEMM peak of this machine's CPU (cached per machine) ...")
        peak = measure_peak(opts.threads)
        for what, why in peak.get("skipped", {}).items():
            log(f"  {what} peak not measured: {why}")
    if any(device_of(n) == "cuda" for n in runnable):
        log("measuring the GPU's matmul peak per precision ...")
        peak["gpu"] = measure_gpu_peak()
    phases["peak"] = time.perf_counter() - t0
    reference = next((n for n in REFERENCE_ORDER if available.get(n, "") is None), None)
    order = sorted(opts.backends, key=lambda n: n != reference)  # the reference runs first
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="xyrt-bench-") as scratch:
        for name in order:
            if available[name]:
                log(f"{name}: skipped: {available[name]}")
                results[name] = {"name": name, "status": "skipped", "reason": available[name]}
                continue
            outputs = Path(scratch) / f"{name}.npz"
            ref_out = Path(scratch) / f"{reference}.npz"
            accuracy = {"out": str(outputs), "reference": None}
            if name != reference:
                accuracy["reference"] = str(ref_out) if ref_out.is_file() else None
                if accuracy["reference"] is None:
                    accuracy = None  # no FP32 reference measured: nothing to compare with
            t0 = time.perf_counter()
            results[name] = _measure(name, opts, cfg, dirs, peak, accuracy, log)
            phases[name] = time.perf_counter() - t0
            if accuracy is not None and results[name]["status"] == "ok":
                results[name]["accuracy"] = {
                    "reference": reference,
                    **agreement(ref_out, outputs),
                }
    backends = [results[n] for n in opts.backends]
    _add_ratios(backends)
    return {
        "schema": SCHEMA,
        "machine": _machine(opts.threads),
        "gemm_peak": peak,
        "model": {
            "checkpoint": str(opts.checkpoint) if opts.checkpoint else None,
            "model_dirs": [str(d) for d in opts.model_dirs],
            "variant": cfg.variant,
            "synthetic_weights": opts.synthetic,
        },
        "options": {
            "seconds": list(opts.seconds),
            "batch": list(opts.batch),
            "runs": opts.runs,
            "warmup": opts.warmup,
            "threads": opts.threads,
        },
        "baseline": BASELINE,
        "baselines": BASELINES,
        "accuracy_reference": reference,
        "backends": backends,
        "phases": phases,
    }


def _measure(name, opts, cfg, dirs, peak, accuracy, log) -> dict:
    """One backend in its own worker process: its report entry (ok or failed)."""
    case = BENCH_BACKENDS[name]
    precision, pad = case.precision, case.variant.published
    log(f"{name}: running {len(opts.seconds) * len(opts.batch) * 2} cases ...")
    key = model_dir_key(name)
    spec = {
        "backend": name,
        "registry": case.entry.name,
        "options": case.variant.options(),
        "device": case.device,
        "pad_to_30s": pad,
        "source": str(opts.checkpoint if key == "checkpoint" else dirs[key]),
        "threads": opts.threads,
        "seconds": list(opts.seconds),
        "batch": list(opts.batch),
        "runs": opts.runs,
        "warmup": opts.warmup,
        "accuracy": accuracy,
    }
    try:
        raw = _run_worker(spec)
    except XyrtError as exc:
        log(f"{name}: FAILED: {exc}")
        return {"name": name, "status": "failed", "reason": str(exc)}
    device = device_of(name)
    peak_gflops, peak_name = peak_for(peak, precision, device, pad)
    return {
        "name": name,
        "status": "ok",
        "precision": precision,
        "device": device,
        "stage_method": raw["stage_method"],
        "peak_rss_mib": raw["peak_rss_mib"],
        "gpu_peak_mib": raw.get("gpu_peak_mib"),
        "load_seconds": raw["load_seconds"],
        "peak_reference": peak_name,
        "cases": [summarize(c, cfg, peak_gflops) for c in raw["cases"]],
    }


def peak_for(peak: dict, precision: str, device: str, published: bool) -> tuple[float, str]:
    """The matmul peak (GFLOP/s) of the backend's own device and arithmetic, and its name: on a
    CPU int8 backends against the int8 GEMM peak, bf16 against the bf16 one where measured,
    the rest float32; on a GPU the measured peak of its precision (the published baseline runs
    PyTorch's default TF32 convolutions: against TF32)."""
    if device == "cuda":
        gpu = peak.get("gpu", {})
        key = "tf32" if published and precision == "fp32" else precision
        if f"{key}_tflops" in gpu:
            return gpu[f"{key}_tflops"] * 1e3, f"gpu {key} matmul"
        return float("nan"), "gpu peak not measured"
    if precision == "int8" and peak.get("int8_gops"):
        return float(peak["int8_gops"]), "cpu int8 GEMM"
    if precision == "bf16" and peak.get("bf16_gflops"):
        return float(peak["bf16_gflops"]), "cpu bf16 GEMM"
    return float(peak["gflops"]), "cpu fp32 GEMM"


def _machine(threads: int | None) -> dict:
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": threads or os.cpu_count(),
        "python": platform.python_version(),
    }
    for lib in ("torch", "onnxruntime", "openvino", "numpy"):
        if importlib.util.find_spec(lib) is not None:
            info[lib] = __import__(lib).__version__
    return info
