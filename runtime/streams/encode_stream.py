"""Streaming encode: audio arrives in pieces, codes leave as soon as their window is ready.

XY-Tokenizer's attention spans the whole window and its log-mel floor depends on the window's
maximum, so streaming re-encodes a sliding window: each step encodes ``context`` seconds already
emitted + ``hop`` seconds of new frames + ``lookahead`` seconds of right context, and keeps the
``hop`` frames. Latency = hop + lookahead + compute.

Each step stays inside the offline window (`xyrt.runtime.chunking.offline_window`, the published
30 s windows with ``overlap``) whose kept codes it emits: the sliding window never reaches before
that window's start or past its end, its frames get the positions the offline window gives them
(the ``positions`` graph input), and its log-mel floor is taken from the loudest frame heard so
far in the offline window (``mel_reference``, `xyrt.runtime.features.LogMelPeaks`). What can
still differ from offline: attention sees only context + lookahead rather than the whole window,
and the floor cannot know audio not yet heard. With context and lookahead covering the window,
the codes are the offline codes. ``match_offline=False`` gives the earlier behaviour (positions
from 0 in every sliding window, the window's own floor), for comparison.

    stream = codec.create_stream(hop=0.32, context=5.0, lookahead=0.32)
    stream.accept_waveform(48000, samples)          # any rate, any chunk size
    while codec.is_ready(stream):
        codec.encode_stream(stream)
    for frame in stream.pop_codes(): ...            # CodeFrame(index, time, codes (8,))
    stream.input_finished()                          # then drain: the tail is emitted too

Every frame (80 ms, 1280 samples at 16 kHz) is emitted exactly once, in order; the result is
deterministic. Several streams can be encoded together: ``codec.encode_streams([s1, s2])``.

One step of a stream is explicit state: `EncodeStream.plan()` gives an `EncodeStep` (the window's
samples and which of its frames to keep), any backend encodes the window, and
`EncodeStream.complete(step, codes)` emits the kept frames.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from xyrt.checks import finite
from xyrt.config import CHUNK_SECONDS, FRAME_SECONDS, INPUT_SAMPLE_RATE, SAMPLES_PER_CODE_IN
from xyrt.errors import AudioError, XyrtError, require
from xyrt.runtime.backends.base import Backend, limits_of
from xyrt.runtime.chunking import OVERLAP_SECONDS, codes_per_step, offline_window
from xyrt.runtime.features import LogMelPeaks
from xyrt.runtime.formats.audio import check_rate, prepare_audio
from xyrt.runtime.graph_io import LOG_MEL_MIN, pack_windows
from xyrt.runtime.streams.checks import check_offline_plan, check_streams


def _hop_frames(seconds: float) -> int:
    frames = seconds / FRAME_SECONDS
    if abs(frames - round(frames)) > 1e-6 or round(frames) < 1:
        raise XyrtError(f"hop must be a positive multiple of 0.08 s (one code); got {seconds}")
    return int(round(frames))


@dataclass(frozen=True)
class EncodeStreamOptions:
    """Window geometry in seconds: ``hop`` a multiple of 0.08 s; ``context`` is rounded up to
    whole 0.08 s frames (windows start on a frame); ``lookahead`` is any length. At most 30 s
    together."""

    hop: float = 0.32
    context: float = 5.0
    lookahead: float = 0.32
    overlap: float = OVERLAP_SECONDS  # of the offline plan the stream follows (as in codec.encode)
    match_offline: bool = True

    def __post_init__(self) -> None:
        for name in ("hop", "context", "lookahead", "overlap"):
            finite(getattr(self, name), name)
        check_offline_plan(self.overlap, self.match_offline)
        _hop_frames(self.hop)
        codes_per_step(self.overlap)
        if self.context < 0 or self.lookahead < 0:
            raise XyrtError(
                f"context and lookahead must be >= 0 s; got {self.context}, {self.lookahead}"
            )
        total = self.hop_frames * SAMPLES_PER_CODE_IN + self.context_samples
        if total + self.lookahead_samples > CHUNK_SECONDS * INPUT_SAMPLE_RATE:
            window = (total + self.lookahead_samples) / INPUT_SAMPLE_RATE
            raise XyrtError(
                f"hop + context + lookahead make a window of {window:.5g} s (context "
                f"{self.context:g} s taken as {self.context_samples / INPUT_SAMPLE_RATE:g} s, "
                f"whole 0.08 s frames): more than one window holds (at most {CHUNK_SECONDS} s)"
            )

    @property
    def hop_frames(self) -> int:
        return _hop_frames(self.hop)

    @property
    def context_samples(self) -> int:
        """Left context in samples, rounded up to whole frames."""
        return math.ceil(self.context / FRAME_SECONDS - 1e-9) * SAMPLES_PER_CODE_IN

    @property
    def lookahead_samples(self) -> int:
        return math.ceil(self.lookahead * INPUT_SAMPLE_RATE - 1e-6)


class CodeFrame(NamedTuple):
    index: int  # frame number from the start of the stream
    time: float  # start time of the frame in seconds (index x 0.08)
    codes: np.ndarray  # (num_quantizers,) int64


@dataclass(frozen=True)
class EncodeStep:
    """One step of a stream: a window to encode and the frames of it to keep."""

    samples: np.ndarray  # (n,) float32 at 16 kHz: left context + new frames + lookahead
    first: int  # stream index of the first frame kept
    count: int  # frames kept
    offset: int  # position of the first kept frame among the window's codes
    position: int = 0  # the window's first code in its offline 30 s window (graph `positions`)
    mel_reference: float = LOG_MEL_MIN  # the floor's reference maximum (graph `mel_reference`)


class EncodeStream:
    """One audio stream's state: buffered 16 kHz samples, frames emitted, codes not yet popped."""

    def __init__(self, options: EncodeStreamOptions) -> None:
        self.options = options
        self._buffer = np.zeros(0, np.float32)
        self._offset = 0  # absolute sample index of _buffer[0]
        self._received = 0  # 16 kHz samples received so far
        self._emitted = 0  # frames emitted so far
        self._finished = False
        self._rate: int | None = None
        self._resampler = None
        self._pending: list[CodeFrame] = []
        self._peaks = LogMelPeaks()

    @property
    def samples_received(self) -> int:
        """16 kHz samples received (after resampling)."""
        return self._received

    @property
    def frames_emitted(self) -> int:
        return self._emitted

    @property
    def finished(self) -> bool:
        return self._finished

    def accept_waveform(self, sample_rate: int, samples: np.ndarray) -> None:
        """Append audio (mono (n,) or (n, channels), any dtype `prepare_audio` accepts)."""
        if self._finished:
            raise XyrtError("accept_waveform after input_finished(): create a new stream")
        sample_rate = check_rate(sample_rate)
        try:
            shape = None if samples is None else np.shape(samples)
        except ValueError:  # a ragged list
            shape = None
        if shape is None or len(shape) not in (1, 2):
            raise AudioError(
                f"samples must be an array of shape (n,) or (n, channels), got "
                f"{type(samples).__name__} {samples!r:.60}"
            )
        if self._rate is not None and sample_rate != self._rate:
            raise AudioError(
                f"this stream receives {self._rate} Hz audio; got a chunk at {sample_rate} Hz"
            )
        self._rate = sample_rate
        if len(samples) == 0:
            return
        x = prepare_audio(samples, sample_rate, sample_rate)  # checks, mono, float32
        if sample_rate != INPUT_SAMPLE_RATE:
            if self._resampler is None:
                soxr = require("soxr", "audio", "resampling a stream")
                self._resampler = soxr.ResampleStream(
                    sample_rate, INPUT_SAMPLE_RATE, 1, dtype="float32", quality="HQ"
                )
            x = self._resampler.resample_chunk(x, last=False)
        self._append(x)

    def input_finished(self) -> None:
        """No more audio: the remaining whole frames become ready (the tail < 80 ms is dropped)."""
        if self._resampler is not None and not self._finished:
            self._append(self._resampler.resample_chunk(np.zeros(0, np.float32), last=True))
        self._finished = True

    def pop_codes(self) -> list[CodeFrame]:
        """Frames encoded since the last call, in order."""
        out, self._pending = self._pending, []
        return out

    def _append(self, x: np.ndarray) -> None:
        if len(x):
            self._buffer = np.concatenate([self._buffer, x.astype(np.float32, copy=False)])
            self._received += len(x)

    def _total_frames(self) -> int:
        return self._received // SAMPLES_PER_CODE_IN

    def ready(self) -> bool:
        """Whether the next hop (or, once finished, the remaining frames) can be encoded."""
        if self._finished:
            return self._emitted < self._total_frames()
        opts = self.options
        need = (self._emitted + opts.hop_frames) * SAMPLES_PER_CODE_IN + opts.lookahead_samples
        return self._received >= need

    def plan(self) -> EncodeStep:
        """The window of the next step (call when `ready()`); encode its samples, then pass the
        codes to `complete`."""
        opts, spc = self.options, SAMPLES_PER_CODE_IN
        first = self._emitted
        count = min(opts.hop_frames, self._total_frames() - first)
        start = max(0, first * spc - opts.context_samples)
        end = min(self._received, (first + count) * spc + opts.lookahead_samples)
        if not opts.match_offline:
            window = self._buffer[start - self._offset : end - self._offset]
            return EncodeStep(window, first, count, (first * spc - start) // spc)
        plan = offline_window(first, opts.overlap)
        count = min(count, plan.start + plan.keep - first)  # the next window's codes: next step
        start = max(start, plan.start * spc)
        end = min(self._received, (first + count) * spc + opts.lookahead_samples, plan.stop * spc)
        self._peaks.update(self._buffer, self._offset, self._offset + len(self._buffer))
        window = self._buffer[start - self._offset : end - self._offset]
        offset = first - start // spc
        reference = self._peaks.reference(plan.start * spc, end)
        return EncodeStep(window, first, count, offset, start // spc - plan.start, reference)

    def complete(self, step: EncodeStep, codes: np.ndarray) -> None:
        """Emit the kept frames of ``step`` from the window's codes (num_quantizers, frames)."""
        if step.first != self._emitted:
            raise XyrtError(
                f"step starting at frame {step.first} completed out of order; the stream has "
                f"emitted {self._emitted} frames: complete each step once, in order"
            )
        kept = codes[:, step.offset : step.offset + step.count]
        for k in range(step.count):
            index = step.first + k
            self._pending.append(CodeFrame(index, index * FRAME_SECONDS, kept[:, k].copy()))
        self._emitted = step.first + step.count
        keep_from = max(0, self._emitted * SAMPLES_PER_CODE_IN - self.options.context_samples)
        if self.options.match_offline:
            plan = offline_window(self._emitted, self.options.overlap)
            self._peaks.forget(plan.start * SAMPLES_PER_CODE_IN)
            keep_from = min(keep_from, self._peaks.first_sample_needed())
        if keep_from > self._offset:
            self._buffer = self._buffer[keep_from - self._offset :]
            self._offset = keep_from


def check_stream(stream: object) -> EncodeStream:
    """``stream`` if it is an `EncodeStream` (from ``codec.create_stream()``), else `XyrtError`."""
    return check_streams([stream], EncodeStream)[0]


def encode_streams(backend: Backend, streams: Sequence[EncodeStream]) -> int:
    """Encode one step of every ready stream in one batch; returns how many streams stepped."""
    streams = check_streams(streams, EncodeStream)
    ready = [s for s in streams if s.ready()]
    if not ready:
        return 0
    cap = limits_of(backend).max_batch or len(ready)  # a TensorRT profile's or CUDA graph's maximum
    for b in range(0, len(ready), cap):
        group = ready[b : b + cap]
        steps = [s.plan() for s in group]
        wav, lengths = pack_windows([step.samples for step in steps])
        positions = np.array([step.position for step in steps], np.int64)
        reference = np.array([step.mel_reference for step in steps], np.float32)
        codes = backend.encode_window(wav, lengths, positions, reference)
        for row, (stream, step) in enumerate(zip(group, steps, strict=True)):
            stream.complete(step, codes[:, row])
    return len(ready)
