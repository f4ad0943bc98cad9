"""Audio I/O without torch: read any soundfile format as 16 kHz mono float32, write float WAV."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO

import numpy as np

from xyrt.atomic import atomic_write
from xyrt.config import INPUT_SAMPLE_RATE
from xyrt.errors import AudioError, received, require

MAX_SECONDS = 4 * 3600  # longest audio accepted (4 hours)
MAX_CHANNELS = 64  # more "channels" than this is almost surely a (channels, n) array
# Largest |sample| accepted: full scale is 1.0; integer PCM passed as floats (up to 2^31 for
# int32) is still accepted. Beyond this the log-mel power overflows float32 (all-zero codes).
MAX_AMPLITUDE = 2.0**31
# Sample rates accepted, Hz: telephone-band 1 kHz (a lower "rate" is a mistake, not audio) up to
# 768 kHz, the highest rate audio interfaces offer. Outside this a rate is a unit slip (kHz for Hz,
# samples for seconds) that would resample into nothing, or into gigabytes.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1_000, 768_000
_INT_SCALE = {np.dtype(np.int8): 2.0**7, np.dtype(np.int16): 2.0**15, np.dtype(np.int32): 2.0**31}
_SUPPORTED = "float32, float64, int16, int32, int8 or uint8"


def check_rate(value: object, name: str = "sample_rate") -> int:
    """A positive integer sample rate in Hz (integral floats accepted), within
    `MIN_SAMPLE_RATE`..`MAX_SAMPLE_RATE`."""
    ok = isinstance(value, (int, np.integer, float, np.floating)) and not isinstance(value, bool)
    if not ok or not np.isfinite(value) or value <= 0 or float(value) != int(value):
        raise AudioError(f"{name} must be a positive integer number of Hz, got {received(value)}")
    if not MIN_SAMPLE_RATE <= value <= MAX_SAMPLE_RATE:
        raise AudioError(
            f"{name} must be {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz, got {int(value)}: a rate "
            "outside the rates of audio (kHz given for Hz?)"
        )
    return int(value)


def to_float(samples: np.ndarray, what: str = "audio") -> np.ndarray:
    """Samples as float32/float64, integer PCM scaled to [-1, 1) (`AudioError` for other
    dtypes)."""
    dt = samples.dtype
    if dt in (np.float32, np.float64):
        return samples
    if dt == np.float16:
        return samples.astype(np.float32)
    if dt in _INT_SCALE:
        return (samples.astype(np.float64) / _INT_SCALE[dt]).astype(np.float32)
    if dt == np.uint8:
        return ((samples.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    raise AudioError(f"{what} has dtype {dt}; expected audio samples as {_SUPPORTED}")


def prepare_audio(
    samples: np.ndarray,
    sample_rate: int,
    target_rate: int = INPUT_SAMPLE_RATE,
    *,
    what: str = "audio",
) -> np.ndarray:
    """Mono float32 samples at ``target_rate`` Hz, shape (n,), from (n,) or (n, channels) audio."""
    sample_rate = check_rate(sample_rate, "sample_rate")
    target_rate = check_rate(target_rate, "target_rate")
    if not isinstance(samples, np.ndarray):
        try:
            samples = np.asarray(samples)
        except (ValueError, TypeError) as exc:
            raise AudioError(f"{what} is not an array of samples: {exc}") from exc
    if samples.ndim not in (1, 2):
        raise AudioError(
            f"{what} has shape {samples.shape}; expected (n_samples,) or (n_samples, channels)"
        )
    if samples.ndim == 2 and samples.shape[1] > MAX_CHANNELS:
        raise AudioError(
            f"{what} has shape {samples.shape}: {samples.shape[1]} channels; expected "
            f"(n_samples, channels) with at most {MAX_CHANNELS} channels, as soundfile returns. "
            "If this is (channels, n_samples), pass samples.T"
        )
    if samples.size == 0:
        raise AudioError(f"{what} is empty (shape {samples.shape}); expected at least 1 sample")
    seconds = samples.shape[0] / sample_rate
    if seconds > MAX_SECONDS:
        raise AudioError(
            f"{what} is {seconds / 3600:.2f} hours long ({samples.shape[0]} samples at "
            f"{sample_rate} Hz); at most {MAX_SECONDS // 3600} hours are accepted: split it"
        )
    x = to_float(samples, what)
    check_amplitude(x, what)
    if x.ndim == 2:
        x = x[:, 0] if x.shape[1] == 1 else x.mean(axis=1, dtype=np.float64)
    if sample_rate != target_rate:
        soxr = require("soxr", "audio", "resampling audio")
        x = soxr.resample(np.ascontiguousarray(x), sample_rate, target_rate, quality="VHQ")
        if x.size == 0:
            raise AudioError(
                f"{what} has {samples.shape[0]} samples at {sample_rate} Hz: nothing is left "
                f"after resampling to {target_rate} Hz"
            )
    x = np.ascontiguousarray(x, dtype=np.float32)
    return check_amplitude(x, what)  # float32 now: nothing overflowed in the conversion


def check_amplitude(x: np.ndarray, what: str = "audio") -> np.ndarray:
    """``x`` unchanged if every sample is finite with |sample| <= `MAX_AMPLITUDE`."""
    finite = np.isfinite(x)
    if not finite.all():
        bad = int(np.size(x) - finite.sum())
        raise AudioError(
            f"{what} contains {bad} NaN or Inf samples (after conversion to float32); "
            "expected finite values"
        )
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak > MAX_AMPLITUDE:
        raise AudioError(
            f"{what} has peak amplitude {peak:.3g}; expected at most {MAX_AMPLITUDE:.3g} "
            "(full scale is 1.0): scale it to [-1, 1]"
        )
    return x


def load_audio(path: str | os.PathLike, target_rate: int = INPUT_SAMPLE_RATE) -> np.ndarray:
    """Mono float32 samples at ``target_rate`` Hz, shape (n,), read from any soundfile format."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"audio file not found: {path}")
    if not path.is_file():
        raise AudioError(f"audio path is not a file: {path}")
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below, after reading
    except OSError as exc:
        raise AudioError(f"cannot read audio file {path}: {exc.strerror or exc}") from exc
    with f:
        return read_audio(f, f"audio file {path}", target_rate, size_name=str(path))


def read_audio(
    source: bytes | BinaryIO,
    what: str = "audio",
    target_rate: int = INPUT_SAMPLE_RATE,
    *,
    size_name: str | None = None,
) -> np.ndarray:
    """`load_audio` of an audio file's bytes, or of a seekable binary file object: the same
    checks and messages (``what`` names it: "audio file x.wav", "the request body");
    ``size_name`` names it where a message says how long it is (default: ``what``)."""
    sf = require("soundfile", "audio", "reading audio files")
    target_rate = check_rate(target_rate, "target_rate")
    f = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    try:
        head = f.read(64)
        f.seek(0)
    except OSError as exc:
        raise AudioError(f"cannot read {what}: {exc.strerror or exc}") from exc
    if not head:
        raise AudioError(f"{what} is empty (0 bytes)")
    _check_wav_header(head, what)
    try:
        with sf.SoundFile(f) as snd:
            rate = snd.samplerate
            if snd.frames > MAX_SECONDS * rate:
                raise AudioError(
                    f"{size_name or what} is {snd.frames / rate / 3600:.2f} hours long; at most "
                    f"{MAX_SECONDS // 3600} hours are accepted: split it"
                )
            data = snd.read(dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(
            f"cannot read {what}: {_describe(head)} (libsndfile: "
            f"{_libsndfile_reason(exc)}); expected audio soundfile reads (wav, flac, ogg, mp3)"
        ) from exc
    return prepare_audio(data, rate, target_rate, what=what)


_MAGIC = {
    b"RIFF": "WAV",
    b"RIFX": "WAV",
    b"fLaC": "FLAC",
    b"OggS": "Ogg",
    b"ID3": "MP3",
    b"FORM": "AIFF",
}


def _describe(head: bytes) -> str:
    """What the first bytes of a file say it is, for error messages."""
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            return f"it starts like {kind} but its data is corrupt or truncated"
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "it starts like an MP3 frame but its data is corrupt or truncated"
    if head.lstrip()[:1] in (b"{", b"<", b"#") or all(
        32 <= b < 127 or b in b"\r\n\t" for b in head
    ):
        return "it is a text file, not audio"
    return "it is not in an audio format xyrt recognises"


def _libsndfile_reason(exc: Exception) -> str:
    """libsndfile's message, minus its misleading 'does not exist' for unknown formats."""
    text = str(exc)
    if "does not exist" in text or "not a regular file" in text:
        return "unknown or damaged format"
    return text.split(": ", 1)[-1] if text.startswith("Error opening") else text


def _check_wav_header(head: bytes, what: str) -> None:
    """A WAV header whose fmt chunk gives 0 Hz or 0 channels (libsndfile says only "SF_INFO
    struct incomplete")."""
    if not head.startswith(b"RIFF") or head[8:12] != b"WAVE" or head[12:16] != b"fmt ":
        return
    channels = int.from_bytes(head[22:24], "little")
    rate = int.from_bytes(head[24:28], "little")
    if rate == 0 or channels == 0:
        raise AudioError(
            f"{what} has a WAV header saying {rate} Hz and {channels} channel(s); "
            "expected a positive sample rate and channel count: the file is damaged"
        )


def write_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate: int) -> Path:
    """Write (n,) or (n, channels) float audio as a float32 WAV atomically; returns the path."""
    sf = require("soundfile", "audio", "writing audio files")
    sample_rate = check_rate(sample_rate, "sample_rate")
    x = np.asarray(samples)
    if x.ndim not in (1, 2) or x.size == 0:
        raise AudioError(
            f"cannot write audio of shape {x.shape}; expected non-empty (n_samples,) or "
            "(n_samples, channels)"
        )
    x = to_float(x, "audio to write")
    if not np.isfinite(x).all():
        raise AudioError("cannot write audio with NaN or Inf samples; expected finite values")
    path = Path(path)
    with atomic_write(path, AudioError) as tmp:
        try:
            sf.write(tmp, x.astype(np.float32), sample_rate, subtype="FLOAT", format="WAV")
        except (sf.SoundFileError, RuntimeError) as exc:
            raise AudioError(f"cannot write {path}: {exc}") from exc
    return path
