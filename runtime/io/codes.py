"""Code files: (num_quantizers, T) int64 arrays stored as .npy, validated on load and save."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from xyrt.atomic import atomic_write
from xyrt.errors import CodesError

NUM_QUANTIZERS = 8
CODEBOOK_SIZE = 1024


def check_code_dtype(arr: np.ndarray) -> np.ndarray:
    """``arr`` unchanged if its dtype is an integer one (bool, float and complex refused; NaN
    codes are named as such, not as a dtype problem)."""
    if arr.dtype.kind in "fc":
        nan = int(np.isnan(arr).sum())
        if nan:
            raise CodesError(
                f"codes contain {nan} NaN value(s) ({arr.dtype} array); expected integer codes "
                "(int64), one per quantizer and frame"
            )
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise CodesError(f"codes have dtype {arr.dtype}; expected an integer dtype (int64)")
    return arr


def validate_codes(
    codes: np.ndarray,
    num_quantizers: int = NUM_QUANTIZERS,
    codebook_size: int = CODEBOOK_SIZE,
    allow_empty: bool = False,
) -> np.ndarray:
    """Codes as an int64 array of shape (num_quantizers, T), values in [0, codebook_size);
    T >= 1 unless ``allow_empty``."""
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
    check_code_dtype(arr)
    if arr.shape[1] == 0:
        if allow_empty:
            return arr.astype(np.int64, copy=False)
        raise CodesError(f"codes have shape {arr.shape}: no frames; expected {expected}, T >= 1")
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
    expected = "a .npy file written by xyrt encode (numpy.save of an integer array)"
    _check_npy_header(path, num_quantizers, expected)
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise CodesError(f"cannot read codes from {path}: {exc}; expected {expected}") from exc
    try:
        return validate_codes(data, num_quantizers, codebook_size)
    except CodesError as exc:
        raise CodesError(f"{path}: {exc}") from exc


def _check_npy_header(path: Path, num_quantizers: int, expected: str) -> None:
    """Read only the .npy header and check dtype, shape and size against the file before any
    array is allocated (a damaged header may claim terabytes)."""
    fmt = np.lib.format
    try:
        with open(path, "rb") as f:
            if f.read(4) == b"PK\x03\x04":
                raise CodesError(
                    f"{path} is an .npz archive; expected a single .npy array of shape "
                    f"({num_quantizers}, T)"
                )
            f.seek(0)
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = fmt.read_array_header_1_0(f, max_header_size=10_000)
            elif version == (2, 0):
                shape, _, dtype = fmt.read_array_header_2_0(f, max_header_size=10_000)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
            data_bytes = path.stat().st_size - f.tell()
    except CodesError:
        raise
    except Exception as exc:  # noqa: BLE001 - numpy's header parser raises many kinds
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise CodesError(
            f"cannot read codes from {path}: {type(exc).__name__}: {reason}; expected {expected}"
        ) from exc
    if dtype.hasobject:
        raise CodesError(
            f"cannot read codes from {path}: it holds Python objects (a pickle), which xyrt never "
            f"loads (allow_pickle=False); expected {expected}"
        )
    if len(shape) != 2 or shape[0] != num_quantizers:
        raise CodesError(
            f"{path}: codes have shape {shape}; expected ({num_quantizers}, T): one row per "
            "quantizer, one column per 80 ms frame"
        )
    if dtype.kind not in "iuf":  # float arrays are read to say whether they hold NaN
        raise CodesError(f"{path}: codes have dtype {dtype}; expected an integer dtype (int64)")
    need = shape[0] * shape[1] * dtype.itemsize
    if need > data_bytes:
        raise CodesError(
            f"cannot read codes from {path}: the header says shape {shape} ({need} bytes) but "
            f"the file holds {data_bytes} bytes of data: it is truncated or damaged"
        )
