"""Streaming decode: every sample exactly once, in order; offline-exact when the window covers
the utterance; crossfades blend window edges; batched streams; bad input and options refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xyrt.runtime
from helpers import exported, golden
from xyrt.errors import CodesError, XyrtError
from xyrt.runtime.backends.base import Backend, ModelInfo
from xyrt.runtime.codec import ChunkedCodec

SPC = 40  # output samples per code of the fake backends


class ContentAudio(Backend):
    """A fake backend whose audio for a frame depends only on that frame's codes.

    Streaming must then reproduce offline audio whatever the windows and crossfades are, so any
    bookkeeping error (a sample lost, repeated, shifted, or a tail blended at the wrong place)
    shows.
    """

    name = "content"
    info = ModelInfo(8000, SPC)

    def __init__(self) -> None:
        self.calls: list[tuple[int, ...]] = []

    def encode_window(self, wav: np.ndarray, lengths: np.ndarray, *window) -> np.ndarray:
        raise NotImplementedError

    def decode_window(self, codes: np.ndarray, positions=None) -> np.ndarray:
        self.calls.append(codes.shape)
        key = (codes[0] * 3 + codes[7]).astype(np.float32)  # (B, T)
        ramp = np.arange(SPC, dtype=np.float32) / SPC
        audio = np.sin(key[:, :, None] * 0.01 + ramp) * 0.5
        return audio.reshape(codes.shape[1], -1).astype(np.float32)


class WindowStart(ContentAudio):
    """Audio equal, everywhere in a window, to the number of the window's first frame + 1."""

    def decode_window(self, codes: np.ndarray, positions=None) -> np.ndarray:
        return np.repeat(codes[0, :, :1].astype(np.float32) + 1, codes.shape[2] * SPC, axis=1)


def decode_in_pieces(codec, codes: np.ndarray, cuts, **options) -> np.ndarray:
    stream = codec.create_decode_stream(**options)
    out = []
    for piece in np.split(codes, cuts, axis=1):
        stream.accept_codes(piece)
        while codec.is_ready(stream):
            codec.decode_stream(stream)
        out.append(stream.pop_audio())
    stream.input_finished()
    while codec.is_ready(stream):
        codec.decode_stream(stream)
    out.append(stream.pop_audio())
    assert stream.samples_emitted == stream.frames_emitted * codec.info.samples_per_code_out
    return np.concatenate(out)


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(0, 120),
    cuts=st.lists(st.integers(0, 120), max_size=10),
    hop=st.integers(1, 6),
    extra=st.integers(0, 8),
    context=st.integers(0, 30),
    lookahead=st.integers(0, 12),
    fade=st.floats(0, 1),
)
def test_any_chunking_gives_every_sample_once(
    n, cuts, hop, extra, context, lookahead, fade
) -> None:
    codes = np.random.default_rng(n).integers(0, 1024, (8, n))
    codec = ChunkedCodec(ContentAudio())
    crossfade = fade * min(hop, lookahead) * 0.08
    audio = decode_in_pieces(
        codec,
        codes,
        sorted(c for c in cuts if c <= n),
        hop=hop * 0.08,
        max_hop=(hop + extra) * 0.08,
        context=context * 0.05,
        lookahead=max(0.0, lookahead * 0.08 - 0.01),
        crossfade=crossfade,
    )
    assert audio.dtype == np.float32 and len(audio) == n * SPC
    if n:
        offline = ContentAudio().decode_window(codes[:, None])[0]
        np.testing.assert_allclose(audio, offline, rtol=0, atol=1e-6)


def test_fixed_hop_steps_do_not_depend_on_chunking() -> None:
    codec = ChunkedCodec(WindowStart())
    codes = np.tile(np.arange(50), (8, 1))
    a = decode_in_pieces(codec, codes, [3, 4, 20], hop=0.32, context=0.4, lookahead=0.16)
    b = decode_in_pieces(codec, codes, list(range(1, 50)), hop=0.32, context=0.4, lookahead=0.16)
    np.testing.assert_array_equal(a, b)


def test_window_edges_are_crossfaded() -> None:
    backend = WindowStart()
    codec = ChunkedCodec(backend)
    codes = np.tile(np.arange(40), (8, 1))  # window starting at frame f plays the value f + 1
    audio = decode_in_pieces(codec, codes, [], hop=0.32, context=0.16, lookahead=0.16)
    # step 2 keeps frames 4..7 from the window starting at frame 2, after the first window
    # (start 0) decoded frames 4..5 as its lookahead: those 2 frames fade from 1 to 3
    fade = audio[4 * SPC : 6 * SPC]
    assert fade[0] == pytest.approx(1, abs=1e-3) and fade[-1] == pytest.approx(3, abs=1e-3)
    assert np.all(np.diff(fade) > 0)
    np.testing.assert_allclose(fade[::-1] + fade, 4, atol=1e-5)  # raised cosine: symmetric
    np.testing.assert_array_equal(audio[6 * SPC : 8 * SPC], 3)
    np.testing.assert_array_equal(audio[: 4 * SPC], 1)
    hard = decode_in_pieces(codec, codes, [], hop=0.32, context=0.16, lookahead=0.16, crossfade=0)
    np.testing.assert_array_equal(hard[4 * SPC : 8 * SPC], 3)


def test_a_stalled_stream_catches_up_with_steps_up_to_max_hop() -> None:
    codec = ChunkedCodec(ContentAudio())
    stream = codec.create_decode_stream(hop=0.08, max_hop=0.4, context=0.16, lookahead=0.08)
    stream.accept_codes(np.zeros((8, 12), np.int64))  # decoding stalled while 12 frames came
    emitted = []
    while codec.is_ready(stream):
        codec.decode_stream(stream)
        emitted.append(stream.frames_emitted)
    assert emitted == [5, 10, 11]  # two long steps, then the one frame whose lookahead is in


def test_finished_stream_drains_in_one_window() -> None:
    backend = ContentAudio()
    codec = ChunkedCodec(backend)
    stream = codec.create_decode_stream(hop=0.08, context=0.4, lookahead=0.16)
    stream.accept_codes(np.zeros((8, 30), np.int64))
    assert codec.is_ready(stream)
    stream.input_finished()
    codec.decode_stream(stream)
    assert not codec.is_ready(stream) and backend.calls == [(8, 1, 30)]
    assert len(stream.pop_audio()) == 30 * SPC and len(stream.pop_audio()) == 0


def test_streams_are_decoded_together_when_their_windows_match() -> None:
    backend = ContentAudio()
    codec = ChunkedCodec(backend)
    rng = np.random.default_rng(0)
    streams = [codec.create_decode_stream(hop=0.16, context=0.16, lookahead=0.08) for _ in "abc"]
    for s, n in zip(streams, (12, 12, 4), strict=True):
        s.accept_codes(rng.integers(0, 1024, (8, n)))
    assert codec.decode_streams(streams) == 3
    # a and b: windows of 3 codes (no context yet) in one batch; c: the same width, batched too
    assert backend.calls == [(8, 3, 3)]
    assert codec.decode_streams(streams) == 2  # c has no hop with lookahead left
    assert backend.calls[-1] == (8, 2, 5)
    assert codec.decode_streams([]) == 0


def test_real_model_whole_utterance_window_equals_offline(golden_name: str) -> None:
    codec = xyrt.runtime.load(exported(golden_name))
    codes = golden(golden_name)["speech_4/codes_ov10"]  # 44 frames, 3.5 s
    offline = codec.decode(codes)
    streamed = decode_in_pieces(codec, codes, [1, 9, 30], hop=0.32, context=4.0, lookahead=4.0)
    assert streamed.shape == offline.shape
    np.testing.assert_allclose(streamed, offline, rtol=0, atol=1e-4 * np.abs(offline).max())
    short = decode_in_pieces(codec, codes, [7], hop=0.32, context=1.0, lookahead=0.16)
    assert short.shape == offline.shape and np.isfinite(short).all()


def test_bad_codes_and_options_are_refused() -> None:
    codec = ChunkedCodec(ContentAudio())
    stream = codec.create_decode_stream()
    stream.accept_codes(np.zeros((8, 0), np.int64))  # nothing: allowed
    for bad, match in [
        (np.zeros((7, 3), np.int64), r"shape \(7, 3\); expected \(8, T\)"),
        (np.zeros(8, np.int64), r"shape \(8,\)"),
        (np.zeros((8, 3), np.float32), "dtype float32"),
        (np.full((8, 3), 1024), r"range over \[1024, 1024\]; expected values in \[0, 1024\)"),
        (np.full((8, 3), -1), r"\[-1, -1\]"),
    ]:
        with pytest.raises(CodesError, match=match):
            stream.accept_codes(bad)
    assert stream.frames_received == 0
    for options, match in [
        (dict(hop=0.1), "hop must be a positive multiple of 0.08 s"),
        (dict(hop=0), "hop must be a positive multiple"),
        (dict(context=float("nan")), "context must be a finite number of seconds >= 0; got nan"),
        (dict(lookahead=float("inf")), "lookahead must be a finite"),
        (dict(context=-1), "context must be a finite number of seconds >= 0"),
        (dict(hop=0.32, max_hop=0.16), r"max_hop must be >= hop \(0.32 s\)"),
        (dict(max_hop=float("nan")), "max_hop must be a finite"),
        (dict(context=25, lookahead=5), "at most 30 s"),
        (dict(lookahead=0.08, crossfade=0.16), "crossfade must be at most the lookahead"),
        (dict(crossfade=float("nan")), "crossfade must be a finite"),
        (dict(context="1"), "context must be a number of seconds; got '1'"),
    ]:
        with pytest.raises(XyrtError, match=match):
            codec.create_decode_stream(**options)
    with pytest.raises(XyrtError, match="no step ready"):
        stream.plan()
    stream.accept_codes(np.zeros((8, 10), np.int64))
    step = stream.plan()
    with pytest.raises(XyrtError, match="decoded window does not match"):
        stream.complete(step, np.zeros(3, np.float32))
    stream.input_finished()
    with pytest.raises(XyrtError, match="after input_finished"):
        stream.accept_codes(np.zeros((8, 1), np.int64))
