"""Comparing a backend's codes and audio with a reference (numpy only).

The exactness criterion of every float32 path (PyTorch, ONNX Runtime, ...) on every host:
codes are identical except reference float32 near-ties. A frame may differ only when its FIRST
differing RVQ stage is a near-tie in the reference (the best and second-best codebook entries
closer than `TIE_TOLERANCE`); the later stages of that frame follow (their residual differs).
Two correct float32 GEMM kernels (oneDNN/MKL at one ISA or another, MLAS in ONNX Runtime) round
differently at that level, even from bit-identical input. Tie frames are reported apart; any
other difference fails.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xyrt.errors import XyrtError

# Half-squared-distance gap (best - second best score, / 2) under which two codebook entries
# are a float32 near-tie. Scores are ~1e-4..1e2; float32 rounding of the distance GEMM reaches
# ~1e-9 on the tiny models, so 1e-6 excuses only genuine ties.
TIE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class ReferenceCodes:
    """Reference codes and, per code, its tie margin: (best - second best score) / 2, the
    distance to the other side of a float32 near-tie (see `TIE_TOLERANCE`)."""

    codes: np.ndarray  # (stages, T) int64
    margins: np.ndarray  # (stages, T) float32, >= 0

    def __post_init__(self) -> None:
        if self.codes.shape != self.margins.shape or self.codes.ndim != 2:
            raise XyrtError(
                f"reference codes {self.codes.shape} and margins {self.margins.shape} must be "
                "the same (stages, frames) shape"
            )


@dataclass(frozen=True)
class FrameDiff:
    """One differing frame: its first differing stage and the reference margin there (NaN
    when the reference carries no margins)."""

    frame: int
    stage: int
    margin: float


@dataclass(frozen=True)
class CodeAgreement:
    """How far codes (stages, frames) agree with a reference, under the tie rule."""

    per_stage: tuple[float, ...]  # fraction of identical codes per RVQ stage
    frames: int
    ties: tuple[FrameDiff, ...]  # differing frames whose first differing stage is a near-tie
    mismatches: tuple[FrameDiff, ...]  # every other differing frame
    shape_mismatch: bool = False  # the codes do not even have the reference's shape

    @property
    def identical(self) -> float:
        """Fraction of identical codes over all stages."""
        return float(np.mean(self.per_stage)) if self.per_stage else 1.0

    @property
    def frames_differing(self) -> int:
        return len(self.ties) + len(self.mismatches)

    @property
    def frames_tied(self) -> int:
        return len(self.ties)

    @property
    def unexplained(self) -> int:
        """Frames that differ for a reason other than a reference float32 near-tie."""
        return len(self.mismatches)

    @property
    def ok(self) -> bool:
        """Identical except reference float32 near-ties."""
        return not self.mismatches and not self.shape_mismatch

    def per_stage_counts(self, diffs: tuple[FrameDiff, ...]) -> tuple[int, ...]:
        """How many of ``diffs`` (``ties`` or ``mismatches``) first differ at each stage."""
        return tuple(sum(d.stage == s for d in diffs) for s in range(len(self.per_stage)))

    def describe(self, limit: int = 8) -> str:
        """One line: identical %, tie frames and other differing frames (first ``limit``)."""

        def frames(diffs: tuple[FrameDiff, ...]) -> str:
            shown = ", ".join(
                f"frame {d.frame} stage {d.stage} margin {d.margin:.1e}" for d in diffs[:limit]
            )
            return shown + (f", ... ({len(diffs) - limit} more)" if len(diffs) > limit else "")

        text = f"{100 * self.identical:.2f}% identical over {self.frames} frames"
        if self.shape_mismatch:
            return text + "; the codes do not have the reference's shape"
        text += f"; {len(self.ties)} tie frame(s)"
        text += f" ({frames(self.ties)})" if self.ties else ""
        text += f"; {len(self.mismatches)} other differing frame(s)"
        return text + (f" ({frames(self.mismatches)})" if self.mismatches else "")


class CodesDiffer(XyrtError):
    """Codes differ from the reference beyond float32 near-ties."""


def compare_codes(
    reference: ReferenceCodes | np.ndarray,
    got: np.ndarray,
    margins: np.ndarray | None = None,
    tie_tolerance: float = TIE_TOLERANCE,
) -> CodeAgreement:
    """Agreement of ``got`` (stages, T) with ``reference`` under the tie rule (module docstring).

    A plain array as reference carries no margins unless ``margins`` gives them: every differing
    frame is then a mismatch (for comparisons that are not float32 parity, e.g. quantized or
    streaming codes)."""
    if margins is not None and not isinstance(reference, ReferenceCodes):
        reference = ReferenceCodes(np.asarray(reference), np.asarray(margins))
    ref = reference.codes if isinstance(reference, ReferenceCodes) else np.asarray(reference)
    stages, total = ref.shape
    if ref.shape != got.shape:
        nan = float("nan")
        every = tuple(FrameDiff(f, 0, nan) for f in range(total))
        return CodeAgreement(tuple(0.0 for _ in range(stages)), total, (), every, True)
    diff = ref != got
    per_stage = tuple(float(1 - d.mean()) for d in diff) if ref.size else ()
    ties, mismatches = [], []
    for frame in np.flatnonzero(diff.any(axis=0)):
        stage = int(diff[:, frame].argmax())
        margin = float("nan")
        if isinstance(reference, ReferenceCodes):
            margin = float(reference.margins[stage, frame])
        entry = FrameDiff(int(frame), stage, margin)
        (ties if margin < tie_tolerance else mismatches).append(entry)
    return CodeAgreement(per_stage, total, tuple(ties), tuple(mismatches))


def check_codes(
    reference: ReferenceCodes | np.ndarray,
    got: np.ndarray,
    tie_tolerance: float = TIE_TOLERANCE,
) -> CodeAgreement:
    """`compare_codes`, raising `CodesDiffer` (with the differing frames) unless the codes are
    identical except reference float32 near-ties; returns the agreement (ties listed)."""
    agreement = compare_codes(reference, got, tie_tolerance=tie_tolerance)
    if not agreement.ok:
        raise CodesDiffer(f"codes differ beyond float32 near-ties: {agreement.describe()}")
    return agreement


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
