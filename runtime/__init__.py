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

BACKENDS = ("onnxruntime",)


def load(
    model_dir: str | Path,
    backend: str = "onnxruntime",
    providers: Sequence[str] | None = None,
    threads: int | None = None,
    batch_size: int = 4,
    progress: bool = False,
) -> ChunkedCodec:
    """A codec over an exported model directory (see `xyrt export`)."""
    from xyrt.errors import XyrtError

    if backend != "onnxruntime":
        raise XyrtError(f"unknown backend {backend!r}; available: {', '.join(BACKENDS)}")
    if threads is not None and threads < 1:
        raise XyrtError(f"threads must be at least 1, got {threads}")
    from xyrt.runtime.onnxrt import OnnxRuntimeBackend

    return ChunkedCodec(
        OnnxRuntimeBackend(model_dir, providers, threads),
        batch_size=batch_size,
        progress=progress,
    )


__all__ = ["BACKENDS", "ChunkedCodec", "load"]
