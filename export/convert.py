"""``xyrt convert``: an original .ckpt + YAML <-> a Hugging Face-layout folder
(`xyrt.runtime.network.hf`).

xyrt never replaces a file it did not write (`xyrt.atomic.claim_file`): besides the record every
xyrt write leaves in its cache, every file convert writes carries a stamp in its content
(config.json's ``xyrt`` entry, model.safetensors' ``writer`` metadata, the .ckpt's ``xyrt``
entry, the YAML's first-line comment), so a file xyrt wrote elsewhere is known as xyrt's too;
an existing destination file with neither is refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from xyrt.atomic import FORCE_HINT, atomic_write, check_recordable, record_written, write_record
from xyrt.config import XYConfig
from xyrt.errors import CheckpointError, ConfigError, XyrtError
from xyrt.runtime.network.checkpoint import check_state_dict, resolve_config, save_checkpoint
from xyrt.runtime.network.hf import (
    CONFIG,
    SAFETENSORS,
    SAFETENSORS_INDEX,
    TORCH_BIN,
    WEIGHT_NORMS,
    read_hf,
    write_hf,
    yaml_config,
)
from xyrt.runtime.network.state import WRITER, read_state_dict

LAYOUTS = ("hf", "ckpt")
_YAML_STAMP = "# written by xyrt"


def written_by_xyrt(path: Path) -> bool:
    """Whether the existing file ``path`` was written by xyrt and not changed since: recorded
    so in the cache, or, where the cache has no record of it (xyrt wrote it under another
    XYRT_CACHE), carrying xyrt's stamp in its content (see the module docstring). A file the
    cache records as changed since xyrt wrote it is not xyrt's, stamp or not: the user's edits
    of a config.json or config.yaml written beside the main file are never replaced."""
    record = write_record(path)
    if record is not None:
        return record == "same"
    try:
        if path.name == CONFIG:
            data = json.loads(path.read_text())
            return isinstance(data, dict) and "writer" in data.get("xyrt", {})
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), "pt") as f:
                return (f.metadata() or {}).get("writer", "").startswith("xyrt")
        if path.suffix in (".yaml", ".yml"):
            return path.read_text().startswith(_YAML_STAMP)
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return isinstance(obj, dict) and str(obj.get("xyrt", "")).startswith("xyrt")
    except Exception:  # noqa: BLE001 - unreadable or foreign: not ours
        return False


def _claim(paths: list[Path], force: bool = False) -> None:
    """Refuse if any existing path (the main output and the files written beside it) was not
    written by xyrt or was changed since; the ones that were, or all with ``force``, are
    recorded as xyrt's (so `atomic_write` replaces them)."""
    check_recordable()
    folders = [p for p in paths if p.is_dir()]
    if folders:
        raise XyrtError(f"will not overwrite {folders[0]}: it is a folder; expected a file")
    foreign = [p for p in paths if p.exists() and not written_by_xyrt(p)]
    if foreign and not force:
        raise XyrtError(
            f"will not overwrite {', '.join(map(str, foreign))}: not written by xyrt, or "
            "changed since xyrt wrote it. Choose another output path, move those files away, "
            f"or, if they may go, {FORCE_HINT}"
        )
    for p in paths:
        if p.exists():
            record_written(p)


def read_any(
    source: str | Path, config: str | Path | None = None
) -> tuple[XYConfig, dict[str, torch.Tensor], dict[str, Any]]:
    """Config, tensors (original names) and ``generator_params`` of a .ckpt or an HF folder,
    checked against the model the config describes."""
    from xyrt.runtime.network.model import XYTokenizer

    source = Path(source)
    if source.is_dir():
        if config is not None:
            raise ConfigError(f"{source} is a Hugging Face-layout folder: drop --config")
        cfg, state, gp = read_hf(source)
    else:
        import yaml

        cfg = resolve_config(source, config)
        raw = yaml.safe_load(Path(config or source.parent / "config.yaml").read_text())
        gp = raw.get("generator_params", raw)
        state = read_state_dict(source)
    with torch.device("meta"):
        model = XYTokenizer(cfg)
    check_state_dict(model, state, str(source))
    return cfg, state, gp


def write_ckpt(
    path: str | Path, cfg: XYConfig, state: dict[str, torch.Tensor], gp: dict[str, Any]
) -> Path:
    """Write ``path`` ({'generator': state}) and ``config.yaml`` beside it (original layout)."""
    import yaml

    path = Path(path)
    text = f"{_YAML_STAMP} ({WRITER}); original XY-Tokenizer layout\n"
    text += yaml.safe_dump(yaml_config(cfg, gp), sort_keys=False)
    with atomic_write(path.parent / "config.yaml", ConfigError) as tmp:
        tmp.write_text(text)
    save_checkpoint(state, path)
    return path


def convert(
    source: str | Path,
    output: str | Path,
    to: str | None = None,
    config: str | Path | None = None,
    weight_norm: str = "parametrizations",
    force: bool = False,
) -> Path:
    """Write ``source`` (.ckpt + YAML, or an HF folder) in the other layout (or ``to``): an HF
    folder, or a .ckpt with config.yaml beside it. Returns the output path. ``force``: replace
    output files xyrt has no record of writing (or that were changed since)."""
    source, output = Path(source), Path(output)
    if not source.exists():
        raise CheckpointError(f"checkpoint not found: {source}")
    to = to or ("ckpt" if source.is_dir() else "hf")
    if to not in LAYOUTS:
        raise XyrtError(f"unknown layout {to!r}; choose one of {', '.join(LAYOUTS)}")
    if weight_norm not in WEIGHT_NORMS:
        raise XyrtError(f"unknown weight norm {weight_norm!r}; choose one of {WEIGHT_NORMS}")
    if output.resolve() == source.resolve():
        raise XyrtError(f"output {output} is the source itself; choose another path")
    if to == "hf":
        if output.exists() and not output.is_dir():
            raise XyrtError(f"output {output} exists and is not a folder")
        _claim([output / CONFIG, output / SAFETENSORS], force)
        strays = [output / n for n in (SAFETENSORS_INDEX, TORCH_BIN) if (output / n).exists()]
        if strays:
            raise XyrtError(
                f"{output} already holds {', '.join(p.name for p in strays)} (another model's "
                "weights would sit beside the new ones); choose an empty folder"
            )
    else:
        if output.is_dir():
            raise XyrtError(f"output {output} is a folder; --to ckpt writes a file (model.ckpt)")
        _claim([output, output.parent / "config.yaml"], force)
    cfg, state, gp = read_any(source, config)
    if to == "hf":
        return write_hf(output, cfg, state, gp, weight_norm)
    return write_ckpt(output, cfg, state, gp)
