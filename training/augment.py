"""Batches cut from the training stream, with reverb, noise and gain, all from one seeded rng."""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve

from xyrt.config import INPUT_SAMPLE_RATE

P_REVERB = 0.3
P_NOISE = 0.5
SNR_DB = (10.0, 40.0)  # added noise, dB below the speech
RT60_S = (0.1, 0.6)  # reverberation time of the synthetic rooms
PEAK = (0.05, 0.95)  # output peak amplitude (gain)


def room_response(rng: np.random.Generator) -> np.ndarray:
    """A synthetic impulse response: direct path + exponentially decaying noise."""
    rt60 = rng.uniform(*RT60_S)
    n = int(rt60 * INPUT_SAMPLE_RATE)
    t = np.arange(n) / INPUT_SAMPLE_RATE
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)  # -60 dB at rt60
    ir = tail * rng.uniform(0.1, 0.5) / np.sqrt(np.sum(tail**2))
    ir[0] = 1.0
    return ir


def noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """White, or brown-ish (integrated, high-passed) noise, unit RMS."""
    x = rng.standard_normal(n)
    if rng.random() < 0.5:
        x = np.cumsum(x)
        x = x - np.convolve(x, np.ones(64) / 64, mode="same")
    return x / max(float(np.sqrt(np.mean(x**2))), 1e-9)


def augment(clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = clip.astype(np.float64)
    if rng.random() < P_REVERB:
        x = fftconvolve(x, room_response(rng))[: len(x)]
    if rng.random() < P_NOISE:
        rms = float(np.sqrt(np.mean(x**2)))
        if rms > 0:
            x = x + noise(rng, len(x)) * rms * 10 ** (-rng.uniform(*SNR_DB) / 20)
    peak = float(np.max(np.abs(x)))
    if peak > 0:
        x = x * rng.uniform(*PEAK) / peak
    return x.astype(np.float32)


def batch(stream: np.ndarray, size: int, samples: int, rng: np.random.Generator) -> np.ndarray:
    """(size, samples) float32: random cuts of ``stream``, each augmented."""
    starts = rng.integers(0, len(stream) - samples, size)
    return np.stack([augment(stream[s : s + samples], rng) for s in starts])
