"""nn.Module dtype calls (``.half()``, ``.bfloat16()``, ``.float()``, ``.to(dtype)``) on a codec.

The published class is an ``nn.Module``: those calls cast its weights, and its own encode and
decode then fail on a dtype mismatch. Here they choose the precision the backend runs: on the
PyTorch backend the checkpoint is opened again at that precision (``precision="fp16"``/``"bf16"``
of `xyrt.runtime.load`, which keep the float32 islands and run the rest under autocast; going
back to ``.float()`` gets the exact float32 weights again). A backend that cannot run the
precision asked for (exported graphs run the precision they were exported or built in) raises
`XyrtError` naming what to use: a dtype call is never silently ignored.
"""

from __future__ import annotations

from typing import Any

from xyrt.errors import XyrtError, received
from xyrt.runtime.codec import ChunkedCodec

TORCH_DTYPE_NAMES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16"}


def precision_of_dtype(dtype: Any) -> str:
    """ "fp32", "fp16" or "bf16" for a torch floating dtype (or its name), else `XyrtError`."""
    name = str(dtype).removeprefix("torch.")
    name = {"float": "float32", "half": "float16"}.get(name, name)
    if name not in TORCH_DTYPE_NAMES:
        raise XyrtError(
            f"dtype {received(dtype)}: XY-Tokenizer runs in torch.float32, torch.float16 or "
            "torch.bfloat16"
        )
    return TORCH_DTYPE_NAMES[name]


def backend_precision(codec: ChunkedCodec) -> str:
    """The precision a codec's backend runs: its own ``precision``, else what its model
    directory's manifest records (exported graphs), else fp32."""
    backend = codec.backend
    own = getattr(backend, "precision", None)
    if isinstance(own, str):
        return own
    manifest = getattr(backend, "manifest", None)
    data = getattr(manifest, "data", None)
    return data.get("precision", "fp32") if isinstance(data, dict) else "fp32"


WHAT_TO_USE = {
    "fp32": "load the checkpoint with XY_Tokenizer.from_pretrained(checkpoint, backend='torch'), "
    "or export float32 graphs (`xyrt export`)",
    "bf16": "load the checkpoint with XY_Tokenizer.from_pretrained(checkpoint, backend='torch', "
    "precision='bf16'), or open a float32 export with backend='openvino', precision='bf16' (a CPU "
    "with BF16)",
    "fp16": "load the checkpoint with XY_Tokenizer.from_pretrained(checkpoint, backend='torch', "
    "precision='fp16', device='cuda'), or build fp16 TensorRT engines (`xyrt build EXPORT_DIR "
    "--precision fp16 -o ENGINE_DIR`)",
}


def with_precision(codec: ChunkedCodec, precision: str, call: str) -> ChunkedCodec:
    """``codec`` itself when it already runs ``precision``; on the PyTorch backend a new codec
    over the same checkpoint, device and options at ``precision`` (the old one is closed);
    otherwise `XyrtError` (``call`` names what the user called)."""
    current = backend_precision(codec)
    if precision == current:
        return codec
    from xyrt.runtime.backends.registry import BY_NAME

    backend = codec.backend
    entry = BY_NAME.get(backend.name)
    if entry is None or "checkpoint" not in entry.sources:  # only weights read at any precision
        raise XyrtError(
            f"{call}: this {backend.name} backend runs {current} graphs and cannot switch to "
            f"{precision}; {WHAT_TO_USE[precision]}"
        )
    source = getattr(backend, "source", None)
    if source is None:
        raise XyrtError(
            f"{call}: this PyTorch codec was built from a model object, so its float32 weights "
            "cannot be read again; load it with XY_Tokenizer.from_pretrained(checkpoint, "
            f"backend='torch', precision='{precision}')"
        )
    from pathlib import Path

    from xyrt.runtime.backends.pytorch.backend import TorchBackend
    from xyrt.runtime.backends.pytorch.device import parse_device
    from xyrt.runtime.network.checkpoint import load_model

    device = parse_device(str(backend.device))
    if precision == "fp16" and device.type != "cuda":
        raise XyrtError(
            f"{call}: float16 needs a CUDA device and this model is on {device}: move it first "
            "(.to('cuda', torch.float16), or .cuda().half()); on a CPU use .bfloat16() or "
            ".float()"
        )
    model = load_model(source, None if Path(source).is_dir() else backend.model.cfg)
    new = TorchBackend(
        model,
        device,
        precision,
        cuda_graphs=backend.cuda_graphs,
        compile=backend.compile,
        max_batch=backend.max_batch,
        source=source,
        ieee=backend.ieee,
        autocast=backend.autocast,
    )
    codec.close()
    return ChunkedCodec(new, codec.batch_size, codec.pad_to_30s, codec.progress)


def split_to_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """(device, dtype) of an ``nn.Module.to`` call: ``to(device)``, ``to(dtype)``,
    ``to(device, dtype)``, ``to(tensor)``, keywords ``device=``/``dtype=``; ``non_blocking``
    and ``memory_format`` are accepted and have nothing to do here."""
    import sys

    torch = sys.modules.get("torch")
    device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    kwargs.pop("memory_format", None)
    if kwargs:
        raise XyrtError(f"to() got unexpected keyword(s) {', '.join(sorted(kwargs))}")
    for arg in args:
        if torch is not None and isinstance(arg, torch.dtype):
            dtype = arg
        elif torch is not None and isinstance(arg, torch.Tensor):
            device = arg.device
            dtype = arg.dtype if arg.is_floating_point() else dtype
        elif isinstance(arg, bool):  # the old positional non_blocking
            continue
        elif device is None:
            device = arg
        else:
            raise XyrtError(f"to() got {received(arg)}; expected a device and/or a torch dtype")
    return device, dtype
