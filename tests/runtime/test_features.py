"""Numpy log-mel front end: Slaney filters and parity with the published mel (golden.npz)."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import CLIPS, golden
from xyrt.config import N_FRAMES, N_MELS, N_SAMPLES
from xyrt.errors import AudioError
from xyrt.runtime.features import _hz_to_mel, _mel_to_hz, log_mel, mel_filters

MEL_TOL = 1e-4


def test_mel_filters_shape_and_triangles() -> None:
    f = mel_filters(16000, 400, 80)
    assert f.shape == (80, 201) and f.dtype == np.float64
    assert (f >= 0).all() and (f.max(axis=1) > 0).all()
    peaks = f.argmax(axis=1)
    assert (np.diff(peaks) >= 0).all() and peaks[-1] > peaks[0]
    assert f[:, 0].max() == 0 and f[:, -1].max() == 0  # nothing at DC or exactly Nyquist


def test_mel_filters_slaney_area_normalisation() -> None:
    # Triangle i spans hz[i] .. hz[i + 2] with peak height 2 / width: continuous area 1.
    hz = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(8000.0), 82))
    f = mel_filters()
    heights = 2.0 / (hz[2:] - hz[:-2])
    assert (f.max(axis=1) <= heights + 1e-12).all()
    # Sampled every 40 Hz, each area is close to 1 and their mean is 1 almost exactly.
    areas = f.sum(axis=1) * 40.0
    assert np.abs(areas - 1.0).max() < 0.1
    assert areas.mean() == pytest.approx(1.0, abs=2e-3)
    # Unnormalised (peak 1) triangle sampled at a bin centre: linear interpolation between ends.
    k = 100  # 4000 Hz
    i = int(np.argmax(f[:, k]))
    tri = np.minimum(
        (4000.0 - hz[i]) / (hz[i + 1] - hz[i]), (hz[i + 2] - 4000.0) / (hz[i + 2] - hz[i + 1])
    )
    assert f[i, k] == pytest.approx(heights[i] * tri, rel=1e-12)


def test_slaney_mel_scale() -> None:
    assert _hz_to_mel(1000.0) == pytest.approx(15.0)  # 200/3 Hz per mel below 1 kHz
    assert _hz_to_mel(6400.0) == pytest.approx(15.0 + 27.0)  # 27 mels per factor 6.4
    hz = np.array([0.0, 300.0, 999.0, 1000.0, 4321.0, 8000.0])
    np.testing.assert_allclose(_mel_to_hz(_hz_to_mel(hz)), hz, atol=1e-9)


@pytest.mark.parametrize("clip", CLIPS)
def test_log_mel_matches_golden(clip: str) -> None:
    g = golden("tiny_16k")
    wav, ref, frames = g[f"{clip}/wav"][:N_SAMPLES], g[f"{clip}/mel"], int(g[f"{clip}/mel_frames"])
    mel, valid = log_mel(wav)
    assert mel.shape == (1, N_MELS, N_FRAMES) and mel.dtype == np.float32
    assert valid.dtype == np.int64 and valid.tolist() == [frames]
    assert np.abs(mel[0] - ref).max() < MEL_TOL
    # Reduced window: only valid + 2 frames computed, still equal to the 30 s computation.
    n = min(frames + 2, N_FRAMES)
    short, valid2 = log_mel(wav, n_frames=n)
    assert short.shape == (1, N_MELS, n) and valid2.tolist() == [frames]
    assert np.abs(short[0] - ref[:, :n]).max() < MEL_TOL


def test_log_mel_batch_with_lengths_equals_single_items() -> None:
    g = golden("tiny_16k")
    a, b = g["speech_0/wav"], g["short_quarter_second/wav"]
    batch = np.zeros((2, len(a)), np.float32)
    batch[0], batch[1, : len(b)] = a, b
    batch[1, len(b) :] = 0.5  # past its length: must be ignored
    mel, valid = log_mel(batch, n_frames=600, lengths=np.array([len(a), len(b)]))
    assert valid.tolist() == [510, 25]
    np.testing.assert_array_equal(mel[0], log_mel(a, 600)[0][0])
    np.testing.assert_array_equal(mel[1], log_mel(b, 600)[0][0])
    assert np.abs(mel[1] - g["short_quarter_second/mel"][:, :600]).max() < MEL_TOL


def test_log_mel_float64_and_one_frame() -> None:
    wav = golden("tiny_16k")["speech_2/wav"]
    mel, valid = log_mel(wav.astype(np.float64), n_frames=1)
    assert mel.shape == (1, N_MELS, 1) and valid.tolist() == [478]
    assert np.abs(mel[0, :, 0] - golden("tiny_16k")["speech_2/mel"][:, 0]).max() < MEL_TOL


@pytest.mark.parametrize("n", [1, 159, 160, 161, 479_799, N_SAMPLES])
def test_valid_frames_is_ceil(n: int) -> None:
    rng = np.random.default_rng(n)
    wav = (0.1 * rng.standard_normal(n)).astype(np.float32)
    _, valid = log_mel(wav, n_frames=4)
    assert valid.tolist() == [-(-n // 160)]


def test_reduced_window_equals_full_near_30s() -> None:
    rng = np.random.default_rng(0)
    for n in (479_500, 479_700, 479_900):  # right reflection reaches zeros, then the signal
        wav = (0.1 * rng.standard_normal(n)).astype(np.float32)
        full, _ = log_mel(wav)
        part, _ = log_mel(wav, n_frames=100)
        np.testing.assert_array_equal(part, full[:, :, :100])


@pytest.mark.parametrize(
    ("wav", "match"),
    [
        (np.zeros((1, 2, 3), np.float32), r"shape \(n,\) or \(batch, n\), got shape \(1, 2, 3\)"),
        (np.zeros(100, np.int16), r"expects float samples .* got dtype int16"),
        (np.array([0.0, np.nan], np.float32), "NaN or Inf"),
        (np.array([0.0, np.inf], np.float32), "NaN or Inf"),
        (np.zeros(0, np.float32), r"empty audio \(shape \(0,\)\)"),
        (np.zeros(N_SAMPLES + 1, np.float32), "480001 samples .* at most 480000"),
        ([0.0, 0.1], "expects a numpy array, got list"),
    ],
)
def test_log_mel_rejects_bad_input(wav, match: str) -> None:
    with pytest.raises(AudioError, match=match):
        log_mel(wav)


@pytest.mark.parametrize("n_frames", [0, 3001, 2.5, True])
def test_log_mel_rejects_bad_n_frames(n_frames) -> None:
    with pytest.raises(AudioError, match="n_frames must be"):
        log_mel(np.zeros(1000, np.float32), n_frames=n_frames)


@pytest.mark.parametrize(
    ("lengths", "match"),
    [
        (np.array([10, 20]), r"shape \(1,\)"),
        (np.array([0]), r"lengths must be in \[1, 1000\], got min 0"),
        (np.array([1001]), r"got min 1001 max 1001"),
        (np.array([1.5]), "integer array"),
    ],
)
def test_log_mel_rejects_bad_lengths(lengths: np.ndarray, match: str) -> None:
    with pytest.raises(AudioError, match=match):
        log_mel(np.zeros(1000, np.float32), lengths=lengths)


def test_runtime_modules_do_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "import xyrt.runtime.features as f, xyrt.runtime.audio as a, xyrt.runtime.codes as c\n"
        "f.log_mel(np.zeros(1600, np.float32), 12)\n"
        "a.load_audio(a.bundled_speech()['speech_0'])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
