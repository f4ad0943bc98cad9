"""Audio I/O without torch: read any soundfile format as 16 kHz mono float32, write float WAV."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from xyrt.atomic import atomic_write
from xyrt.config import INPUT_SAMPLE_RATE
from xyrt.errors import AudioError, require

MAX_SECONDS = 4 * 3600  # longest audio accepted (4 hours)
MAX_CHANNELS = 64  # more "channels" than this is almost surely a (channels, n) array
_INT_SCALE = {np.dtype(np.int8): 2.0**7, np.dtype(np.int16): 2.0**15, np.dtype(np.int32): 2.0**31}
_SUPPORTED = "float32, float64, int16, int32, int8 or uint8"


def _rate(value: object, name: str) -> int:
    """A positive integer sample rate in Hz (integral floats accepted)."""
    ok = isinstance(value, (int, np.integer, float, np.floating)) and not isinstance(value, bool)
    if not ok or not np.isfinite(value) or value <= 0 or float(value) != int(value):
        raise AudioError(f"{name} must be a positive integer number of Hz, got {value!r}")
    return int(value)


def _to_float(samples: np.ndarray, what: str) -> np.ndarray:
    """Samples as float32/float64, integer PCM scaled to [-1, 1)."""
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
    sample_rate = _rate(sample_rate, "sample_rate")
    target_rate = _rate(target_rate, "target_rate")
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
    x = _to_float(samples, what)
    if not np.isfinite(x).all():
        bad = int(np.size(x) - np.isfinite(x).sum())
        raise AudioError(f"{what} contains {bad} NaN or Inf samples; expected finite values")
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
    return np.ascontiguousarray(x, dtype=np.float32)


def load_audio(path: str | os.PathLike, target_rate: int = INPUT_SAMPLE_RATE) -> np.ndarray:
    """Mono float32 samples at ``target_rate`` Hz, shape (n,), read from any soundfile format."""
    sf = require("soundfile", "audio", "reading audio files")
    path = Path(path)
    if not path.exists():
        raise AudioError(f"audio file not found: {path}")
    if not path.is_file():
        raise AudioError(f"audio path is not a file: {path}")
    target_rate = _rate(target_rate, "target_rate")
    try:
        with sf.SoundFile(path) as f:
            rate = f.samplerate
            if f.frames > MAX_SECONDS * rate:
                raise AudioError(
                    f"{path} is {f.frames / rate / 3600:.2f} hours long; at most "
                    f"{MAX_SECONDS // 3600} hours are accepted: split it"
                )
            data = f.read(dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, TypeError) as exc:
        raise AudioError(f"cannot read audio file {path}: {exc}") from exc
    return prepare_audio(data, rate, target_rate, what=f"audio file {path}")


def write_wav(path: str | os.PathLike, samples: np.ndarray, sample_rate: int) -> Path:
    """Write (n,) or (n, channels) float audio as a float32 WAV atomically; returns the path."""
    sf = require("soundfile", "audio", "writing audio files")
    sample_rate = _rate(sample_rate, "sample_rate")
    x = np.asarray(samples)
    if x.ndim not in (1, 2) or x.size == 0:
        raise AudioError(
            f"cannot write audio of shape {x.shape}; expected non-empty (n_samples,) or "
            "(n_samples, channels)"
        )
    x = _to_float(x, "audio to write")
    if not np.isfinite(x).all():
        raise AudioError("cannot write audio with NaN or Inf samples; expected finite values")
    path = Path(path)
    with atomic_write(path, AudioError) as tmp:
        try:
            sf.write(tmp, x.astype(np.float32), sample_rate, subtype="FLOAT", format="WAV")
        except (sf.SoundFileError, RuntimeError) as exc:
            raise AudioError(f"cannot write {path}: {exc}") from exc
    return path


def speech_clip(seconds: float, target_rate: int = INPUT_SAMPLE_RATE) -> np.ndarray:
    """The bundled speech concatenated, repeated and cut to ``seconds`` (float32, mono)."""
    speech = np.concatenate([load_audio(p, target_rate) for p in bundled_speech().values()])
    return np.resize(speech, int(round(seconds * target_rate))).astype(np.float32)


def heldout_speech() -> dict[str, np.ndarray]:
    """Bundled espeak-ng sentences that no calibration set contains (16 kHz float32 mono)."""
    import xyrt

    folder = Path(xyrt.__file__).parent / "data"
    paths = sorted(folder.glob("heldout_*.flac"))
    if not paths:
        raise AudioError(f"bundled held-out speech is missing from {folder} (broken install?)")
    return {p.stem: load_audio(p) for p in paths}


def bundled_speech() -> dict[str, Path]:
    """Paths of the bundled speech clips speech_0 .. speech_5 (mp3, 16 kHz mono), by name."""
    import xyrt

    folder = Path(xyrt.__file__).parent / "data"
    clips = {f"speech_{i}": folder / f"speech_{i}.mp3" for i in range(6)}
    missing = [str(p) for p in clips.values() if not p.is_file()]
    if missing:
        raise AudioError(f"bundled speech clips are missing (broken install?): {missing}")
    return clips
