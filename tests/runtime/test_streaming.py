"""Streaming encode: every frame exactly once, in order, deterministic; offline-exact when the
window covers the clip; any chunking of the input gives the same result."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xyrt.runtime
from helpers import exported, golden
from xyrt.errors import XyrtError
from xyrt.runtime.backends.base import Backend, ModelInfo
from xyrt.runtime.codec import ChunkedCodec


class ContentCodes(Backend):
    """A fake backend whose code for a frame depends only on that frame's samples.

    With it, streaming must reproduce offline codes exactly whatever the windows are, so any
    bookkeeping error (a frame lost, repeated, shifted or taken from the wrong window) shows.
    """

    name = "content"
    info = ModelInfo(16000, 1280)

    def __init__(self) -> None:
        self.calls = 0

    def encode_window(self, wav: np.ndarray, lengths: np.ndarray, *window) -> np.ndarray:
        self.calls += 1
        frames = wav.reshape(wav.shape[0], -1, 1280)
        base = (np.abs(frames).sum(-1) * 1e4).astype(np.int64) % 1024
        return np.stack([(base + 7 * q) % 1024 for q in range(8)])

    def decode_window(self, codes: np.ndarray, positions=None) -> np.ndarray:
        raise NotImplementedError


def run_stream(codec, samples, chunks, rate=16000, **options):
    stream = codec.create_stream(**options)
    frames = []
    for piece in np.split(samples, chunks):
        stream.accept_waveform(rate, piece)
        while codec.is_ready(stream):
            codec.encode_stream(stream)
        frames += stream.pop_codes()
    stream.input_finished()
    while codec.is_ready(stream):
        codec.encode_stream(stream)
    return frames + stream.pop_codes()


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 40_000),
    cuts=st.lists(st.integers(0, 40_000), max_size=12),
    hop=st.integers(1, 6),
    context=st.integers(0, 30),
    lookahead=st.integers(0, 2000),
)
def test_any_chunking_emits_every_frame_once(n, cuts, hop, context, lookahead) -> None:
    rng = np.random.default_rng(n)
    samples = rng.standard_normal(n).astype(np.float32) * 0.1
    codec = ChunkedCodec(ContentCodes())
    frames = run_stream(
        codec,
        samples,
        sorted(c for c in cuts if c <= n),
        hop=hop * 0.08,
        context=context * 0.05,
        lookahead=lookahead / 1000,
    )
    assert [f.index for f in frames] == list(range(n // 1280))
    assert np.allclose([f.time for f in frames], np.arange(n // 1280) * 0.08)
    if n >= 1280:
        offline = ContentCodes().encode_window(samples[None, : n // 1280 * 1280], None)[:, 0]
        np.testing.assert_array_equal(np.stack([f.codes for f in frames], axis=1), offline)


def test_a_stall_delays_frames_but_loses_none() -> None:
    codec = ChunkedCodec(ContentCodes())
    stream = codec.create_stream(hop=0.16, context=0.8, lookahead=0.16)
    samples = np.random.default_rng(0).standard_normal(64000).astype(np.float32)
    for piece in np.split(samples, 40):  # compute stalls: nothing encoded while audio arrives
        stream.accept_waveform(16000, piece)
    assert stream.pop_codes() == [] and codec.is_ready(stream)
    stream.input_finished()
    steps = 0
    while codec.is_ready(stream):
        codec.encode_stream(stream)
        steps += 1
    frames = stream.pop_codes()
    assert [f.index for f in frames] == list(range(50)) and steps == 25


def test_streams_are_encoded_together_in_one_batch() -> None:
    backend = ContentCodes()
    codec = ChunkedCodec(backend)
    a, b = codec.create_stream(), codec.create_stream(hop=0.16)
    rng = np.random.default_rng(1)
    a.accept_waveform(16000, rng.standard_normal(20000).astype(np.float32))
    b.accept_waveform(16000, rng.standard_normal(9000).astype(np.float32))
    assert codec.encode_streams([a, b]) == 2 and backend.calls == 1


@pytest.mark.parametrize("rate", [8000, 44100])
def test_other_rates_are_resampled_in_the_stream(rate: int) -> None:
    codec = ChunkedCodec(ContentCodes())
    samples = np.sin(np.arange(rate * 2) * 0.05).astype(np.float32)
    frames = run_stream(codec, samples, [rate // 3, rate], rate=rate)
    assert len(frames) in (24, 25)  # 2 s -> 25 frames, +-1 for the resampler's edge


def test_options_and_misuse_are_rejected() -> None:
    codec = ChunkedCodec(ContentCodes())
    with pytest.raises(XyrtError, match="hop must be a positive multiple of 0.08 s"):
        codec.create_stream(hop=0.1)
    with pytest.raises(XyrtError, match="at most 30 s"):
        codec.create_stream(hop=0.32, context=25, lookahead=5)
    stream = codec.create_stream()
    stream.accept_waveform(16000, np.zeros(100, np.float32))
    with pytest.raises(XyrtError, match="got a chunk at 8000 Hz"):
        stream.accept_waveform(8000, np.zeros(100, np.float32))
    with pytest.raises(XyrtError, match="NaN"):
        stream.accept_waveform(16000, np.full(10, np.nan, np.float32))
    stream.input_finished()
    with pytest.raises(XyrtError, match="after input_finished"):
        stream.accept_waveform(16000, np.zeros(100, np.float32))


def test_public_steps_let_a_caller_drive_the_backend() -> None:
    from xyrt.runtime.graph_io import pack_windows

    backend = ContentCodes()
    stream = ChunkedCodec(backend).create_stream(hop=0.16, context=0.4, lookahead=0.1)
    samples = np.random.default_rng(2).standard_normal(30000).astype(np.float32)
    stream.accept_waveform(16000, samples)
    stream.input_finished()
    done = []
    while stream.ready():
        step = stream.plan()
        assert step.first == stream.frames_emitted and 1 <= step.count <= 2
        stream.complete(step, backend.encode_window(*pack_windows([step.samples]))[:, 0])
        done.append(step)
    frames = stream.pop_codes()
    offline = backend.encode_window(samples[None, : 23 * 1280], None)[:, 0]
    assert [f.index for f in frames] == list(range(23)) and len(done) == 12
    np.testing.assert_array_equal(np.stack([f.codes for f in frames], axis=1), offline)
    with pytest.raises(XyrtError, match="out of order"):
        stream.complete(done[0], np.zeros((8, 10), np.int64))


def test_real_model_whole_clip_context_equals_offline_and_is_deterministic() -> None:
    codec = xyrt.runtime.load(exported("tiny_16k"))
    wav = golden("tiny_16k")["speech_4/wav"]  # 3.6 s
    offline = codec.encode(wav)
    whole = run_stream(codec, wav, [5000, 20000], hop=0.32, context=4.0, lookahead=4.0)
    np.testing.assert_array_equal(np.stack([f.codes for f in whole], axis=1), offline)
    a = run_stream(codec, wav, [7000], hop=0.32, context=1.0, lookahead=0.16)
    b = run_stream(codec, wav, [1000, 30000], hop=0.32, context=1.0, lookahead=0.16)
    codes_a = np.stack([f.codes for f in a], axis=1)
    np.testing.assert_array_equal(codes_a, np.stack([f.codes for f in b], axis=1))
    assert codes_a.shape == offline.shape
