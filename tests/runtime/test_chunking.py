"""The published chunking plans: window placement, kept codes, overlap validation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xyrt.config import SAMPLES_PER_CODE_IN
from xyrt.errors import XyrtError
from xyrt.runtime.chunking import (
    codes_per_step,
    decode_plan,
    encode_plan,
    num_codes,
    window_batches,
)


def test_default_plan_for_51_seconds() -> None:
    plan = encode_plan(822964, 10)
    assert [(w.start, w.stop, w.keep) for w in plan] == [
        (0, 480000, 250),
        (320000, 800000, 250),
        (640000, 822964, 250),
    ]
    assert [w.start for w in decode_plan(642, 10)] == [0, 250, 500]
    assert decode_plan(642, 10)[-1].stop == 642


@pytest.mark.parametrize(
    "overlap, codes",
    [(10, 250), (0, 375), (5, 312), (0.08, 374), (0.05, 374), (10.01, 249), (29.5, 6)],
)
def test_codes_per_step(overlap: float, codes: int) -> None:
    """(30 - overlap) x 12.5 rounded down to whole codes, as the published decode counts them:
    int((30 - overlap) * 16000 // 1280)."""
    assert codes_per_step(overlap) == codes == int((30 - overlap) * 16000 // 1280)


@given(st.floats(0, 29.92))
def test_windows_step_by_whole_codes_and_cover_the_clip(overlap: float) -> None:
    """Property: for any overlap the windows start on whole codes, each keeps what the next one
    does not repeat, and together they keep exactly floor(n / 1280) codes."""
    n = 2_000_000
    plan = encode_plan(n, overlap)
    step = codes_per_step(overlap)
    assert all(w.start % SAMPLES_PER_CODE_IN == 0 for w in plan)
    assert [w.start for w in plan] == list(range(0, n, step * SAMPLES_PER_CODE_IN))
    assert sum(min(w.keep, (n - w.start) // SAMPLES_PER_CODE_IN) for w in plan) == n // 1280


@pytest.mark.parametrize("overlap", [-1, -0.01, 29.95, 30, 45])
def test_overlap_out_of_range(overlap: float) -> None:
    with pytest.raises(XyrtError, match=r"overlap must be in \[0, 29.92\] seconds"):
        encode_plan(16000, overlap)
    assert codes_per_step(29.92) == 1  # the largest overlap: one code per window


@given(st.integers(1280, 3_000_000), st.sampled_from([0, 2, 10, 20]))
def test_plans_cover_every_code_once(n: int, overlap: float) -> None:
    plan = encode_plan(n, overlap)
    kept = sum(min(w.keep, num_codes(w.stop - w.start) + 1) for w in plan)
    assert kept >= num_codes(n)
    assert all(b.start - a.start == a.keep * 1280 for a, b in zip(plan, plan[1:], strict=False))
    assert all(w.stop - w.start <= 480000 for w in plan) and plan[-1].stop == n
    dplan = decode_plan(num_codes(n), overlap)
    assert all(w.stop - w.start <= 375 for w in dplan) and dplan[-1].stop == num_codes(n)


@given(st.lists(st.integers(1280, 480000), max_size=40), st.integers(1, 8))
def test_window_batches_bound_padding(lengths: list[int], batch_size: int) -> None:
    batches = window_batches(lengths, batch_size, max_pad=0.15)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert 1 <= len(b) <= batch_size
        assert all(lengths[i] >= 0.85 * lengths[b[0]] for i in b)  # first is the longest
        assert lengths[b[0]] == max(lengths[i] for i in b)


def test_tail_window_is_not_padded_to_the_full_window() -> None:
    plan = encode_plan(25 * 16000)  # windows [0, 25 s) and [20, 25 s)
    sizes = [w.stop - w.start for w in plan + encode_plan(24 * 16000)]
    assert window_batches(sizes, 4) == [[0, 2], [1], [3]]  # 25 s with 24 s; 5 s and 4 s apart
