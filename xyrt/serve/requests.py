"""Request parsing and validation for ``xyrt serve``: bodies and stream messages in, arrays out,
every problem an `XyrtError` with the message the CLI prints, mapped to an HTTP status.

Encode bodies (``POST /v1/encode``): an audio file (any format ``xyrt encode`` reads); raw PCM
with ``?rate=HZ`` (``format`` f32 (float32 little-endian, default) or s16, ``channels``
interleaved); or JSON ``{"samples": [...], "rate": HZ}``. Decode bodies (``POST /v1/decode``):
a .npy file as ``xyrt encode`` writes, or JSON ``{"codes": [[...] x 8]}``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

import numpy as np

from xyrt.errors import AudioError, XyrtError, one_line
from xyrt.runtime.codec import check_encodable
from xyrt.runtime.formats.audio import check_rate, prepare_audio, read_audio
from xyrt.runtime.formats.codes import read_codes, validate_codes
from xyrt.serve import params
from xyrt.serve.params import ENCODE_FORMATS, RequestError

__all__ = ["RequestError"]  # declared in `params`, raised by both

BODY = "the request body"
PCM_FORMATS = dict(zip(ENCODE_FORMATS, ("<f4", "<i2"), strict=True))  # little-endian dtypes


class BodyTooLarge(RequestError):
    status = 413


class TooManyStreams(RequestError):
    status = 429


def status_of(exc: BaseException) -> int:
    """HTTP status of a failed request: 4xx for what the client sent (every `XyrtError`),
    500 for anything else (the replica keeps serving)."""
    if isinstance(exc, XyrtError):
        return getattr(exc, "status", 400)
    return 500


def error_json(exc: BaseException) -> dict[str, Any]:
    """The error body: one line, as the CLI prints it."""
    message = str(exc) if isinstance(exc, XyrtError) else f"internal error: {exc!r}"
    return {"error": one_line(message), "status": status_of(exc)}


def too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(
        f"{BODY} is larger than this server's limit of {limit / 2**20:g} MiB "
        "(xyrt serve --max-body-mb); send shorter audio or split it"
    )


async def read_body(chunks: AsyncIterator[bytes], length: str | None, limit: int) -> bytes:
    """The body, refused (`BodyTooLarge`) as soon as its declared or received size passes
    ``limit`` bytes (nothing more is read)."""
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_large(limit)
    parts, size = [], 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        parts.append(chunk)
    return b"".join(parts)


def pcm_samples(data: bytes, fmt: str = "f32", channels: int = 1, what: str = BODY) -> np.ndarray:
    """Raw little-endian PCM -> (n,) or (n, channels) samples (integers are scaled later)."""
    if fmt not in PCM_FORMATS:
        raise AudioError(f"PCM format {fmt!r} is not one of {', '.join(PCM_FORMATS)}")
    if channels < 1:
        raise AudioError(f"channels must be at least 1, got {channels}")
    dtype = np.dtype(PCM_FORMATS[fmt])
    frame = dtype.itemsize * channels
    if len(data) % frame:
        raise AudioError(
            f"{what} holds {len(data)} bytes, not a whole number of {fmt} PCM frames "
            f"({channels} channel(s) x {dtype.itemsize} bytes); expected raw little-endian PCM"
        )
    x = np.frombuffer(data, dtype)
    return x.reshape(-1, channels) if channels > 1 else x


def _json(body: bytes, expected: str) -> Any:
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(f"{BODY} is not JSON ({exc}); expected {expected}") from exc


def is_json(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == "application/json"


def json_samples(samples: object) -> np.ndarray:
    """JSON ``samples`` (a list of numbers, or of rows of numbers for several channels) as
    float64; strings, booleans and ragged rows are refused, not converted."""
    if not isinstance(samples, list):
        raise AudioError(f"'samples' is a {type(samples).__name__}; expected a list of numbers")
    items = np.asarray(samples, dtype=object)  # (n,) or (n, channels) unless ragged
    kinds = set(map(type, items.ravel()))
    wrong = kinds - {int, float}
    if wrong or items.ndim not in (1, 2):
        what = ", ".join(sorted(k.__name__ for k in wrong)) or f"{items.ndim}-D nesting"
        raise AudioError(
            f"'samples' holds {what}; expected a list of numbers (float samples, or rows of one "
            "number per channel)"
        )
    return items.astype(np.float64)


def encode_input(
    body: bytes, content_type: str | None, query: Iterable[tuple[str, str]]
) -> np.ndarray:
    """An encode request's audio as 16 kHz mono float32, long enough for one code; ``query``
    the URL's (name, value) pairs, checked against `params.ENDPOINTS`."""
    endpoint = "POST /v1/encode"
    query = list(query)
    case = "json" if is_json(content_type) else "raw" if any(n == "rate" for n, _ in query) else ""
    q = params.query(endpoint, query, case)
    if case == "json":
        expected = '{"samples": [floats], "rate": HZ}'
        obj = params.json_fields(endpoint, _json(body, expected), expected)
        x = json_samples(obj["samples"])
        rate = check_rate(obj["rate"], "'rate'")
        clip = prepare_audio(x.astype(np.float32), rate, what="'samples'")
    elif case == "raw":
        x = pcm_samples(body, q["format"], q["channels"])
        clip = prepare_audio(x, q["rate"], what=BODY)
    else:
        clip = read_audio(body, BODY)
    return check_encodable(clip)


def decode_input(
    body: bytes, content_type: str | None, num_quantizers: int, codebook_size: int
) -> np.ndarray:
    """A decode request's codes (num_quantizers, T) int64, validated."""
    if is_json(content_type):
        expected = f'{{"codes": [[ints] x {num_quantizers}]}}'
        obj = params.json_fields("POST /v1/decode", _json(body, expected), expected)
        codes = obj["codes"]
        if isinstance(codes, list) and codes and all(row == [] for row in codes):
            codes = np.zeros((len(codes), 0), np.int64)  # no values: no frames (not float64)
        return validate_codes(codes, num_quantizers, codebook_size)
    return read_codes(body, BODY, num_quantizers, codebook_size)


def control(message: dict) -> str:
    """A stream control message's type: "end" (no more input) or "reset" (a new stream)."""
    kind = message.get("type")
    if kind not in ("end", "reset"):
        raise RequestError(
            f"stream message {json.dumps(message)[:80]!r} is not a control message; expected "
            '{"type": "end"} or {"type": "reset"}'
        )
    return kind
