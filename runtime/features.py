"""Slaney mel filters of the Whisper-style log-mel front end (docs/SPEC.md section 1), in numpy,
and the per-frame log-mel maxima a stream passes as the floor's reference (`LogMelPeaks`).

The exported graphs compute the log-mel themselves (`xyrt.export.graphs.DFTLogMel`, from these
filters); a numpy log-mel of the published computation is the tests' reference
(tests/runtime/test_features.py).
"""

from __future__ import annotations

import numpy as np

from xyrt.config import HOP_LENGTH, INPUT_SAMPLE_RATE, N_FFT, N_MELS
from xyrt.runtime.graph_io import LOG_MEL_MIN


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


REFERENCE_MARGIN = 1e-3  # log10 units taken off a reference, so float error never lifts a floor


class LogMelPeaks:
    """The log10-mel maximum of each 100 Hz frame of a growing 16 kHz signal, for frames whose
    whole 400-sample support (centred on frame x 160) has arrived: the frames every window
    containing them computes alike. A stream's step passes the largest of them over its offline
    window, as far as heard (`reference`), so its floor follows the offline window's maximum."""

    def __init__(self) -> None:
        self._base = 2  # frames 0 and 1 reach before the signal (reflect-padded): skipped
        self._peaks = np.zeros(0, np.float64)
        self._filters = mel_filters()
        n = np.arange(N_FFT)
        self._window = 0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)  # periodic Hann

    @property
    def next_frame(self) -> int:
        """The first frame not computed yet."""
        return self._base + len(self._peaks)

    def first_sample_needed(self) -> int:
        """The earliest sample `update` still reads."""
        return self.next_frame * HOP_LENGTH - N_FFT // 2

    def update(self, audio: np.ndarray, audio_start: int, audio_end: int) -> None:
        """Compute the frames whose support lies in ``audio`` (samples audio_start..audio_end)."""
        half = N_FFT // 2
        last = (audio_end - half) // HOP_LENGTH  # the last frame with its support heard
        first = self.next_frame
        if last < first:
            return
        lo = first * HOP_LENGTH - half - audio_start
        seg = np.asarray(audio[lo : lo + (last - first) * HOP_LENGTH + N_FFT], np.float64)
        frames = np.lib.stride_tricks.sliding_window_view(seg, N_FFT)[::HOP_LENGTH]
        power = np.abs(np.fft.rfft(frames * self._window, axis=-1)) ** 2
        mel = np.maximum(power @ self._filters.T, 1e-10)
        self._peaks = np.concatenate([self._peaks, np.log10(mel.max(axis=-1))])

    def reference(self, start: int, end: int) -> float:
        """The largest frame maximum with its support in samples [start, end), less
        `REFERENCE_MARGIN`; `LOG_MEL_MIN` when there is none."""
        half = N_FFT // 2
        lo = max(-(-(start + half) // HOP_LENGTH), self._base)
        hi = min((end - half) // HOP_LENGTH + 1, self.next_frame)
        if hi <= lo:
            return LOG_MEL_MIN
        top = float(self._peaks[lo - self._base : hi - self._base].max()) - REFERENCE_MARGIN
        return max(top, LOG_MEL_MIN)

    def forget(self, before: int) -> None:
        """Drop frames starting before sample ``before`` (no later window reaches them)."""
        drop = min((before - N_FFT // 2) // HOP_LENGTH - self._base, len(self._peaks))
        if drop > 0:
            self._peaks = self._peaks[drop:]
            self._base += drop
