"""The ``xyrt`` command line: parse -> build objects -> run. Errors print one clear line.

Exit status: 0 done; 1 an error in the input or the environment (`XyrtError`, `OSError`: one
line); 2 a malformed command line; 3 an internal error, a bug in xyrt: one line naming the
exception and where it was raised (``XYRT_DEBUG=1`` shows the traceback); 130 interrupted.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from xyrt import __version__
from xyrt.calib.schemes import ATTENTION_MODES
from xyrt.commands import (
    cmd_bench,
    cmd_build,
    cmd_calib,
    cmd_convert,
    cmd_decode,
    cmd_encode,
    cmd_export,
    cmd_quantize,
    cmd_serve,
    cmd_stream,
    cmd_synth,
    cmd_tokenize,
    cmd_verify,
)
from xyrt.errors import XyrtError, one_line
from xyrt.runtime.backends.registry import BY_NAME, PRECISION_ALIASES, PRECISIONS

CHECKPOINT_HELP = "original .ckpt file or Hugging Face-layout folder (config.json + weights)"
SERVER_HELP = "an xyrt serve at URL (http://HOST:PORT) runs the model instead"


class _Parser(argparse.ArgumentParser):
    """Malformed command lines: one line on stderr naming the problem and where help is, exit 2."""

    def error(self, message: str):  # type: ignore[override]
        hint = f"see {self.prog} --help"
        if "required" in message:  # which arguments exist: the usage, as one line
            hint = " ".join(self.format_usage().split()) + "; " + hint
        self.exit(2, f"{self.prog}: error: {message} ({hint})\n")


@dataclass(frozen=True)
class AppliesWhen:
    """An option that takes effect only in some cases (``when``, in words: "with --stream");
    given in any other case it is refused, naming it, rather than silently ignored."""

    option: str  # as users write it: "--duration"
    when: str
    test: Callable[[argparse.Namespace], bool]
    dest: str  # the parsed attribute
    aliases: tuple[str, ...]  # every flag that sets it ("--hop", "--decode-hop")

    def named(self, argv: Sequence[str]) -> str:
        """The flag as ``argv`` wrote it (an alias too), else `option`."""
        for arg in argv:
            for flag in self.aliases:
                if arg == flag or arg.startswith(flag + "="):
                    return flag
        return self.option


def applies_when(
    p: argparse.ArgumentParser, when: str, test: Callable[[argparse.Namespace], bool], *options: str
) -> None:
    """Declare that ``options`` of subcommand ``p`` take effect only ``when`` (`check_applies`
    checks every declaration once, after parsing)."""
    unknown = [o for o in options if o not in p._option_string_actions]
    if unknown:  # a declaration naming no option of ``p`` would never fire
        raise ValueError(f"{p.prog} has no option(s) {unknown}")
    rules = p.get_default("applies_when") or ()
    actions = {o: p._option_string_actions[o] for o in options}
    declared = (
        AppliesWhen(o, when, test, a.dest, tuple(a.option_strings)) for o, a in actions.items()
    )
    p.set_defaults(applies_when=(*rules, *declared))


def given_options(argv: Sequence[str]) -> set[str]:
    """The ``dest`` of every option ``argv`` sets itself (not by default): the parser again,
    with every default suppressed."""
    parser = build_parser()
    parsers = [parser]
    while parsers:
        current = parsers.pop()
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers += list(action.choices.values())
            elif action.dest != "help":
                action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def check_applies(args: argparse.Namespace, argv: Sequence[str]) -> str | None:
    """The first option ``argv`` gives where it cannot take effect, as a message, or None."""
    rules = getattr(args, "applies_when", ())
    if not rules:
        return None
    given = given_options(argv)
    for rule in rules:
        if rule.dest in given and not rule.test(args):
            return f"{rule.named(argv)} applies only {rule.when}; it would have no effect here"
    return None


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def _model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model (one of)")
    src = g.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path, help=CHECKPOINT_HELP + " (PyTorch)")
    src.add_argument(
        "--model",
        type=Path,
        help="model directory from xyrt export/quantize (ONNX Runtime), engine directory "
        "from xyrt build (TensorRT), or a checkpoint (PyTorch)",
    )
    src.add_argument("--server", metavar="URL", help=SERVER_HELP)
    g.add_argument(
        "--config", type=Path, help="model YAML (default: config.yaml next to the checkpoint)"
    )
    g.add_argument(
        "--providers",
        metavar="P[,P]",
        help="ONNX Runtime execution providers for --model, comma-separated: cpu, cuda, "
        "tensorrt (default: cpu)",
    )
    _backend_args(g)


BACKEND_CHOICES = ["auto", *BY_NAME]  # registry names and aliases (xyrt.runtime.backends.registry)
PRECISION_CHOICES = [*PRECISIONS, *PRECISION_ALIASES]


def _backend_args(p: argparse.ArgumentParser, device: bool = True) -> None:
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


def _decode_stream_args(g: argparse._ArgumentGroup, *short: str) -> None:
    """The decode-stream settings, named ``--decode-*`` in every command (``xyrt decode
    --stream`` also takes the ``short`` names ``--hop``/``--context``/``--lookahead``); None when
    not given, so a command can tell when they were asked for."""
    dests = ("decode_hop", "decode_context", "decode_lookahead")
    names = dict(zip(dests, short or (None,) * 3, strict=True))
    helps = {
        "decode_hop": "least seconds per decode step (x 0.08; default 0.32)",
        "decode_context": "decode left context, seconds (default 2)",
        "decode_lookahead": "decode right context, seconds (default 0.16)",
    }
    for dest, alias in names.items():
        flags = ["--" + dest.replace("_", "-")] + ([alias] if alias else [])
        g.add_argument(*flags, dest=dest, type=float, help=helps[dest])
    g.add_argument("--max-hop", type=float, help="most seconds per decode step, to catch up")
    g.add_argument("--crossfade", type=float, help="seconds (default: the lookahead, <= hop)")


def _chunk_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("chunking")
    g.add_argument(
        "--overlap",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="overlap of the 30 s windows for long audio (default: 10, as published); each "
        "window keeps (30 - overlap) x 12.5 codes rounded down (5 -> 312 codes, 5.04 s overlap)",
    )
    g.add_argument(
        "--batch-size",
        type=int,
        help="windows run together (default: the backend's: 4 on a CPU, 32 on a GPU)",
    )
    g.add_argument(
        "--pad-to-30s",
        action="store_true",
        help="run every window as 30 s like the published code (same result, slower)",
    )
    g.add_argument(
        "--threads", type=int, help="CPU threads for PyTorch or ONNX Runtime (default: all cores)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="xyrt", description="Deployment toolkit for the XY-Tokenizer speech codec."
    )
    parser.add_argument("--version", action="version", version=f"xyrt {__version__}")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    p = sub.add_parser("encode", help="audio file -> codes (.npy, int64, shape (8, T))")
    _model_args(p)
    _chunk_args(p)
    p.add_argument("input", type=Path, help="audio file (wav, flac, ogg, mp3; any rate)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output .npy")
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("decode", help="codes (.npy) -> float32 WAV at the model's output rate")
    _model_args(p)
    _chunk_args(p)
    p.add_argument("input", type=Path, help="codes .npy of shape (8, T); with --stream: JSONL, -")
    p.add_argument("-o", "--output", type=Path, help="output .wav (needed unless --play)")
    p.add_argument(
        "--prompt",
        type=Path,
        metavar="CODES.npy",
        help="reference codes (8, P) decoded first as context and cut from the audio, as "
        "MOSS-TTSD's server does (10 s windows); with --stream, the stream's starting context",
    )
    g = p.add_argument_group("streaming (--stream: JSON lines of xyrt stream, file or - for stdin)")
    g.add_argument("--stream", action="store_true", help="decode code frames as they arrive")
    g.add_argument("--play", action="store_true", help="play the audio (--stream)")
    g.add_argument("--output-device", help="playback device for --play (default: system)")
    _decode_stream_args(g, "--hop", "--context", "--lookahead")
    streaming = ("--play", "--hop", "--max-hop", "--context", "--lookahead", "--crossfade")
    applies_when(p, "with --stream", lambda a: a.stream, *streaming)
    applies_when(p, "with --play (--stream)", lambda a: a.play, "--output-device")
    applies_when(
        p,
        "without --stream (a code stream is decoded step by step, not in 30 s windows)",
        lambda a: not a.stream,
        "--overlap",
        "--batch-size",
        "--pad-to-30s",
    )
    applies_when(
        p,
        "without --prompt (a prompted decode has its own 10 s windows)",
        lambda a: a.prompt is None or a.stream,
        "--overlap",
    )
    applies_when(
        p, "with a local model (--checkpoint or --model)", lambda a: not a.server, "--prompt"
    )
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("export", help="checkpoint -> ONNX encoder/decoder + manifest.json")
    p.add_argument("--checkpoint", type=Path, required=True, help=CHECKPOINT_HELP)
    p.add_argument("--config", type=Path, help="model YAML (default: config.yaml beside it)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output directory")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    p.add_argument("--verify", action="store_true", help="run xyrt verify after exporting")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("verify", help="check an exported model against the PyTorch model")
    p.add_argument(
        "model_dir", type=Path, help="from xyrt export/quantize, or an engine dir (xyrt build)"
    )
    p.add_argument("--checkpoint", type=Path, help="source checkpoint (default: from manifest)")
    p.add_argument("--config", type=Path, help="model YAML (default: config.yaml beside it)")
    p.add_argument(
        "--min-stage0",
        type=float,
        default=0.98,
        help="quantized/TensorRT models: least fraction of first-stage codes identical to the "
        "fp32 reference (default 0.98)",
    )
    _backend_args(p)
    p.set_defaults(func=cmd_verify)

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
    p.add_argument("--batch", default="1", help="batch sizes (default: 1)")
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
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("stream", help="real-time audio -> codes, one JSON line per 80 ms frame")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", type=Path, help="exported model directory, or a checkpoint")
    src.add_argument("--server", metavar="URL", help=SERVER_HELP)
    p.add_argument("--source", default="mic", help="mic, an audio file, or - (s16le PCM on stdin)")
    p.add_argument("--input-device", help="input device name or index for --source mic")
    p.add_argument("--rate", type=int, help="sample rate of the mic or of stdin PCM (Hz)")
    p.add_argument("--hop", type=float, default=0.32, help="seconds per step (x 0.08 s)")
    p.add_argument("--context", type=float, default=5.0, help="left context, seconds")
    p.add_argument("--lookahead", type=float, default=0.32, help="right context, seconds")
    p.add_argument(
        "--overlap",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="of the offline 30 s windows the streams follow (default: 10, as xyrt encode)",
    )
    p.add_argument("--realtime", action="store_true", help="play a file source at its own pace")
    p.add_argument("--duration", type=float, help="stop the microphone after this many seconds")
    p.add_argument("--providers", metavar="P[,P]", help="ONNX Runtime providers (default: cpu)")
    p.add_argument("--threads", type=int, help="CPU threads for ONNX Runtime or OpenVINO")
    _backend_args(p)
    p.add_argument("--stats", action="store_true", help="live statistics even when not a tty")
    p.add_argument(
        "--loopback", action="store_true", help="decode the codes as they arrive and play them"
    )
    p.add_argument("--output-device", help="playback device for --loopback (default: system)")
    _decode_stream_args(p.add_argument_group("decoding for --loopback (as xyrt decode --stream)"))
    p.add_argument("-o", "--output", type=Path, help="JSONL file (default: stdout)")
    applies_when(
        p, "with --source mic", lambda a: a.source == "mic", "--input-device", "--duration"
    )
    applies_when(
        p, "with --source mic or - (stdin PCM)", lambda a: a.source in ("mic", "-"), "--rate"
    )
    applies_when(
        p, "with an audio file as --source", lambda a: a.source not in ("mic", "-"), "--realtime"
    )
    applies_when(
        p,
        "with --loopback (they set its decoding)",
        lambda a: a.loopback,
        "--output-device",
        "--decode-hop",
        "--decode-context",
        "--decode-lookahead",
        "--max-hop",
        "--crossfade",
    )
    p.set_defaults(func=cmd_stream)

    p = sub.add_parser("serve", help="HTTP + WebSocket service on Ray Serve (batched, streaming)")
    p.add_argument(
        "--model", type=Path, required=True, help="model or engine directory, or a checkpoint"
    )
    _backend_args(p)
    p.add_argument("--providers", metavar="P[,P]", help="ONNX Runtime providers (default: cpu)")
    p.add_argument("--threads", type=int, help="CPU threads per replica (default 1)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    p.add_argument("--replicas", type=int, default=1, help="model replicas (default 1)")
    p.add_argument("--address", help="Ray cluster: auto or ray://HOST:10001 (default: a local Ray)")
    p.add_argument(
        "--gpus-per-replica", type=float, help="default: 1 where the backend uses a GPU, else 0"
    )
    p.add_argument(
        "--max-batch", type=int, help="requests per model run (default: the backend's batch)"
    )
    p.add_argument(
        "--max-delay-ms",
        type=float,
        default=10.0,
        help="longest a request waits for others to batch with (default 10)",
    )
    p.add_argument("--max-body-mb", type=float, default=64.0, help="largest request (default 64)")
    p.add_argument(
        "--max-streams", type=int, default=64, help="open WebSocket streams per replica (64)"
    )
    p.add_argument(
        "--drain-seconds",
        type=float,
        default=30.0,
        help="on SIGTERM/Ctrl-C, how long requests in flight may finish (default 30)",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("calib", help="audio files/folders -> calibration windows (.npz)")
    p.add_argument("inputs", nargs="*", help="audio files or folders (default: bundled speech)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output .npz")
    p.add_argument("--windows", default="1,5,10,30", help="window lengths, s (default: 1,5,10,30)")
    p.add_argument("--max-windows", type=int, default=64, help="cap on windows (default: 64)")
    p.add_argument("--max-minutes", type=float, default=20.0, help="cap on audio (default: 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--trim-db",
        type=float,
        default=-40.0,
        help="silence threshold re the loudest frame, dB (default: -40)",
    )
    p.set_defaults(func=cmd_calib)

    p = sub.add_parser("quantize", help="fp32 export -> int8 (CPU + TensorRT Q/DQ) or fp16 export")
    p.add_argument("model_dir", type=Path, help="directory written by xyrt export")
    p.add_argument("--precision", default="int8", choices=["int8", "fp16"])
    p.add_argument(
        "--scheme",
        help="int8 schemes, comma separated: cpu-dynamic (ONNX Runtime CPU), trt-qdq (TensorRT), "
        "openvino (NNCF, an OpenVINO IR); default: cpu-dynamic,trt-qdq",
    )
    p.add_argument("--calib", type=Path, help="calibration set from xyrt calib (trt-qdq, openvino)")
    p.add_argument(
        "--exclude", action="append", default=[], metavar="PREFIX", help="keep these nodes float"
    )
    p.add_argument("--no-sensitivity", action="store_true", help="skip the sensitivity pass")
    p.add_argument(
        "--attention",
        choices=list(ATTENTION_MODES),
        help="cpu-dynamic: float32 attention fused into ORT's MultiHeadAttention (default), left "
        "as exported, or its products (activation x activation MatMuls) quantized at run time",
    )
    p.add_argument(
        "--quantize-attention",
        action="store_const",
        const="int8",
        dest="attention",
        help="the same as --attention int8",
    )
    p.add_argument("--target-agreement", type=float, default=0.98, help="stage-0 codes vs fp32")
    p.add_argument("--target-snr", type=float, default=20.0, help="decoder SNR vs fp32, dB")
    p.add_argument("--granularity", default="module", choices=["module", "layer"])
    p.add_argument("--max-float-groups", type=int, default=4, help="most groups left float")
    p.add_argument("-o", "--output", type=Path, required=True, help="output directory")
    sensitivity = ("--target-agreement", "--target-snr", "--granularity", "--max-float-groups")
    applies_when(
        p,
        "with the sensitivity pass (not --no-sensitivity)",
        lambda a: not a.no_sensitivity,
        *sensitivity,
    )
    p.set_defaults(func=cmd_quantize)

    p = sub.add_parser("build", help="model directory -> TensorRT engines (GPU, TensorRT 10/11)")
    p.add_argument("model_dir", type=Path, help="directory from xyrt export or xyrt quantize")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"])
    p.add_argument("--batch", default="1,1,4", help="profile batch min,opt,max (default 1,1,4)")
    p.add_argument(
        "--seconds", default="0.08,10,30", help="profile window min,opt,max s (default 0.08,10,30)"
    )
    p.add_argument("--workspace", type=float, help="builder workspace limit, GiB")
    p.add_argument("-o", "--output", type=Path, required=True, help="engine directory")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("tokenize", help="audio corpus -> Parquet shards of codes (Ray Data)")
    p.add_argument(
        "inputs", nargs="+", help="audio folders, files, globs, or a JSONL/CSV/TSV manifest"
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    p.add_argument(
        "--model", type=Path, required=True, help="model or engine directory, or a checkpoint"
    )
    _backend_args(p)
    p.add_argument("--providers", metavar="P[,P]", help="ONNX Runtime providers (default: cpu)")
    p.add_argument("--address", help="Ray cluster: auto or ray://HOST:10001 (default: a local Ray)")
    p.add_argument("--workers", type=int, help="model actors (default: CPUs // threads, or GPUs)")
    p.add_argument("--threads-per-worker", type=int, default=1, help="CPU threads per actor")
    p.add_argument(
        "--batch-seconds", type=float, default=60.0, help="padded audio per model call (60)"
    )
    p.add_argument("--overlap", type=float, default=10.0, help="long-file window overlap, s")
    p.add_argument("--shard-size", type=int, default=256, help="items per Parquet shard (256)")
    p.set_defaults(func=cmd_tokenize)

    p = sub.add_parser("convert", help="original .ckpt + YAML <-> Hugging Face-layout folder")
    p.add_argument("source", type=Path, help=CHECKPOINT_HELP)
    p.add_argument(
        "-o", "--output", type=Path, required=True, help="HF folder, or .ckpt (YAML beside it)"
    )
    p.add_argument("--to", choices=["hf", "ckpt"], help="default: the layout SRC is not in")
    p.add_argument("--config", type=Path, help="model YAML of a .ckpt (default: beside it)")
    p.add_argument(
        "--weight-norm",
        choices=["parametrizations", "gv", "folded"],
        default="parametrizations",
        help="HF output: weight norm as parametrizations.weight.original0/1 (default, as the "
        "Hub files), weight_g/weight_v, or folded into one weight",
    )
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("synth", help="write a seeded synthetic checkpoint in the official layout")
    p.add_argument(
        "--config", type=Path, help="model YAML (default: the built-in xy_tokenizer_16k)"
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="output .ckpt")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_synth)
    for command in (*FILE_OUTPUT_COMMANDS, "convert"):
        _subparser(parser, command).add_argument(
            "--force",
            action="store_true",
            help="replace an existing output file that xyrt has no record of writing (one "
            "written under another XYRT_CACHE, or changed since)",
        )
    return parser


FILE_OUTPUT_COMMANDS = ("encode", "decode", "calib", "synth", "stream")  # -o names a file


def _check_finite(args: argparse.Namespace) -> None:
    """Every float option (``type=float``) must be finite: nan and inf are refused here, once."""
    for name, value in vars(args).items():
        if isinstance(value, float) and not math.isfinite(value):
            option = "--" + name.replace("_", "-")
            raise XyrtError(f"{option} must be a finite number, got {value}")


def raw_output(argv: Sequence[str]) -> str | None:
    """``-o``/``--output`` as typed (argparse's Path drops a trailing slash)."""
    for i, arg in enumerate(argv):
        if arg in ("-o", "--output") and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--output="):
            return arg.split("=", 1)[1]
        if arg.startswith("-o") and not arg.startswith("--") and len(arg) > 2:
            return arg[2:]
    return None


def _check_output_form(args: argparse.Namespace, argv: Sequence[str]) -> str | None:
    """A file output typed as a folder (``-o newdir/``), as a message, or None."""
    raw = raw_output(argv)
    if raw is None or not raw.endswith(("/", os.sep)):
        return None
    files = args.command in FILE_OUTPUT_COMMANDS
    if args.command == "convert":
        files = (args.to or ("ckpt" if args.source.is_dir() else "hf")) == "ckpt"
    if files:
        return (
            f"-o {raw} ends with '/', so it names a folder; {args.command} writes a file here: "
            f"give its name (such as {raw}{OUTPUT_EXAMPLE.get(args.command, 'out')})"
        )
    return None


OUTPUT_EXAMPLE = {
    "encode": "codes.npy",
    "decode": "audio.wav",
    "calib": "calib.npz",
    "synth": "model.ckpt",
    "stream": "codes.jsonl",
    "convert": "model.ckpt",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xyrt`` console script; returns the exit status."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    wrong = check_applies(args, argv) or _check_output_form(args, argv)
    if wrong is not None:
        _subparser(parser, args.command).error(wrong)
    if args.command == "decode" and args.output is None and not (args.stream and args.play):
        parser.error("decode needs -o/--output (or --stream with --play)")
    try:
        _check_finite(args)
        if args.command in FILE_OUTPUT_COMMANDS and getattr(args, "output", None) is not None:
            from xyrt.atomic import check_recordable, claim_file

            # before any work: a directory, a file xyrt did not write, a cache that cannot
            # record this output
            claim_file(args.output, force=args.force)
            check_recordable()
        args.func(args)
    except XyrtError as exc:
        print(f"xyrt {args.command}: error: {one_line(str(exc))}", file=sys.stderr)
        return 1
    except OSError as exc:  # the file system said no (permissions, full disk, a vanished file)
        print(f"xyrt {args.command}: error: {one_line(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"xyrt {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - not bad input but a bug: visible, in one line
        if os.environ.get("XYRT_DEBUG"):
            raise
        print(f"xyrt {args.command}: {internal_error(exc)}", file=sys.stderr)
        return 3
    return 0


def internal_error(exc: BaseException) -> str:
    """One line for an exception xyrt did not expect: its type, message and where it was
    raised, marked as a bug (bad input is an `XyrtError`, with a message of its own)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return (
        f"internal error: {type(exc).__name__}: {one_line(str(exc))[:300]}{where}. This is a "
        "bug in xyrt: please report it with the command; XYRT_DEBUG=1 shows the traceback"
    )


if __name__ == "__main__":
    sys.exit(main())
