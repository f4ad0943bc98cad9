"""The measure command: latency per backend and stage (bench)."""

from __future__ import annotations

from pathlib import Path

from xyrt import commands
from xyrt.cli.base import Subparsers, applies_when
from xyrt.cli.shared import batch_size


def add_bench(sub: Subparsers) -> None:
    p = sub.add_parser("bench", help="latency per backend and stage, against the published code")
    p.add_argument("--checkpoint", type=Path, help="official-layout .ckpt (PyTorch backends)")
    p.add_argument(
        "--model", type=Path, nargs="+", metavar="DIR", help="exported model directories"
    )
    p.add_argument(
        "--backends",
        help="comma-separated subset (default: all but pytorch-bf16; unavailable ones are "
        "listed as skipped with the reason)",
    )
    p.add_argument("--seconds", default="1,5,10,30", help="clip lengths (default: 1,5,10,30)")
    each = "clips per model run, comma-separated, each measured (default: 1)"
    batch_size(p, each, dest="batch", old="--batch", default="1", metavar="N[,N]")
    p.add_argument("--runs", type=int, default=5, help="timed runs per case (default: 5)")
    p.add_argument("--warmup", type=int, default=1, help="warm-up runs per case (default: 1)")
    p.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    p.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="FILE",
        help="write the JSON report to FILE (or stdout, instead of the table)",
    )
    p.add_argument(
        "--plot", type=Path, metavar="FILE.png", help="stages, RTF and speed-vs-agreement plot"
    )
    p.add_argument(
        "--pick",
        type=float,
        metavar="AGREEMENT",
        help="name the fastest backend per case whose stage-0 codes agree with FP32 at least "
        "this much (0-1) on held-out speech (decode: SNR >= --pick-snr)",
    )
    p.add_argument(
        "--pick-snr", type=float, default=25.0, help="decoder SNR dB for --pick (default 25)"
    )
    applies_when(p, "with --pick", lambda a: a.pick is not None, "--pick-snr")
    p.set_defaults(func=commands.cmd_bench)


WORKFLOW = (add_bench,)
