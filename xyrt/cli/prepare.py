"""The prepare commands: a model in the form a run needs (synth, convert, export, quantize,
calib, build) and its check (verify)."""

from __future__ import annotations

from pathlib import Path

from xyrt import commands
from xyrt.calib.schemes import ATTENTION_MODES
from xyrt.cli.base import Subparsers, applies_when, model_option
from xyrt.cli.shared import CHECKPOINT_HELP, backend_args, batch_size

EXPORTED = "model directory from xyrt export"


def add_synth(sub: Subparsers) -> None:
    p = sub.add_parser("synth", help="write a seeded synthetic checkpoint in the official layout")
    p.add_argument(
        "--config", type=Path, help="model YAML (default: the built-in xy_tokenizer_16k)"
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="output .ckpt")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=commands.cmd_synth)


def add_convert(sub: Subparsers) -> None:
    p = sub.add_parser("convert", help="original .ckpt + YAML <-> Hugging Face-layout folder")
    model_option(p, CHECKPOINT_HELP, dest="source", positional=True, metavar="SRC")
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
    p.set_defaults(func=commands.cmd_convert)


def add_export(sub: Subparsers) -> None:
    p = sub.add_parser("export", help="checkpoint -> ONNX encoder/decoder + manifest.json")
    model_option(p, CHECKPOINT_HELP, dest="checkpoint", old_flags=("--checkpoint",))
    p.add_argument("--config", type=Path, help="model YAML (default: config.yaml beside it)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output directory")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    p.add_argument("--verify", action="store_true", help="run xyrt verify after exporting")
    p.set_defaults(func=commands.cmd_export)


def add_quantize(sub: Subparsers) -> None:
    p = sub.add_parser("quantize", help="fp32 export -> int8 (CPU + TensorRT Q/DQ) or fp16 export")
    model_option(p, EXPORTED, dest="model_dir", positional=True, metavar="DIR")
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
    p.set_defaults(func=commands.cmd_quantize)


def add_calib(sub: Subparsers) -> None:
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
    p.set_defaults(func=commands.cmd_calib)


def add_build(sub: Subparsers) -> None:
    p = sub.add_parser("build", help="model directory -> TensorRT engines (GPU, TensorRT 10/11)")
    built = EXPORTED + " or xyrt quantize"
    model_option(p, built, dest="model_dir", positional=True, metavar="DIR")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"])
    profile = "windows per model run the engines take: profile min,opt,max (default 1,1,4)"
    batch_size(p, profile, dest="batch", old="--batch", default="1,1,4", metavar="MIN,OPT,MAX")
    p.add_argument(
        "--seconds", default="0.08,10,30", help="profile window min,opt,max s (default 0.08,10,30)"
    )
    p.add_argument("--workspace", type=float, help="builder workspace limit, GiB")
    p.add_argument("-o", "--output", type=Path, required=True, help="engine directory")
    p.set_defaults(func=commands.cmd_build)


def add_verify(sub: Subparsers) -> None:
    p = sub.add_parser("verify", help="check an exported model against the PyTorch model")
    model_option(
        p,
        "from xyrt export/quantize, an engine directory (xyrt build), or a checkpoint (PyTorch "
        "at --precision/--device against float32 on the CPU)",
        dest="model_dir",
        positional=True,
        metavar="DIR",
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
    backend_args(p)
    p.set_defaults(func=commands.cmd_verify)


WORKFLOW = (add_synth, add_convert, add_export, add_quantize, add_calib, add_build, add_verify)
