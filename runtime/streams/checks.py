"""The one check of what stream calls receive: a list of streams of the right kind."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from xyrt.errors import XyrtError
from xyrt.runtime.chunking import OVERLAP_SECONDS

T = TypeVar("T")

MAKERS = {"EncodeStream": "codec.create_stream()", "DecodeStream": "codec.create_decode_stream()"}


def check_streams(streams: Sequence[object], kind: type[T]) -> list[T]:
    """``streams`` as a list if it is a list or tuple of ``kind`` (`EncodeStream` or
    `DecodeStream`), else `XyrtError` saying what was received and where streams come from."""
    name = kind.__name__
    where = MAKERS.get(name, name)
    if not isinstance(streams, (list, tuple)):
        raise XyrtError(f"expected a list of {name}s (from {where}), got {type(streams).__name__}")
    article = "an" if name[0] in "AEIOU" else "a"
    for i, stream in enumerate(streams):
        if not isinstance(stream, kind):
            got = f"; streams[{i}] is" if len(streams) > 1 else ", got"
            raise XyrtError(f"expected {article} {name} from {where}{got} {type(stream).__name__}")
    return list(streams)


def check_offline_plan(overlap: float, match_offline: object) -> None:
    """``match_offline`` a bool; ``overlap`` (the offline plan a stream follows) given only
    when the stream follows it: with ``match_offline=False`` it would have no effect."""
    if not isinstance(match_offline, bool):
        raise XyrtError(
            f"match_offline must be True or False, got {match_offline!r} "
            f"({type(match_offline).__name__})"
        )
    if not match_offline and overlap != OVERLAP_SECONDS:
        raise XyrtError(
            f"overlap={overlap:g} applies only with match_offline=True (the stream then follows "
            "the offline windows of that overlap); with match_offline=False it would have no "
            "effect"
        )
