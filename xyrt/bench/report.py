"""Rendering a bench report: a readable table, and a plot (stage breakdown; RTF vs length)."""

from __future__ import annotations

from pathlib import Path

from xyrt.bench.flops import DECODE_STAGES, ENCODE_STAGES
from xyrt.errors import require
from xyrt.runtime.backends.base import UNATTRIBUTED

JSON_SCHEMA = {
    "type": "object",
    "required": ["schema", "machine", "gemm_peak", "model", "options", "baseline", "backends"],
    "properties": {
        "schema": {"const": "xyrt-bench/1"},
        "gemm_peak": {"type": "object"},
        "phases": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}},
        "backends": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "status"],
                "properties": {
                    "status": {"enum": ["ok", "skipped", "failed"]},
                    "cases": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": [
                                "op",
                                "seconds",
                                "batch",
                                "audio_seconds",
                                "latency_ms",
                                "rtf",
                                "throughput",
                                "gflops",
                                "peak_fraction",
                                "stages_ms",
                                "stages_total_ms",
                            ],
                            "properties": {
                                "op": {"enum": ["encode", "decode"]},
                                "latency_ms": {
                                    "type": "object",
                                    "required": ["p50", "p90", "p99", "mean", "min"],
                                },
                                "stages_ms": {
                                    "type": "object",
                                    "additionalProperties": {"type": "number", "minimum": 0},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def format_table(report: dict) -> str:
    """One row per backend, op, clip length and batch; skipped backends with their reason."""
    cols = (
        f"{'backend':<23}{'op':<7}{'sec':>5}{'B':>3}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}"
        f"{'RTF':>8}{'x RT':>8}{'GFLOP/s':>9}{'%peak':>7}{'vs pub':>8}{'load s':>8}{'RSS MiB':>9}"
        f"{'GPU MiB':>9}"
        f"{'s0 %':>7}{'all %':>7}{'SNR dB':>8}"
    )
    lines = [cols, "-" * len(cols)]
    skipped = []
    for b in report["backends"]:
        if b["status"] != "ok":
            label = "FAILED: " if b["status"] == "failed" else ""
            skipped.append(f"  {b['name']}: {label}{b['reason']}")
            continue
        for c in b["cases"]:
            lat = c["latency_ms"]
            ratio = c.get("speedup_vs_published")
            gpu_mib = b.get("gpu_peak_mib")
            lines.append(
                f"{b['name']:<23}{c['op']:<7}{c['seconds']:>5g}{c['batch']:>3}"
                f"{lat['p50']:>10.1f}{lat['p90']:>10.1f}{lat['p99']:>10.1f}{c['rtf']:>8.3f}"
                f"{c['throughput']:>8.1f}{c['gflops']:>9.1f}{100 * c['peak_fraction']:>6.1f}%"
                f"{(f'{ratio:.2f}x' if ratio else '-'):>8}{b['load_seconds']:>8.2f}"
                f"{b['peak_rss_mib']:>9.0f}"
                f"{(f'{gpu_mib:.0f}' if gpu_mib is not None else '-'):>9}"
                + _accuracy_cells(b.get("accuracy"))
            )
    lines.append(
        f"matmul peaks measured here (%peak: each backend against its own device and "
        f"precision): {format_peaks(report['gemm_peak'])}"
    )
    skipped_peaks = report["gemm_peak"].get("skipped") or {}
    for what, why in skipped_peaks.items():
        lines.append(f"{what} peak not measured: {why}")
    lines.append(
        "RTF = p50 latency / audio seconds; x RT = audio seconds per second; vs pub = the "
        "published code's p50 on the same device / this p50; load s = seconds to load the "
        "backend's model (sessions, compilation) before its first run, not in any latency"
    )
    if report.get("accuracy_reference"):
        lines.append(
            f"accuracy vs {report['accuracy_reference']} (FP32) on the held-out speech: s0 % / "
            "all % = stage-0 / all-stage codes identical, SNR dB = decoding the FP32 codes"
        )
    if report.get("pick"):
        lines.extend(format_pick(report))
    if report["model"].get("synthetic_weights"):
        lines.append("weights: SYNTHETIC (xyrt synth, full-size config): timings real, audio not")
    if skipped:
        lines.append("not measured:")
        lines.extend(skipped)
    if report.get("phases"):
        lines.append(format_phases(report["phases"]))
    lines.append("")
    lines.append(format_stages(report))
    return "\n".join(lines)


def format_phases(phases: dict[str, float]) -> str:
    """'bench time: build 0.0 s, peak 3.1 s, ort-fp32 12.0 s, ... (total 20.1 s)'."""
    parts = ", ".join(f"{name} {sec:.1f} s" for name, sec in phases.items())
    return f"bench time: {parts} (total {sum(phases.values()):.1f} s)"


def format_peaks(peak: dict) -> str:
    """'cpu fp32 ... GFLOP/s, ...; gpu NAME fp32 ... TFLOP/s, ...' from a report's gemm_peak."""
    parts = []
    cpu = [
        (k, peak.get(key))
        for k, key in (("fp32", "gflops"), ("bf16", "bf16_gflops"), ("int8", "int8_gops"))
    ]
    cpu_text = ", ".join(f"{k} {v:.0f}" for k, v in cpu if v)
    if cpu_text:
        parts.append(f"cpu {cpu_text} GFLOP/s")
    gpu = peak.get("gpu") or {}
    gpu_text = ", ".join(
        f"{k} {gpu[f'{k}_tflops']:.1f}"
        for k in ("fp32", "tf32", "bf16", "fp16")
        if f"{k}_tflops" in gpu
    )
    if gpu_text:
        parts.append(f"gpu {gpu.get('device', '')} {gpu_text} TFLOP/s")
    return "; ".join(parts) or "none"


def _accuracy_cells(acc: dict | None) -> str:
    if acc is None:
        return f"{'-':>7}{'-':>7}{'-':>8}"
    snr = "same" if acc["snr_db"] is None else f"{acc['snr_db']:.1f}"
    return f"{100 * acc['stage0']:>7.1f}{100 * acc['all_stages']:>7.1f}{snr:>8}"


def format_pick(report: dict) -> list[str]:
    """The --pick summary: per case, the fastest backend meeting the thresholds."""
    p = report["pick"]
    lines = [
        f"pick: fastest backend with stage-0 agreement >= {100 * p['min_stage0']:.1f}% (encode) "
        f"or decoder SNR >= {p['min_snr_db']:g} dB (decode), on this machine:"
    ]
    for c in p["cases"]:
        ratio = c["speedup_vs_published"]
        quality = (
            f"stage-0 {100 * c['stage0']:.1f}%"
            if c["op"] == "encode"
            else ("SNR identical" if c["snr_db"] is None else f"SNR {c['snr_db']:.1f} dB")
        )
        lines.append(
            f"  {c['op']} {c['seconds']:g} s, batch {c['batch']}: {c['backend']} "
            f"(p50 {c['p50_ms']:.1f} ms{f', {ratio:.2f}x published' if ratio else ''}, {quality})"
        )
    if not p["cases"]:
        lines.append("  none meets the thresholds")
    return lines


def _largest_case(b: dict, op: str) -> dict | None:
    cases = [c for c in b.get("cases", []) if c["op"] == op and c["batch"] == 1]
    return max(cases, key=lambda c: c["seconds"]) if cases else None


def format_stages(report: dict) -> str:
    """Per-stage mean ms for the longest clip at batch 1, per backend."""
    lines = []
    for op, stages in (("encode", ENCODE_STAGES), ("decode", DECODE_STAGES)):
        rows = [(b, _largest_case(b, op)) for b in report["backends"] if b["status"] == "ok"]
        rows = [(b, c) for b, c in rows if c]
        if not rows:
            continue
        lines.append(
            f"{op} stages (ms, longest clip, batch 1; {UNATTRIBUTED}: the part of the profiled "
            "run no node or kernel accounts for):"
        )
        head = f"  {'stage':<18}" + "".join(f"{b['name']:>19}" for b, _ in rows)
        lines.append(head)
        for stage in (*stages, "other", UNATTRIBUTED):
            values = [c["stages_ms"].get(stage) for _, c in rows]
            if all(v is None for v in values):
                continue
            lines.append(
                f"  {stage:<18}"
                + "".join(f"{v:>19.1f}" if v is not None else f"{'-':>19}" for v in values)
            )
        lines.append(
            f"  {'(sum / run)':<18}"
            + "".join(
                f"{sum(c['stages_ms'].values()):>10.1f} / {c['stages_total_ms']:<6.1f}"
                for _, c in rows
            )
        )
        lines.append("  how: " + "; ".join(f"{b['name']}: {b['stage_method']}" for b, _ in rows))
    return "\n".join(lines)


def _speed_vs_agreement(ax, ok: list[dict]) -> None:
    """Encode speed (vs published, longest clip, batch 1) against stage-0 agreement."""
    for b in ok:
        case, acc = _largest_case(b, "encode"), b.get("accuracy")
        if case is None or acc is None or not case.get("speedup_vs_published"):
            continue
        x, y = 100 * acc["stage0"], case["speedup_vs_published"]
        ax.scatter([x], [y])
        ax.annotate(b["name"], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("stage-0 codes identical to FP32, held-out speech (%)")
    ax.set_ylabel("encode speed-up vs published (x)")
    ax.set_title("speed against agreement (encode, longest clip)")
    ax.grid(alpha=0.3)


def plot(report: dict, path: str | Path) -> Path:
    """PNG with the stage breakdown per backend (longest clip) and RTF against clip length."""
    matplotlib = require("matplotlib", "plot", "xyrt bench --plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from xyrt.atomic import atomic_write

    ok = [b for b in report["backends"] if b["status"] == "ok"]
    fig, axes = plt.subplots(1, 4, figsize=(22, 5.5))
    for ax, op, stages in ((axes[0], "encode", ENCODE_STAGES), (axes[1], "decode", DECODE_STAGES)):
        rows = [(b["name"], _largest_case(b, op)) for b in ok]
        rows = [(n, c) for n, c in rows if c]
        bottom = [0.0] * len(rows)
        for stage in (*stages, "other", UNATTRIBUTED):
            values = [c["stages_ms"].get(stage, 0.0) for _, c in rows]
            if any(values):
                ax.bar([n for n, _ in rows], values, bottom=bottom, label=stage)
                bottom = [a + v for a, v in zip(bottom, values, strict=True)]
        if rows:
            ax.set_ylim(0, 1.12 * max(bottom))
        secs = rows[0][1]["seconds"] if rows else 0
        ax.set_title(f"{op}: stages of a {secs:g} s clip (batch 1)")
        ax.set_ylabel("ms")
        ax.tick_params(axis="x", rotation=20)
        ax.legend(fontsize=7)
    ax = axes[2]
    for b in ok:
        for op, style in (("encode", "-o"), ("decode", "--s")):
            cases = sorted(
                (c for c in b["cases"] if c["op"] == op and c["batch"] == 1),
                key=lambda c: c["seconds"],
            )
            ax.plot(
                [c["seconds"] for c in cases],
                [c["rtf"] for c in cases],
                style,
                label=f"{b['name']} {op}",
            )
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("clip length (s)")
    ax.set_ylabel("real-time factor (log; lower is faster)")
    ax.set_title("RTF against clip length")
    ax.legend(fontsize=7)
    _speed_vs_agreement(axes[3], ok)
    note = "synthetic weights" if report["model"].get("synthetic_weights") else ""
    fig.suptitle(f"xyrt bench {note}".strip())
    fig.tight_layout()
    path = Path(path)
    with atomic_write(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return path
