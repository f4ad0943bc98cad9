"""Calibration sets: real audio in, 16 kHz mono speech windows out (``xyrt calib``).

Files or folders of any format soundfile reads, at any rate and channel count, are resampled to
16 kHz mono, trimmed of leading/trailing silence (energy below ``trim_db`` relative to the
loudest 25 ms frame), and cut into windows of several lengths, so that quantization sees both
short inputs and full 30 s windows. The selection is seeded; count and total size are capped.
The set is one .npz: the windows concatenated, their offsets and lengths, and the metadata.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from xyrt.atomic import atomic_write
from xyrt.checks import finite
from xyrt.config import CHUNK_SECONDS, INPUT_SAMPLE_RATE, SAMPLES_PER_CODE_IN
from xyrt.errors import AudioError, XyrtError
from xyrt.runtime.formats.audio import check_amplitude

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au", ".opus", ".w64"}
FORMAT = "xyrt-calib/1"
FRAME = 400  # 25 ms energy frames for silence trimming


@dataclass(frozen=True)
class CalibOptions:
    """Window lengths (s), caps and seed; validated on construction."""

    window_seconds: tuple[float, ...] = (1.0, 5.0, 10.0, 30.0)
    max_windows: int = 64
    max_minutes: float = 20.0
    seed: int = 0
    trim_db: float = -40.0

    def __post_init__(self) -> None:
        for value in (*self.window_seconds, self.max_minutes, self.trim_db):
            finite(value, "window lengths, max_minutes and trim_db")
        if not self.window_seconds or any(not 0.08 <= w <= 30 for w in self.window_seconds):
            raise XyrtError(f"window lengths must be in [0.08, 30] s, got {self.window_seconds}")
        if self.max_windows < 1 or self.max_minutes <= 0:
            raise XyrtError(
                f"max_windows must be >= 1 and max_minutes > 0, got {self.max_windows}, "
                f"{self.max_minutes}"
            )
        if self.trim_db >= 0:
            raise XyrtError(f"trim_db must be negative (dB below the peak), got {self.trim_db}")


@dataclass
class CalibSet:
    windows: list[np.ndarray]  # float32 mono at 16 kHz
    sources: list[str]
    options: CalibOptions
    sample_rate: int = INPUT_SAMPLE_RATE
    summary: dict = field(default_factory=dict)


def collect_files(inputs: list[str | Path]) -> list[Path]:
    """Audio files named directly or found (recursively) in folders, sorted; clear errors."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                raise AudioError(
                    f"folder {item} holds no audio files (looked for {sorted(AUDIO_SUFFIXES)})"
                )
            files += found
        elif item.is_file():
            files.append(item)
        else:
            raise AudioError(f"calibration input not found: {item}")
    if not files:
        raise AudioError("no calibration audio given")
    return files


def default_sources() -> list[Path]:
    """The bundled default: six real speech clips and four espeak-ng sentences."""
    import xyrt

    data = Path(xyrt.__file__).parent / "data"
    return sorted(data.glob("speech_*.mp3")) + sorted(data.glob("espeak_*.flac"))


def trim_silence(x: np.ndarray, threshold_db: float = -40.0) -> np.ndarray:
    """``x`` without leading and trailing 25 ms frames quieter than ``threshold_db`` re the
    loudest frame (all of it if it is silent throughout: nothing to calibrate on)."""
    n = len(x) // FRAME
    if n == 0:
        return x[:0]
    energy = (x[: n * FRAME].reshape(n, FRAME).astype(np.float64) ** 2).mean(axis=1)
    if energy.max() <= 0:
        return x[:0]
    loud = np.flatnonzero(10 * np.log10(np.maximum(energy / energy.max(), 1e-20)) > threshold_db)
    return x[loud[0] * FRAME : (loud[-1] + 1) * FRAME]


def build(inputs: list[str | Path] | None = None, options: CalibOptions | None = None) -> CalibSet:
    """Read, trim and cut the calibration windows (see the module docstring)."""
    from xyrt.runtime.formats.audio import load_audio

    options = options or CalibOptions()
    files = collect_files(inputs) if inputs else default_sources()
    speech = []
    for path in files:
        trimmed = trim_silence(load_audio(path), options.trim_db)
        if len(trimmed) >= INPUT_SAMPLE_RATE * 0.08:
            speech.append(trimmed)
    if not speech:
        raise AudioError(f"no speech left after trimming silence in {len(files)} file(s)")
    pool = np.concatenate(speech)
    rng = np.random.default_rng(options.seed)
    budget = int(options.max_minutes * 60 * INPUT_SAMPLE_RATE)
    per_length = max(1, options.max_windows // len(options.window_seconds))
    windows: list[np.ndarray] = []
    for seconds in sorted(options.window_seconds):
        n = int(round(seconds * INPUT_SAMPLE_RATE))
        for _ in range(per_length):
            if len(windows) >= options.max_windows or n > budget:
                break
            start = int(rng.integers(0, max(1, len(pool) - n + 1)))
            windows.append(np.resize(pool[start:], n).astype(np.float32))  # cycles if short
            budget -= n
    calib = CalibSet(windows, [str(p) for p in files], options)
    calib.summary = summarize(calib, len(pool))
    return calib


def summarize(calib: CalibSet, speech_samples: int | None = None) -> dict:
    """Minutes, windows per length, and levels (RMS dBFS mean/min/max, peak)."""
    rms = [
        20 * np.log10(max(float(np.sqrt(np.mean(w.astype(np.float64) ** 2))), 1e-10))
        for w in calib.windows
    ]
    lengths: dict[str, int] = {}
    for w in calib.windows:
        key = f"{len(w) / calib.sample_rate:g}s"
        lengths[key] = lengths.get(key, 0) + 1
    out = {
        "files": len(calib.sources),
        "windows": len(calib.windows),
        "minutes": sum(len(w) for w in calib.windows) / calib.sample_rate / 60,
        "windows_per_length": lengths,
        "rms_dbfs": {
            "mean": float(np.mean(rms)),
            "min": float(np.min(rms)),
            "max": float(np.max(rms)),
        },
        "peak": float(max(np.abs(w).max() for w in calib.windows)),
    }
    if speech_samples is not None:
        out["speech_minutes_after_trim"] = speech_samples / calib.sample_rate / 60
    return out


def save(calib: CalibSet, path: str | Path) -> Path:
    """Write the set as one .npz, atomically."""
    lengths = np.array([len(w) for w in calib.windows], dtype=np.int64)
    meta = {
        "format": FORMAT,
        "sources": calib.sources,
        "options": asdict(calib.options),
        "summary": calib.summary,
    }
    with atomic_write(path, XyrtError) as tmp, open(tmp, "wb") as f:
        np.savez(
            f,
            audio=np.concatenate(calib.windows),
            lengths=lengths,
            sample_rate=np.int64(calib.sample_rate),
            meta=np.array(json.dumps(meta)),
        )
    return Path(path)


def read_calib(path: str | Path, expected_rate: int = INPUT_SAMPLE_RATE) -> CalibSet:
    """Read a set written by `save`; `XyrtError` if it is not one, or is for another rate."""
    path = Path(path)
    if not path.is_file():
        raise XyrtError(f"calibration set not found: {path}")
    expected = "an .npz from xyrt calib (audio, lengths, sample_rate, meta)"
    with open(path, "rb") as f:
        head = f.read(6)
    if not head.startswith((b"PK\x03\x04", b"\x93NUMPY")):  # a zip (.npz) or a .npy
        raise XyrtError(
            f"{path} is not an xyrt calibration set: it is not an .npz (zip) file (it starts "
            f"with {head!r}); expected {expected}"
        )
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # a .npy: one array, whatever its name
            raise XyrtError(
                f"{path} holds a single array of shape {getattr(loaded, 'shape', '?')} (a .npy "
                f"file), not an xyrt calibration set; expected {expected}"
            )
        with loaded as z:
            missing = [k for k in ("audio", "lengths", "sample_rate", "meta") if k not in z.files]
            if missing:
                raise XyrtError(
                    f"{path} is not an xyrt calibration set: it lacks {missing}; "
                    f"expected {expected}"
                )
            audio, lengths = z["audio"], z["lengths"]
            rate, meta = z["sample_rate"], json.loads(str(z["meta"]))
    except XyrtError:
        raise
    except (OSError, ValueError, EOFError, KeyError, AttributeError, zipfile.BadZipFile) as exc:
        raise XyrtError(
            f"{path} is not an xyrt calibration set (cannot read it: {exc}); expected {expected}"
        ) from exc
    windows = _check_set(path, audio, lengths, rate, meta, expected_rate)
    try:
        opts = dict(meta["options"])
        opts["window_seconds"] = tuple(opts["window_seconds"])
        return CalibSet(
            windows, list(meta["sources"]), CalibOptions(**opts), int(rate), meta["summary"]
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise XyrtError(
            f"{path} has damaged metadata ({exc!r}); rebuild it with xyrt calib"
        ) from exc


def _check_set(path, audio, lengths, rate, meta, expected_rate) -> list[np.ndarray]:
    """The windows of a set read from ``path``, after checking every array it holds."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else meta
        raise XyrtError(f"{path} has format {found!r}, expected {FORMAT!r}")
    if rate.shape != () or not np.issubdtype(rate.dtype, np.integer) or int(rate) != expected_rate:
        raise XyrtError(
            f"{path} holds {rate.tolist()} Hz audio; XY-Tokenizer calibration needs "
            f"{expected_rate} Hz: rebuild it with xyrt calib"
        )
    if audio.ndim != 1 or audio.dtype != np.float32:
        raise XyrtError(
            f"{path}: audio is {audio.dtype} of shape {audio.shape}; expected float32 (n,)"
        )
    if lengths.ndim != 1 or not np.issubdtype(lengths.dtype, np.integer) or not len(lengths):
        raise XyrtError(f"{path}: lengths are {lengths.dtype} {lengths.shape}; expected int (k,)")
    longest = CHUNK_SECONDS * expected_rate
    if lengths.min() < SAMPLES_PER_CODE_IN or lengths.max() > longest:
        raise XyrtError(
            f"{path}: window lengths range over [{lengths.min()}, {lengths.max()}] samples; "
            f"expected {SAMPLES_PER_CODE_IN}..{longest} (0.08 to {CHUNK_SECONDS} s)"
        )
    if int(lengths.sum()) != len(audio):
        raise XyrtError(
            f"{path}: window lengths add up to {int(lengths.sum())} samples but the audio has "
            f"{len(audio)}; the file is damaged: rebuild it with xyrt calib"
        )
    try:
        check_amplitude(audio, f"calibration set {path}")
    except AudioError as exc:
        raise XyrtError(f"{exc}; rebuild it with xyrt calib") from exc
    return list(np.split(audio, np.cumsum(lengths)[:-1]))
