"""Audio I/O: every soundfile format to 16 kHz mono float32, conversions, errors, atomic writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from helpers import SPEECH, golden
from xyrt.data import bundled_speech
from xyrt.errors import AudioError
from xyrt.runtime.formats import audio as audio_mod
from xyrt.runtime.formats.audio import MAX_SECONDS, load_audio, prepare_audio, write_wav


def _tone(rate: int, seconds: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return 0.5 * np.sin(2 * np.pi * freq * t)


def _assert_tone_16k(wav: np.ndarray, seconds: float, atol: float = 0.02) -> None:
    assert wav.dtype == np.float32 and wav.ndim == 1
    assert abs(len(wav) - seconds * 16000) <= 2
    ref = _tone(16000, seconds)[: len(wav)]
    inner = slice(800, len(wav) - 800)  # away from resampler edge effects
    assert np.abs(wav[inner] - ref[inner]).max() < atol


def test_int16_stereo_44k_wav(tmp_path: Path) -> None:
    tone = _tone(44100, 1.5)
    stereo = np.stack([tone, tone], axis=1)
    pcm = np.round(stereo * 32767).astype(np.int16)
    sf.write(tmp_path / "a.wav", pcm, 44100, subtype="PCM_16")
    _assert_tone_16k(load_audio(tmp_path / "a.wav"), 1.5, atol=1e-3)


def test_stereo_channels_are_averaged(tmp_path: Path) -> None:
    tone = _tone(16000, 0.5)
    sf.write(tmp_path / "s.wav", np.stack([tone, -tone + 0.2], axis=1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "s.wav"), 0.1, atol=1e-6)


@pytest.mark.parametrize(
    ("fmt", "subtype", "rate", "atol"),
    [
        ("FLAC", "PCM_24", 48000, 1e-3),
        ("OGG", "VORBIS", 22050, 0.05),
        ("WAV", "FLOAT", 16000, 1e-7),
    ],
)
def test_other_formats(tmp_path: Path, fmt: str, subtype: str, rate: int, atol: float) -> None:
    path = tmp_path / f"clip.{fmt.lower()}"
    sf.write(path, _tone(rate, 1.0), rate, format=fmt, subtype=subtype)
    _assert_tone_16k(load_audio(path), 1.0, atol=atol)


def test_target_rate(tmp_path: Path) -> None:
    sf.write(tmp_path / "a.wav", _tone(16000, 1.0), 16000)
    assert len(load_audio(tmp_path / "a.wav", target_rate=24000)) == 24000


@pytest.mark.parametrize("name", SPEECH)
def test_bundled_mp3_matches_golden_wav(name: str) -> None:
    path = bundled_speech()[name]
    assert path.suffix == ".mp3" and path.is_file()
    # MP3 decoders may round differently between builds: well under one 16-bit step (3.1e-5)
    want = golden("tiny_16k")[f"{name}/wav"]
    got = load_audio(path)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_bundled_speech_lists_six_clips() -> None:
    assert list(bundled_speech()) == [f"speech_{i}" for i in range(6)]


def test_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.wav"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(AudioError, match=r"cannot read audio file .*broken\.wav: .+"):
        load_audio(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match=r"audio file not found: .*nope\.wav"):
        load_audio(tmp_path / "nope.wav")


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="audio path is not a file"):
        load_audio(tmp_path)


def test_empty_wav(tmp_path: Path) -> None:
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match=r"empty\.wav is empty .*expected at least 1 sample"):
        load_audio(tmp_path / "empty.wav")


def test_nan_wav(tmp_path: Path) -> None:
    x = _tone(16000, 0.1).astype(np.float32)
    x[10] = np.nan
    sf.write(tmp_path / "nan.wav", x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav contains 1 NaN or Inf samples"):
        load_audio(tmp_path / "nan.wav")


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        (np.array([-32768, 0, 16384], np.int16), [-1.0, 0.0, 0.5]),
        (np.array([-(2**31), 2**30], np.int32), [-1.0, 0.5]),
        (np.array([0, 128, 192], np.uint8), [-1.0, 0.0, 0.5]),
        (np.array([-128, 64], np.int8), [-1.0, 0.5]),
        (np.array([0.25, -0.5], np.float64), [0.25, -0.5]),
        (np.array([[0.2, 0.4], [-1.0, 0.0]], np.float32), [0.3, -0.5]),
        (np.array([[1000], [-1000]], np.int16), [1000 / 32768, -1000 / 32768]),
    ],
)
def test_prepare_audio_conversions(samples: np.ndarray, expected: list[float]) -> None:
    out = prepare_audio(samples, 16000)
    assert out.dtype == np.float32 and out.ndim == 1 and out.flags.c_contiguous
    np.testing.assert_allclose(out, expected, atol=1e-7)


def test_prepare_audio_resamples() -> None:
    _assert_tone_16k(prepare_audio(_tone(8000, 1.0).astype(np.float32), 8000), 1.0, atol=1e-3)
    assert len(prepare_audio(np.zeros(44100, np.float32), 44100.0)) == 16000


@pytest.mark.parametrize(
    ("samples", "rate", "match"),
    [
        (np.zeros(0, np.float32), 16000, r"is empty \(shape \(0,\)\)"),
        (np.zeros((10, 0), np.float32), 16000, r"is empty \(shape \(10, 0\)\)"),
        (np.array([0.0, np.nan]), 16000, "contains 1 NaN or Inf"),
        (np.array([np.inf, -np.inf], np.float32), 16000, "contains 2 NaN or Inf"),
        (np.zeros((2, 2, 2), np.float32), 16000, r"shape \(2, 2, 2\); expected \(n_samples,\)"),
        (np.array(["a", "b"]), 16000, "dtype <U1; expected audio samples as float32"),
        (np.zeros(4, np.int64), 16000, "dtype int64; expected audio samples as"),
        (np.zeros(4, np.complex64), 16000, "dtype complex64"),
        (np.zeros(4, bool), 16000, "dtype bool"),
        (np.zeros((2, 16000), np.float32), 16000, r"16000 channels.*pass samples\.T"),
        (np.zeros(4, np.float32), 0, "sample_rate must be a positive integer .* got 0"),
        (np.zeros(4, np.float32), -8000, "got -8000"),
        (np.zeros(4, np.float32), 44100.5, "got 44100.5"),
        (np.zeros(4, np.float32), True, "got True"),
        (np.zeros(4, np.float32), "16000", "got '16000'"),
        (
            np.zeros(MAX_SECONDS * 1000 + 1, np.float32),
            1000,
            r"4\.00 hours long .* at most 4 hours",
        ),
        (np.zeros(4, np.float32), 2, r"1000\.\.768000 Hz, got 2"),
    ],
)
def test_prepare_audio_rejects(samples: np.ndarray, rate, match: str) -> None:
    with pytest.raises(AudioError, match=match):
        prepare_audio(samples, rate)


def test_prepare_audio_rejects_bad_target_rate() -> None:
    with pytest.raises(AudioError, match="target_rate must be a positive integer"):
        prepare_audio(np.zeros(4, np.float32), 16000, target_rate=0)


def test_load_audio_rejects_too_long(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sf.write(tmp_path / "long.wav", np.zeros(100, np.float32), 16000)
    monkeypatch.setattr(audio_mod, "MAX_SECONDS", 0.001)
    with pytest.raises(AudioError, match=r"long\.wav is 0\.00 hours long; at most"):
        load_audio(tmp_path / "long.wav")


def test_write_wav_round_trip_and_no_temp_files(tmp_path: Path) -> None:
    x = _tone(24000, 0.5).astype(np.float32)
    out = write_wav(tmp_path / "sub" / "out.wav", x, 24000)
    assert out == tmp_path / "sub" / "out.wav"
    info = sf.info(out)
    assert (info.samplerate, info.subtype, info.frames) == (24000, "FLOAT", len(x))
    np.testing.assert_array_equal(sf.read(out, dtype="float32")[0], x)
    write_wav(out, x[:100], 24000)  # overwrite in place
    assert sf.info(out).frames == 100
    assert [p.name for p in out.parent.iterdir()] == ["out.wav"]


def test_write_wav_failure_removes_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args, **kwargs):
        raise sf.LibsndfileError(0, "disk on fire")

    monkeypatch.setattr(sf, "write", boom)
    with pytest.raises(AudioError, match=r"cannot write .*x\.wav: .*disk on fire"):
        write_wav(tmp_path / "x.wav", np.zeros(10, np.float32), 16000)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("samples", "match"),
    [
        (np.zeros(0, np.float32), r"cannot write audio of shape \(0,\)"),
        (np.zeros((1, 1, 1), np.float32), r"shape \(1, 1, 1\)"),
        (np.array([np.nan], np.float32), "NaN or Inf"),
        (np.array(["x"]), "dtype <U1"),
    ],
)
def test_write_wav_rejects(tmp_path: Path, samples: np.ndarray, match: str) -> None:
    with pytest.raises(AudioError, match=match):
        write_wav(tmp_path / "x.wav", samples, 16000)
    assert list(tmp_path.iterdir()) == []
