"""The machine's own limit: sustained float32 GEMM throughput, measured here and now."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np


def gemm_peak_gflops(size: int = 2048, repeats: int = 5, threads: int | None = None) -> dict:
    """Best float32 GEMM GFLOP/s of numpy (BLAS) and, when installed, PyTorch (oneDNN/MKL).

    Returns {"gflops": best, "by_library": {...}, "size": size}; the best is the reference
    against which backends' achieved GFLOP/s are compared.
    """
    flop = 2.0 * size**3
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    results = {"numpy": _best(lambda: a @ b, repeats, flop)}
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        if threads:
            torch.set_num_threads(threads)
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        results["torch"] = _best(lambda: torch.mm(ta, tb), repeats, flop)
    out = {"gflops": max(results.values()), "by_library": results, "size": size}
    if torch is not None:  # bf16 backends (OpenVINO bf16, PyTorch autocast) against this
        ha, hb = ta.bfloat16(), tb.bfloat16()
        out["bf16_gflops"] = _best(lambda: torch.mm(ha, hb), repeats, flop)
    int8 = int8_gemm_peak_gops(size, repeats)
    if int8 is not None:
        out["int8_gops"] = int8
    return out


def int8_gemm_peak_gops(size: int = 2048, repeats: int = 5) -> float | None:
    """Best int8 GEMM GOP/s of ONNX Runtime's CPU kernels, what the quantized graphs run:
    MatMulInteger (uint8 x int8 -> int32) and QLinearMatMul (int8 x int8 -> int8); None
    without onnxruntime."""
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None
    rng = np.random.default_rng(0)
    n = size
    b = numpy_helper.from_array(rng.integers(-127, 128, (n, n), dtype=np.int8), "b")
    scalars = [
        numpy_helper.from_array(np.array(v, dtype), name)
        for name, v, dtype in [
            ("s", 0.01, np.float32),
            ("z", 0, np.int8),
        ]
    ]
    graphs = {
        "MatMulInteger": (
            [helper.make_node("MatMulInteger", ["a", "b"], ["y"])],
            TensorProto.UINT8,
            TensorProto.INT32,
            np.uint8,
            [b],
        ),
        "QLinearMatMul": (
            [helper.make_node("QLinearMatMul", ["a", "s", "z", "b", "s", "z", "s", "z"], ["y"])],
            TensorProto.INT8,
            TensorProto.INT8,
            np.int8,
            [b, *scalars],
        ),
    }
    best = 0.0
    for name, (nodes, a_type, y_type, a_dtype, inits) in graphs.items():
        graph = helper.make_graph(
            nodes,
            name,
            [helper.make_tensor_value_info("a", a_type, [n, n])],
            [helper.make_tensor_value_info("y", y_type, [n, n])],
            inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        session = ort.InferenceSession(
            model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        info = np.iinfo(a_dtype)
        a = rng.integers(info.min, info.max, (n, n), dtype=a_dtype)
        best = max(best, _best(lambda s=session, a=a: s.run(None, {"a": a}), repeats, 2.0 * n**3))
    return best


def _best(fn, repeats: int, flop: float) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return flop / best / 1e9


def measure_peak(threads: int | None = None) -> dict:
    """`gemm_peak_gflops` in a child process where numpy's BLAS and PyTorch both use
    ``threads`` threads (environment variables are read when the BLAS library loads)."""
    env = dict(os.environ)
    if threads:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
    code = (
        "import json, sys; from xyrt.bench.peak import gemm_peak_gflops; "
        f"print(json.dumps(gemm_peak_gflops(threads={threads!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


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
    from xyrt.runtime.backends.torch_backend import fp32_mode

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
