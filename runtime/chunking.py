"""The published long-audio chunking (docs/SPEC.md section 8), shared by every backend.

encode: 30 s windows every (30 - overlap) s; keep the first (30 - overlap) x 12.5 codes of each.
decode: 375-code windows every (30 - overlap) x 12.5 codes; keep the first step x samples/code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from xyrt.checks import finite
from xyrt.config import CHUNK_SECONDS, CODE_RATE, CODES_PER_CHUNK, N_SAMPLES, SAMPLES_PER_CODE_IN
from xyrt.errors import XyrtError

OVERLAP_SECONDS = 10.0  # the published overlap of the 30 s windows (every default refers here)
MAX_OVERLAP = CHUNK_SECONDS - 1 / CODE_RATE  # 29.92 s: a window keeps at least one code
MAX_BATCH_PAD = 0.15  # padding a batched window may carry, as a fraction of the batch's longest


@dataclass(frozen=True)
class Window:
    """[start, stop) in samples (encode) or codes (decode); ``keep`` codes are kept from it."""

    start: int
    stop: int
    keep: int


def codes_per_step(overlap_seconds: float) -> int:
    """Codes kept from each window: (30 - overlap) x 12.5 rounded down to whole codes (250 for
    the default 10 s; 312 for 5 s, an effective overlap of 5.04 s), which is how the published
    decode counts them (``int(duration * 16000 // 1280)``); its encode keeps that many codes but
    steps by the unrounded length, losing half a code per window, so xyrt steps by whole codes."""
    overlap_seconds = finite(overlap_seconds, "overlap")
    step = math.floor((CHUNK_SECONDS - overlap_seconds) * CODE_RATE + 1e-6)
    if overlap_seconds < 0 or step < 1:
        raise XyrtError(
            f"overlap must be in [0, {MAX_OVERLAP:g}] seconds (each {CHUNK_SECONDS} s window keeps "
            f"at least one {1000 / CODE_RATE:g} ms code), got {overlap_seconds:g}"
        )
    return step


def encode_plan(n_samples: int, overlap_seconds: float = OVERLAP_SECONDS) -> list[Window]:
    """Windows of a 16 kHz signal of ``n_samples`` samples, in samples."""
    step = codes_per_step(overlap_seconds)
    hop = step * SAMPLES_PER_CODE_IN
    return [
        Window(start, min(start + N_SAMPLES, n_samples), step) for start in range(0, n_samples, hop)
    ]


def decode_plan(n_codes: int, overlap_seconds: float = OVERLAP_SECONDS) -> list[Window]:
    """Windows over ``n_codes`` code frames, in codes."""
    step = codes_per_step(overlap_seconds)
    return [
        Window(start, min(start + CODES_PER_CHUNK, n_codes), step)
        for start in range(0, n_codes, step)
    ]


def offline_window(frame: int, overlap_seconds: float = OVERLAP_SECONDS) -> Window:
    """The window of the offline plan whose kept codes include code ``frame``, in codes (the
    `decode_plan` window; the `encode_plan` one is the same x 1280 samples). Streams step inside
    it, so their frames sit at the positions the offline window gives them."""
    step = codes_per_step(overlap_seconds)
    start = (frame // step) * step
    return Window(start, start + CODES_PER_CHUNK, step)


def window_batches(
    lengths: Sequence[int], batch_size: int, max_pad: float = MAX_BATCH_PAD
) -> list[list[int]]:
    """Indices of windows grouped into batches, longest first: at most ``batch_size`` each, and
    no window shorter than (1 - ``max_pad``) x the batch's longest, so a padded batch wastes at
    most that fraction per row (a 25 s clip's 5 s tail window is not run as 25 s)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    for i in order:
        last = batches[-1] if batches else None
        if last and len(last) < batch_size and lengths[i] >= (1 - max_pad) * lengths[last[0]]:
            last.append(i)
        else:
            batches.append([i])
    return batches


def num_codes(n_samples: int) -> int:
    """Code frames for a 16 kHz signal: floor(n / 1280)."""
    return n_samples // SAMPLES_PER_CODE_IN


def stitch(
    pieces: Sequence[np.ndarray], windows: Sequence[Window], total: int, unit: int = 1
) -> np.ndarray:
    """The first ``keep x unit`` items (last axis) of each piece, concatenated, cut to total."""
    kept = [p[..., : w.keep * unit] for p, w in zip(pieces, windows, strict=True)]
    return np.concatenate(kept, axis=-1)[..., :total]
