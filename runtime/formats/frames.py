"""The code-frame wire format, written and read here only.

A frame is one JSON object ``{"index": i, "time": seconds, "codes": [8 ints]}``: `xyrt stream`
writes one a line (JSON lines, ``xyrt decode --stream`` reads them back), ``xyrt serve`` sends
one a WebSocket text message and reads one or more lines a message, and `xyrt.client.Client`
does the same from the other side. Indices run 0, 1, 2... with none missing; ``time`` is the
frame's start (index x 0.08 s) and may be left out when read.

- `frame_json` / `frame_line`: a `CodeFrame` as the object / its JSON text.
- `parse_frame`: one frame (JSON text or already parsed) checked -> a `CodeFrame`, or a
  `CodesError` naming where it came from, what it received and what a frame is.
- `read_frames`: the codes of each line of a text stream, in order, as the lines arrive.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from typing import IO

import numpy as np

from xyrt.config import FRAME_SECONDS
from xyrt.errors import CodesError, received
from xyrt.runtime.streams.encode_stream import CodeFrame

EXPECTED = 'JSON like {"index": 0, "time": 0.0, "codes": [8 ints]} as xyrt stream writes'


def frame_json(frame: CodeFrame) -> dict:
    """``frame`` as the JSON object of the wire format."""
    codes = np.asarray(frame.codes).tolist()
    return {"index": int(frame.index), "time": round(float(frame.time), 3), "codes": codes}


def frame_line(frame: CodeFrame) -> str:
    """``frame`` as one line of JSON text (no newline)."""
    return json.dumps(frame_json(frame))


def codes_frames(codes: np.ndarray, first: int = 0) -> Iterator[CodeFrame]:
    """The columns of ``codes`` (num_quantizers, n) as frames numbered from ``first``."""
    block = np.asarray(codes)
    block = block.reshape(len(block), -1)
    for k in range(block.shape[1]):
        index = first + k
        yield CodeFrame(index, index * FRAME_SECONDS, block[:, k])


def parse_frame(
    frame: str | object, where: str, expected: int, num_quantizers: int | None = 8
) -> CodeFrame:
    """One frame (JSON text, or the object it parses to) -> a `CodeFrame` with int64 codes;
    `CodesError` naming ``where`` ("line 3", "message 3") unless it is an object with index
    ``expected``, a number ``time`` (or none) and ``num_quantizers`` integer codes (None: any
    number, at least one)."""
    text = frame if isinstance(frame, str) else json.dumps(frame, default=repr)
    try:
        obj = json.loads(frame) if isinstance(frame, str) else frame
        codes, index = obj["codes"], obj["index"]
        time = obj.get("time", None)
    except (json.JSONDecodeError, TypeError, KeyError, AttributeError) as exc:
        raise CodesError(
            f"{where}: {text.strip()[:80]!r} is not a code frame ({exc}); expected {EXPECTED}"
        ) from exc
    if isinstance(index, bool) or index != expected:
        raise CodesError(
            f"{where}: frame index {received(index)}, expected {expected}: frames are missing "
            "or out of order"
        )
    if time is None:
        time = expected * FRAME_SECONDS
    elif isinstance(time, bool) or not isinstance(time, (int, float)) or not math.isfinite(time):
        raise CodesError(f"{where}: time {received(time)}; expected the frame's start in seconds")
    count = "integers" if num_quantizers is None else f"{num_quantizers} integers"
    try:
        arr = np.asarray(codes)
    except (TypeError, ValueError):  # a ragged list
        arr = np.zeros(0)
    if arr.dtype.kind == "f" and np.isnan(arr).any():  # JSON NaN
        raise CodesError(f"{where}: codes contain NaN; expected a list of {count}")
    shape_ok = arr.ndim == 1 and len(arr) > 0 and len(arr) == (num_quantizers or len(arr))
    if not shape_ok or arr.dtype.kind not in "iu":
        raise CodesError(f"{where}: codes {received(codes)}; expected a list of {count}")
    return CodeFrame(expected, float(time), arr.astype(np.int64))


def _text(source: Iterator[str]) -> Iterator[str]:
    """``source``'s lines; `CodesError` when they are not text (a binary file, such as the
    .npy codes `xyrt encode` writes)."""
    number = 0
    while True:
        number += 1
        try:
            yield next(source)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            raise CodesError(
                f"line {number} is not UTF-8 text ({exc.reason} at byte {exc.start}): expected "
                "the JSON lines of xyrt stream; a .npy of codes is decoded without --stream"
            ) from None


def read_frames(lines: IO[str] | Iterable[str], num_quantizers: int = 8) -> Iterator[np.ndarray]:
    """Each JSON line's codes as an int64 array (num_quantizers,), in order, as lines arrive."""
    source = iter(lines.readline, "") if hasattr(lines, "readline") else iter(lines)
    expected = 0
    for number, line in enumerate(_text(source), 1):
        if not line.strip():
            continue
        yield parse_frame(line, f"line {number}", expected, num_quantizers).codes
        expected += 1
