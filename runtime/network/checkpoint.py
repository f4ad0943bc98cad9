"""Loading official checkpoints (standalone 16 kHz and MOSS-TTSD 24/32 kHz) into `XYTokenizer`."""

from __future__ import annotations

from pathlib import Path

from xyrt.atomic import atomic_write
from xyrt.config import XYConfig
from xyrt.errors import CheckpointError, ConfigError, require
from xyrt.runtime.network.model import XYTokenizer
from xyrt.runtime.network.state import WRITER, read_state_dict

torch = require("torch", "export", "the PyTorch network")

_MAX_LISTED = 12


def resolve_config(checkpoint: str | Path, config: str | Path | None = None) -> XYConfig:
    """The given config, else ``config.yaml`` next to the checkpoint (a Hugging Face-layout
    folder: its config.json)."""
    if config is not None:
        return XYConfig.from_yaml(config)
    if Path(checkpoint).is_dir():
        from xyrt.runtime.network.hf import read_hf_config

        return read_hf_config(checkpoint)[0]
    beside = Path(checkpoint).parent / "config.yaml"
    if not beside.is_file():
        raise ConfigError(
            f"no --config given and no config.yaml next to the checkpoint ({beside}); pass the "
            "model's YAML config with --config"
        )
    return XYConfig.from_yaml(beside)


def checkpoint_sha256(checkpoint: str | Path) -> str:
    """sha256 of a .ckpt file; of a Hugging Face-layout folder, over its config.json and weight
    files (name and sha256 of each, in order): what an export's manifest records."""
    import hashlib

    from xyrt.runtime.modeldir.manifest import sha256_file

    path = Path(checkpoint)
    if not path.is_dir():
        return sha256_file(path)
    from xyrt.runtime.network.hf import CONFIG, SAFETENSORS_INDEX, WEIGHT_FILES, shard_map

    shards = {p.name for p in path.glob("model-*.safetensors")}
    if (path / SAFETENSORS_INDEX).is_file():  # the shards the index names, wherever named
        shards |= set(shard_map(path).values())
    names = [CONFIG, *WEIGHT_FILES, *sorted(shards)]
    digest = hashlib.sha256()
    for name in names:
        if (path / name).is_file():
            digest.update(f"{name} {sha256_file(path / name)}\n".encode())
    return digest.hexdigest()


def _finite(tensor: torch.Tensor) -> bool:
    """Whether every value is finite, checked in slices (no full-size temporary)."""
    flat = tensor.reshape(-1)
    step = 1 << 24
    return all(bool(torch.isfinite(flat[i : i + step]).all()) for i in range(0, flat.numel(), step))


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f" ... (+{len(names) - _MAX_LISTED} more)" if len(names) > _MAX_LISTED else "")


def check_state_dict(model: XYTokenizer, state: dict[str, torch.Tensor], source: str) -> None:
    """Raise `CheckpointError` listing every missing, unexpected, mis-shaped or integer tensor
    (where the model has a float one), then naming tensors with NaN or Inf values."""
    want = model.state_dict()
    missing = sorted(set(want) - set(state))
    unexpected = sorted(set(state) - set(want))
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(want[k].shape)}"
        for k in sorted(set(want) & set(state))
        if state[k].shape != want[k].shape
    ]
    common = sorted(set(want) & set(state))
    dtypes = [
        f"{k}: {str(state[k].dtype).removeprefix('torch.')}"
        for k in common
        if want[k].is_floating_point() and not state[k].is_floating_point()
    ]
    if not (missing or unexpected or shapes or dtypes):
        nonfinite = [k for k in common if state[k].is_floating_point() and not _finite(state[k])]
        if nonfinite:
            raise CheckpointError(
                f"checkpoint {source} has NaN or Inf values in {len(nonfinite)} tensors: "
                f"{_listing(nonfinite)}; expected finite weights (the file is damaged or the "
                "training diverged)"
            )
        return
    lines = [f"checkpoint {source} does not match the config:"]
    if dtypes:
        lines.append(f"  {len(dtypes)} not floating point (expected float): {_listing(dtypes)}")
    if missing:
        lines.append(f"  missing {len(missing)} tensors: {_listing(missing)}")
    if unexpected:
        lines.append(f"  unexpected {len(unexpected)} tensors: {_listing(unexpected)}")
    if shapes:
        lines.append(f"  {len(shapes)} mis-shaped: {_listing(shapes)}")
    other = "enhanced_vocos" if model.cfg.vocoder_name == "vocos" else "vocos"
    if any(k.startswith(other + ".") for k in unexpected):
        lines.append(
            f"  hint: the checkpoint has '{other}.*' tensors: it is a "
            f"{'MOSS-TTSD' if other == 'enhanced_vocos' else 'standalone'} checkpoint; "
            "pass its matching config"
        )
    raise CheckpointError("\n".join(lines))


def load_model(checkpoint: str | Path, config: str | Path | XYConfig | None = None) -> XYTokenizer:
    """Build the model from the config and load the checkpoint (any float dtype -> float32):
    an original .ckpt (config given, else config.yaml beside it) or a Hugging Face-layout
    folder (`xyrt.runtime.network.hf`; its config.json is the config)."""
    if Path(checkpoint).is_dir():
        from xyrt.runtime.network.hf import read_hf

        if config is not None:
            raise ConfigError(
                f"{checkpoint} is a Hugging Face-layout folder: its config.json is the config; "
                "drop --config"
            )
        cfg, state, _ = read_hf(checkpoint)
    elif not Path(checkpoint).is_file():
        raise CheckpointError(f"checkpoint not found: {checkpoint}")
    else:
        cfg = config if isinstance(config, XYConfig) else resolve_config(checkpoint, config)
        state = read_state_dict(checkpoint)
    with torch.device("meta"):
        model = XYTokenizer(cfg)
    check_state_dict(model, state, str(checkpoint))
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    model.frontend = type(model.frontend)()  # non-persistent buffers: rebuild off the meta device
    return model.eval()


def save_checkpoint(state: dict[str, torch.Tensor], path: str | Path) -> None:
    """Write ``{'generator': state, 'xyrt': WRITER}`` atomically (temp file in the same folder,
    then rename); the published loader reads only ``generator``."""
    with atomic_write(path, CheckpointError) as tmp:
        torch.save({"generator": state, "xyrt": WRITER}, tmp)
