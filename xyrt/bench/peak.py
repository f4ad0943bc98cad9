"""The machine's own limit: sustained GEMM throughput per arithmetic, measured here and now.

Only what the CPU computes natively is measured (bf16 needs AVX512-BF16/AMX, or Arm's BF16:
emulated, a bf16 GEMM took ~64 s on an AVX2 CPU), each peak within `PEAK_BUDGET_S` (the size
grows while the next one fits), and the result is cached per machine (`peak_cache_key`: CPU
model, instruction sets, threads, library versions) under $XYRT_CACHE/bench-peaks, so a second
bench spends no time on it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np

from xyrt.bench.cpu import CpuInfo, cpu_info
from xyrt.errors import XyrtError

PEAK_BUDGET_S = 2.0  # seconds at most per measured peak (numpy fp32, torch fp32, bf16, int8)
SIZES = (256, 512, 1024, 2048)  # square GEMM sizes tried, growing while the budget allows
REPEATS = 3  # timed products per size after its warm-up (the best counts)
PEAK_METHOD = 2  # bump when the measurement changes: older cache entries are not reused


def _best_within(make: Callable[[int], Callable[[], object]], budget_s: float) -> tuple[float, int]:
    """(best GFLOP/s, size) at the largest square GEMM size (`SIZES`) that fits ``budget_s``:
    sizes grow, the next one tried only while its estimated cost (8x the last product, warm-up
    and repeats) fits in what is left. Small products that stay in cache run faster than
    sustained ones: only the largest size measured counts."""
    start = time.perf_counter()
    result = (0.0, 0)
    for n in SIZES:  # the first size always runs, whatever the budget
        run = make(n)
        t0 = time.perf_counter()
        run()  # warm-up (thread pools, packing)
        best = time.perf_counter() - t0
        for _ in range(REPEATS):
            if time.perf_counter() - start + best > budget_s:
                break
            t0 = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - t0)
        result = (2.0 * n**3 / best / 1e9, n)
        if time.perf_counter() - start + 8 * best * (1 + REPEATS) > budget_s:
            break
    return result


def gemm_peak_gflops(threads: int | None = None, budget_s: float = PEAK_BUDGET_S) -> dict:
    """Best GEMM throughput of each arithmetic this CPU computes natively.

    Returns {"gflops": best float32 GFLOP/s (numpy's BLAS or PyTorch), "by_library": {...},
    "size": its GEMM size, "sizes": {peak: size}, "bf16_gflops" (PyTorch, where native),
    "int8_gops" (ONNX Runtime), "skipped": {peak: why}, "cpu": {model, arch}}; the float32
    best is the reference against which backends' achieved GFLOP/s are compared.
    """
    cpu = cpu_info()
    rng = np.random.default_rng(0)

    def numpy_fp32(n: int):
        a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
        return lambda: a @ b

    results, sizes, skipped = {}, {}, {}
    results["numpy"], sizes["numpy"] = _best_within(numpy_fp32, budget_s)
    try:
        import torch
    except ImportError:
        torch = None
        skipped["bf16"] = "PyTorch is not installed"
    if torch is not None:
        if threads:
            torch.set_num_threads(threads)

        def torch_mm(dtype):
            def make(n: int):
                a, b = (torch.randn(n, n).to(dtype) for _ in range(2))
                return lambda: torch.mm(a, b)

            return make

        results["torch"], sizes["torch"] = _best_within(torch_mm(torch.float32), budget_s)
    best = max(results, key=results.get)
    out = {
        "gflops": results[best],
        "by_library": results,
        "size": sizes[best],
        "sizes": sizes,
        "cpu": {"model": cpu.model, "arch": cpu.arch},
    }
    missing = cpu.bf16_missing()
    if torch is not None and missing is None:  # bf16 backends (OpenVINO bf16, autocast)
        out["bf16_gflops"], sizes["bf16"] = _best_within(torch_mm(torch.bfloat16), budget_s)
    elif missing is not None:
        skipped["bf16"] = missing
    int8 = int8_gemm_peak_gops(budget_s)
    if int8 is None:
        skipped["int8"] = "onnxruntime (and onnx) are not installed"
    else:
        out["int8_gops"], sizes["int8"] = int8
    out["skipped"] = skipped
    return out


def _int8_graph(kind: str):
    """(ONNX model bytes maker for size n, input dtype) of one int8 GEMM kind of ONNX Runtime:
    MatMulInteger (uint8 x int8 -> int32) or QLinearMatMul (int8 x int8 -> int8)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def model_bytes(n: int) -> bytes:
        b = numpy_helper.from_array(rng.integers(-127, 128, (n, n), dtype=np.int8), "b")
        if kind == "MatMulInteger":
            nodes, inits = [helper.make_node(kind, ["a", "b"], ["y"])], [b]
            a_type, y_type = TensorProto.UINT8, TensorProto.INT32
        else:
            scale = numpy_helper.from_array(np.array(0.01, np.float32), "s")
            zero = numpy_helper.from_array(np.array(0, np.int8), "z")
            inputs = ["a", "s", "z", "b", "s", "z", "s", "z"]
            nodes, inits = [helper.make_node(kind, inputs, ["y"])], [b, scale, zero]
            a_type = y_type = TensorProto.INT8
        graph = helper.make_graph(
            nodes,
            kind,
            [helper.make_tensor_value_info("a", a_type, [n, n])],
            [helper.make_tensor_value_info("y", y_type, [n, n])],
            inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        return model.SerializeToString()

    return model_bytes, (np.uint8 if kind == "MatMulInteger" else np.int8)


def int8_gemm_peak_gops(budget_s: float = PEAK_BUDGET_S) -> tuple[float, int] | None:
    """(best int8 GEMM GOP/s, its size) of ONNX Runtime's CPU kernels, what the quantized
    graphs run: MatMulInteger and QLinearMatMul, each within half of ``budget_s``; None
    without onnxruntime."""
    try:
        import onnx  # noqa: F401 - the graphs are built with it
        import onnxruntime as ort
    except ImportError:
        return None
    rng = np.random.default_rng(0)
    best = (0.0, 0)
    for kind in ("MatMulInteger", "QLinearMatMul"):
        model_bytes, dtype = _int8_graph(kind)

        def make(n: int, model_bytes=model_bytes, dtype=dtype):
            session = ort.InferenceSession(model_bytes(n), providers=["CPUExecutionProvider"])
            info = np.iinfo(dtype)
            a = rng.integers(info.min, info.max, (n, n), dtype=dtype)
            return lambda: session.run(None, {"a": a})

        best = max(best, _best_within(make, budget_s / 2))
    return best


def _versions() -> dict[str, str]:
    out = {}
    for lib in ("numpy", "torch", "onnxruntime"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[lib] = metadata.version(lib)
    return out


def peak_cache_key(threads: int | None, cpu: CpuInfo | None = None) -> str:
    """The cache key of this machine's CPU peaks: CPU model, architecture and instruction sets,
    threads, the measuring libraries' versions and `PEAK_METHOD`."""
    cpu = cpu or cpu_info()
    what = {
        "model": cpu.model,
        "arch": cpu.arch,
        "features": sorted(cpu.features),
        "threads": threads or os.cpu_count(),
        "versions": _versions(),
        "method": PEAK_METHOD,
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:24]


def peak_cache_file(threads: int | None) -> Path:
    """Where this machine's CPU peaks for ``threads`` are cached."""
    from xyrt.runtime.modeldir.filecheck import cache_dir

    return cache_dir() / "bench-peaks" / f"{peak_cache_key(threads)}.json"


def measure_peak(threads: int | None = None, use_cache: bool = True) -> dict:
    """This machine's CPU peaks (`gemm_peak_gflops`): from the cache when measured before with
    the same key, else measured in a child process where numpy's BLAS and PyTorch both use
    ``threads`` threads (environment variables are read when the BLAS library loads) and
    cached. Adds "cached" (bool) and "measure_seconds" (of the original measurement)."""
    from xyrt.atomic import atomic_write

    path = peak_cache_file(threads)
    if use_cache and path.is_file():
        try:
            return {**json.loads(path.read_text()), "cached": True}
        except (OSError, ValueError):
            pass  # unreadable: measure again and replace it
    env = dict(os.environ)
    if threads:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
    code = (
        "import json, sys; from xyrt.bench.peak import gemm_peak_gflops; "
        f"print(json.dumps(gemm_peak_gflops(threads={threads!r})))"
    )
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    peak = {
        **json.loads(out.stdout.strip().splitlines()[-1]),
        "measure_seconds": time.perf_counter() - t0,
    }
    if use_cache:
        # an unwritable cache costs the next bench its time, nothing else
        with contextlib.suppress(XyrtError), atomic_write(path, claim=False) as tmp:
            tmp.write_text(json.dumps(peak, indent=2) + "\n")
    return {**peak, "cached": False}


def gpu_gemm_peak(size: int = 8192, repeats: int = 10) -> dict:
    """Sustained matmul TFLOP/s of the first CUDA GPU per precision, with PyTorch: "fp32" (IEEE,
    TF32 off), "tf32", "bf16", "fp16"; {} without a CUDA device. Each is the best of
    ``repeats`` timed products of two (size, size) random matrices after a warm-up."""
    try:
        import torch
    except ImportError:
        return {}
    if not torch.cuda.is_available():
        return {}
    from xyrt.runtime.backends.pytorch.device import fp32_mode

    dev = torch.device("cuda")
    out = {"device": torch.cuda.get_device_name(dev), "size": size}
    for name, dtype, tf32 in (
        ("fp32", torch.float32, False),
        ("tf32", torch.float32, True),
        ("bf16", torch.bfloat16, None),
        ("fp16", torch.float16, None),
    ):
        a = torch.randn(size, size, device=dev).to(dtype)
        b = torch.randn(size, size, device=dev).to(dtype)
        with fp32_mode(dev, "tf32" if tf32 else "ieee"):
            torch.mm(a, b)
            torch.cuda.synchronize()
            best = float("inf")
            for _ in range(repeats):
                start, end = torch.cuda.Event(True), torch.cuda.Event(True)
                start.record()
                torch.mm(a, b)
                end.record()
                end.synchronize()
                best = min(best, start.elapsed_time(end) / 1e3)
        out[f"{name}_tflops"] = 2.0 * size**3 / best / 1e12
        del a, b
    torch.cuda.empty_cache()
    return out


def measure_gpu_peak() -> dict:
    """`gpu_gemm_peak` in a child process (the driver itself never initialises CUDA)."""
    code = (
        "import json; from xyrt.bench.peak import gpu_gemm_peak; print(json.dumps(gpu_gemm_peak()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])
