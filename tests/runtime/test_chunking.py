"""The published chunking plans: window placement, kept codes, overlap validation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xyrt.errors import XyrtError
from xyrt.runtime.chunking import codes_per_step, decode_plan, encode_plan, num_codes


def test_default_plan_for_51_seconds() -> None:
    plan = encode_plan(822964, 10)
    assert [(w.start, w.stop, w.keep) for w in plan] == [
        (0, 480000, 250),
        (320000, 800000, 250),
        (640000, 822964, 250),
    ]
    assert [w.start for w in decode_plan(642, 10)] == [0, 250, 500]
    assert decode_plan(642, 10)[-1].stop == 642


@pytest.mark.parametrize("overlap, codes", [(10, 250), (0, 375), (5, 312.5), (0.08, 374)])
def test_codes_per_step(overlap: float, codes: float) -> None:
    if codes != int(codes):
        with pytest.raises(XyrtError, match="multiple of 0.08 s"):
            codes_per_step(overlap)
    else:
        assert codes_per_step(overlap) == codes


@pytest.mark.parametrize("overlap", [-1, 30, 45])
def test_overlap_out_of_range(overlap: float) -> None:
    with pytest.raises(XyrtError, match=r"overlap must be in \[0, 30\)"):
        encode_plan(16000, overlap)


@given(st.integers(1280, 3_000_000), st.sampled_from([0, 2, 10, 20]))
def test_plans_cover_every_code_once(n: int, overlap: float) -> None:
    plan = encode_plan(n, overlap)
    kept = sum(min(w.keep, num_codes(w.stop - w.start) + 1) for w in plan)
    assert kept >= num_codes(n)
    assert all(b.start - a.start == a.keep * 1280 for a, b in zip(plan, plan[1:], strict=False))
    assert all(w.stop - w.start <= 480000 for w in plan) and plan[-1].stop == n
    dplan = decode_plan(num_codes(n), overlap)
    assert all(w.stop - w.start <= 375 for w in dplan) and dplan[-1].stop == num_codes(n)
