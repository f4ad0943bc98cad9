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

from collections.abc import Sequence
from pathlib import Path

from xyrt.runtime import graph_io
from xyrt.runtime.backends.base import Backend, BackendLimits, ModelInfo
from xyrt.runtime.backends.registry import BACKEND_NAMES, open_backend
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
    providers: Sequence[str] | None = None,
    threads: int | None = None,
    batch_size: int | None = None,
    progress: bool = False,
    target: str | None = None,
    config: str | Path | None = None,
    cuda_graphs: bool = True,
    compile: bool = False,
    autocast: bool = True,
    max_batch: int | None = None,
) -> ChunkedCodec:
    """A codec over a model source: an export directory (`xyrt export`/`xyrt quantize`), an
    engine directory (`xyrt build`) or a checkpoint (.ckpt, or a Hugging Face-layout folder).

    ``backend``: "onnxruntime", "openvino", "tensorrt", "torch" (or an alias, see
    `xyrt.runtime.backends.registry`); "auto" picks by what the source is (engines -> tensorrt,
    export -> onnxruntime, checkpoint -> torch). ``device``: "cpu", "cuda" or "cuda:N";
    ``precision``: "fp32", "bf16", "fp16" (torch), or "fp32"/"bf16"/"int8" (OpenVINO on a CPU);
    ``providers`` and ``target`` are ONNX Runtime's; ``config`` a checkpoint's YAML;
    ``cuda_graphs``, ``compile``, ``autocast`` the torch backend's
    (`xyrt.runtime.backends.torch_backend`). ``batch_size`` None: the backend's preferred batch. An
    option the chosen backend cannot take is an `XyrtError` naming it.
    """
    from xyrt.checks import threads as check_threads

    threads = check_threads(threads)
    impl = open_backend(
        model,
        backend,
        device=device,
        precision=precision,
        providers=providers,
        threads=threads,
        target=target,
        config=config,
        cuda_graphs=cuda_graphs,
        compile=compile,
        autocast=autocast,
        max_batch=max_batch,
    )
    return ChunkedCodec(impl, batch_size=batch_size, progress=progress)


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
    "graph_io",
    "load",
]
