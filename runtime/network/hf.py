"""Hugging Face-layout checkpoints: a folder read into xyrt's model, or written from it.

The layout of the Hub's ``*_hf`` XY-Tokenizer repositories (and of codec.cpp's GGUF converter
input):
- ``config.json``: ``model_type: "xy_tokenizer"``; top-level ``input_sample_rate`` (or
  ``input_sampling_rate``), ``output_sample_rate``, ``encoder_downsample_rate``,
  ``decoder_upsample_rate``, ``code_dim``; ``params``: the original YAML's ``generator_params``
  sub-dicts under the same names (``feature_extractor_kwargs`` ... ``vocos_kwargs``);
- weights: ``model.safetensors`` (or sharded, ``model.safetensors.index.json``) or
  ``pytorch_model.bin``;
- tensor names: the original ones (docs/SPEC.md, "Checkpoint format") except that transformer
  layers' ``fc1``/``fc2`` are ``mlp.fc1``/``mlp.fc2``, the vocoder is always ``enhanced_vocos``,
  weight norm is stored as ``weight_g``/``weight_v``, ``parametrizations.weight.original0/1`` or
  folded into ``weight``, and ``positional_embedding`` may be ``positional_embedding.weight``.

Everything here speaks the original names (xyrt's model uses them); `read_hf` and `write_hf`
translate at the folder's edge.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from xyrt.atomic import atomic_write
from xyrt.config import SAMPLES_PER_CODE_IN, XYConfig
from xyrt.errors import CheckpointError, ConfigError, XyrtError, require
from xyrt.runtime.modeldir.filecheck import member
from xyrt.runtime.network.state import WRITER, read_state_dict

torch = require("torch", "export", "the PyTorch network")

CONFIG = "config.json"
SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_BIN = "pytorch_model.bin"
WEIGHT_FILES = (SAFETENSORS, SAFETENSORS_INDEX, TORCH_BIN)
MODEL_TYPE = "xy_tokenizer"
HF_VOCODER = "enhanced_vocos"
# How weight-normed projections are stored: torch.nn.utils.parametrizations.weight_norm
# (what the Hub files use), the older torch.nn.utils.weight_norm, or folded into one weight.
WEIGHT_NORMS = ("parametrizations", "gv", "folded")

_G, _V = ".weight_g", ".weight_v"
_P0, _P1 = ".parametrizations.weight.original0", ".parametrizations.weight.original1"
_PE = ".positional_embedding"
_MLP = re.compile(r"(\.layers\.\d+\.)mlp\.(fc[12]\.)")
_FC = re.compile(r"(\.layers\.\d+\.)(fc[12]\.)")


def is_hf_folder(path: str | Path) -> bool:
    """Whether ``path`` is meant as a Hugging Face-layout folder (any directory is)."""
    return Path(path).is_dir()


# -- reading ------------------------------------------------------------------------------------
def _json(path: Path, error: type[Exception]) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"cannot read {path}: {exc}") from exc


def read_hf_config(folder: str | Path) -> tuple[XYConfig, dict[str, Any]]:
    """The model config of a folder's ``config.json`` and its ``generator_params`` (the YAML's
    sub-dicts plus the rates), as the original YAML would hold them."""
    folder = Path(folder)
    path = folder / CONFIG
    if not path.is_file():
        raise ConfigError(
            f"{folder} has no {CONFIG}: expected a Hugging Face-layout folder ({CONFIG} + "
            f"{SAFETENSORS} or {TORCH_BIN}) or an original .ckpt file"
        )
    raw = _json(path, ConfigError)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    if raw.get("model_type") != MODEL_TYPE:
        raise ConfigError(
            f"{path}: model_type is {raw.get('model_type')!r}, expected {MODEL_TYPE!r}"
        )
    params = raw.get("params")
    if not isinstance(params, dict):
        raise ConfigError(
            f"{path}: missing 'params' (the original generator_params sub-dicts: "
            "feature_extractor_kwargs, semantic_encoder_kwargs, ..., vocos_kwargs)"
        )
    rate = raw.get("input_sample_rate", raw.get("input_sampling_rate"))
    if rate is None:
        raise ConfigError(f"{path}: missing 'input_sample_rate' (or 'input_sampling_rate')")
    gp = {"input_sample_rate": rate}
    for key in ("output_sample_rate", "encoder_downsample_rate", "decoder_upsample_rate"):
        if key not in raw:
            raise ConfigError(f"{path}: missing '{key}'")
        gp[key] = raw[key]
    gp.update(params)
    cfg = XYConfig.from_dict({"generator_params": gp}, source=str(path))
    code_dim = raw.get("code_dim", cfg.quantizer.input_dim)
    if code_dim != cfg.quantizer.input_dim:
        raise ConfigError(
            f"{path}: code_dim {code_dim} != params.quantizer_kwargs.input_dim "
            f"{cfg.quantizer.input_dim}"
        )
    stamp = raw.get("xyrt")
    if isinstance(stamp, dict) and stamp.get("variant") == "standalone":  # xyrt, from a .ckpt
        from dataclasses import replace

        cfg = replace(cfg, variant="standalone")
    return cfg, gp


def shard_map(folder: Path) -> dict[str, str]:
    """tensor name -> shard file name of a sharded folder's index; `CheckpointError` unless
    every shard is a plain file name inside ``folder``."""
    index = _json(folder / SAFETENSORS_INDEX, CheckpointError)
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if weight_map is None:
        raise CheckpointError(f"{folder / SAFETENSORS_INDEX}: missing 'weight_map'")
    if not isinstance(weight_map, dict) or not weight_map:
        what = "an empty object" if weight_map == {} else f"a {type(weight_map).__name__}"
        raise CheckpointError(
            f"{folder / SAFETENSORS_INDEX}: 'weight_map' is {what}; expected an object mapping "
            'each tensor name to its shard file ({"encoder.x.weight": "model-00001-of-00002.'
            'safetensors", ...})'
        )
    for tensor, shard in weight_map.items():
        if not isinstance(shard, str):
            raise CheckpointError(
                f"{folder / SAFETENSORS_INDEX}: tensor {tensor!r} maps to {shard!r}; expected "
                "a shard file name"
            )
        try:
            member(folder, shard, SAFETENSORS_INDEX)
        except XyrtError as exc:
            raise CheckpointError(str(exc)) from None
    return weight_map


def _read_shards(folder: Path, weight_map: dict[str, str]) -> dict[str, torch.Tensor]:
    """Each tensor of ``weight_map`` from the shard the index names (a copy of it in another
    shard, or a tensor the index does not list, is not read)."""
    safetensors = require("safetensors", "export", "reading model.safetensors")
    by_shard: dict[str, list[str]] = {}
    for tensor, shard in weight_map.items():
        by_shard.setdefault(shard, []).append(tensor)
    state: dict[str, torch.Tensor] = {}
    for shard, names in sorted(by_shard.items()):
        file = folder / shard
        if file.is_dir():
            raise CheckpointError(
                f"{folder / SAFETENSORS_INDEX} names {shard} as a weight file, but it is a "
                "folder; expected a .safetensors file"
            )
        if not file.is_file():
            raise CheckpointError(f"{folder}: weight file {shard} is missing")
        try:
            with safetensors.safe_open(str(file), "pt") as f:
                missing = sorted(set(names) - set(f.keys()))
                if missing:
                    raise CheckpointError(
                        f"{folder / SAFETENSORS_INDEX} names {shard} for {len(missing)} "
                        f"tensor(s) it does not hold, e.g. {missing[:3]}"
                    )
                for name in names:
                    state[name] = f.get_tensor(name)
        except CheckpointError:
            raise
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
            raise CheckpointError(f"cannot read {file}: {type(exc).__name__}: {exc}") from exc
    return state


def read_hf_tensors(folder: str | Path) -> dict[str, torch.Tensor]:
    """The folder's tensors under its own names (safetensors preferred, then the .bin)."""
    folder = Path(folder)
    if (folder / SAFETENSORS).is_file():
        files = [folder / SAFETENSORS]
    elif (folder / SAFETENSORS_INDEX).is_file():
        return _read_shards(folder, shard_map(folder))
    elif (folder / TORCH_BIN).is_file():
        return read_state_dict(folder / TORCH_BIN)
    else:
        present = sorted(p.name for p in folder.iterdir())
        raise CheckpointError(
            f"{folder} has no weights: expected {', '.join(WEIGHT_FILES[:-1])} or "
            f"{TORCH_BIN} (found: {', '.join(present) or 'nothing'})"
        )
    st = require("safetensors.torch", "export", "reading model.safetensors")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        try:
            state.update(st.load_file(str(file)))
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
            raise CheckpointError(f"cannot read {file}: {type(exc).__name__}: {exc}") from exc
    return state


def _from_hf_name(name: str, vocoder: str) -> str:
    name = _MLP.sub(r"\1\2", name)
    if name.startswith(HF_VOCODER + "."):
        name = vocoder + name[len(HF_VOCODER) :]
    for old, new in ((_P0, _G), (_P1, _V), (_PE + ".weight", _PE)):
        if name.endswith(old):
            name = name[: -len(old)] + new
    return name


def from_hf_state(
    state: dict[str, torch.Tensor], cfg: XYConfig, expected: Iterable[str]
) -> dict[str, torch.Tensor]:
    """Rename a folder's tensors to the original names; unfold folded weight norm (g = ||w||
    per output channel, v = w, which gives w back exactly); the training buffer ``inited``
    stored as a scalar becomes (1,). ``expected``: the model's state-dict names."""
    out = {_from_hf_name(k, cfg.vocoder_name): v for k, v in state.items()}
    for g_name in (k for k in expected if k.endswith(_G)):
        base = g_name[: -len(_G)]
        if g_name not in out and base + _V not in out and base + ".weight" in out:
            w = out.pop(base + ".weight")
            w = w[:, :, None] if w.ndim == 2 else w
            out[base + _V] = w
            out[g_name] = torch.linalg.vector_norm(w.float(), dim=(1, 2), keepdim=True).to(w.dtype)
    for name, tensor in out.items():
        if name.endswith(".inited") and tensor.ndim == 0:
            out[name] = tensor.reshape(1)
    return out


def fill_constant_buffers(
    state: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]
) -> None:
    """Add the buffers some files leave out because they are constants or unused at inference:
    positional embeddings (sinusoids), the iSTFT window, the RVQ training statistics. Shapes
    come from ``reference`` (the model's own state dict, e.g. on the meta device)."""
    from xyrt.runtime.network.layers import sinusoids

    for name in set(reference) - set(state):
        shape = reference[name].shape
        if name.endswith(".positional_embedding"):
            state[name] = sinusoids(*shape)
        elif name.endswith(".istft.window"):
            state[name] = torch.hann_window(shape[0], periodic=True)
        elif name.endswith(".inited"):
            state[name] = torch.ones(shape, dtype=torch.bool)
        elif name.endswith((".cluster_size", ".embed_avg")):
            state[name] = torch.zeros(shape)


def read_hf(folder: str | Path) -> tuple[XYConfig, dict[str, torch.Tensor], dict[str, Any]]:
    """Config, tensors under the original names, and the ``generator_params`` of a folder."""
    from xyrt.runtime.network.model import XYTokenizer

    cfg, gp = read_hf_config(folder)
    with torch.device("meta"):
        reference = XYTokenizer(cfg).state_dict()
    state = from_hf_state(read_hf_tensors(folder), cfg, reference)
    fill_constant_buffers(state, reference)
    return cfg, state, gp


# -- writing ------------------------------------------------------------------------------------
def to_hf_state(state: dict[str, torch.Tensor], weight_norm: str) -> dict[str, torch.Tensor]:
    """Original names -> the folder's names, weight norm stored as ``weight_norm`` says."""
    if weight_norm not in WEIGHT_NORMS:
        raise CheckpointError(
            f"unknown weight-norm layout {weight_norm!r}; choose one of {', '.join(WEIGHT_NORMS)}"
        )
    out: dict[str, torch.Tensor] = {}
    for original, tensor in state.items():
        name = _FC.sub(r"\1mlp.\2", original)
        if name.startswith("vocos."):
            name = HF_VOCODER + name[len("vocos") :]
        if name.endswith((_G, _V)) and weight_norm != "gv":
            base = name[: -len(_G)]  # _G and _V have the same length
            if weight_norm == "parametrizations":
                out[base + (_P0 if name.endswith(_G) else _P1)] = tensor.contiguous()
            elif name.endswith(_G):
                v = state[original[: -len(_G)] + _V]
                out[base + ".weight"] = torch._weight_norm(v, tensor, 0).contiguous()
            continue
        out[name] = tensor.contiguous()
    return out


def hf_config(cfg: XYConfig, generator_params: dict[str, Any], weight_norm: str) -> dict:
    """The ``config.json`` of a model: rates, code_dim, ``params`` = the YAML's sub-dicts."""
    params = {k: v for k, v in generator_params.items() if isinstance(v, dict)}
    return {
        "model_type": MODEL_TYPE,
        "input_sample_rate": cfg.input_sample_rate,
        "input_sampling_rate": cfg.input_sample_rate,
        "output_sample_rate": cfg.output_sample_rate,
        "encoder_downsample_rate": SAMPLES_PER_CODE_IN,
        "decoder_upsample_rate": cfg.samples_per_code_out,
        "code_dim": cfg.quantizer.input_dim,
        "nq": cfg.num_quantizers,
        "params": params,
        "torch_dtype": "float32",
        "xyrt": {"writer": WRITER, "variant": cfg.variant, "weight_norm": weight_norm},
    }


def yaml_config(cfg: XYConfig, generator_params: dict[str, Any]) -> dict[str, Any]:
    """The original YAML layout of a model: standalone (``sample_rate``) or MOSS-TTSD (rates in
    ``generator_params``), by ``cfg.variant``."""
    params = {k: v for k, v in generator_params.items() if isinstance(v, dict)}
    if cfg.variant == "standalone":
        rate = cfg.input_sample_rate
        return {"sample_rate": rate, "generator_params": {"sample_rate": rate, **params}}
    rates = {
        "input_sample_rate": cfg.input_sample_rate,
        "output_sample_rate": cfg.output_sample_rate,
    }
    gp = {
        **rates,
        "encoder_downsample_rate": SAMPLES_PER_CODE_IN,
        "decoder_upsample_rate": cfg.samples_per_code_out,
        **params,
    }
    return {**rates, "generator_params": gp}


def write_hf(
    folder: str | Path,
    cfg: XYConfig,
    state: dict[str, torch.Tensor],
    generator_params: dict[str, Any],
    weight_norm: str = "parametrizations",
) -> Path:
    """Write ``folder/model.safetensors`` then ``folder/config.json`` (an old config.json that
    xyrt wrote goes first, so the folder never pairs one model's config with another's
    weights). The caller checks that nothing it would replace was written by someone else."""
    st = require("safetensors.torch", "export", "writing model.safetensors")
    folder = Path(folder)
    tensors = to_hf_state(state, weight_norm)
    config = json.dumps(hf_config(cfg, generator_params, weight_norm), indent=2) + "\n"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"cannot write {folder}: {exc}") from exc
    (folder / CONFIG).unlink(missing_ok=True)
    with atomic_write(folder / SAFETENSORS, CheckpointError) as tmp:
        st.save_file(tensors, str(tmp), metadata={"format": "pt", "writer": WRITER})
    with atomic_write(folder / CONFIG, ConfigError) as tmp:
        tmp.write_text(config)
    return folder
