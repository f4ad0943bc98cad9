"""Code files: (num_quantizers, T) int64 arrays stored as .npy, validated on load and save."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO

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
    if arr.dtype == object:  # Python ints too large for int64 (JSON's 2**70): out of range
        flat = arr.ravel()
        if flat.size and all(type(v) is int for v in flat):
            lo, hi = min(flat), max(flat)
            raise CodesError(
                f"code values range over [{lo}, {hi}]; expected values in [0, {codebook_size}) "
                f"(codebook size {codebook_size})"
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
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below, after reading
    except OSError as exc:
        raise CodesError(f"cannot read codes from {path}: {exc.strerror or exc}") from exc
    with f:
        return read_codes(f, str(path), num_quantizers, codebook_size)


def read_codes(
    source: bytes | BinaryIO,
    what: str = "codes",
    num_quantizers: int = NUM_QUANTIZERS,
    codebook_size: int = CODEBOOK_SIZE,
) -> np.ndarray:
    """`load_codes` of a .npy file's bytes or of a seekable binary file object, with the same
    checks and messages (``what`` names it: a path, "the request body")."""
    f = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    expected = "a .npy file written by xyrt encode (numpy.save of an integer array)"
    _check_npy_header(f, what, num_quantizers, expected)
    f.seek(0)
    try:
        data = np.load(f, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise CodesError(f"cannot read codes from {what}: {exc}; expected {expected}") from exc
    try:
        return validate_codes(data, num_quantizers, codebook_size)
    except CodesError as exc:
        raise CodesError(f"{what}: {exc}") from exc


def _check_npy_header(f: BinaryIO, what: str, num_quantizers: int, expected: str) -> None:
    """Read only the .npy header and check dtype, shape and size against the data that follows
    before any array is allocated (a damaged header may claim terabytes)."""
    fmt = np.lib.format
    try:
        if f.read(4) == b"PK\x03\x04":
            raise CodesError(
                f"{what} is an .npz archive; expected a single .npy array of shape "
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
        header_end = f.tell()
        data_bytes = f.seek(0, io.SEEK_END) - header_end
    except CodesError:
        raise
    except Exception as exc:  # noqa: BLE001 - numpy's header parser raises many kinds
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise CodesError(
            f"cannot read codes from {what}: {type(exc).__name__}: {reason}; expected {expected}"
        ) from exc
    if dtype.hasobject:
        raise CodesError(
            f"cannot read codes from {what}: it holds Python objects (a pickle), which xyrt never "
            f"loads (allow_pickle=False); expected {expected}"
        )
    if len(shape) != 2 or shape[0] != num_quantizers:
        raise CodesError(
            f"{what}: codes have shape {shape}; expected ({num_quantizers}, T): one row per "
            "quantizer, one column per 80 ms frame"
        )
    if dtype.kind not in "iuf":  # float arrays are read to say whether they hold NaN
        raise CodesError(f"{what}: codes have dtype {dtype}; expected an integer dtype (int64)")
    need = shape[0] * shape[1] * dtype.itemsize
    if need > data_bytes:
        raise CodesError(
            f"cannot read codes from {what}: the header says shape {shape} ({need} bytes) but "
            f"it holds {data_bytes} bytes of data: it is truncated or damaged"
        )
