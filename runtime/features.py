"""Whisper-style log-mel front end in numpy (docs/SPEC.md section 1), computing only needed frames.

The published code right-pads every item to 30 s (480000 samples), runs a centred power STFT
(n_fft 400, hop 160, periodic Hann, reflect padding 200 each side, last frame dropped), applies
80 Slaney mel filters, takes log10(max(mel, 1e-10)), floors at the item's maximum minus 8 and
maps x -> (x + 4) / 4. Here the signal is zero-padded only as far as needed: frames are
independent FFTs; a frame lying entirely in the zero padding has log value exactly -10 (the
smallest possible), so the item's maximum over the 30 s window equals the maximum over the frames
that touch the signal; and when fewer than 3000 frames are computed, the right reflect padding of
the 30 s window is never reached.
"""

from __future__ import annotations

import numpy as np

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

_HALF = N_FFT // 2  # 200 samples of centre padding on each side


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear (200/3 Hz per mel) below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3.0, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    log_part = min_log_mel + np.log(np.maximum(hz, min_log_hz) / min_log_hz) / logstep
    return np.where(hz >= min_log_hz, log_part, hz / f_sp)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Inverse of `_hz_to_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3.0, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    log_part = min_log_hz * np.exp(logstep * (np.maximum(mel, min_log_mel) - min_log_mel))
    return np.where(mel >= min_log_mel, log_part, mel * f_sp)


def mel_filters(
    sample_rate: int = INPUT_SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS
) -> np.ndarray:
    """Slaney-normalised triangular mel filters, (n_mels, n_fft // 2 + 1) float64 (0 .. sr/2)."""
    fft_hz = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    mel_pts = np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2.0), n_mels + 2)
    hz_pts = _mel_to_hz(mel_pts)
    widths = np.diff(hz_pts)
    ramps = hz_pts[:, None] - fft_hz[None, :]  # (n_mels + 2, bins)
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return weights * (2.0 / (hz_pts[2:] - hz_pts[:-2]))[:, None]


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
            "convert integer PCM with xyrt.runtime.audio.prepare_audio"
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
