"""Comparing a backend's codes and audio with a reference (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Half-squared-distance gap under which two codebook entries are a float32 tie: two correct
# float32 implementations (e.g. oneDNN in PyTorch, MLAS in ONNX Runtime) may pick either.
TIE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class CodeAgreement:
    """How far codes (stages, frames) agree with a reference."""

    per_stage: tuple[float, ...]  # fraction of identical codes per RVQ stage
    frames: int
    frames_differing: int  # frames with any differing stage
    frames_tied: int  # ... whose first differing stage is a tie in the reference

    @property
    def identical(self) -> float:
        return float(np.mean(self.per_stage)) if self.per_stage else 1.0

    @property
    def unexplained(self) -> int:
        """Frames that differ for a reason other than a float32 tie."""
        return self.frames_differing - self.frames_tied


def compare_codes(
    ref: np.ndarray,
    got: np.ndarray,
    margins: np.ndarray | None = None,
    tie_tolerance: float = TIE_TOLERANCE,
) -> CodeAgreement:
    """Agreement of ``got`` with ``ref`` (both (stages, T)); ``margins`` (stages, T) from the
    reference marks ties. Later stages of a frame follow its first differing stage (their
    residual differs), so only the first differing stage of each frame is judged."""
    if ref.shape != got.shape:
        return CodeAgreement(tuple(0.0 for _ in range(ref.shape[0])), ref.shape[1], ref.shape[1], 0)
    diff = ref != got
    per_stage = tuple(float(1 - d.mean()) for d in diff) if ref.size else ()
    frames = np.flatnonzero(diff.any(axis=0))
    tied = 0
    if margins is not None and len(frames):
        first = diff[:, frames].argmax(axis=0)
        tied = int(np.sum(margins[first, frames] < tie_tolerance))
    return CodeAgreement(per_stage, ref.shape[1], len(frames), tied)


def snr_db(ref: np.ndarray, got: np.ndarray) -> float:
    """Signal-to-noise ratio of ``got`` against ``ref`` in dB (inf when identical)."""
    noise = float(np.sum((ref.astype(np.float64) - got) ** 2))
    signal = float(np.sum(ref.astype(np.float64) ** 2))
    if noise == 0:
        return float("inf")
    return 10 * np.log10(max(signal, 1e-30) / noise)


def max_error_ratio(ref: np.ndarray, got: np.ndarray) -> float:
    """max |ref - got| / max |ref| (0 for silent references that match)."""
    err = float(np.max(np.abs(ref - got))) if ref.size else 0.0
    peak = float(np.max(np.abs(ref))) if ref.size else 0.0
    return err / peak if peak > 0 else err
