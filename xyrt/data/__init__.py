"""The speech bundled with xyrt (see README.md here for where it comes from): the demo and
benchmark clips, and held-out sentences that no calibration set contains."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xyrt.config import INPUT_SAMPLE_RATE
from xyrt.errors import AudioError
from xyrt.runtime.formats.audio import load_audio

FOLDER = Path(__file__).parent


def speech_clip(seconds: float, target_rate: int = INPUT_SAMPLE_RATE) -> np.ndarray:
    """The bundled speech concatenated, repeated and cut to ``seconds`` (float32, mono)."""
    speech = np.concatenate([load_audio(p, target_rate) for p in bundled_speech().values()])
    return np.resize(speech, int(round(seconds * target_rate))).astype(np.float32)


def heldout_speech() -> dict[str, np.ndarray]:
    """Bundled espeak-ng sentences that no calibration set contains (16 kHz float32 mono)."""
    folder = FOLDER
    paths = sorted(folder.glob("heldout_*.flac"))
    if not paths:
        raise AudioError(f"bundled held-out speech is missing from {folder} (broken install?)")
    return {p.stem: load_audio(p) for p in paths}


def bundled_speech() -> dict[str, Path]:
    """Paths of the bundled speech clips speech_0 .. speech_5 (mp3, 16 kHz mono), by name."""
    folder = FOLDER
    clips = {f"speech_{i}": folder / f"speech_{i}.mp3" for i in range(6)}
    missing = [str(p) for p in clips.values() if not p.is_file()]
    if missing:
        raise AudioError(f"bundled speech clips are missing (broken install?): {missing}")
    return clips
