"""Audio sources, code sinks and the real-time loop around `xyrt.runtime.streams.encode_stream`.

Sources (the `Source` protocol) yield `Chunk`s stamped with the monotonic time their last sample
was captured, count overruns and can be stopped:
- `MicSource`: PortAudio through sounddevice. The callback only copies into a bounded queue;
  a full queue drops the block and counts an overrun (PortAudio's own overflows are counted too).
- `FileSource`: a file, at real-time pace or as fast as possible.
- `PcmSource`: raw 16-bit little-endian mono PCM from a binary stream (stdin).
Sinks (the `Sink` protocol) take every `CodeFrame`: `JsonlSink`, `LoopbackSink`.
"""

from __future__ import annotations

import queue
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

import numpy as np

from xyrt.checks import finite
from xyrt.config import INPUT_SAMPLE_RATE, SAMPLES_PER_CODE_IN
from xyrt.errors import AudioError, require
from xyrt.runtime.codec import ChunkedCodec
from xyrt.runtime.formats.audio import check_rate
from xyrt.runtime.formats.frames import frame_line
from xyrt.runtime.streams.decode_stream import DecodeStream
from xyrt.runtime.streams.encode_stream import CodeFrame, EncodeStream


@dataclass(frozen=True)
class Chunk:
    samples: np.ndarray  # (n,) float32 mono
    sample_rate: int
    captured: float  # time.monotonic() when the last sample was captured


class Source(Protocol):
    """Where `run_stream` takes audio from."""

    overruns: int  # blocks lost because the consumer fell behind

    def __iter__(self) -> Iterator[Chunk]: ...

    def stop(self) -> None:
        """End the iteration at the next chunk (called on Ctrl-C)."""
        ...


class Sink(Protocol):
    """Where `run_stream` writes every frame, in order."""

    def write(self, frame: CodeFrame) -> None: ...


class FileSource:
    """A file in chunks; ``realtime`` paces them at the file's own rate."""

    def __init__(self, path: str | Path, chunk_seconds: float = 0.02, realtime: bool = False):
        from xyrt.runtime.formats.audio import load_audio

        self.audio = load_audio(path)
        self.rate, self.realtime = INPUT_SAMPLE_RATE, realtime
        self.chunk = int(INPUT_SAMPLE_RATE * chunk_seconds)
        self.overruns = 0

    def __iter__(self) -> Iterator[Chunk]:
        start = time.monotonic()
        for i in range(0, len(self.audio), self.chunk):
            piece = self.audio[i : i + self.chunk]
            due = start + (i + len(piece)) / self.rate
            if self.realtime and due > time.monotonic():
                time.sleep(due - time.monotonic())
            yield Chunk(piece, self.rate, due if self.realtime else time.monotonic())

    def stop(self) -> None:
        """Nothing runs in the background: iteration ends when the caller stops iterating."""


class PcmSource:
    """Raw s16le mono PCM at ``sample_rate`` from a binary stream (default: stdin)."""

    def __init__(
        self,
        stream: IO[bytes] | None = None,
        sample_rate: int = INPUT_SAMPLE_RATE,
        block: int = 320,
    ) -> None:
        self.stream = stream if stream is not None else sys.stdin.buffer
        self.rate, self.block = check_rate(sample_rate, "the PCM sample rate (--rate)"), block
        self.overruns = 0

    def __iter__(self) -> Iterator[Chunk]:
        leftover = b""
        while data := self.stream.read(self.block * 2):
            data = leftover + data
            usable = len(data) - len(data) % 2
            leftover = data[usable:]
            samples = np.frombuffer(data[:usable], "<i2").astype(np.float32) / 32768.0
            if len(samples):
                yield Chunk(samples, self.rate, time.monotonic())

    def stop(self) -> None:
        """Nothing runs in the background: iteration ends when the caller stops iterating."""


class MicSource:
    """A PortAudio input device; ``max_buffered`` seconds may wait before blocks are dropped."""

    def __init__(
        self,
        device: str | int | None = None,
        sample_rate: int | None = None,
        block_seconds: float = 0.02,
        max_buffered: float = 10.0,
        duration: float | None = None,
    ) -> None:
        self.sd = require("sounddevice", "audio", "microphone input")
        try:
            info = self.sd.query_devices(device, "input")
        except (ValueError, self.sd.PortAudioError) as exc:
            raise AudioError(f"no usable input device {device!r}: {exc}") from exc
        self.device, self.name = device, info["name"]
        self.rate = check_rate(
            info["default_samplerate"] if sample_rate is None else sample_rate,
            "the microphone sample rate (--rate)",
        )
        if duration is not None:
            finite(duration, "duration (--duration)", low=0, strict_low=True)
        self.block = max(1, int(self.rate * block_seconds))
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, int(max_buffered / block_seconds)))
        self.overruns = 0  # blocks dropped because the queue was full, plus PortAudio overflows
        self.duration = duration
        self._stop = False

    def _callback(self, indata, frames, time_info, status) -> None:
        if status.input_overflow:
            self.overruns += 1
        try:
            self.queue.put_nowait((indata.mean(axis=1).copy(), time.monotonic()))
        except queue.Full:
            self.overruns += 1

    def stop(self) -> None:
        self._stop = True

    def __iter__(self) -> Iterator[Chunk]:
        with self.sd.InputStream(
            device=self.device,
            samplerate=self.rate,
            channels=1,
            dtype="float32",
            blocksize=self.block,
            callback=self._callback,
        ):
            taken = 0
            while not self._stop:
                try:
                    samples, captured = self.queue.get(timeout=0.5)
                except queue.Empty:
                    continue
                taken += len(samples)
                yield Chunk(samples, self.rate, captured)
                if self.duration is not None and taken >= self.duration * self.rate:
                    break


class JsonlSink:
    """One JSON line per frame (`xyrt.runtime.formats.frames`), flushed per line."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def write(self, frame: CodeFrame) -> None:
        self.out.write(frame_line(frame) + "\n")
        self.out.flush()


class LoopbackSink:
    """Passes frames on to ``inner`` and plays them through a decode stream (left context,
    lookahead and crossfaded window edges: `xyrt.runtime.streams.decode_stream`): hear what the
    tokens carry while they are produced."""

    def __init__(self, codec, inner, player, stream: DecodeStream | None = None) -> None:
        self.codec, self.inner, self.player = codec, inner, player
        self.stream = stream if stream is not None else codec.create_decode_stream()
        self.samples_played = 0

    def write(self, frame: CodeFrame) -> None:
        self.inner.write(frame)
        self.stream.accept_codes(frame.codes[:, None])
        self._play()

    def flush(self) -> None:
        """The codes are complete: decode and play the rest."""
        self.stream.input_finished()
        self._play()

    def _play(self) -> None:
        while self.codec.is_ready(self.stream):
            self.codec.decode_stream(self.stream)
        audio = self.stream.pop_audio()
        if len(audio):
            self.player.play(audio)
            self.samples_played += len(audio)


@dataclass
class StreamStats:
    """Running numbers of a streaming session (latencies in ms, times in s)."""

    frames: int = 0
    audio_seconds: float = 0.0
    compute_seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    overruns: int = 0

    @property
    def rtf(self) -> float:
        return self.compute_seconds / self.audio_seconds if self.audio_seconds else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else 0.0

    def line(self) -> str:
        return (
            f"frames {self.frames}  audio {self.audio_seconds:.1f} s  RTF {self.rtf:.3f}  "
            f"latency p50 {self.percentile(50):.0f} ms p95 {self.percentile(95):.0f} ms  "
            f"overruns {self.overruns}"
        )


def run_stream(
    codec: ChunkedCodec,
    source: Source,
    sink: Sink,
    stream: EncodeStream,
    on_update: Callable[[StreamStats], None] | None = None,
) -> StreamStats:
    """Feed ``source`` into ``stream``, encode as frames become ready, write every frame to
    ``sink``. Ctrl-C (KeyboardInterrupt) or the end of the source finishes the stream and emits
    every complete frame. Latency: capture of a frame's last sample -> its emission.

    A Ctrl-C that arrives while frames are being encoded and written takes effect once they are
    (in the main thread: SIGINT is deferred there), so no frame is popped and then lost, nor
    written and left uncounted; a Ctrl-C while waiting for audio stops at once."""
    stats = StreamStats()
    captured = deque()  # (16 kHz samples received after a chunk, its capture time)
    state = {"emitting": False, "pending": False}

    def emit() -> None:
        state["emitting"] = True
        try:
            while codec.is_ready(stream):
                t0 = time.perf_counter()
                codec.encode_stream(stream)
                stats.compute_seconds += time.perf_counter() - t0
            now = time.monotonic()
            for frame in stream.pop_codes():
                end = (frame.index + 1) * SAMPLES_PER_CODE_IN
                while len(captured) > 1 and captured[1][0] <= end:
                    captured.popleft()
                at = next((t for n, t in captured if n >= end), None)
                if at is not None:
                    stats.latencies_ms.append((now - at) * 1e3)
                sink.write(frame)
                stats.frames += 1
        finally:
            state["emitting"] = False
        if state["pending"]:
            state["pending"] = False
            raise KeyboardInterrupt

    def on_sigint(signum, frame) -> None:
        if state["emitting"]:
            state["pending"] = True
        else:
            raise KeyboardInterrupt

    deferring = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_sigint) if deferring else None
    try:
        for chunk in source:
            stream.accept_waveform(chunk.sample_rate, chunk.samples)
            captured.append((stream.samples_received, chunk.captured))
            stats.audio_seconds = stream.samples_received / INPUT_SAMPLE_RATE
            emit()
            stats.overruns = source.overruns
            if on_update:
                on_update(stats)
    except KeyboardInterrupt:
        source.stop()
    finally:
        if deferring:
            signal.signal(signal.SIGINT, previous)
    stream.input_finished()
    emit()
    stats.overruns = source.overruns
    return stats
