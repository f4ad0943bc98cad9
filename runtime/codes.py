"""Code files: (num_quantizers, T) int64 arrays stored as .npy, validated on load and save."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from xyrt.atomic import atomic_write
from xyrt.errors import CodesError

NUM_QUANTIZERS = 8
CODEBOOK_SIZE = 1024


def validate_codes(
    codes: np.ndarray, num_quantizers: int = NUM_QUANTIZERS, codebook_size: int = CODEBOOK_SIZE
) -> np.ndarray:
    """Codes as an int64 array of shape (num_quantizers, T), values in [0, codebook_size)."""
    try:
        arr = np.asarray(codes)
    except (ValueError, TypeError) as exc:
        raise CodesError(f"codes are not a rectangular integer array: {exc}") from exc
    expected = f"({num_quantizers}, T)"
    if arr.ndim != 2 or arr.shape[0] != num_quantizers:
        raise CodesError(
            f"codes have shape {arr.shape}; expected {expected}: one row per quantizer, "
            "one column per 80 ms frame"
        )
    if arr.shape[1] == 0:
        raise CodesError(f"codes have shape {arr.shape}: no frames; expected {expected}, T >= 1")
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise CodesError(f"codes have dtype {arr.dtype}; expected an integer dtype (int64)")
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= codebook_size:
        raise CodesError(
            f"code values range over [{lo}, {hi}]; expected values in [0, {codebook_size}) "
            f"(codebook size {codebook_size})"
        )
    return arr.astype(np.int64, copy=False)


def save_codes(
    path: str | os.PathLike,
    codes: np.ndarray,
    num_quantizers: int = NUM_QUANTIZERS,
    codebook_size: int = CODEBOOK_SIZE,
) -> Path:
    """Validate and write codes as an int64 .npy file atomically (exactly at ``path``)."""
    arr = validate_codes(codes, num_quantizers, codebook_size)
    path = Path(path)
    with atomic_write(path, CodesError) as tmp, open(tmp, "wb") as f:
        np.save(f, arr, allow_pickle=False)
    return path


def load_codes(
    path: str | os.PathLike,
    num_quantizers: int = NUM_QUANTIZERS,
    codebook_size: int = CODEBOOK_SIZE,
) -> np.ndarray:
    """Codes read from a .npy file: int64 array of shape (num_quantizers, T)."""
    path = Path(path)
    if not path.is_file():
        what = "is not a file" if path.exists() else "not found"
        raise CodesError(f"codes file {what}: {path}")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise CodesError(
            f"cannot read codes from {path}: {exc}; expected a .npy file written by "
            "xyrt encode (numpy.save of an integer array)"
        ) from exc
    if not isinstance(data, np.ndarray):
        data.close()
        raise CodesError(
            f"{path} is an .npz archive; expected a single .npy array of shape "
            f"({num_quantizers}, T)"
        )
    try:
        return validate_codes(data, num_quantizers, codebook_size)
    except CodesError as exc:
        raise CodesError(f"{path}: {exc}") from exc
