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
    return {"gflops": max(results.values()), "by_library": results, "size": size}


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
