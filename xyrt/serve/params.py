"""The parameters each ``xyrt serve`` endpoint takes, declared once and checked at the edge.

Every query parameter (HTTP and WebSocket) and every JSON field is declared here with its type,
its range and, like the CLI's ``applies_when``, the case it applies in. A request is refused
(`RequestError`, HTTP 400 or a 4400 close) when it names anything undeclared, a declared one in a
case where it would have no effect, a value that is not of its type, or a parameter twice; what
passes is returned parsed, so nothing downstream coerces.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from xyrt.errors import XyrtError, received
from xyrt.runtime.formats.audio import MAX_CHANNELS, check_rate
from xyrt.runtime.streams.decode_stream import DecodeStreamOptions as DECODE
from xyrt.runtime.streams.encode_stream import EncodeStreamOptions as ENCODE

ENCODE_FORMATS = ("f32", "s16")  # raw PCM: float32 or int16, little-endian


class RequestError(XyrtError):
    """A request the server refuses; ``status`` is its HTTP status (4xx)."""

    status = 400


def integer(low: int, high: int) -> Callable[[str, str], int]:
    def parse(text: str, name: str) -> int:
        value = int(text) if text.strip().lstrip("+-").isdigit() else None
        if value is None or not low <= value <= high:
            raise RequestError(f"{name} must be an integer in {low}..{high}, got {text!r}")
        return value

    return parse


def number(text: str, name: str) -> float:
    """A finite number (the stream options then check its range, naming it)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise RequestError(f"{name} must be a finite number of seconds, got {text!r}")
    return value


def choice(*values: str) -> Callable[[str, str], str]:
    def parse(text: str, name: str) -> str:
        if text not in values:
            raise RequestError(f"{name} {text!r} is not one of {', '.join(values)}")
        return text

    return parse


def rate(text: str, name: str) -> int:
    """A sample rate in Hz (`check_rate`: an integer within the rates of audio)."""
    value: object = text
    for kind in (int, float):
        try:
            value = kind(text)
            break
        except ValueError:
            continue
    return check_rate(value, name)


@dataclass(frozen=True)
class Param:
    """One query parameter: its parser (text -> value, `RequestError` naming it), its default,
    and the cases of its endpoint it applies in (None: all), described by ``when``."""

    name: str
    parse: Callable[[str, str], Any]
    default: Any = None
    cases: tuple[str, ...] | None = None
    when: str = ""


RAW = ("raw",)
PCM_ONLY = (
    "to a raw PCM body (?rate=HZ; not to an audio file or a JSON body, whose rate is its own)"
)
ENDPOINTS: dict[str, tuple[Param, ...]] = {
    "GET /v1/health": (),
    "GET /v1/info": (),
    "POST /v1/encode": (
        Param("rate", rate, None, RAW, PCM_ONLY),
        Param("format", choice(*ENCODE_FORMATS), "f32", RAW, PCM_ONLY),
        Param("channels", integer(1, MAX_CHANNELS), 1, RAW, PCM_ONLY),
    ),
    "POST /v1/decode": (Param("format", choice("wav", "pcm"), "wav"),),
    "WS /v1/stream/encode": (
        Param("rate", rate, 16000),
        Param("format", choice(*ENCODE_FORMATS), "f32"),
        Param("hop", number, ENCODE.hop),
        Param("context", number, ENCODE.context),
        Param("lookahead", number, ENCODE.lookahead),
    ),
    "WS /v1/stream/decode": (
        Param("hop", number, DECODE.hop),
        Param("context", number, DECODE.context),
        Param("lookahead", number, DECODE.lookahead),
        Param("max_hop", number),
        Param("crossfade", number),
    ),
}
JSON_FIELDS = {  # the fields of a JSON body, each required
    "POST /v1/encode": ("samples", "rate"),
    "POST /v1/decode": ("codes",),
}


def query(endpoint: str, items: Iterable[tuple[str, str]], case: str = "") -> dict[str, Any]:
    """The parameters of ``endpoint`` from the query's (name, text) pairs, parsed, defaults
    filled in; `RequestError` for an unknown, repeated or inapplicable one (``case``: which case
    of the endpoint this request is) or a bad value."""
    declared = {p.name: p for p in ENDPOINTS[endpoint]}
    given: dict[str, str] = {}
    for name, text in items:
        if name not in declared:
            takes = ", ".join(f"?{n}=" for n in declared) or "no parameters"
            raise RequestError(
                f"unknown parameter ?{name}= ({received(text, 40)}) for {endpoint}: it takes "
                f"{takes}"
            )
        if name in given:
            raise RequestError(f"?{name}= is given twice; give it once")
        given[name] = text
    out = {}
    for name, p in declared.items():
        if name not in given:
            out[name] = p.default
            continue
        if p.cases is not None and case not in p.cases:
            raise RequestError(
                f"?{name}= applies only {p.when} for {endpoint}; it would have no effect here"
            )
        out[name] = p.parse(given[name], name)
    return out


def json_fields(endpoint: str, obj: object, expected: str) -> Mapping[str, Any]:
    """A JSON body as its declared fields; `RequestError` for anything else, naming it."""
    fields = JSON_FIELDS[endpoint]
    if not isinstance(obj, dict):
        raise RequestError(
            f"the request body is JSON {type(obj).__name__}, not an object; expected {expected}"
        )
    unknown = [k for k in obj if k not in fields]
    if unknown:
        raise RequestError(
            f"unknown field {unknown[0]!r} in the JSON body of {endpoint}: it takes "
            f"{', '.join(repr(f) for f in fields)} ({expected})"
        )
    missing = [k for k in fields if k not in obj]
    if missing:
        raise RequestError(
            f"the JSON body of {endpoint} has no {missing[0]!r}; expected {expected}"
        )
    return obj
