"""TensorRT backend (no PyTorch): runs the engines `xyrt build` wrote into ENGINE_DIR.

ENGINE_DIR/engines.json names one serialized engine per graph with the facts it was built for
(`xyrt.runtime.backends.trt.profiles`); an engine built for another GPU, TensorRT version or graph
(the model directory it was built from, when still there, now holds another graph) is refused before
deserialization. Engines are deserialized on first use or by `load()`; `close()` frees their
execution contexts and CUDA streams. Device memory and streams go through cuda-python.

Needs a GPU, the ``tensorrt`` package and ``cuda-python`` (``pip install xyrt[gpu]`` plus
TensorRT from NVIDIA's index); none of them is on the CI machine, so the parts that touch them
are kept thin, and everything around them is tested separately.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import numpy as np

from xyrt.errors import XyrtError, require
from xyrt.runtime.backends.base import Backend, BackendLimits, ModelInfo
from xyrt.runtime.backends.trt.profiles import (
    ENGINES_FORMAT,
    ENGINES_FORMAT_VERSION,
    DeviceFacts,
    Profile,
    check_engine,
)
from xyrt.runtime.graph_io import (
    CODES,
    DECODER,
    ENCODER,
    GRAPHS,
    WAVEFORM,
    decoder_feed,
    encoder_feed,
    fit_feed,
)
from xyrt.runtime.modeldir.filecheck import member, verify_file
from xyrt.runtime.modeldir.jsonfile import POSITIVE, Each, read_versioned
from xyrt.runtime.modeldir.manifest import read_manifest

ENGINES_SCHEMA = {  # what the backend reads from engines.json, checked once at read
    "model": {
        "output_sample_rate": POSITIVE,
        "samples_per_code_out": POSITIVE,
        "num_quantizers": POSITIVE,
        "codebook_size": POSITIVE,
    },
    "engines": Each(
        {
            "file": str,
            "graph": str,
            "plan_sha256": str,
            "profile": dict,
            "num_quantizers": POSITIVE,
        }
    ),
}


def read_engines(engine_dir: str | Path) -> dict:
    """engines.json of an engine directory; `XyrtError` if missing or of another format."""
    path = Path(engine_dir) / "engines.json"
    if not path.is_file():
        raise XyrtError(
            f"{engine_dir} is not an xyrt engine directory (no engines.json); build one with "
            "`xyrt build --model MODEL_DIR --precision fp32|fp16|int8 -o ENGINE_DIR`"
        )
    doc = read_versioned(
        path,
        ENGINES_FORMAT,
        ENGINES_FORMAT_VERSION,
        ENGINES_SCHEMA,
        "an xyrt engines file",
        "rebuild it with `xyrt build`",
    )
    for entry in doc["engines"].values():
        member(Path(engine_dir), entry["file"], "engines.json")
    return doc


def cudart():
    """cuda-python's runtime module (new and old import paths)."""
    try:
        from cuda.bindings import runtime
    except ImportError:
        runtime = require("cuda.cudart", "gpu", "the TensorRT backend")
    return runtime


def _ok(result):
    """cuda-python returns (error, *values): raise on error, return the values."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise XyrtError(f"CUDA error {err}")
    return values[0] if len(values) == 1 else values


def device_facts() -> DeviceFacts:
    """This machine's GPU (current device) and TensorRT version."""
    trt = require("tensorrt", "gpu", "TensorRT engines")
    rt = cudart()
    props = _ok(rt.cudaGetDeviceProperties(_ok(rt.cudaGetDevice())))
    name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
    return DeviceFacts(name.strip("\x00 "), f"{props.major}.{props.minor}", trt.__version__)


_LOGGER = None


def trt_logger():
    """One TensorRT logger for the process (warnings and errors)."""
    global _LOGGER
    if _LOGGER is None:
        trt = require("tensorrt", "gpu", "TensorRT engines")
        _LOGGER = trt.Logger(trt.Logger.WARNING)
    return _LOGGER


def source_graph_sha256(engines: dict, entry: dict) -> str | None:
    """sha256 the model directory an engine was built from holds now for the engine's graph;
    None when that directory is gone (nothing to compare), "" when it no longer has the graph."""
    model_dir = engines.get("model_dir")
    if not model_dir or not (Path(model_dir) / "manifest.json").is_file():
        return None
    graphs = read_manifest(model_dir).data.get("graphs", {})
    graph = graphs.get(entry.get("source_graph", entry["graph"]))
    return graph["sha256"] if graph else ""


def check_engines(engine_dir: str | Path, engines: dict, device: DeviceFacts) -> None:
    """`XyrtError` unless every engine in ``engines`` (engines.json of ``engine_dir``) was built
    on this GPU and TensorRT version from the graph its model directory still holds, and its
    plan file is the one recorded."""
    for entry in engines["engines"].values():
        check_engine(entry, device, source_graph_sha256(engines, entry))
        path = Path(engine_dir) / entry["file"]
        # hashed once, then trusted while its stat is unchanged (xyrt.runtime.modeldir.filecheck)
        try:
            verify_file(path, entry["plan_sha256"], expected_by="engines.json")
        except (OSError, XyrtError) as exc:
            raise XyrtError(f"{path} is missing or modified; rebuild with `xyrt build`") from exc


def engine_limits(engines: dict) -> BackendLimits:
    """What the engines of ``engines`` (engines.json) take in one run: at most the smallest
    maximum batch of their optimization profiles (`ChunkedCodec` splits a larger batch), on
    the GPU; a batch fills the profile unless the caller asks for fewer."""
    batches = [Profile(**e["profile"]).max_batch for e in engines["engines"].values()]
    most = min(batches) if batches else None
    return BackendLimits(max_batch=most, device="cuda", preferred_batch=most or 4)


class EngineFromPlan:
    """One engine of an engine directory: deserialized with its execution context and CUDA
    stream on `load()` (or the first run), freed by `close()`; runs numpy in, numpy out."""

    def __init__(self, engine_dir: Path, entry: dict) -> None:
        self.path = engine_dir / entry["file"]
        self.graph, self.profile = entry["graph"], Profile(**entry["profile"])
        self.num_quantizers = entry["num_quantizers"]
        self.engine = self.context = self.stream = None

    def load(self) -> None:
        if self.engine is not None:
            return
        self.trt = require("tensorrt", "gpu", "TensorRT engines")
        self.rt = cudart()
        runtime = self.trt.Runtime(trt_logger())
        engine = runtime.deserialize_cuda_engine(self.path.read_bytes())
        if engine is None:
            raise XyrtError(
                f"TensorRT could not deserialize {self.path}; rebuild with `xyrt build`"
            )
        self.context = engine.create_execution_context()
        self.stream = _ok(self.rt.cudaStreamCreate())
        self.engine = engine

    @property
    def input_names(self) -> list[str]:
        """The engine's input tensors (loads it)."""
        self.load()
        trt, engine = self.trt, self.engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        return [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]

    def run(self, feeds: dict[str, np.ndarray], output: str) -> np.ndarray:
        feeds = fit_feed(feeds, self.input_names)
        trt, rt = self.trt, self.rt
        device, hosts = [], []  # every buffer stays referenced until the stream is synchronised
        try:
            for name, array in feeds.items():
                self.profile.check(self.graph, name, array.shape, self.num_quantizers)
                if self.engine.is_shape_inference_io(name):
                    raise XyrtError(f"engine input {name!r} is a shape tensor; rebuild the engine")
                want = trt.nptype(self.engine.get_tensor_dtype(name))
                hosts.append(host := np.ascontiguousarray(array, dtype=want))
                device.append(ptr := _ok(rt.cudaMalloc(max(host.nbytes, 1))))
                kind = rt.cudaMemcpyKind.cudaMemcpyHostToDevice
                _ok(rt.cudaMemcpyAsync(ptr, host.ctypes.data, host.nbytes, kind, self.stream))
                if not self.context.set_input_shape(name, host.shape):
                    raise XyrtError(f"the {self.graph} engine rejects {name} of shape {host.shape}")
                self.context.set_tensor_address(name, ptr)
            results = {}
            for i in range(self.engine.num_io_tensors):
                name = self.engine.get_tensor_name(i)
                if self.engine.get_tensor_mode(name) != trt.TensorIOMode.OUTPUT:
                    continue
                shape = tuple(self.context.get_tensor_shape(name))
                if any(d < 0 for d in shape):
                    raise XyrtError(f"{self.graph} output {name} has no static shape {shape}")
                results[name] = np.empty(shape, trt.nptype(self.engine.get_tensor_dtype(name)))
                device.append(ptr := _ok(rt.cudaMalloc(max(results[name].nbytes, 1))))
                self.context.set_tensor_address(name, ptr)
            if output not in results:
                raise XyrtError(f"the {self.graph} engine has no output {output!r}")
            if not self.context.execute_async_v3(int(self.stream)):
                raise XyrtError(f"TensorRT failed to run the {self.graph} engine")
            for i, host in enumerate(results.values()):
                kind = rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
                ptr = device[len(feeds) + i]
                _ok(rt.cudaMemcpyAsync(host.ctypes.data, ptr, host.nbytes, kind, self.stream))
            _ok(rt.cudaStreamSynchronize(self.stream))
            return results[output]
        finally:
            for ptr in device:
                rt.cudaFree(ptr)

    def close(self) -> None:
        """Destroy the CUDA stream, then the execution context and the engine."""
        if self.stream is not None:
            self.rt.cudaStreamDestroy(self.stream)
        self.stream = self.context = self.engine = None


class TensorRTBackend(Backend):
    """`Backend` over serialized TensorRT engines (see the module docstring)."""

    name = "tensorrt"

    def __init__(self, engine_dir: str | Path) -> None:
        self.directory = Path(engine_dir)
        self.engines = read_engines(engine_dir)
        model = self.engines["model"]
        self.info = ModelInfo(
            int(model["output_sample_rate"]),
            int(model["samples_per_code_out"]),
            int(model["num_quantizers"]),
            int(model["codebook_size"]),
        )
        self.limits = engine_limits(self.engines)
        self.device = device_facts()
        check_engines(self.directory, self.engines, self.device)
        entries = self.engines["engines"]
        self.encoder = EngineFromPlan(self.directory, entries[ENCODER])
        self.decoder = EngineFromPlan(self.directory, entries[DECODER])

    def load(self, graphs: Collection[str] = GRAPHS) -> TensorRTBackend:
        for graph in graphs:
            (self.encoder if graph == ENCODER else self.decoder).load()
        return self

    def close(self) -> None:
        self.encoder.close()
        self.decoder.close()

    def encode_window(self, wav, lengths, positions=None, mel_reference=None) -> np.ndarray:
        feed = encoder_feed(wav, lengths, positions, mel_reference)
        return self.encoder.run(feed, CODES).astype(np.int64)

    def decode_window(self, codes: np.ndarray, positions=None) -> np.ndarray:
        return self.decoder.run(decoder_feed(codes, positions), WAVEFORM)
