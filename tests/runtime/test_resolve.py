"""`registry.resolve`: one resolved value answers what a backend is, where it runs and what it
takes; tokenize and serve ask it (``--backend auto`` on an engine directory is TensorRT on the
GPU), and TensorRT's batch cap comes from its engines' profile (without TensorRT: the engine
runs are stood in for by ONNX Runtime over the export the engines would be built from)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import ORIN, expect_codes, exported, fake_engines, golden, golden_reference
from xyrt.runtime.backends.registry import REGISTRY, resolve
from xyrt.runtime.backends.trt.profiles import Profile


def test_auto_on_an_engine_directory_is_tensorrt_on_the_gpu(tmp_path: Path) -> None:
    r = resolve(fake_engines(tmp_path / "e"), "auto", here=False)  # no tensorrt package here
    assert (r.entry.name, r.kind, r.device, r.gpu) == ("tensorrt", "engines", "cuda", True)
    limits = r.limits()
    assert (limits.max_batch, limits.device) == (2, "cuda")
    assert r.identity()["backend"] == "tensorrt"
    export = resolve(exported("tiny_16k"))
    assert (export.entry.name, export.device, export.gpu) == ("onnxruntime", "cpu", False)
    assert export.limits().max_batch is None and export.limits().device == "cpu"
    on_gpu = resolve(exported("tiny_16k"), "ort", here=False, providers=["tensorrt"])
    assert on_gpu.gpu and on_gpu.limits().max_batch == Profile().max_batch


def test_every_backend_declares_its_limits() -> None:
    assert all(e.limits is not None and e.identity is not None for e in REGISTRY)


def test_auto_engine_directory_asks_ray_for_one_gpu(tmp_path: Path) -> None:
    """The bug this fixes: the GPU request tested the backend name as typed ("auto")."""
    from xyrt.corpus.pipeline import TokenizeOptions, check_gpus, gpus_per_actor
    from xyrt.errors import XyrtError

    engines = fake_engines(tmp_path / "e")
    options = TokenizeOptions(address="ray://cluster:10001")  # resolved for a cluster's nodes
    resolved = options.resolve(engines)
    assert gpus_per_actor(options, resolved) == 1.0
    with pytest.raises(
        XyrtError, match=r"--backend auto \(tensorrt\) asks for 1 GPU per model actor"
    ):
        check_gpus(options, resolved, 1, {"CPU": 8.0})
    cpu = TokenizeOptions(address="ray://cluster:10001")
    assert gpus_per_actor(cpu, cpu.resolve(exported("tiny_16k"))) == 0.0

    pytest.importorskip("ray.serve", reason="xyrt[serve] (ray[serve]) is not installed")
    from xyrt.serve.options import ServeOptions

    assert ServeOptions(str(engines)).gpus == 1.0  # a replica of --backend auto: one GPU
    assert ServeOptions(str(exported("tiny_16k"))).gpus == 0.0


def test_a_batch_over_the_engine_profile_is_split(tmp_path: Path, monkeypatch) -> None:
    """Five clips through `ChunkedCodec` over TensorRT engines whose profile takes batches of
    at most 2: every engine run stays inside the profile (`Profile.check`, the check the real
    engine runs make) and each clip's codes are its own (the published per-clip codes)."""
    from xyrt.runtime.backends.ort.backend import OnnxRuntimeBackend
    from xyrt.runtime.backends.trt import backend as tensorrt
    from xyrt.runtime.codec import ChunkedCodec
    from xyrt.runtime.graph_io import LENGTHS, MEL_REFERENCE, POSITIONS, WAVEFORM

    stand_in = OnnxRuntimeBackend(exported("tiny_16k"))
    batches: list[int] = []

    def run(self, feeds: dict[str, np.ndarray], output: str) -> np.ndarray:
        for name, array in feeds.items():
            self.profile.check(self.graph, name, array.shape, self.num_quantizers)
        assert self.graph == "encoder"
        batches.append(len(feeds[WAVEFORM]))
        window = (feeds.get(POSITIONS), feeds.get(MEL_REFERENCE))
        return stand_in.encode_window(feeds[WAVEFORM], feeds[LENGTHS], *window)

    monkeypatch.setattr(tensorrt, "device_facts", lambda: ORIN)
    monkeypatch.setattr(tensorrt, "check_engines", lambda *a: None)
    monkeypatch.setattr(tensorrt.EngineFromPlan, "run", run)
    backend = tensorrt.TensorRTBackend(fake_engines(tmp_path / "e", max_batch=2))
    assert (backend.limits.max_batch, backend.limits.device) == (2, "cuda")
    codec = ChunkedCodec(backend, batch_size=8)  # asked for more than the profile takes
    assert codec.batch_size == 2
    clips = [f"speech_{i}" for i in range(5)]
    codes = codec.encode([golden("tiny_16k")[f"{c}/wav"] for c in clips])
    assert len(batches) >= 3 and max(batches) == 2 and sum(batches) >= 5
    for clip, got in zip(clips, codes, strict=True):
        expect_codes(golden_reference("tiny_16k", clip, 10), got, f"fake tensorrt {clip}")


def test_bench_cases_and_cli_policy_are_registry_facts() -> None:
    """Bench's cases are the entries' variants (where each runs by the registry's rule), and
    --pad-to-30s is an option the torch entry declares, not a name the CLI compares."""
    from xyrt.bench.driver import BASELINES, BENCH_BACKENDS, device_of
    from xyrt.runtime.backends.registry import BY_NAME

    assert device_of("tensorrt") == device_of("ort-tensorrt") == device_of("pytorch-cuda") == "cuda"
    assert device_of("ort-int8") == device_of("openvino-bf16") == device_of("pytorch") == "cpu"
    assert BASELINES == {"cpu": "pytorch-published", "cuda": "pytorch-published-cuda"}
    assert {c.entry.name for c in BENCH_BACKENDS.values()} == {e.name for e in REGISTRY}
    assert [e.name for e in REGISTRY if e.takes("pad_to_30s")] == ["torch"]
    assert BY_NAME["ort"].takes("target") and not BY_NAME["openvino"].takes("target")
