"""xyrt.runtime: torch-free inference (front end, audio I/O, code files, chunking, backends).

import xyrt.runtime
codec = xyrt.runtime.load("model_dir")            # ONNX Runtime, CPU
codes = codec.encode(audio, sample_rate)            # (8, T) int64
audio = codec.decode(codes)                         # float32 at codec.output_sample_rate

The public surface is `__all__`: `load`, the codec (`ChunkedCodec`), the backend interface
(`Backend`, `ModelInfo`), streaming (`Stream`, `StreamOptions`, `StreamStep`, `CodeFrame`;
decode: `DecodeStream`, `DecodeStreamOptions`) and the graph I/O contract
(`xyrt.runtime.graph_io`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xyrt.runtime import graph_io
from xyrt.runtime.backend import Backend, ModelInfo
from xyrt.runtime.codec import ChunkedCodec
from xyrt.runtime.decode_stream import DecodeStream, DecodeStreamOptions
from xyrt.runtime.streaming import CodeFrame, Stream, StreamOptions, StreamStep

RUNTIME_BACKENDS = (
    "onnxruntime",
    "openvino",
    "tensorrt",
    "auto",
)  # what `load(backend=...)` accepts


def load(
    model_dir: str | Path,
    backend: str = "onnxruntime",
    providers: Sequence[str] | None = None,
    threads: int | None = None,
    batch_size: int = 4,
    progress: bool = False,
    target: str | None = None,
    precision: str | None = None,
) -> ChunkedCodec:
    """A codec over an exported model directory (`xyrt export`/`xyrt quantize`), or over an
    engine directory (`xyrt build`) with ``backend="tensorrt"``; ``"auto"`` picks by what the
    directory holds. ``target`` picks a graph set of a quantized directory ("tensorrt" for the
    Q/DQ graphs under ONNX Runtime). ``backend="openvino"`` runs the directory with OpenVINO on
    the CPU at ``precision`` "f32", "bf16" or "int8" (default: the directory's own)."""
    from xyrt.checks import threads as check_threads
    from xyrt.errors import XyrtError

    if not isinstance(model_dir, (str, Path)):
        raise XyrtError(f"model_dir must be a directory path (str or Path), got {model_dir!r}")
    if backend not in RUNTIME_BACKENDS:
        raise XyrtError(f"unknown backend {backend!r}; available: {', '.join(RUNTIME_BACKENDS)}")
    threads = check_threads(threads)
    if backend == "auto":
        engines = (Path(model_dir) / "engines.json").is_file()
        backend = "tensorrt" if engines else "onnxruntime"
    if precision is not None and backend != "openvino":
        raise XyrtError(f"precision {precision!r} is an OpenVINO option (backend='openvino')")
    if backend == "openvino":
        from xyrt.runtime.openvino import OpenVinoBackend

        impl = OpenVinoBackend(model_dir, precision, threads)
    elif backend == "tensorrt":
        from xyrt.runtime.tensorrt import TensorRTBackend

        impl = TensorRTBackend(model_dir)
    else:
        from xyrt.runtime.onnxrt import OnnxRuntimeBackend

        impl = OnnxRuntimeBackend(model_dir, providers, threads, target)
    return ChunkedCodec(impl, batch_size=batch_size, progress=progress)


__all__ = [
    "RUNTIME_BACKENDS",
    "Backend",
    "ChunkedCodec",
    "CodeFrame",
    "DecodeStream",
    "DecodeStreamOptions",
    "ModelInfo",
    "Stream",
    "StreamOptions",
    "StreamStep",
    "graph_io",
    "load",
]
