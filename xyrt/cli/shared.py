"""Option sets that several commands share: the model and its backend, the offline windows
(chunking), and the decode-stream settings."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from xyrt.cli.base import HIDDEN, alias, model_option
from xyrt.runtime.backends.registry import BY_NAME, PRECISION_ALIASES, PRECISIONS
from xyrt.runtime.streams.decode_stream import DecodeStreamOptions

CHECKPOINT_HELP = "original .ckpt file or Hugging Face-layout folder (config.json + weights)"
MODEL_HELP = (
    "model directory from xyrt export/quantize (ONNX Runtime), engine directory from xyrt "
    "build (TensorRT), or a checkpoint: " + CHECKPOINT_HELP + " (PyTorch)"
)
SERVER_HELP = "an xyrt serve at URL (http://HOST:PORT) runs the model instead"
BACKEND_CHOICES = ["auto", *BY_NAME]  # registry names and aliases (xyrt.runtime.backends.registry)
PRECISION_CHOICES = [*PRECISIONS, *PRECISION_ALIASES]


def model_args(p: argparse.ArgumentParser) -> None:
    """encode and decode: --model (--checkpoint: a hidden alias) or --server, and the backend."""
    g = p.add_argument_group("model (one of)")
    src = model_option(g, MODEL_HELP)
    src.add_argument("--checkpoint", type=Path, help=HIDDEN)  # --model takes a checkpoint too
    src.add_argument("--server", metavar="URL", help=SERVER_HELP)
    g.add_argument("--config", type=Path, help="model YAML of a .ckpt (default: beside it)")
    g.add_argument(
        "--providers",
        metavar="P[,P]",
        help="ONNX Runtime execution providers for --model, comma-separated: cpu, cuda, "
        "tensorrt (default: cpu)",
    )
    backend_args(g)


def backend_args(p: argparse.ArgumentParser | argparse._ArgumentGroup, device: bool = True) -> None:
    p.add_argument(
        "--backend",
        default="auto",
        choices=BACKEND_CHOICES,
        metavar="NAME",
        help="onnxruntime (ort), openvino, tensorrt (trt) or torch (pytorch); default auto: "
        "TensorRT for an engine directory, ONNX Runtime for an export, PyTorch for a checkpoint",
    )
    p.add_argument(
        "--precision",
        choices=PRECISION_CHOICES,
        metavar="P",
        help="torch: auto (default: fp32 on a CPU; bf16 on an Ampere-or-later GPU, fp16 on an "
        "older one), fp32 (IEEE float32), bf16, fp16 (CUDA); openvino: fp32, bf16, int8 "
        "(default: the directory's own)",
    )
    if device:
        p.add_argument(
            "--device",
            metavar="DEV",
            help="cpu, cuda or cuda:N (torch backend; with ONNX Runtime, cuda picks its CUDA "
            "provider); default cpu",
        )


def decode_stream_args(g: argparse._ArgumentGroup, *short: str) -> None:
    """The decode-stream settings, named ``--decode-*`` in every command (``xyrt decode
    --stream`` also takes the ``short`` names ``--hop``/``--context``/``--lookahead``); None when
    not given, so a command can tell when they were asked for."""
    dests = ("decode_hop", "decode_context", "decode_lookahead")
    names = dict(zip(dests, short or (None,) * 3, strict=True))
    d = DecodeStreamOptions()
    helps = {
        "decode_hop": f"least seconds per decode step (x 0.08; default {d.hop:g})",
        "decode_context": f"decode left context, seconds (default {d.context:g})",
        "decode_lookahead": f"decode right context, seconds (default {d.lookahead:g})",
    }
    for dest, short_name in names.items():
        flags = ["--" + dest.replace("_", "-")] + ([short_name] if short_name else [])
        g.add_argument(*flags, dest=dest, type=float, help=helps[dest])
    g.add_argument("--max-hop", type=float, help="most seconds per decode step, to catch up")
    g.add_argument("--crossfade", type=float, help="seconds (default: the lookahead, <= hop)")


def chunk_args(p: argparse.ArgumentParser) -> None:
    """encode and decode: the offline 30 s windows and how many run together."""
    g = p.add_argument_group("chunking")
    g.add_argument(
        "--overlap",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="overlap of the 30 s windows for long audio (default: 10, as published); each "
        "window keeps (30 - overlap) x 12.5 codes rounded down (5 -> 312 codes, 5.04 s overlap)",
    )
    batch_size(
        g,
        "most windows per model run (default: the backend's: 4 on a CPU, 32 on a GPU)",
        type=int,
        metavar="N",
    )
    g.add_argument(
        "--pad-to-30s",
        action="store_true",
        help="run every window as 30 s like the published code (same result, slower)",
    )
    g.add_argument(
        "--threads", type=int, help="CPU threads for PyTorch or ONNX Runtime (default: all cores)"
    )


def batch_size(
    p: argparse.ArgumentParser | argparse._ArgumentGroup,
    help: str,
    *,
    dest: str = "batch_size",
    old: str | None = None,
    **kwargs: Any,
) -> None:
    """``--batch-size``, the one spelling of how many clips (windows; requests, in serve) one
    model run takes; ``old``, the command's former flag, stays a hidden alias."""
    p.add_argument("--batch-size", dest=dest, help=help, **kwargs)
    if old is not None:
        alias(p, old, dest=dest)
