"""Tensors in, tensors out: what every `xyrt.compat` class shares (numpy without torch)."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from xyrt.errors import AudioError, XyrtError


def _is_tensor(x: Any) -> bool:
    torch = sys.modules.get("torch")  # a tensor exists only if torch was imported
    return torch is not None and isinstance(x, torch.Tensor)


def _array(x: Any, what: str) -> np.ndarray:
    """A tensor or array as a numpy array of its own dtype (int16 stays int16, so that
    `prepare_audio` scales it; bool, complex and float codes reach the runtime's checks as
    they are); reduced-precision float tensors become float32 (numpy has no bfloat16)."""
    if _is_tensor(x):
        x = x.detach().to("cpu")
        if x.is_floating_point() and x.element_size() < 4:
            x = x.float()
        x = x.resolve_conj().numpy() if x.is_complex() else x.numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise XyrtError(
            f"{what}: expected a torch tensor or numpy array, got {type(x).__name__}"
        ) from exc


def _waveform(x: Any, what: str, hint: str = "") -> np.ndarray:
    """`_array` of one clip, which must be 1-D (`AudioError` naming ``what`` otherwise)."""
    arr = _array(x, what)
    if arr.ndim != 1:
        raise AudioError(f"{what} has shape {arr.shape}; expected a 1-D waveform (samples,){hint}")
    return arr


def _lengths(x: Any, what: str, batch: int) -> np.ndarray:
    """Valid lengths (B,) as int64: an integer tensor or array with one entry per item."""
    arr = _array(x, what).reshape(-1)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise XyrtError(f"{what} has dtype {arr.dtype}; expected integer lengths (int64)")
    if len(arr) != batch:
        raise XyrtError(f"{what} has {len(arr)} entries for a batch of {batch}; expected one each")
    return arr.astype(np.int64)


class _Like:
    """Puts results in the kind the caller gave: tensors on a device, or numpy arrays."""

    def __init__(self, example: Any, device: Any = None) -> None:
        self.device = None
        if device is not None:
            from xyrt.runtime.backends.pytorch.device import parse_device

            self.device = parse_device(device)
        elif _is_tensor(example):
            self.device = example.device

    def __call__(self, array: np.ndarray) -> Any:
        if self.device is None:
            return array
        import torch

        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)


class Outputs(dict):
    """The published result dicts; a key this backend cannot give raises `XyrtError` saying why
    (``dict.get`` still returns None)."""

    def __init__(self, values: dict[str, Any], unavailable: dict[str, str] | None = None) -> None:
        super().__init__(values)
        self.unavailable = unavailable or {}

    def __missing__(self, key: str) -> Any:
        if key in self.unavailable:
            raise XyrtError(self.unavailable[key])
        raise KeyError(key)


class ModelOutput(Outputs):
    """What transformers' ``ModelOutput`` offers, without importing transformers: key access
    (``out["audio_codes"]``), attribute access (``out.audio_codes``), position access over the
    fields that are set (``out[0]``) and ``to_tuple()``. A field this backend cannot give
    raises `XyrtError` saying why, by key or by attribute."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "unavailable":  # not yet set: copy, pickle
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}") from None

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, slice)):
            return self.to_tuple()[key]
        return super().__getitem__(key)

    def to_tuple(self) -> tuple[Any, ...]:
        """The fields that are set, in order (those this backend cannot give left out)."""
        return tuple(v for v in self.values() if v is not None)
