"""The run commands: a model on audio or codes, offline (encode, decode), live (stream), over a
corpus (tokenize) or as a service (serve)."""

from __future__ import annotations

from pathlib import Path

from xyrt import commands
from xyrt.cli.base import Subparsers, applies_when, model_option
from xyrt.cli.shared import (
    SERVER_HELP,
    backend_args,
    batch_size,
    chunk_args,
    decode_stream_args,
    model_args,
)
from xyrt.runtime.chunking import OVERLAP_SECONDS
from xyrt.runtime.streams.encode_stream import EncodeStreamOptions

MODEL_OR_ENGINE = "model or engine directory, or a checkpoint"


def add_encode(sub: Subparsers) -> None:
    p = sub.add_parser("encode", help="audio file -> codes (.npy, int64, shape (8, T))")
    model_args(p)
    chunk_args(p)
    p.add_argument("input", type=Path, help="audio file (wav, flac, ogg, mp3; any rate)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output .npy")
    p.set_defaults(func=commands.cmd_encode)


def add_decode(sub: Subparsers) -> None:
    p = sub.add_parser("decode", help="codes (.npy) -> float32 WAV at the model's output rate")
    model_args(p)
    chunk_args(p)
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
    decode_stream_args(g, "--hop", "--context", "--lookahead")
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
    applies_when(p, "with a local model (--model)", lambda a: not a.server, "--prompt")
    p.set_defaults(func=commands.cmd_decode)


def add_stream(sub: Subparsers) -> None:
    p = sub.add_parser("stream", help="real-time audio -> codes, one JSON line per 80 ms frame")
    src = model_option(p, "exported model directory, or a checkpoint")
    src.add_argument("--server", metavar="URL", help=SERVER_HELP)
    p.add_argument("--source", default="mic", help="mic, an audio file, or - (s16le PCM on stdin)")
    p.add_argument("--input-device", help="input device name or index for --source mic")
    p.add_argument("--rate", type=int, help="sample rate of the mic or of stdin PCM (Hz)")
    enc = EncodeStreamOptions()
    for flag, what in (
        ("hop", "seconds per step (x 0.08; "),
        ("context", "left context, seconds ("),
        ("lookahead", "right context, seconds ("),
    ):
        value = getattr(enc, flag)
        p.add_argument(f"--{flag}", type=float, default=value, help=f"{what}default {value:g})")
    p.add_argument(
        "--overlap",
        type=float,
        default=OVERLAP_SECONDS,
        metavar="SECONDS",
        help=f"of the offline 30 s windows the streams follow (default: {OVERLAP_SECONDS:g}, as "
        "xyrt encode)",
    )
    p.add_argument("--realtime", action="store_true", help="play a file source at its own pace")
    p.add_argument("--duration", type=float, help="stop the microphone after this many seconds")
    p.add_argument("--providers", metavar="P[,P]", help="ONNX Runtime providers (default: cpu)")
    p.add_argument("--threads", type=int, help="CPU threads for ONNX Runtime or OpenVINO")
    backend_args(p)
    p.add_argument("--stats", action="store_true", help="live statistics even when not a tty")
    p.add_argument(
        "--loopback", action="store_true", help="decode the codes as they arrive and play them"
    )
    p.add_argument("--output-device", help="playback device for --loopback (default: system)")
    decode_stream_args(p.add_argument_group("decoding for --loopback (as xyrt decode --stream)"))
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
    p.set_defaults(func=commands.cmd_stream)


def add_tokenize(sub: Subparsers) -> None:
    p = sub.add_parser("tokenize", help="audio corpus -> Parquet shards of codes (Ray Data)")
    p.add_argument(
        "inputs", nargs="+", help="audio folders, files, globs, or a JSONL/CSV/TSV manifest"
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    model_option(p, MODEL_OR_ENGINE)
    backend_args(p)
    p.add_argument("--providers", metavar="P[,P]", help="ONNX Runtime providers (default: cpu)")
    p.add_argument("--address", help="Ray cluster: auto or ray://HOST:10001 (default: a local Ray)")
    p.add_argument("--workers", type=int, help="model actors (default: CPUs // threads, or GPUs)")
    p.add_argument("--threads-per-worker", type=int, default=1, help="CPU threads per actor")
    p.add_argument(
        "--batch-seconds", type=float, default=60.0, help="padded audio per model call (60)"
    )
    p.add_argument(
        "--overlap", type=float, default=OVERLAP_SECONDS, help="long-file window overlap, s"
    )
    p.add_argument("--shard-size", type=int, default=256, help="items per Parquet shard (256)")
    p.set_defaults(func=commands.cmd_tokenize)


def add_serve(sub: Subparsers) -> None:
    p = sub.add_parser("serve", help="HTTP + WebSocket service on Ray Serve (batched, streaming)")
    model_option(p, MODEL_OR_ENGINE)
    backend_args(p)
    p.add_argument("--providers", metavar="P[,P]", help="ONNX Runtime providers (default: cpu)")
    p.add_argument("--threads", type=int, help="CPU threads per replica (default 1)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    p.add_argument("--replicas", type=int, default=1, help="model replicas (default 1)")
    p.add_argument("--address", help="Ray cluster: auto or ray://HOST:10001 (default: a local Ray)")
    p.add_argument(
        "--gpus-per-replica", type=float, help="default: 1 where the backend uses a GPU, else 0"
    )
    batch_size(
        p,
        "most requests per model run, batched as they arrive (default: the backend's batch, "
        "as xyrt encode's)",
        dest="batch_size",
        old="--max-batch",
        type=int,
        metavar="N",
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
    p.set_defaults(func=commands.cmd_serve)


WORKFLOW = (add_encode, add_decode, add_stream, add_tokenize, add_serve)
