"""Raw checkpoint files: reading a state dict out of a torch.save file, and the stamp xyrt puts
into the files it writes. Below both layouts (`checkpoint`: .ckpt + YAML; `hf`: Hugging Face
folders), so neither imports the other's module for these."""

from __future__ import annotations

from pathlib import Path

import xyrt
from xyrt.errors import CheckpointError, require

torch = require("torch", "export", "reading checkpoints")

WRITER = f"xyrt {xyrt.__version__}"  # stamped into the files xyrt writes (see export/convert.py)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint: ``obj['generator']`` if present, else the object itself."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - old (non-zip) files cannot be memory-mapped
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001
            raise CheckpointError(
                f"cannot read checkpoint {path}: {type(exc).__name__}: {str(exc)[:300]}. "
                "Expected a torch.save file holding a state dict or {'generator': state_dict}."
            ) from exc
    if isinstance(obj, dict) and "generator" in obj:
        obj = obj["generator"]
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(
            f"checkpoint {path} holds a {type(obj).__name__}, expected a state dict "
            "(name -> tensor) or {'generator': state_dict}"
        )
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"checkpoint {path}: entries that are not tensors: {bad[:5]}")
    return obj
