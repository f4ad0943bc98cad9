"""The code-frame wire format (`xyrt.runtime.formats.frames`): what is written reads back the same,
through the file sink, the server's messages and the client; a malformed frame is an
`XyrtError` naming what was received and what a frame is."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from xyrt.client import Client
from xyrt.errors import CodesError, XyrtError
from xyrt.runtime.formats.frames import (
    codes_frames,
    frame_json,
    frame_line,
    parse_frame,
    read_frames,
)
from xyrt.runtime.realtime.encode_loop import JsonlSink
from xyrt.runtime.streams.encode_stream import CodeFrame

CODES = np.arange(8 * 5, dtype=np.int64).reshape(8, 5) * 97 % 4096


def test_frames_round_trip_through_the_line_the_sink_and_the_reader() -> None:
    frames = list(codes_frames(CODES))
    assert [(f.index, f.time) for f in frames] == [(k, k * 0.08) for k in range(5)]
    for f in frames:
        back = parse_frame(frame_line(f), "line", f.index)
        assert back.index == f.index and back.time == round(f.time, 3)
        assert back.codes.dtype == np.int64 and np.array_equal(back.codes, f.codes)
        assert parse_frame(frame_json(f), "message", f.index).codes.tolist() == f.codes.tolist()
    out = io.StringIO()
    sink = JsonlSink(out)
    for f in frames:
        sink.write(f)
    assert out.getvalue().count("\n") == 5
    assert np.array_equal(np.stack(list(read_frames(io.StringIO(out.getvalue()))), 1), CODES)


def test_a_frame_without_time_starts_at_its_index() -> None:
    frame = parse_frame('{"index": 3, "codes": [1, 2, 3, 4, 5, 6, 7, 8]}', "line 4", 3)
    assert frame.time == pytest.approx(0.24)


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        ("[1, 2]", r"line 1: '\[1, 2\]' is not a code frame .*expected JSON like \{\"index\""),
        ('{"index": 0}', r"'\{\"index\": 0\}' is not a code frame \('codes'\)"),
        ('{"index": 1, "codes": [0]}', "frame index 1, expected 0: frames are missing"),
        ('{"index": true, "codes": [0]}', "frame index True, expected 0"),
        ('{"index": 0, "time": "0", "codes": [0]}', "time '0'; expected the frame's start in s"),
        ('{"index": 0, "codes": [1, 2]}', r"codes \[1, 2\]; expected a list of 8 integers"),
        ('{"index": 0, "codes": [0.5, 1, 2, 3, 4, 5, 6, 7]}', "expected a list of 8 integers"),
    ],
)
def test_a_malformed_frame_names_what_was_received(frame: str, match: str) -> None:
    with pytest.raises(CodesError, match=match):
        parse_frame(frame, "line 1", 0)


def _client_answering(monkeypatch, messages: list) -> Client:
    """A client whose stream sockets deliver ``messages`` (parsed, as `Client._message` gives
    them) whatever is sent."""
    client = Client("http://127.0.0.1:9")

    def run(kind, params, sent):
        list(sent)
        yield from messages

    monkeypatch.setattr(client, "_run", run)
    return client


def test_the_client_reads_the_frames_the_server_writes(monkeypatch) -> None:
    sent = [frame_json(f) for f in codes_frames(CODES)]
    client = _client_answering(monkeypatch, [*sent, {"type": "done", "frames": 5}])
    got = list(client.stream_encode([np.zeros(1600, np.float32)], 16000))
    assert all(isinstance(f, CodeFrame) for f in got)
    assert np.array_equal(np.stack([f.codes for f in got], 1), CODES)


@pytest.mark.parametrize(
    ("message", "match"),
    [
        ({"index": 0, "time": 0.0}, r"message 0: .* is not a code frame .*expected JSON like"),
        ({"index": 4, "codes": [1] * 8}, "message 0: frame index 4, expected 0"),
        ({"index": 0, "codes": "abc"}, "message 0: codes 'abc'; expected a list of integers"),
        ([1, 2, 3], r"message 0: '\[1, 2, 3\]' is not a code frame"),
        (b"\x00" * 12, "message 0: a binary message of 12 bytes; expected JSON like"),
    ],
)
def test_a_malformed_frame_from_the_server_is_an_xyrt_error(monkeypatch, message, match) -> None:
    client = _client_answering(monkeypatch, [message])
    with pytest.raises(XyrtError, match=match):
        list(client.stream_encode([np.zeros(1600, np.float32)], 16000))


def test_frames_of_another_width_than_the_first_are_refused(monkeypatch) -> None:
    frames = [{"index": 0, "codes": [1] * 8}, {"index": 1, "codes": [1] * 7}]
    client = _client_answering(monkeypatch, frames)
    with pytest.raises(XyrtError, match=r"message 1: codes \[1, 1, 1, 1, 1, 1, 1\]; expected a "):
        list(client.stream_encode([np.zeros(1600, np.float32)], 16000))


def test_the_client_sends_frames_the_server_reads(monkeypatch) -> None:
    client = Client("http://127.0.0.1:9")
    messages: list[str] = []

    def run(kind, params, sent):
        messages.extend(sent)
        yield np.zeros(4, "<f4").tobytes()

    monkeypatch.setattr(client, "_run", run)
    pieces = list(client.stream_decode([CODES[:, :2], CODES[:, 2]]))
    assert len(pieces) == 1 and pieces[0].shape == (4,)
    lines = "\n".join(messages).splitlines()
    assert np.array_equal(np.stack(list(read_frames(lines)), 1), CODES[:, :3])
    assert [json.loads(line)["time"] for line in lines] == [0.0, 0.08, 0.16]


@pytest.mark.parametrize(
    ("message", "match"), [(b"\x00" * 6, "sent 6 bytes; expected float32"), ([1], r"sent \[1\]")]
)
def test_a_decode_stream_message_that_is_not_audio_is_an_xyrt_error(monkeypatch, message, match):
    client = _client_answering(monkeypatch, [message])
    with pytest.raises(XyrtError, match=match):
        list(client.stream_decode([CODES]))
