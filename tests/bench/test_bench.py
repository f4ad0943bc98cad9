"""xyrt bench on the tiny model: schema, internal consistency, skips, plot, bad arguments."""

from __future__ import annotations

import math
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from helpers import FIXTURES, exported, run_bench, stage_sum_misses
from xyrt.bench.cpu import cpu_info
from xyrt.bench.peak import gemm_peak_gflops, peak_cache_file, peak_cache_key
from xyrt.bench.report import JSON_SCHEMA
from xyrt.cli import main

CKPT = FIXTURES / "tiny_16k" / "model.ckpt"
ASKED_BACKENDS = "pytorch-published,pytorch,pytorch-bf16,ort-fp32,ort-int8,tensorrt,ort-cuda"


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> tuple[dict, Path, str]:
    out = tmp_path_factory.mktemp("bench")
    args = [
        "bench",
        "--checkpoint",
        str(CKPT),
        "--model",
        str(exported("tiny_16k")),
        "--backends",
        ASKED_BACKENDS,
        "--seconds",
        "1,2.5",
        "--batch",
        "1,2",
        "--runs",
        "3",
        "--threads",
        "1",
        "--json",
        str(out / "r.json"),
        "--plot",
        str(out / "r.png"),
    ]
    report, printed = run_bench(args[1:])
    return report, out, printed


def test_json_schema(bench) -> None:
    report, _, _ = bench
    jsonschema.validate(report, JSON_SCHEMA)
    assert report["gemm_peak"]["gflops"] > 0
    names = [b["name"] for b in report["backends"]]
    assert names == ASKED_BACKENDS.split(",")


def test_internal_consistency(bench) -> None:
    report, _, _ = bench
    ran = [b for b in report["backends"] if b["status"] == "ok"]
    assert {b["name"] for b in ran} == {"pytorch-published", "pytorch", "pytorch-bf16", "ort-fp32"}
    for b in ran:
        assert len(b["cases"]) == 2 * 2 * 2  # ops x seconds x batch
        for c in b["cases"]:
            lat = c["latency_ms"]
            assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"]
            assert c["audio_seconds"] == c["seconds"] * c["batch"]
            assert math.isclose(c["rtf"], lat["p50"] / 1e3 / c["audio_seconds"])
            assert math.isclose(c["throughput"], 1 / c["rtf"])
            # each backend against the peak of its own arithmetic: bf16 against the bf16 GEMM
            # where the CPU computes bf16 natively (else it is not measured: fp32)
            native = b["precision"] == "bf16" and "bf16_gflops" in report["gemm_peak"]
            key = "bf16_gflops" if native else "gflops"
            assert b["peak_reference"] == f"cpu {'bf16' if native else 'fp32'} GEMM"
            assert c["gflops"] > 0 and math.isclose(
                c["peak_fraction"], c["gflops"] / report["gemm_peak"][key]
            )
            assert c["speedup_vs_published"] > 0
        assert b["peak_rss_mib"] > 0


def test_stages_are_attributed(bench) -> None:
    report, _, _ = bench
    for b in report["backends"]:
        if b["status"] != "ok":
            continue
        enc = next(c for c in b["cases"] if c["op"] == "encode")
        dec = next(c for c in b["cases"] if c["op"] == "decode")
        for stage in ("frontend", "semantic_encoder", "acoustic_encoder", "downsample", "rvq"):
            assert stage in enc["stages_ms"], (b["name"], enc["stages_ms"])
        for stage in ("post_rvq_adapter", "acoustic_decoder", "vocoder"):
            assert stage in dec["stages_ms"], (b["name"], dec["stages_ms"])
        named = sum(v for k, v in enc["stages_ms"].items() if k not in ("other", "unattributed"))
        assert named >= 0.5 * sum(enc["stages_ms"].values())


def test_stages_account_for_the_run(bench) -> None:
    report, _, table = bench
    assert not stage_sum_misses(report), stage_sum_misses(report)
    assert "(sum / run)" in table


def test_peaks_are_native_budgeted_and_cached(bench) -> None:
    report, _, table = bench
    peak = report["gemm_peak"]
    if cpu_info().bf16_missing():
        assert "bf16_gflops" not in peak and "bf16" in peak["skipped"]
        assert "bf16 peak not measured" in table
    else:
        assert peak["bf16_gflops"] > 0
    assert peak["cpu"]["model"] and max(peak["sizes"].values()) <= 2048
    assert peak_cache_file(1).is_file()  # the next bench on this machine reuses it
    # phases: the build, the peak, then each backend measured, in seconds
    phases = report["phases"]
    ran = [b["name"] for b in report["backends"] if b["status"] == "ok"]
    assert list(phases)[:2] == ["build", "peak"] and set(ran) <= set(phases)
    assert all(v >= 0 for v in phases.values()) and "bench time:" in table


def test_peak_skips_bf16_without_native_support(monkeypatch) -> None:
    from xyrt.bench import cpu

    haswell = cpu.CpuInfo("Haswell", "x86_64", frozenset({"AVX2", "FMA3"}))
    spr = cpu.CpuInfo("SPR", "x86_64", frozenset({"AVX2", "AVX512F", "AVX512BF16"}))
    arm = cpu.CpuInfo("Graviton2", "aarch64", frozenset({"ASIMD", "NEON"}))
    arm_bf16 = cpu.CpuInfo("Graviton3", "aarch64", frozenset({"ASIMD", "BF16"}))
    assert "AVX512-BF16" in haswell.bf16_missing() and spr.bf16_missing() is None
    assert "BF16" in arm.bf16_missing() and arm_bf16.bf16_missing() is None
    assert peak_cache_key(2, haswell) != peak_cache_key(2, spr) != peak_cache_key(4, spr)
    monkeypatch.setattr(cpu, "cpu_info", lambda: haswell)
    monkeypatch.setattr("xyrt.bench.peak.cpu_info", lambda: haswell)
    monkeypatch.setattr("xyrt.bench.peak.SIZES", (64, 128))
    monkeypatch.setattr("xyrt.bench.peak.int8_gemm_peak_gops", lambda budget_s: None)
    peak = gemm_peak_gflops(threads=1, budget_s=0.5)
    assert "bf16_gflops" not in peak and "AVX512-BF16" in peak["skipped"]["bf16"]
    assert peak["gflops"] > 0 and peak["cpu"]["model"] == "Haswell"


def test_peak_stays_within_its_budget(monkeypatch) -> None:
    """A slow GEMM (as bf16 emulated on an AVX2 CPU: ~64 s at 2048) is not grown past the
    budget: the next size runs only while its estimated cost fits."""
    import time

    from xyrt.bench import peak as peak_module

    monkeypatch.setattr(peak_module, "SIZES", (64, 128, 256))
    runs = []

    def make(n: int):
        return lambda: runs.append(n) or time.sleep(0.04 * (n / 64) ** 3)

    t0 = time.perf_counter()
    gflops, size = peak_module._best_within(make, budget_s=0.5)
    assert time.perf_counter() - t0 < 0.5 and size == 64 and gflops > 0
    assert runs == [64] * (1 + peak_module.REPEATS)  # 128 would take ~1.3 s: not tried


def test_peak_is_cached_per_machine(monkeypatch, tmp_path) -> None:
    from xyrt.bench import peak as peak_module

    monkeypatch.setenv("XYRT_CACHE", str(tmp_path))
    calls = []
    monkeypatch.setattr(
        peak_module.subprocess,
        "run",
        lambda *a, **k: calls.append(a) or _Done('{"gflops": 12.5, "skipped": {}}'),
    )
    first = peak_module.measure_peak(3)
    second = peak_module.measure_peak(3)
    assert len(calls) == 1 and first["cached"] is False and second["cached"] is True
    assert second["gflops"] == 12.5 and peak_module.peak_cache_file(3).is_file()
    peak_module.measure_peak(5)  # another thread count: measured again
    assert len(calls) == 2


class _Done:
    def __init__(self, stdout: str) -> None:
        self.stdout = stdout


def test_baseline_and_published_cost(bench) -> None:
    report, _, _ = bench
    by = {b["name"]: b for b in report["backends"]}
    pub = by["pytorch-published"]["cases"]
    assert all(c["speedup_vs_published"] == 1.0 for c in pub)
    # the published implementation always runs 30 s windows; xyrt trims them
    assert all(c["window_samples"] == 480000 for c in pub if c["op"] == "encode")
    assert all(c["window_samples"] < 480000 for c in by["pytorch"]["cases"] if c["op"] == "encode")


def test_skipped_backends_say_why(bench) -> None:
    report, _, table = bench
    by = {b["name"]: b for b in report["backends"]}
    assert by["ort-int8"]["status"] == "skipped" and "int8" in by["ort-int8"]["reason"]
    assert by["tensorrt"]["status"] == "skipped" and by["tensorrt"]["reason"]
    assert (
        by["ort-cuda"]["status"] == "skipped"
        and "CUDAExecutionProvider" in by["ort-cuda"]["reason"]
    )
    assert "not measured:" in table and "ort-int8:" in table and "matmul peaks measured" in table


def test_plot_written(bench) -> None:
    _, out, _ = bench
    data = (out / "r.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--seconds", "0"], "--seconds must be in (0, 30]"),
        (["--seconds", "45"], "--seconds must be in (0, 30]"),
        (["--seconds", "ten"], "comma-separated list of numbers"),
        (["--batch", "0"], "--batch-size values must be positive"),
        (["--runs", "0"], "--runs must be >= 1"),
        (["--backends", "pytorch,jax"], "unknown backend(s) ['jax']"),
    ],
)
def test_bad_arguments(extra: list[str], message: str, capsys) -> None:
    assert main(["bench", "--checkpoint", str(CKPT), *extra]) == 1
    assert message in capsys.readouterr().err


def test_worker_reports_its_own_peak_memory() -> None:
    import subprocess
    import sys

    ballast = bytearray(600 * 2**20)
    ballast[::4096] = b"\1" * len(ballast[::4096])  # the parent really holds 600 MiB
    code = "from xyrt.bench.worker import peak_rss_mib; print(peak_rss_mib())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(out.stdout) < 400, "a worker must not inherit the driver's high-water mark"
    del ballast


def test_bf16_autocast_keeps_frontend_and_rvq_in_float32() -> None:
    import numpy as np
    import torch

    from helpers import golden
    from xyrt.runtime.backends.pytorch.backend import TorchBackend
    from xyrt.runtime.graph_io import pack_windows
    from xyrt.runtime.network.checkpoint import load_model

    backend = TorchBackend(load_model(CKPT), device="cpu", precision="bf16")
    wav, lengths = pack_windows([golden("tiny_16k")["speech_4/wav"]])
    m = backend.model
    with torch.inference_mode():
        mel32, ml = m.frontend(torch.from_numpy(wav), torch.from_numpy(lengths))
        x = torch.randn(1, 20, 256, generator=torch.Generator().manual_seed(0))
        codes32 = m.quantizer.encode(x, torch.tensor([20]))
        with torch.autocast("cpu", torch.bfloat16):
            mel16, _ = m.frontend(torch.from_numpy(wav), torch.from_numpy(lengths))
            codes16 = m.quantizer.encode(x, torch.tensor([20]))
    assert mel16.dtype == torch.float32 and torch.equal(mel16, mel32)
    assert torch.equal(codes16, codes32)
    codes = backend.encode_window(wav, lengths)
    assert codes.shape == (8, 1, wav.shape[1] // 1280) and codes.max() < 1024
    audio = backend.decode_window(np.ascontiguousarray(codes[:, :, :40]))
    assert audio.dtype == np.float32 and audio.shape == (1, 40 * 1280) and np.isfinite(audio).all()


def test_cuda_backends_when_present() -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip(
            "no CUDA device on this machine: the pytorch-cuda backends are listed as skipped"
        )
    from xyrt.runtime.backends.pytorch.backend import TorchBackend
    from xyrt.runtime.graph_io import pack_windows
    from xyrt.runtime.network.checkpoint import load_model

    backend = TorchBackend(load_model(CKPT), device="cuda", precision="bf16")
    wav, lengths = pack_windows([np.zeros(32000, np.float32)])
    assert backend.encode_window(wav, lengths).shape[0] == 8
