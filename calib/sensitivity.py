"""Sensitivity pass: which parts of a graph must stay float so the codes survive quantization.

The quantizable nodes (MatMul, Conv) are grouped by module (``/acoustic_encoder/``) or by layer
(``/acoustic_encoder/layers.3/``). The pass scores the fully quantized graph; if it misses the
target it scores, for each group, the graph with just that group left float, then leaves groups
float greedily, best first, keeping a group float only if the score improves, until the target
is met or ``max_groups`` are float. Scores are
measured on held-out audio against the FP32 graph: first-stage code agreement for the encoder,
decoded-audio SNR for the decoder. Every trial is reported.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from xyrt.calib.schemes import QUANTIZED_OPS, graph_table
from xyrt.checks import finite
from xyrt.errors import XyrtError, received

GRANULARITIES = ("module", "layer")


@dataclass(frozen=True)
class SensitivityOptions:
    """Targets and limits of the pass; ``enabled=False`` skips it (scores are still reported)."""

    enabled: bool = True
    target_agreement: float = 0.98  # encoder: stage-0 codes identical to FP32
    target_snr_db: float = 20.0  # decoder: audio SNR against FP32
    granularity: str = "module"
    max_groups: int = 4

    def __post_init__(self) -> None:
        if self.granularity not in GRANULARITIES:
            raise XyrtError(
                f"sensitivity granularity must be one of {GRANULARITIES}, got "
                f"{received(self.granularity)}"
            )
        finite(self.target_agreement, "target agreement")
        finite(self.target_snr_db, "target SNR (dB)")
        if not 0 < self.target_agreement <= 1:
            raise XyrtError(f"target agreement must be in (0, 1], got {self.target_agreement}")
        if self.max_groups < 0:
            raise XyrtError(f"max_groups must be >= 0, got {self.max_groups}")


@dataclass
class SensitivityReport:
    graph: str
    metric: str
    target: float | None  # None: measured only, no pass
    baseline: float
    per_group: dict[str, float] = field(default_factory=dict)  # score with the group float
    trials: list[tuple[list[str], float]] = field(default_factory=list)  # greedy steps
    chosen: list[str] = field(default_factory=list)
    final: float = float("nan")

    @property
    def met(self) -> bool:
        return self.target is not None and self.final >= self.target

    def to_dict(self) -> dict:
        return asdict(self) | {"met": self.met}


def group_of(node_name: str, granularity: str) -> str | None:
    """``/a/b/c/MatMul`` -> ``/a/`` (module) or ``/a/b/`` (layer); None for top-level nodes."""
    parts = node_name.split("/")
    depth = 1 if granularity == "module" else 2
    if len(parts) < depth + 2 or parts[0] != "":
        return None
    return "/" + "/".join(parts[1 : depth + 1]) + "/"


def quantizable_groups(
    model_path: Path, keep_float: list[str], granularity: str
) -> dict[str, list[str]]:
    """Group -> names of its quantizable nodes (those not already kept float)."""
    skip = set(keep_float)
    groups: dict[str, list[str]] = {}
    for node in graph_table(model_path).nodes:
        if node.op_type in QUANTIZED_OPS and node.name not in skip:
            key = group_of(node.name, granularity)
            if key is not None:
                groups.setdefault(key, []).append(node.name)
    return groups


def choose_exclusions(
    graph: str,
    metric: str,
    groups: dict[str, list[str]],
    write: Callable[[Path, list[str]], None],
    score: Callable[[Path], float],
    target: float,
    max_groups: int,
    progress: Callable[[str], None] | None = None,
) -> SensitivityReport:
    """Run the pass (module docstring). ``write(dst, float_nodes)`` writes a quantized graph
    leaving ``float_nodes`` float; ``score(path)`` measures it (higher is better)."""
    say = progress or (lambda _msg: None)
    with tempfile.TemporaryDirectory(prefix="xyrt-sensitivity-") as tmp:
        trial_path = Path(tmp) / f"{graph}.onnx"

        def trial(float_groups: list[str]) -> float:
            write(trial_path, [n for g in float_groups for n in groups[g]])
            value = score(trial_path)
            trial_path.unlink(missing_ok=True)
            return value

        report = SensitivityReport(graph, metric, target, baseline=trial([]))
        report.final = report.baseline
        say(f"{graph}: all quantized -> {metric} {report.baseline:.4g} (target {target:g})")
        if report.met or max_groups == 0:
            return report
        for i, name in enumerate(sorted(groups)):
            report.per_group[name] = trial([name])
            say(f"{graph}: [{i + 1}/{len(groups)}] {name} float -> {report.per_group[name]:.4g}")
        ranked = sorted(report.per_group, key=report.per_group.__getitem__, reverse=True)
        for name in ranked:
            if report.met or len(report.chosen) == max_groups:
                break
            candidate = [*report.chosen, name]
            value = trial(candidate) if report.chosen else report.per_group[name]
            report.trials.append((candidate, value))
            say(f"{graph}: float {candidate} -> {metric} {value:.4g}")
            if value > report.final:  # a group that does not help stays quantized
                report.chosen, report.final = candidate, value
    return report


def format_report(report: SensitivityReport) -> str:
    """A few readable lines: baseline, per group, the greedy steps and the choice."""
    if report.target is None:
        return f"{report.graph}: {report.metric} {report.final:.4g} (no sensitivity pass)"
    lines = [
        f"{report.graph}: {report.metric} all quantized {report.baseline:.4g}, "
        f"target {report.target:g}"
    ]
    for name, value in sorted(report.per_group.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {name:<40} float alone -> {value:.4g}")
    for chosen, value in report.trials:
        lines.append(f"  float {', '.join(chosen)} -> {value:.4g}")
    verdict = "met" if report.met else "NOT met"
    kept = ", ".join(report.chosen) or "nothing"
    lines.append(f"  kept float: {kept}; final {report.final:.4g} ({verdict})")
    groups = len(report.per_group)
    if groups and 2 * len(report.chosen) > groups:
        lines.append(
            f"  note: {len(report.chosen)} of {groups} groups stay float, so this {report.graph} "
            "runs mostly in float32 and gains little from INT8"
        )
    return "\n".join(lines)
