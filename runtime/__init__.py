"""xyrt.runtime: torch-free inference (front end, audio I/O, code files, chunking, backends).

import xyrt.runtime
codec = xyrt.runtime.load("model_dir")            # ONNX Runtime, CPU
codes = codec.encode(audio, sample_rate)            # (8, T) int64
audio = codec.decode(codes)                         # float32 at codec.output_sample_rate
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from xyrt.runtime.backend import ChunkedCodec

BACKENDS = ("onnxruntime", "tensorrt", "auto")


def load(
    model_dir: str | Path,
    backend: str = "onnxruntime",
    providers: Sequence[str] | None = None,
    threads: int | None = None,
    batch_size: int = 4,
    progress: bool = False,
    target: str | None = None,
) -> ChunkedCodec:
    """A codec over an exported model directory (`xyrt export`/`xyrt quantize`), or over an
    engine directory (`xyrt build`) with ``backend="tensorrt"``; ``"auto"`` picks by what the
    directory holds. ``target`` picks a graph set of a quantized directory ("tensorrt" for the
    Q/DQ graphs under ONNX Runtime)."""
    from xyrt.errors import XyrtError

    if backend not in BACKENDS:
        raise XyrtError(f"unknown backend {backend!r}; available: {', '.join(BACKENDS)}")
    if threads is not None and threads < 1:
        raise XyrtError(f"threads must be at least 1, got {threads}")
    if backend == "auto":
        engines = (Path(model_dir) / "engines.json").is_file()
        backend = "tensorrt" if engines else "onnxruntime"
    if backend == "tensorrt":
        from xyrt.runtime.tensorrt import TensorRTBackend

        impl = TensorRTBackend(model_dir)
    else:
        from xyrt.runtime.onnxrt import OnnxRuntimeBackend

        impl = OnnxRuntimeBackend(model_dir, providers, threads, target)
    return ChunkedCodec(impl, batch_size=batch_size, progress=progress)


__all__ = ["BACKENDS", "ChunkedCodec", "load"]
