"""The sensitivity pass's search, with scores from a known table instead of a model."""

from __future__ import annotations

from pathlib import Path

import pytest

from xyrt.calib.sensitivity import choose_exclusions, format_report, group_of

GROUPS = {"/a/": ["/a/MatMul"], "/b/": ["/b/MatMul"], "/c/": ["/c/MatMul", "/c/Conv"]}


def run(scores: dict[frozenset, float], target: float, max_groups: int = 3):
    """Score of a trial = scores[set of groups left float]; records what was written."""
    written: list[frozenset] = []
    by_node = {n: g for g, nodes in GROUPS.items() for n in nodes}

    def write(dst: Path, float_nodes: list[str]) -> None:
        dst.write_text("graph")
        written.append(frozenset(by_node[n] for n in float_nodes))

    def score(path: Path) -> float:
        assert path.read_text() == "graph"
        return scores[written[-1]]

    report = choose_exclusions("encoder", "agreement", GROUPS, write, score, target, max_groups)
    return report, written


def test_nothing_is_excluded_when_the_fully_quantized_graph_meets_the_target() -> None:
    report, written = run({frozenset(): 0.99}, target=0.98)
    assert report.met and report.chosen == [] and written == [frozenset()]


def test_greedy_keeps_only_groups_that_help_and_stops_at_the_target() -> None:
    f = frozenset
    scores = {
        f(): 0.5,
        f({"/a/"}): 0.9,
        f({"/b/"}): 0.6,
        f({"/c/"}): 0.8,
        f({"/a/", "/c/"}): 0.85,  # c does not help once a is float: it stays quantized
        f({"/a/", "/b/"}): 0.99,
    }
    report, _ = run(scores, target=0.98)
    assert report.baseline == 0.5
    assert report.per_group == {"/a/": 0.9, "/b/": 0.6, "/c/": 0.8}
    assert report.chosen == ["/a/", "/b/"] and report.final == 0.99 and report.met
    assert [t[0] for t in report.trials] == [["/a/"], ["/a/", "/c/"], ["/a/", "/b/"]]
    text = format_report(report)
    assert "kept float: /a/, /b/" in text and "(met)" in text
    assert "2 of 3 groups stay float" in text and "mostly in float32" in text  # user told


def test_max_groups_caps_the_exclusions_and_a_missed_target_is_reported() -> None:
    f = frozenset
    scores = {f(): 0.1, f({"/a/"}): 0.3, f({"/b/"}): 0.2, f({"/c/"}): 0.25}
    report, _ = run(scores, target=0.98, max_groups=1)
    assert report.chosen == ["/a/"] and report.final == 0.3 and not report.met
    assert "NOT met" in format_report(report) and "stay float" not in format_report(report)
    report, written = run({f(): 0.1}, target=0.98, max_groups=0)
    assert report.chosen == [] and written == [f()]


@pytest.mark.parametrize(
    ("name", "granularity", "group"),
    [
        ("/acoustic_encoder/layers.3/fc1/MatMul", "module", "/acoustic_encoder/"),
        ("/acoustic_encoder/layers.3/fc1/MatMul", "layer", "/acoustic_encoder/layers.3/"),
        ("/downsample/up_proj/MatMul", "layer", "/downsample/up_proj/"),
        ("/pre_rvq_adapter/MatMul", "layer", None),
        ("MatMul_12", "module", None),
    ],
)
def test_group_of(name: str, granularity: str, group: str | None) -> None:
    assert group_of(name, granularity) == group
