"""Code frames in, audio out: a progressive WAV writer, a queued player, and the loop around
`xyrt.runtime.streams.decode_stream` (``xyrt decode --stream``; the frames it reads are
`xyrt.runtime.formats.frames`').

- `WavWriter`: float32 WAV written as the audio comes (memory stays bounded) to a hidden temporary
  file beside the destination, renamed onto it when the stream ends: the destination only ever
  holds a complete file; an error leaves it untouched.
- `DevicePlayer`: PortAudio output through sounddevice; `play` queues and returns at once, the
  device callback pulls from the queue and counts the gaps where it ran dry.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xyrt.atomic import atomic_write
from xyrt.errors import AudioError, require
from xyrt.runtime.streams.decode_stream import DecodeStream


class WavWriter:
    """A float32 mono WAV written progressively; see the module docstring. Use as a context
    manager: a clean exit (or `close()`) puts the file in place."""

    def __init__(self, path: str | Path, sample_rate: int) -> None:
        self.sf = require("soundfile", "audio", "writing audio files")
        self.path = Path(path)
        self.samples = 0
        self._atomic = atomic_write(self.path, AudioError)
        tmp = self._atomic.__enter__()
        try:
            self._file = self.sf.SoundFile(tmp, "w", sample_rate, 1, subtype="FLOAT", format="WAV")
        except (self.sf.SoundFileError, RuntimeError, OSError) as exc:
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)
            raise AudioError(f"cannot write {self.path}: {exc}") from exc

    def write(self, audio: np.ndarray) -> None:
        if len(audio):
            self._file.write(np.asarray(audio, np.float32))
            self.samples += len(audio)

    def close(self, keep: bool = True) -> None:
        """Finish the file and move it onto the destination (``keep=False``: discard it)."""
        if self._file.closed:
            return
        self._file.close()
        if keep:
            self._atomic.__exit__(None, None, None)
        else:
            err = AudioError("discarded")
            self._atomic.__exit__(AudioError, err, None)

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        self.close(keep=kind is None)


class DevicePlayer:
    """Plays float32 mono audio on a PortAudio output device without blocking the caller."""

    def __init__(
        self, sample_rate: int, device: str | int | None = None, max_buffered: float = 10.0
    ) -> None:
        sd = require("sounddevice", "audio", "audio playback")
        self.rate, self.max_buffered = sample_rate, max_buffered
        self.underruns = 0  # device callbacks that ran dry between two pieces of audio
        self._queue: deque[np.ndarray] = deque()
        self._lock = threading.Lock()
        self._head = 0  # samples of _queue[0] already played
        self._queued = 0
        self._started = self._closing = False
        try:
            self.out = sd.OutputStream(
                samplerate=sample_rate,
                channels=1,
                dtype="float32",
                device=device,
                callback=self._callback,
            )
        except (ValueError, sd.PortAudioError) as exc:
            raise AudioError(f"no usable output device {device!r}: {exc}") from exc
        self.out.start()

    def _callback(self, outdata, frames, time_info, status) -> None:
        out, filled = outdata[:, 0], 0
        with self._lock:
            while filled < frames and self._queue:
                chunk = self._queue[0]
                take = min(frames - filled, len(chunk) - self._head)
                out[filled : filled + take] = chunk[self._head : self._head + take]
                filled, self._head = filled + take, self._head + take
                if self._head == len(chunk):
                    self._queue.popleft()
                    self._head = 0
            self._queued -= filled
        out[filled:] = 0
        if filled < frames and self._started and not self._closing:
            self.underruns += 1
        self._started = self._started or filled > 0

    def play(self, audio: np.ndarray) -> None:
        """Queue ``audio`` ((n,) float32 at the player's rate) after what is queued; waits only
        while more than ``max_buffered`` seconds are queued."""
        while self._queued > self.max_buffered * self.rate:
            time.sleep(0.02)
        chunk = np.array(audio, np.float32).ravel()
        if len(chunk):
            with self._lock:
                self._queue.append(chunk)
                self._queued += len(chunk)

    def close(self) -> None:
        """Play what is queued, then close the device."""
        self._closing = True
        deadline = time.monotonic() + self._queued / self.rate + 2.0
        while self._queued > 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        self.out.stop()
        self.out.close()


@dataclass
class DecodeStats:
    """Numbers of a decode session (seconds)."""

    frames: int = 0
    audio_seconds: float = 0.0
    compute_seconds: float = 0.0
    first_audio: float | None = None  # first frame read -> first audio out

    @property
    def rtf(self) -> float:
        return self.compute_seconds / self.audio_seconds if self.audio_seconds else 0.0

    def line(self) -> str:
        first = "-" if self.first_audio is None else f"{self.first_audio * 1e3:.0f} ms"
        return (
            f"frames {self.frames}  audio {self.audio_seconds:.2f} s  RTF {self.rtf:.3f}  "
            f"first audio {first}"
        )


FrameDecoder = Callable[[Iterable[np.ndarray], Callable[[np.ndarray], None]], DecodeStats]
"""``decode(frames, out)``: code frames ((8,) each) in, each piece of audio to ``out``, the
numbers back (`run_decode` over a local stream; `xyrt.remote` over a server's)."""


def run_decode(
    codec,
    frames: Iterable[np.ndarray],
    stream: DecodeStream,
    out: Callable[[np.ndarray], None],
) -> DecodeStats:
    """Feed code frames ((8,) each) into ``stream``, decode as steps become ready and pass the
    audio to ``out``. The end of ``frames`` or Ctrl-C finishes the stream and decodes every frame
    received."""
    stats = DecodeStats()
    start = None

    def emit() -> None:
        while codec.is_ready(stream):
            t0 = time.perf_counter()
            codec.decode_stream(stream)
            stats.compute_seconds += time.perf_counter() - t0
        audio = stream.pop_audio()
        if len(audio):
            if stats.first_audio is None and start is not None:
                stats.first_audio = time.perf_counter() - start
            out(audio)
            stats.audio_seconds += len(audio) / stream.sample_rate

    try:
        for codes in frames:
            start = time.perf_counter() if start is None else start
            stream.accept_codes(codes[:, None])
            stats.frames += 1
            emit()
    except KeyboardInterrupt:
        pass
    stream.input_finished()
    emit()
    return stats
