"""The exactness criterion: codes identical except reference float32 near-ties."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import codec, golden
from xyrt.errors import XyrtError
from xyrt.runtime.compare import (
    TIE_TOLERANCE,
    CodesDiffer,
    ReferenceCodes,
    check_codes,
    compare_codes,
)


def _reference() -> ReferenceCodes:
    codes = np.arange(8 * 5, dtype=np.int64).reshape(8, 5)
    margins = np.full((8, 5), 1e-2, np.float32)
    margins[6, 1] = 6.4e-10  # a near-tie at stage 6 of frame 1
    margins[2, 3] = 2 * TIE_TOLERANCE  # close, but not a tie
    return ReferenceCodes(codes, margins)


def test_identical_codes_agree_fully() -> None:
    ref = _reference()
    agreement = check_codes(ref, ref.codes.copy())
    assert agreement.ok and agreement.identical == 1.0 and agreement.frames_differing == 0


def test_frame_whose_first_differing_stage_is_a_tie_is_excused_and_reported() -> None:
    ref = _reference()
    got = ref.codes.copy()
    got[6:, 1] += 1  # stage 6 flips, stage 7 follows
    agreement = check_codes(ref, got)
    assert agreement.ok and agreement.unexplained == 0
    assert [(t.frame, t.stage) for t in agreement.ties] == [(1, 6)]
    assert agreement.ties[0].margin == pytest.approx(6.4e-10)
    assert agreement.per_stage_counts(agreement.ties) == (0, 0, 0, 0, 0, 0, 1, 0)
    assert agreement.per_stage[6] == agreement.per_stage[7] == pytest.approx(0.8)
    assert "1 tie frame(s) (frame 1 stage 6 margin 6.4e-10)" in agreement.describe()


def test_difference_before_the_tie_stage_fails() -> None:
    ref = _reference()
    got = ref.codes.copy()
    got[5:, 1] += 1  # stage 5 is not a tie: the later tie at stage 6 does not excuse it
    agreement = compare_codes(ref, got)
    assert not agreement.ok and agreement.frames_tied == 0
    assert [(m.frame, m.stage) for m in agreement.mismatches] == [(1, 5)]
    with pytest.raises(CodesDiffer, match=r"beyond float32 near-ties.*frame 1 stage 5"):
        check_codes(ref, got)


def test_margin_above_the_tolerance_is_not_a_tie() -> None:
    ref = _reference()
    got = ref.codes.copy()
    got[2, 3] += 1
    assert compare_codes(ref, got).unexplained == 1
    assert compare_codes(ref, got, tie_tolerance=1e-3).ok
    assert compare_codes(ref.codes, got, ref.margins).unexplained == 1  # margins given apart


def test_reference_without_margins_excuses_nothing() -> None:
    ref = _reference()
    got = ref.codes.copy()
    got[6, 1] += 1
    agreement = compare_codes(ref.codes, got)
    assert not agreement.ok and np.isnan(agreement.mismatches[0].margin)


def test_other_shape_fails_every_frame() -> None:
    ref = _reference()
    agreement = compare_codes(ref, ref.codes[:, :4])
    assert agreement.shape_mismatch and not agreement.ok and agreement.unexplained == 5
    with pytest.raises(CodesDiffer, match="shape"):
        check_codes(ref, ref.codes[:, :4])


def test_reference_codes_and_margins_must_match() -> None:
    with pytest.raises(XyrtError, match="same"):
        ReferenceCodes(np.zeros((8, 3), np.int64), np.zeros((8, 4), np.float32))


def test_encode_reference_gives_the_codes_and_their_margins() -> None:
    c = codec("tiny_16k")
    wavs = [golden("tiny_16k")[f"{s}/wav"] for s in ("speech_3", "long_concat")]
    refs = c.encode_reference(wavs, overlap=10)
    # the same batch (same window shapes, same kernels) gives the same codes
    for ref, codes in zip(refs, c.encode(wavs, overlap=10), strict=True):
        assert isinstance(ref, ReferenceCodes)
        np.testing.assert_array_equal(ref.codes, codes)
        assert ref.margins.dtype == np.float32 and (ref.margins >= 0).all()
    # speech_3 frame 11 stage 6 is the golden models' known near-tie
    single = c.encode_reference(wavs[0])
    assert single.margins[6, 11] < TIE_TOLERANCE < single.margins[:6, 11].min()
