"""xyrt calib: calibration windows from real audio; bad input rejected clearly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from xyrt.calib.dataset import CalibOptions, build, read_calib, save, trim_silence
from xyrt.cli import main
from xyrt.errors import XyrtError


def test_default_set_covers_short_and_full_windows(tmp_path: Path) -> None:
    calib = build(options=CalibOptions(max_windows=8, seed=3))
    lengths = sorted({len(w) for w in calib.windows})
    assert lengths == [16000, 80000, 160000, 480000]
    assert len(calib.windows) == 8 and len(calib.sources) == 10  # 6 clips + 4 espeak-ng
    assert calib.summary["windows_per_length"] == {"1s": 2, "5s": 2, "10s": 2, "30s": 2}
    again = build(options=CalibOptions(max_windows=8, seed=3))
    assert all(np.array_equal(a, b) for a, b in zip(calib.windows, again.windows, strict=True))
    other = build(options=CalibOptions(max_windows=8, seed=4))
    assert not np.array_equal(calib.windows[0], other.windows[0])
    path = save(calib, tmp_path / "c.npz")
    loaded = read_calib(path)
    assert all(np.array_equal(a, b) for a, b in zip(calib.windows, loaded.windows, strict=True))
    assert loaded.summary == calib.summary and loaded.options == calib.options


def test_any_format_rate_and_channels_and_caps(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(44100 * 3) / 44100
    tone = 0.3 * np.sin(2 * np.pi * 300 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    folder = tmp_path / "audio"
    (folder / "sub").mkdir(parents=True)
    silence = np.zeros(44100)
    sf.write(
        folder / "a.wav",
        np.stack([np.r_[silence, tone], np.r_[silence, tone]], 1),
        44100,
        subtype="PCM_16",
    )
    sf.write(folder / "sub" / "b.flac", 0.2 * rng.standard_normal(48000 * 2), 48000)
    sf.write(folder / "c.ogg", tone.astype(np.float32), 44100)
    calib = build(
        [folder], CalibOptions(window_seconds=(0.5, 2.0), max_windows=6, max_minutes=0.05)
    )
    assert len(calib.sources) == 3
    assert sum(len(w) for w in calib.windows) <= 0.05 * 60 * 16000  # the size cap
    # 9 s of audio in, the 1 s of leading silence trimmed: 8 s of speech left
    assert calib.summary["speech_minutes_after_trim"] == pytest.approx(8 / 60, abs=0.1 / 60)


def test_trim_silence() -> None:
    x = np.r_[np.zeros(8000), 0.5 * np.ones(4000), np.zeros(8000)].astype(np.float32)
    assert 3600 <= len(trim_silence(x)) <= 4400
    assert len(trim_silence(np.zeros(16000, np.float32))) == 0


def test_bad_inputs(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(XyrtError, match="holds no audio files"):
        build([tmp_path / "empty"])
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....not audio")
    with pytest.raises(XyrtError, match="bad.wav"):
        build([bad])
    with pytest.raises(XyrtError, match="not found"):
        build([tmp_path / "missing.flac"])
    sf.write(tmp_path / "quiet.wav", np.zeros(16000), 16000)
    with pytest.raises(XyrtError, match="no speech left after trimming"):
        build([tmp_path / "quiet.wav"])
    with pytest.raises(XyrtError, match="window lengths must be in"):
        CalibOptions(window_seconds=(45.0,))
    assert main(["calib", str(tmp_path / "empty"), "-o", str(tmp_path / "x.npz")]) == 1
    assert "holds no audio files" in capsys.readouterr().err


def test_set_for_another_sample_rate_is_refused(tmp_path: Path) -> None:
    path = save(
        build(options=CalibOptions(max_windows=2, window_seconds=(1.0,))), tmp_path / "c.npz"
    )
    with np.load(path) as z:
        data = dict(z)
    data["sample_rate"] = np.int64(24000)
    np.savez(tmp_path / "c24.npz", **data)
    with pytest.raises(XyrtError, match="holds 24000 Hz audio"):
        read_calib(tmp_path / "c24.npz")
    np.savez(tmp_path / "junk.npz", x=np.zeros(3))
    with pytest.raises(XyrtError, match="not an xyrt calibration set"):
        read_calib(tmp_path / "junk.npz")


def test_cli_calib_prints_a_summary(tmp_path: Path, capsys) -> None:
    out = tmp_path / "calib.npz"
    assert main(["calib", "-o", str(out), "--windows", "1,10", "--max-windows", "4"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["windows"] == 4 and summary["windows_per_length"] == {"1s": 2, "10s": 2}
    assert summary["minutes"] == pytest.approx(22 / 60)
    assert -60 < summary["rms_dbfs"]["mean"] < 0 and 0 < summary["peak"] <= 1.5
    assert read_calib(out).summary == summary
