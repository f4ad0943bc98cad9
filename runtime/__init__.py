"""xyrt.runtime: torch-free inference (front end, audio I/O, code files, chunking, backends).

import xyrt.runtime
codec = xyrt.runtime.load("model_dir")            # ONNX Runtime, CPU
codec = xyrt.runtime.load("model.ckpt", device="cuda", precision="bf16")   # PyTorch, GPU
codes = codec.encode(audio, sample_rate)            # (8, T) int64
audio = codec.decode(codes)                         # float32 at codec.output_sample_rate
audio = codec.decode(codes, prompt=ref_codes)      # MOSS-TTSD's prompted decode

The public surface is `__all__`: `load`, the codec (`ChunkedCodec`), the backend interface
(`Backend`, `BackendLimits`, `ModelInfo`), streaming (`EncodeStream`, `EncodeStreamOptions`,
`EncodeStep`, `CodeFrame`; decode: `DecodeStream`, `DecodeStreamOptions`; both step with
``plan()``/``complete()``) and the graph I/O contract (`xyrt.runtime.graph_io`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xyrt.runtime import graph_io
from xyrt.runtime.backends.base import Backend, BackendLimits, ModelInfo
from xyrt.runtime.backends.registry import BACKEND_NAMES, Options, open_backend
from xyrt.runtime.codec import ChunkedCodec
from xyrt.runtime.streams.decode_stream import DecodeStream, DecodeStreamOptions
from xyrt.runtime.streams.encode_stream import (
    CodeFrame,
    EncodeStep,
    EncodeStream,
    EncodeStreamOptions,
)

RUNTIME_BACKENDS = (*BACKEND_NAMES, "auto")  # what `load(backend=...)` accepts (aliases too)


def load(
    model: str | Path,
    backend: str = "auto",
    device: str | None = None,
    precision: str | None = None,
    threads: int | None = None,
    *,
    options: Options | None = None,
    batch_size: int | None = None,
    progress: bool = False,
    **backend_options: Any,
) -> ChunkedCodec:
    """A codec over a model source: an export directory (`xyrt export`/`xyrt quantize`), an
    engine directory (`xyrt build`) or a checkpoint (.ckpt, or a Hugging Face-layout folder).

    ``backend``: "onnxruntime", "openvino", "tensorrt", "torch" (or an alias, see
    `xyrt.runtime.backends.registry`); "auto" picks by what the source is (engines -> tensorrt,
    export -> onnxruntime, checkpoint -> torch). ``device``: "cpu", "cuda" or "cuda:N";
    ``precision``: "auto", "fp32", "bf16", "fp16" (torch), or "fp32"/"bf16"/"int8" (OpenVINO on
    a CPU); ``threads``: CPU threads. The other options of a backend (`registry.Options`: ONNX
    Runtime's ``providers`` and ``target``, a checkpoint's ``config``, the torch backend's
    ``cuda_graphs``, ``compile``, ``autocast``, ``max_batch``) are keywords here, or one
    ``options`` value (keywords win). ``batch_size`` None: the backend's preferred batch. An
    option the chosen backend cannot take is an `XyrtError` naming it.
    """
    from xyrt.checks import threads as check_threads

    common = {"device": device, "precision": precision, "threads": check_threads(threads)}
    given = {k: v for k, v in common.items() if v is not None}
    opts = Options.of(options, **given, **backend_options)
    return ChunkedCodec(
        open_backend(model, backend, opts), batch_size=batch_size, progress=progress
    )


__all__ = [
    "RUNTIME_BACKENDS",
    "Backend",
    "BackendLimits",
    "ChunkedCodec",
    "CodeFrame",
    "DecodeStream",
    "DecodeStreamOptions",
    "EncodeStep",
    "EncodeStream",
    "EncodeStreamOptions",
    "ModelInfo",
    "Options",
    "graph_io",
    "load",
]
