"""Streaming decode: codes arrive in pieces (a TTS model emits one frame per 80 ms), audio leaves
as soon as its window is decoded.

The decoder's attention spans its whole window and the vocoder has no padding mask, so, like the
encode stream, the decode stream re-decodes a sliding window: each step decodes ``context``
seconds of codes already played + the new frames + ``lookahead`` seconds of codes after them, and
keeps the audio of the new frames. The audio the window produced for its lookahead frames is kept
too and crossfaded (raised cosine, ``crossfade`` seconds) into the next step's audio for the same
samples, so window edges do not click.

Like the encode stream, each step stays inside the offline decode window (`xyrt.runtime.chunking.
offline_window`, 375 codes every 30 - ``overlap`` seconds) whose kept codes it decodes: its codes
get the positions that window gives them (the decoder's ``positions`` input), the sliding window
never reaches outside it, and where a new offline window begins the audio is cut there as offline
decoding cuts it (no crossfade across it). With context and lookahead covering the offline window,
the output is the offline decode. ``match_offline=False`` gives the earlier behaviour.

    stream = codec.create_decode_stream(hop=0.32, context=2.0, lookahead=0.16)
    stream.accept_codes(codes)                       # (8, n) ints, any n, in order
    while codec.is_ready(stream):
        codec.decode_stream(stream)                  # or codec.decode_streams([s1, s2])
    audio = stream.pop_audio()                       # float32 at codec.output_sample_rate
    stream.input_finished()                           # then drain: the rest is decoded too

A step needs ``hop`` new frames whose lookahead has arrived and takes at most ``max_hop`` of them
(default: ``hop``, so the steps, and the audio, do not depend on how the codes were chunked).
A larger ``max_hop`` lets a stream whose decoding is slower than the code rate catch up with
longer steps. Every sample is emitted exactly once, in order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xyrt.config import CHUNK_SECONDS, CODES_PER_CHUNK, FRAME_SECONDS
from xyrt.errors import CodesError, XyrtError, received
from xyrt.runtime.backends.base import Backend, ModelInfo, limits_of
from xyrt.runtime.chunking import OVERLAP_SECONDS, codes_per_step, offline_window
from xyrt.runtime.formats.codes import validate_codes
from xyrt.runtime.streams.checks import check_offline_plan, check_streams


def _seconds(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise XyrtError(f"{name} must be a number of seconds; got {received(value)}")
    if not math.isfinite(value) or value < 0:
        raise XyrtError(f"{name} must be a finite number of seconds >= 0; got {value}")
    return float(value)


def _frames(name: str, seconds: float, exact: bool) -> int:
    """Seconds as whole 80 ms frames: ``exact`` requires a positive multiple of 0.08 s, otherwise
    the value is rounded up."""
    frames = _seconds(name, seconds) / FRAME_SECONDS
    if not exact:
        return math.ceil(frames - 1e-6)
    if abs(frames - round(frames)) > 1e-6 or round(frames) < 1:
        raise XyrtError(f"{name} must be a positive multiple of 0.08 s (one code); got {seconds}")
    return round(frames)


@dataclass(frozen=True)
class DecodeStreamOptions:
    """Window geometry in seconds. ``hop``, ``max_hop``: multiples of 0.08 s (frames per step);
    ``context``, ``lookahead``: rounded up to whole frames; ``crossfade``: at most the lookahead
    and the hop (default: both). ``max_hop + context + lookahead`` is at most 30 s."""

    hop: float = 0.32
    context: float = 2.0
    lookahead: float = 0.16
    max_hop: float | None = None
    crossfade: float | None = None
    overlap: float = OVERLAP_SECONDS  # of the offline plan the stream follows (as in codec.decode)
    match_offline: bool = True

    def __post_init__(self) -> None:
        _seconds("overlap", self.overlap)
        check_offline_plan(self.overlap, self.match_offline)
        codes_per_step(self.overlap)
        if self.max_hop is not None and self.max_hop_frames < self.hop_frames:
            raise XyrtError(f"max_hop must be >= hop ({self.hop} s); got {self.max_hop} s")
        total = self.max_hop_frames + self.context_frames + self.lookahead_frames
        if total > CODES_PER_CHUNK:
            raise XyrtError(
                f"max_hop + context + lookahead make a window of {total} codes "
                f"({total * FRAME_SECONDS:.5g} s, context and lookahead rounded up to whole 0.08 s "
                f"frames): more than one decoder window holds (at most {CHUNK_SECONDS} s, "
                f"{CODES_PER_CHUNK} codes)"
            )
        if self.crossfade is not None:
            limit = min(self.hop_frames, self.lookahead_frames) * FRAME_SECONDS
            if _seconds("crossfade", self.crossfade) > limit + 1e-9:
                raise XyrtError(
                    f"crossfade must be at most the lookahead and the hop ({limit:g} s here: "
                    f"the overlap exists only where the previous window decoded ahead); got "
                    f"{self.crossfade} s"
                )

    @property
    def hop_frames(self) -> int:
        return _frames("hop", self.hop, exact=True)

    @property
    def max_hop_frames(self) -> int:
        return self.hop_frames if self.max_hop is None else _frames("max_hop", self.max_hop, True)

    @property
    def context_frames(self) -> int:
        return _frames("context", self.context, exact=False)

    @property
    def lookahead_frames(self) -> int:
        return _frames("lookahead", self.lookahead, exact=False)

    def crossfade_samples(self, samples_per_code: int) -> int:
        """Crossfade length in output samples."""
        limit = min(self.hop_frames, self.lookahead_frames) * samples_per_code
        if self.crossfade is None:
            return limit
        return min(limit, round(self.crossfade * samples_per_code / FRAME_SECONDS))


@dataclass(frozen=True)
class DecodeStep:
    """One planned step: decode ``codes`` (8, W), the window starting at frame ``start``, and
    keep the audio of frames ``first .. first + count``."""

    codes: np.ndarray
    start: int
    first: int
    count: int
    position: int = 0  # ``start`` in the offline window (the decoder's ``positions`` input)
    plan_start: int = 0  # that offline window's first code


def _fade_in(n: int) -> np.ndarray:
    """Raised-cosine weights rising from 0 to 1 over ``n`` samples (with 1 - w they sum to 1)."""
    return (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)).astype(np.float32)


class DecodeStream:
    """One code stream's state: buffered codes, frames decoded, audio not yet popped."""

    def __init__(
        self, options: DecodeStreamOptions, info: ModelInfo, prompt: np.ndarray | None = None
    ) -> None:
        """``prompt``: reference codes (num_quantizers, P) the stream starts from, as if they
        had been decoded already: the first steps take their context from them, and no audio
        is given for them (MOSS-TTSD's prompted decode, `xyrt.runtime.prompted`, as a stream).
        Frame and sample counts do not include the prompt."""
        self.options = options
        self.info = info
        self._codes = np.zeros((info.num_quantizers, 0), np.int64)
        if prompt is not None:
            try:
                self._codes = validate_codes(
                    prompt, info.num_quantizers, info.codebook_size, allow_empty=True
                )
            except CodesError as exc:
                raise CodesError(f"prompt: {exc}") from exc
        self._base = self._codes.shape[1]  # prompt frames: decoded as context, never emitted
        self._offset = 0  # absolute frame index of _codes[:, 0]
        self._received = self._base
        self._emitted = self._base
        self._finished = False
        self._tail = np.zeros(0, np.float32)  # last window's audio after its kept frames
        self._tail_plan = 0  # the offline window the tail came from
        self._xfade = options.crossfade_samples(info.samples_per_code_out)
        self._pending: list[np.ndarray] = []
        self._samples_out = 0

    @property
    def sample_rate(self) -> int:
        """Rate (Hz) of the audio `pop_audio` returns."""
        return self.info.output_sample_rate

    @property
    def frames_received(self) -> int:
        """Frames given to `accept_codes` (the prompt's not counted)."""
        return self._received - self._base

    @property
    def frames_emitted(self) -> int:
        """Frames whose audio has been decoded (popped or pending)."""
        return self._emitted - self._base

    @property
    def samples_emitted(self) -> int:
        """Output samples decoded so far: ``frames_emitted x samples per code``."""
        return self._samples_out

    @property
    def finished(self) -> bool:
        return self._finished

    def accept_codes(self, codes: np.ndarray) -> None:
        """Append code frames: an integer array (num_quantizers, n), values in [0, codebook)."""
        if self._finished:
            raise XyrtError("accept_codes after input_finished(): create a new stream")
        info = self.info
        try:
            arr = validate_codes(codes, info.num_quantizers, info.codebook_size, allow_empty=True)
        except CodesError as exc:
            raise CodesError(f"accept_codes: {exc}") from exc
        self._codes = np.concatenate([self._codes, arr], axis=1)
        self._received += arr.shape[1]

    def input_finished(self) -> None:
        """No more codes: the remaining frames become ready (decoded without lookahead)."""
        self._finished = True

    def pop_audio(self) -> np.ndarray:
        """Audio decoded since the last call, (n,) float32 at `sample_rate`, in order."""
        if not self._pending:
            return np.zeros(0, np.float32)
        out = np.concatenate(self._pending)
        self._pending = []
        return out

    def ready(self) -> bool:
        """Whether a step can run: ``hop`` new frames with their lookahead, or, once finished,
        any frame not yet decoded."""
        if self._finished:
            return self._emitted < self._received
        opts = self.options
        return self._received - opts.lookahead_frames - self._emitted >= opts.hop_frames

    def plan(self) -> DecodeStep:
        """The next step's window (call only when `ready()`)."""
        if not self.ready():
            raise XyrtError("this decode stream has no step ready; check is_ready(stream) first")
        opts = self.options
        first = self._emitted
        start = max(0, first - opts.context_frames)
        if self._finished:  # the rest in one window when it fits: no lookahead is coming
            count = min(self._received - first, CODES_PER_CHUNK - (first - start))
        else:
            available = self._received - opts.lookahead_frames - first
            count = min(available, opts.max_hop_frames)
        stop = min(self._received, first + count + opts.lookahead_frames)
        if not opts.match_offline:
            codes = self._codes[:, start - self._offset : stop - self._offset]
            return DecodeStep(codes, start, first, count)
        plan = offline_window(first, opts.overlap)
        start = max(start, plan.start)
        count = min(count, plan.start + plan.keep - first)
        stop = min(self._received, first + count + opts.lookahead_frames, plan.stop)
        codes = self._codes[:, start - self._offset : stop - self._offset]
        return DecodeStep(codes, start, first, count, start - plan.start, plan.start)

    def complete(self, step: DecodeStep, audio: np.ndarray) -> None:
        """Take the decoded window ``audio`` ((W x samples per code,) float32) of ``step``."""
        spc = self.info.samples_per_code_out
        if step.first != self._emitted or len(audio) != step.codes.shape[1] * spc:
            raise XyrtError(
                f"decoded window does not match the stream: step at frame {step.first} with "
                f"{step.codes.shape[1]} codes and {len(audio)} samples; the stream is at frame "
                f"{self._emitted} and expects {step.codes.shape[1] * spc} samples"
            )
        begin = (step.first - step.start) * spc
        end = begin + step.count * spc
        kept = np.array(audio[begin:end], np.float32)
        n = min(len(self._tail), len(kept)) if self._tail_plan == step.plan_start else 0
        if n:
            w = _fade_in(len(self._tail))[:n]
            kept[:n] = self._tail[:n] * (1 - w) + kept[:n] * w
        self._tail = np.array(audio[end : end + self._xfade], np.float32)
        self._tail_plan = step.plan_start
        self._pending.append(kept)
        self._samples_out += len(kept)
        self._emitted = step.first + step.count
        keep_from = max(0, self._emitted - self.options.context_frames)
        if keep_from > self._offset:
            self._codes = self._codes[:, keep_from - self._offset :]
            self._offset = keep_from


def decode_streams(backend: Backend, streams: Sequence[DecodeStream]) -> int:
    """Decode one step of every ready stream; windows of equal length run as one batch (the
    vocoder has no padding mask, so unequal ones run apart). Returns how many streams stepped."""
    steps = [(s, s.plan()) for s in check_streams(streams, DecodeStream) if s.ready()]
    by_width: dict[int, list[tuple[DecodeStream, DecodeStep]]] = {}
    for stream, step in steps:
        by_width.setdefault(step.codes.shape[1], []).append((stream, step))
    cap = limits_of(backend).max_batch or len(steps) or 1  # a TensorRT profile's maximum, say
    for same_width in by_width.values():
        for b in range(0, len(same_width), cap):
            group = same_width[b : b + cap]
            codes = np.stack([step.codes for _, step in group], axis=1)
            positions = np.array([step.position for _, step in group], np.int64)
            audio = backend.decode_window(codes, positions)
            for row, (stream, step) in enumerate(group):
                stream.complete(step, audio[row])
    return len(steps)
