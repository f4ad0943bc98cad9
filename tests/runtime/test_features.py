"""Slaney mel filters, and a numpy log-mel of the published computation (the reference for the
front end the graphs compute) checked against the published mel (golden.npz).

The published code right-pads every item to 30 s (480000 samples), runs a centred power STFT
(n_fft 400, hop 160, periodic Hann, reflect padding 200 each side, last frame dropped), applies
80 Slaney mel filters, takes log10(max(mel, 1e-10)), floors at the item's maximum minus 8 and
maps x -> (x + 4) / 4. `log_mel` zero-pads the signal only as far as needed: frames are
independent FFTs; a frame lying entirely in the zero padding has log value exactly -10 (the
smallest possible), so the item's maximum over the 30 s window equals the maximum over the frames
that touch the signal; and when fewer than 3000 frames are computed, the right reflect padding of
the 30 s window is never reached.
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers import CLIPS, golden
from xyrt.config import (
    HOP_LENGTH,
    INPUT_SAMPLE_RATE,
    N_FFT,
    N_FRAMES,
    N_MELS,
    N_SAMPLES,
    valid_frames,
)
from xyrt.errors import AudioError
from xyrt.runtime.features import _hz_to_mel, _mel_to_hz, mel_filters

MEL_TOL = 1e-4
_HALF = N_FFT // 2  # 200 samples of centre padding on each side


_FILTERS = mel_filters()
_WINDOW = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann


def _check_wav(wav: np.ndarray) -> np.ndarray:
    """Validated (B, n) float view of ``wav``."""
    if not isinstance(wav, np.ndarray):
        raise AudioError(f"log_mel expects a numpy array, got {type(wav).__name__}")
    if wav.ndim not in (1, 2):
        raise AudioError(
            f"log_mel expects a waveform of shape (n,) or (batch, n), got shape {wav.shape}"
        )
    if not np.issubdtype(wav.dtype, np.floating):
        raise AudioError(
            f"log_mel expects float samples in [-1, 1] (float32), got dtype {wav.dtype}; "
            "convert integer PCM with xyrt.runtime.formats.audio.prepare_audio"
        )
    wav2 = wav.reshape(1, -1) if wav.ndim == 1 else wav
    if wav2.shape[0] == 0 or wav2.shape[1] == 0:
        raise AudioError(f"log_mel got empty audio (shape {wav.shape}); expected >= 1 sample")
    if wav2.shape[1] > N_SAMPLES:
        raise AudioError(
            f"log_mel got {wav2.shape[1]} samples ({wav2.shape[1] / INPUT_SAMPLE_RATE:.2f} s); "
            f"one window holds at most {N_SAMPLES} samples (30 s at 16 kHz): split longer audio "
            "into windows (xyrt.runtime.chunking)"
        )
    if not np.isfinite(wav2).all():
        raise AudioError("log_mel got NaN or Inf samples; expected finite values in [-1, 1]")
    return wav2


def _check_lengths(lengths: np.ndarray | None, batch: int, n: int) -> np.ndarray:
    """Per-item lengths in samples, (B,) int64."""
    if lengths is None:
        return np.full(batch, n, dtype=np.int64)
    arr = np.asarray(lengths)
    if arr.shape != (batch,) or not np.issubdtype(arr.dtype, np.integer):
        raise AudioError(
            f"lengths must be an integer array of shape ({batch},), got {arr.dtype} {arr.shape}"
        )
    if arr.min() < 1 or arr.max() > n:
        raise AudioError(f"lengths must be in [1, {n}], got min {arr.min()} max {arr.max()}")
    return arr.astype(np.int64)


def log_mel(
    wav: np.ndarray, n_frames: int | None = None, lengths: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Log-mel of 16 kHz audio: features (B, 80, n_frames) float32, valid frames (B,) int64.

    ``wav`` is (n,) or (B, n) float audio, at most 480000 samples; ``n_frames`` (default 3000)
    is how many 10 ms frames to return, each equal to the published 30 s computation.
    ``lengths`` (optional, (B,) samples) marks items shorter than n; samples past an item's
    length are treated as zeros. Valid frames are ceil(length / 160).
    """
    x = _check_wav(wav)
    batch, n = x.shape
    if n_frames is None:
        n_frames = N_FRAMES
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)):
        raise AudioError(f"n_frames must be an integer in [1, {N_FRAMES}], got {n_frames!r}")
    if not 1 <= n_frames <= N_FRAMES:
        raise AudioError(f"n_frames must be in [1, {N_FRAMES}], got {n_frames}")
    n_frames = int(n_frames)
    lens = _check_lengths(lengths, batch, n)
    longest = int(lens.max())

    # Frames t with 160 t - 200 < length touch the signal: they decide the per-item floor.
    touching = min(N_FRAMES, -(-(longest + _HALF) // HOP_LENGTH))
    frames = max(n_frames, touching)
    # Samples of the (30 s zero-padded) signal that those frames reach, before reflection.
    reach = min(N_SAMPLES, HOP_LENGTH * (frames - 1) + _HALF)
    sig = np.zeros((batch, max(reach, longest)), dtype=np.float64)
    sig[:, :n] = x[:, : sig.shape[1]]
    if lengths is not None:
        sig[np.arange(sig.shape[1])[None, :] >= lens[:, None]] = 0.0
    # Left reflect padding is exact; the right one is only reached when all 3000 frames are
    # computed (then ``sig`` is the full 480000-sample window, as in the published code).
    padded = np.pad(sig, ((0, 0), (_HALF, _HALF)), mode="reflect")
    padded = padded[:, : HOP_LENGTH * (frames - 1) + N_FFT]
    win = np.lib.stride_tricks.sliding_window_view(padded, N_FFT, axis=-1)[:, ::HOP_LENGTH]
    spec = np.fft.rfft(win * _WINDOW, axis=-1)  # (B, frames, 201)
    power = spec.real**2 + spec.imag**2
    mel = np.log10(np.maximum(_FILTERS @ power.transpose(0, 2, 1), 1e-10))
    floor = mel.max(axis=(1, 2), keepdims=True) - 8.0
    out = (np.maximum(mel[:, :, :n_frames], floor) + 4.0) / 4.0
    valid = valid_frames(lens)
    return out.astype(np.float32), valid.astype(np.int64)


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
        "import xyrt.runtime.features as f, xyrt.runtime.formats.audio as a\n"
        "import xyrt.runtime.formats.codes as c, xyrt.data as d\n"
        "f.mel_filters()\n"
        "a.load_audio(d.bundled_speech()['speech_0'])\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
