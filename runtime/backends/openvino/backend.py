"""OpenVINO backend (no PyTorch): runs an xyrt model directory on the CPU with OpenVINO.

Precisions:
- ``fp32`` (OpenVINO's ``f32``): the directory's float32 ONNX graphs,
  ``INFERENCE_PRECISION_HINT=f32``;
- ``bf16``: the same graphs with ``INFERENCE_PRECISION_HINT=bf16``, only on CPUs that report
  BF16 in OpenVINO's ``OPTIMIZATION_CAPABILITIES`` (AVX512-BF16 or AMX);
- ``int8``: the int8 graph set an ``xyrt quantize`` directory records for OpenVINO in its
  manifest's ``targets`` (``openvino-cpu``: an NNCF IR, or the ``tensorrt`` Q/DQ graphs).

The manifest, each graph's sha256 and its metadata (ONNX ``metadata_props``, which OpenVINO
keeps in the model's ``rt_info["framework"]``) are checked as by the ONNX Runtime backend.
Compiled models are cached (OpenVINO ``CACHE_DIR``, default ``$XYRT_CACHE/openvino``), so a
second load skips compilation.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from xyrt.errors import XyrtError, require
from xyrt.runtime import graph_io
from xyrt.runtime.backends.base import BackendLimits, GraphPairBackend, ModelInfo, StageProfiler
from xyrt.runtime.modeldir.manifest import Manifest, read_manifest

PRECISIONS = ("fp32", "bf16", "int8")  # "f32", OpenVINO's own name, is taken as fp32
OPENVINO_TARGET = "openvino-cpu"  # manifest target of the int8 graphs OpenVINO runs
INT8_TARGETS = (OPENVINO_TARGET, "tensorrt")  # preference order; Q/DQ graphs run as int8 too


def default_cache_dir() -> Path:
    """Where compiled models are cached: $XYRT_CACHE/openvino, else ~/.cache/xyrt/openvino."""
    base = os.environ.get("XYRT_CACHE") or Path.home() / ".cache" / "xyrt"
    return Path(base) / "openvino"


def cpu_supports(capability: str) -> bool:
    """Whether OpenVINO's CPU plugin lists ``capability`` ("BF16", "INT8", "FP16") here."""
    ov = require("openvino", "openvino", "the OpenVINO backend")
    return capability in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def int8_graphs(manifest: Manifest) -> tuple[str, dict[str, str]]:
    """(target, graph keys) of the int8 set OpenVINO runs from a quantized directory."""
    targets = manifest.data.get("targets", {})
    for target in INT8_TARGETS:
        if target in targets:
            return target, {g: targets[target][g] for g in graph_io.GRAPHS}
    raise XyrtError(
        f"{manifest.directory} has no int8 graphs for OpenVINO (manifest targets: "
        f"{sorted(targets) or 'none'}); make them with `xyrt quantize --scheme openvino` "
        "(or trt-qdq)"
    )


def graph_plan(manifest: Manifest, precision: str | None) -> tuple[str, str | None, dict[str, str]]:
    """(precision, target, graph keys) OpenVINO runs ``manifest``'s directory with at
    ``precision`` (None: int8 for a quantized directory, else fp32); `XyrtError` when the
    directory or this CPU cannot (decided without reading a graph, before anything loads)."""
    stored = manifest.data.get("precision", "fp32")
    precision = "fp32" if precision == "f32" else precision
    precision = precision or ("int8" if stored == "int8" else "fp32")
    if precision not in PRECISIONS:
        raise XyrtError(f"unknown OpenVINO precision {precision!r}; choose from {PRECISIONS}")
    if precision == "int8":
        target, graphs = int8_graphs(manifest)
    elif stored != "fp32":
        raise XyrtError(
            f"{manifest.directory} holds {stored} graphs; OpenVINO {precision} runs the "
            "float32 export (xyrt export), int8 runs a quantized one"
        )
    else:
        target, graphs = None, {g: g for g in graph_io.GRAPHS}
    if precision == "bf16" and not cpu_supports("BF16"):
        raise XyrtError(
            "OpenVINO bf16 needs a CPU with AVX512-BF16 or AMX; this CPU does not report "
            "BF16 (use precision fp32 or int8)"
        )
    return precision, target, graphs


def ov_feed(feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``feed`` with canonical dtypes: OpenVINO's Python binding maps dtypes by character and
    refuses int64 arrays typed 'q' (long long, as ONNX Runtime returns them) instead of 'l'."""
    return {k: v.view(np.dtype(v.dtype.str)) for k, v in feed.items()}


ARM_UNVERIFIED = (
    "OpenVINO on aarch64 is unverified: under emulation (qemu-aarch64) its ARM CPU plugin gave "
    "codes that differ from the reference on xyrt's golden test (ONNX Runtime's match); run "
    "`xyrt verify --model MODEL_DIR --backend openvino` on this machine before relying on it, "
    "or use --backend onnxruntime"
)


def warn_if_arm() -> None:
    """Once per process on aarch64: `ARM_UNVERIFIED`."""
    from xyrt.runtime import hostcpu

    if hostcpu.machine() == "aarch64":
        warnings.warn(ARM_UNVERIFIED, RuntimeWarning, stacklevel=3)


def compile_config(precision: str, threads: int | None, cache_dir: Path | None) -> dict:
    """OpenVINO CPU properties for ``precision``: latency hint, threads, cache."""
    config = {
        "PERFORMANCE_HINT": "LATENCY",
        # int8 graphs keep their float parts in f32 (as every xyrt scheme does)
        "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
    }
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    if cache_dir is not None:
        config["CACHE_DIR"] = str(cache_dir)
    return config


class CompiledGraph:
    """Lazy loader: reads, checks and compiles one graph on first call."""

    def __init__(self, manifest: Manifest, graph: str, config: dict) -> None:
        self.manifest, self.graph, self.config = manifest, graph, config
        self._compiled = None
        self._request = None

    def __call__(self):
        if self._request is None:
            ov = require("openvino", "openvino", "the OpenVINO backend")
            path = self.manifest.check_graph(self.graph)
            core = ov.Core()
            try:
                model = core.read_model(str(path))
            except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError subclasses
                raise XyrtError(f"OpenVINO cannot read {path}: {exc}") from exc
            self._check(model, path)
            try:  # the ports' names, as the manifest lists them (a foreign graph is refused)
                io = ([p.get_names() for p in model.inputs], [p.get_names() for p in model.outputs])
            except Exception as exc:  # noqa: BLE001 - a port without a name
                raise XyrtError(f"OpenVINO cannot read the inputs of {path}: {exc}") from exc
            self.manifest.check_io(self.graph, path, *io)
            try:
                self._compiled = core.compile_model(model, "CPU", self.config)
            except Exception as exc:  # noqa: BLE001
                raise XyrtError(f"OpenVINO cannot compile {path} for CPU: {exc}") from exc
            self._request = self._compiled.create_infer_request()
        return self._request

    def _check(self, model, path: Path) -> None:
        meta = {}
        if model.has_rt_info(["framework"]):
            meta = {
                k: str(v.astype(str)) if hasattr(v, "astype") else str(v)
                for k, v in model.get_rt_info(["framework"]).astype(dict).items()
            }
        self.manifest.check_metadata(meta, self.graph, path)

    def run(self, feed: dict[str, np.ndarray], output: str) -> np.ndarray:
        request = self()
        request.infer(ov_feed(feed))
        return np.array(request.get_tensor(output).data, copy=True)

    @property
    def execution_precision(self) -> str:
        """The inference precision the compiled model really uses, "f32" or "bf16" (compiles it)."""
        self()
        hint = self._compiled.get_property("INFERENCE_PRECISION_HINT")
        return hint.to_string() if hasattr(hint, "to_string") else str(hint)

    def close(self) -> None:
        self._request = self._compiled = None


class OpenVinoBackend(GraphPairBackend):
    """`Backend` over OpenVINO on the CPU; graphs are compiled on first use or by `load()`
    (cached on disk), released by `close()` (a later call compiles again, from the cache)."""

    name = "openvino"
    limits = BackendLimits(device="cpu")  # any batch, on the CPU (the plugin xyrt compiles for)

    def __init__(
        self,
        model_dir: str | Path,
        precision: str | None = None,
        threads: int | None = None,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
    ) -> None:
        require("openvino", "openvino", "the OpenVINO backend")
        warn_if_arm()
        self.manifest = read_manifest(model_dir)
        precision, self.target, graphs = graph_plan(self.manifest, precision)
        self.precision = precision
        cache = None
        if use_cache:
            cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
            cache.mkdir(parents=True, exist_ok=True)
        self.cache_dir = cache
        config = compile_config(precision, threads, cache)
        self.graph_inputs = {g: self.manifest.input_names(graphs[g]) for g in graph_io.GRAPHS}
        self.encoder, self.decoder = (
            CompiledGraph(self.manifest, graphs[g], config)
            for g in (graph_io.ENCODER, graph_io.DECODER)
        )
        m = self.manifest
        self.info = ModelInfo(
            m.output_sample_rate, m.samples_per_code_out, m.num_quantizers, m.codebook_size
        )

    def encode_window(self, wav, lengths, positions=None, mel_reference=None) -> np.ndarray:
        feed = graph_io.encoder_feed(wav, lengths, positions, mel_reference)
        return self.encoder.run(self.fit(graph_io.ENCODER, feed), graph_io.CODES)

    def decode_window(self, codes: np.ndarray, positions=None) -> np.ndarray:
        feed = self.fit(graph_io.DECODER, graph_io.decoder_feed(codes, positions))
        return self.decoder.run(feed, graph_io.WAVEFORM)

    def stage_profiler(self) -> StageProfiler:
        from xyrt.runtime.backends.openvino.stages import OpenVinoStageProfiler

        return OpenVinoStageProfiler(self)
