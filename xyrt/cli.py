"""The ``xyrt`` command line: parse -> build objects -> run. Errors print one clear line."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from xyrt import __version__
from xyrt.config import INPUT_SAMPLE_RATE
from xyrt.errors import XyrtError, require
from xyrt.runtime.audio import load_audio, write_wav
from xyrt.runtime.codes import load_codes, save_codes
from xyrt.runtime.decode_io import DevicePlayer, WavWriter, read_frames, run_decode


def parse_list(text: str, kind: type, name: str) -> tuple:
    """'1,5,10' -> (1, 5, 10); `XyrtError` naming the option on bad input."""
    try:
        return tuple(kind(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise XyrtError(f"{name} takes a comma-separated list of numbers, got {text!r}") from exc


CHECKPOINT_HELP = "original .ckpt file or Hugging Face-layout folder (config.json + weights)"


class _Parser(argparse.ArgumentParser):
    """Malformed command lines: one line on stderr naming the problem and where help is, exit 2."""

    def error(self, message: str):  # type: ignore[override]
        hint = f"see {self.prog} --help"
        if "required" in message:  # which arguments exist: the usage, as one line
            hint = " ".join(self.format_usage().split()) + "; " + hint
        self.exit(2, f"{self.prog}: error: {message} ({hint})\n")


def _model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model (one of)")
    src = g.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path, help=CHECKPOINT_HELP + " (PyTorch)")
    src.add_argument(
        "--model",
        type=Path,
        help="model directory from xyrt export/quantize (ONNX Runtime) or engine directory "
        "from xyrt build (TensorRT); no torch",
    )
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


def _backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "onnxruntime", "openvino", "tensorrt"],
        help="runtime for --model (default: auto, TensorRT for an engine directory, else "
        "ONNX Runtime)",
    )
    p.add_argument(
        "--precision",
        choices=["f32", "bf16", "int8"],
        help="OpenVINO inference precision (default: the directory's own: f32, or int8 for a "
        "quantized directory); bf16 needs AVX512-BF16 or AMX",
    )


def _load_runtime(args: argparse.Namespace, **kwargs):
    """xyrt.runtime.load for --model with --backend/--precision/--providers/--threads."""
    import xyrt.runtime

    if args.precision is not None and args.backend != "openvino":
        raise XyrtError("--precision is an OpenVINO option: add --backend openvino")
    return xyrt.runtime.load(
        args.model,
        backend=args.backend,
        providers=args.providers.split(",") if args.providers else None,
        threads=args.threads,
        precision=args.precision,
        **kwargs,
    )


def _chunk_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("chunking")
    g.add_argument(
        "--overlap",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="overlap of the 30 s windows for long audio (default: 10, as published)",
    )
    g.add_argument("--batch-size", type=int, default=4, help="windows run together (default: 4)")
    g.add_argument(
        "--pad-to-30s",
        action="store_true",
        help="run every window as 30 s like the published code (same result, slower)",
    )
    g.add_argument(
        "--threads", type=int, help="CPU threads for PyTorch or ONNX Runtime (default: all cores)"
    )


def _codec(args: argparse.Namespace):
    from xyrt.checks import threads
    from xyrt.runtime.chunking import codes_per_step

    if args.batch_size < 1:
        raise XyrtError(f"--batch-size must be at least 1, got {args.batch_size}")
    threads(args.threads, "--threads")
    codes_per_step(args.overlap)  # a bad --overlap fails before a model is loaded
    progress = sys.stderr.isatty()
    if args.model is not None:
        if args.pad_to_30s:
            raise XyrtError("--pad-to-30s is for the PyTorch model (--checkpoint) only")
        return _load_runtime(args, batch_size=args.batch_size, progress=progress)
    if args.backend != "auto" or args.precision is not None:
        raise XyrtError("--backend/--precision choose the runtime for --model, not --checkpoint")
    torch = require("torch", "export", "the PyTorch model (--checkpoint)")
    if args.threads:
        torch.set_num_threads(args.threads)
    from xyrt.export.codec import XYCodec

    return XYCodec.from_checkpoint(
        args.checkpoint,
        args.config,
        batch_size=args.batch_size,
        pad_to_30s=args.pad_to_30s,
        progress=progress,
    )


def _report_backend(codec) -> None:
    from xyrt.runtime.onnxrt import OnnxRuntimeBackend

    if isinstance(codec.backend, OnnxRuntimeBackend):
        used = sorted({p for graph in codec.backend.providers.values() for p in graph})
        print(f"ONNX Runtime providers in use: {', '.join(used)}", file=sys.stderr)


def _cmd_encode(args: argparse.Namespace) -> None:
    wav = load_audio(args.input)
    codec = _codec(args)
    t0 = time.perf_counter()
    codes = codec.encode(wav, INPUT_SAMPLE_RATE, overlap=args.overlap)
    dt = time.perf_counter() - t0
    _report_backend(codec)
    save_codes(args.output, codes)
    print(
        f"{args.input}: {len(wav) / INPUT_SAMPLE_RATE:.2f} s -> codes {codes.shape} in {dt:.2f} s "
        f"-> {args.output}",
        file=sys.stderr,
    )


def _cmd_decode(args: argparse.Namespace) -> None:
    if args.stream:
        return _decode_stream(args)
    codec = _codec(args)
    codes = load_codes(args.input, codec.info.num_quantizers, codec.info.codebook_size)
    t0 = time.perf_counter()
    audio = codec.decode(codes, overlap=args.overlap)
    dt = time.perf_counter() - t0
    _report_backend(codec)
    write_wav(args.output, audio, codec.output_sample_rate)
    print(
        f"{args.input}: codes {codes.shape} -> {len(audio) / codec.output_sample_rate:.2f} s at "
        f"{codec.output_sample_rate} Hz in {dt:.2f} s -> {args.output}",
        file=sys.stderr,
    )


def _decode_stream(args: argparse.Namespace) -> None:
    from contextlib import ExitStack

    from xyrt.runtime.decode_stream import DecodeStream, DecodeStreamOptions

    options = DecodeStreamOptions(
        args.hop, args.context, args.lookahead, args.max_hop, args.crossfade
    )
    if str(args.input) != "-" and not args.input.is_file():
        raise XyrtError(f"code frames file not found: {args.input} (JSON lines from xyrt stream)")
    codec = _codec(args)
    stream = DecodeStream(options, codec.info)
    with ExitStack() as stack:
        lines = sys.stdin if str(args.input) == "-" else stack.enter_context(open(args.input))
        writer = (
            stack.enter_context(WavWriter(args.output, stream.sample_rate)) if args.output else None
        )
        player = DevicePlayer(stream.sample_rate, args.output_device) if args.play else None
        if player is not None:
            stack.callback(player.close)

        def out(audio) -> None:
            if writer is not None:
                writer.write(audio)
            if player is not None:
                player.play(audio)

        stats = run_decode(codec, read_frames(lines, codec.info.num_quantizers), stream, out)
        if stats.frames == 0:
            raise XyrtError(f"no code frames in {args.input}; expected JSON lines from xyrt stream")
    where = f" -> {args.output}" if args.output else ""
    print(f"summary: {stats.line()}{where}", file=sys.stderr)


def _cmd_synth(args: argparse.Namespace) -> None:
    require("torch", "export", "xyrt synth")
    from xyrt.export.synth import synth_checkpoint

    t0 = time.perf_counter()
    path = synth_checkpoint(args.output, args.config, args.seed)
    size = path.stat().st_size / 2**20
    print(
        f"wrote {path} ({size:.1f} MiB, seed {args.seed}; SYNTHETIC weights, not the official "
        f"ones) and {path.parent / 'config.yaml'} in {time.perf_counter() - t0:.1f} s",
        file=sys.stderr,
    )


def _cmd_convert(args: argparse.Namespace) -> None:
    from xyrt.errors import require

    require("torch", "export", "xyrt convert")
    from xyrt.export.convert import convert

    t0 = time.perf_counter()
    out = convert(args.source, args.output, args.to, args.config, args.weight_norm)
    print(f"wrote {out} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)


def _cmd_export(args: argparse.Namespace) -> None:
    require("torch", "export", "xyrt export")
    require("onnx", "export", "xyrt export")
    from xyrt.export.onnx_export import export_onnx
    from xyrt.runtime.manifest import read_manifest

    t0 = time.perf_counter()
    out = export_onnx(args.checkpoint, args.output, args.config, opset=args.opset)
    graphs = read_manifest(out).data["graphs"]
    sizes = ", ".join(f"{k} {v['bytes'] / 2**20:.1f} MiB" for k, v in graphs.items())
    print(f"exported {out} ({sizes}) in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    if args.verify:
        _run_verify(out, args.checkpoint, args.config)


def _run_verify(
    model_dir: Path,
    checkpoint: Path | None,
    config: Path | None,
    min_stage0: float = 0.98,
    backend: str = "auto",
    precision: str | None = None,
) -> None:
    require("torch", "export", "xyrt verify (it compares against the PyTorch model)")
    from xyrt.export.verify import format_report, model_facts, verify_dir

    _, stored, targets = model_facts(model_dir)
    if backend == "openvino":
        targets = [None]  # OpenVINO picks its own graph set for the precision
    failed = []
    for target in targets:
        label = f"{stored} graphs for {target}" if target else f"{stored} (default graphs)"
        if backend == "openvino":
            label = f"OpenVINO {precision or 'default precision'}, {stored} graphs"
        print(f"== {model_dir}: {label}")
        results = verify_dir(
            model_dir,
            checkpoint,
            config,
            progress=lambda name: print(f"verifying {name} ...", file=sys.stderr),
            min_stage0=min_stage0,
            target=target,
            backend=backend,
            precision=precision,
        )
        print(format_report(results))
        failed += [f"{r.name}{f' ({target})' if target else ''}" for r in results if not r.ok]
    if failed:
        raise XyrtError(f"verification failed for {len(failed)} clip(s): {', '.join(failed)}")


def _cmd_verify(args: argparse.Namespace) -> None:
    if not 0 <= args.min_stage0 <= 1:
        raise XyrtError(f"--min-stage0 must be in [0, 1], got {args.min_stage0}")
    if args.precision is not None and args.backend != "openvino":
        raise XyrtError("--precision is an OpenVINO option: add --backend openvino")
    _run_verify(
        args.model_dir,
        args.checkpoint,
        args.config,
        args.min_stage0,
        args.backend,
        args.precision,
    )


def _cmd_quantize(args: argparse.Namespace) -> None:
    from xyrt.calib.quantize import quantize
    from xyrt.calib.sensitivity import SensitivityOptions, format_report

    calib = None
    if args.calib is not None:
        from xyrt.calib.dataset import load

        calib = load(args.calib)
    scheme_names = args.scheme.split(",") if args.scheme else None
    options = SensitivityOptions(
        enabled=not args.no_sensitivity,
        target_agreement=args.target_agreement,
        target_snr_db=args.target_snr,
        granularity=args.granularity,
        max_groups=args.max_float_groups,
    )
    t0 = time.perf_counter()
    result = quantize(
        args.model_dir,
        args.output,
        args.precision,
        scheme_names,
        calib,
        tuple(args.exclude),
        options,
        progress=lambda msg: print(msg, file=sys.stderr),
        attention=args.quantize_attention,
    )
    for scheme, reports in result.reports.items():
        print(f"[{scheme}] for {result.targets[scheme]}")
        for report in reports.values():
            print(format_report(report))
    took = time.perf_counter() - t0
    print(f"wrote {result.directory} ({args.precision}) in {took:.1f} s", file=sys.stderr)


def _cmd_build(args: argparse.Namespace) -> None:
    from xyrt.runtime.trt_build import build_engines
    from xyrt.runtime.trt_profiles import Profile

    profile = Profile.parse(args.batch, args.seconds)
    t0 = time.perf_counter()
    out = build_engines(
        args.model_dir,
        args.output,
        args.precision,
        profile,
        args.workspace,
        progress=lambda msg: print(msg, file=sys.stderr),
    )
    print(f"wrote {out} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)


def _cmd_bench(args: argparse.Namespace) -> None:
    from xyrt.bench import models
    from xyrt.bench.driver import DEFAULT_BACKENDS, BenchOptions, run_bench
    from xyrt.bench.report import format_table, plot

    def log(msg: str) -> None:
        print(msg, file=sys.stderr)

    backends = (
        tuple(parse_list(args.backends, str, "--backends")) if args.backends else DEFAULT_BACKENDS
    )
    if args.pick is not None and not 0 <= args.pick <= 1:
        raise XyrtError(f"--pick takes a fraction in [0, 1], got {args.pick}")
    opts = BenchOptions(  # validate the arguments before building anything
        checkpoint=args.checkpoint,
        model_dirs=tuple(args.model or ()),
        backends=backends,
        seconds=parse_list(args.seconds, float, "--seconds"),
        batch=parse_list(args.batch, int, "--batch"),
        runs=args.runs,
        warmup=args.warmup,
        threads=args.threads,
    )
    from xyrt.atomic import check_output_file

    for target in (args.json, args.plot):  # fail now, not after a 10-minute measurement
        if target not in (None, "-") and not Path(target).parent.is_dir():
            raise XyrtError(f"cannot write {target}: folder {Path(target).parent} does not exist")
        if target not in (None, "-"):
            check_output_file(target)
    if args.plot:
        require("matplotlib", "plot", "xyrt bench --plot")
    report = run_bench(*models.resolve(opts, log), log)
    if args.pick is not None:
        from xyrt.bench.accuracy import pick

        report["pick"] = {
            "min_stage0": args.pick,
            "min_snr_db": args.pick_snr,
            "cases": pick(report, args.pick, args.pick_snr),
        }
    if args.json == "-":
        print(json.dumps(report, indent=2))
    else:
        print(format_table(report))
    if args.json not in (None, "-"):
        from xyrt.atomic import atomic_write

        with atomic_write(args.json) as tmp:
            Path(tmp).write_text(json.dumps(report, indent=2) + "\n")
    if args.plot:
        log(f"plot written to {plot(report, args.plot)}")


def _cmd_stream(args: argparse.Namespace) -> None:
    from xyrt.runtime.stream_io import (
        FileSource,
        JsonlSink,
        LoopbackSink,
        MicSource,
        PcmSource,
        run_stream,
    )

    codec = _load_runtime(args)
    stream = codec.create_stream(args.hop, args.context, args.lookahead)
    if args.source == "mic":
        source = MicSource(args.device, args.rate, duration=args.duration)
        print(f"recording from {source.name} at {source.rate} Hz (Ctrl-C stops)", file=sys.stderr)
    elif args.source == "-":
        source = PcmSource(sys.stdin.buffer, INPUT_SAMPLE_RATE if args.rate is None else args.rate)
    else:
        source = FileSource(args.source, realtime=args.realtime)
    live = sys.stderr.isatty() or args.stats
    last = [0.0]

    def update(stats) -> None:
        if live and time.monotonic() - last[0] > 0.5:
            last[0] = time.monotonic()
            print("\r" + stats.line(), end="", file=sys.stderr, flush=True)

    out = open(args.output, "w") if args.output else sys.stdout  # noqa: SIM115
    sink = JsonlSink(out)
    player = None
    if args.loopback:
        player = DevicePlayer(codec.output_sample_rate, args.output_device)
        sink = LoopbackSink(codec, sink, player, codec.create_decode_stream(hop=args.hop))
    try:
        stats = run_stream(codec, source, sink, stream, update)
        if args.loopback:
            sink.flush()
    finally:
        if args.output:
            out.close()
        if player is not None:
            player.close()
    print(("\n" if live else "") + "summary: " + stats.line(), file=sys.stderr)


def _cmd_calib(args: argparse.Namespace) -> None:
    from xyrt.calib.dataset import CalibOptions, build, save

    options = CalibOptions(
        window_seconds=parse_list(args.windows, float, "--windows"),
        max_windows=args.max_windows,
        max_minutes=args.max_minutes,
        seed=args.seed,
        trim_db=args.trim_db,
    )
    calib = build(args.inputs or None, options)
    save(calib, args.output)
    print(json.dumps(calib.summary, indent=2))
    print(f"wrote {args.output}", file=sys.stderr)


def _cmd_tokenize(args: argparse.Namespace) -> None:
    from xyrt.corpus import tokenize

    summary = tokenize(
        args.inputs,
        args.output,
        args.model,
        backend=args.backend,
        providers=args.providers.split(",") if args.providers else None,
        address=args.address,
        workers=args.workers,
        threads_per_worker=args.threads_per_worker,
        batch_seconds=args.batch_seconds,
        overlap=args.overlap,
        shard_size=args.shard_size,
        progress=sys.stderr.isatty(),
    )
    run = summary["run"]
    print(
        f"{summary['rows']} rows, {summary['errors']} errors in {summary['shards_done']} shards "
        f"({summary['shards_skipped']} already done) -> {args.output}; this run: "
        f"{run['audio_seconds'] / 3600:.3f} h of audio in {run['wall_seconds']:.1f} s "
        f"({run['audio_seconds_per_second']:.1f}x real time, {run['workers']} workers)",
        file=sys.stderr,
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
    p.set_defaults(func=_cmd_encode)

    p = sub.add_parser("decode", help="codes (.npy) -> float32 WAV at the model's output rate")
    _model_args(p)
    _chunk_args(p)
    p.add_argument("input", type=Path, help="codes .npy of shape (8, T); with --stream: JSONL, -")
    p.add_argument("-o", "--output", type=Path, help="output .wav (needed unless --play)")
    g = p.add_argument_group("streaming (--stream: JSON lines of xyrt stream, file or - for stdin)")
    g.add_argument("--stream", action="store_true", help="decode code frames as they arrive")
    g.add_argument("--play", action="store_true", help="play the audio (--stream)")
    g.add_argument("--output-device", help="playback device for --play (default: system)")
    g.add_argument("--hop", type=float, default=0.32, help="least seconds per step (x 0.08)")
    g.add_argument("--max-hop", type=float, help="most seconds per step, to catch up (x 0.08)")
    g.add_argument("--context", type=float, default=2.0, help="left context, seconds")
    g.add_argument("--lookahead", type=float, default=0.16, help="right context, seconds")
    g.add_argument("--crossfade", type=float, help="seconds (default: the lookahead, <= hop)")
    p.set_defaults(func=_cmd_decode)

    p = sub.add_parser("export", help="checkpoint -> ONNX encoder/decoder + manifest.json")
    p.add_argument("--checkpoint", type=Path, required=True, help=CHECKPOINT_HELP)
    p.add_argument("--config", type=Path, help="model YAML (default: config.yaml beside it)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output directory")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    p.add_argument("--verify", action="store_true", help="run xyrt verify after exporting")
    p.set_defaults(func=_cmd_export)

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
    p.set_defaults(func=_cmd_verify)

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
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("stream", help="real-time audio -> codes, one JSON line per 80 ms frame")
    p.add_argument("--model", type=Path, required=True, help="exported model directory")
    p.add_argument("--source", default="mic", help="mic, an audio file, or - (s16le PCM on stdin)")
    p.add_argument("--device", help="input device name or index for --source mic")
    p.add_argument("--rate", type=int, help="sample rate of the mic or of stdin PCM (Hz)")
    p.add_argument("--hop", type=float, default=0.32, help="seconds per step (x 0.08 s)")
    p.add_argument("--context", type=float, default=5.0, help="left context, seconds")
    p.add_argument("--lookahead", type=float, default=0.32, help="right context, seconds")
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
    p.add_argument("-o", "--output", type=Path, help="JSONL file (default: stdout)")
    p.set_defaults(func=_cmd_stream)

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
    p.set_defaults(func=_cmd_calib)

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
        "--quantize-attention",
        action="store_true",
        help="cpu-dynamic: also quantize the attention products (activation x activation "
        "MatMuls) at run time, for long windows",
    )
    p.add_argument("--target-agreement", type=float, default=0.98, help="stage-0 codes vs fp32")
    p.add_argument("--target-snr", type=float, default=20.0, help="decoder SNR vs fp32, dB")
    p.add_argument("--granularity", default="module", choices=["module", "layer"])
    p.add_argument("--max-float-groups", type=int, default=4, help="most groups left float")
    p.add_argument("-o", "--output", type=Path, required=True, help="output directory")
    p.set_defaults(func=_cmd_quantize)

    p = sub.add_parser("build", help="model directory -> TensorRT engines (GPU, TensorRT 10/11)")
    p.add_argument("model_dir", type=Path, help="directory from xyrt export or xyrt quantize")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "int8"])
    p.add_argument("--batch", default="1,1,4", help="profile batch min,opt,max (default 1,1,4)")
    p.add_argument(
        "--seconds", default="0.08,10,30", help="profile window min,opt,max s (default 0.08,10,30)"
    )
    p.add_argument("--workspace", type=float, help="builder workspace limit, GiB")
    p.add_argument("-o", "--output", type=Path, required=True, help="engine directory")
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser("tokenize", help="audio corpus -> Parquet shards of codes (Ray Data)")
    p.add_argument(
        "inputs", nargs="+", help="audio folders, files, globs, or a JSONL/CSV/TSV manifest"
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    p.add_argument("--model", type=Path, required=True, help="model or engine directory")
    p.add_argument(
        "--backend",
        default="onnxruntime",
        choices=["onnxruntime", "openvino", "tensorrt", "auto"],
        help="runtime (default: onnxruntime; openvino runs the directory's own precision)",
    )
    p.add_argument("--providers", metavar="P[,P]", help="ONNX Runtime providers (default: cpu)")
    p.add_argument("--address", help="Ray cluster: auto or ray://HOST:10001 (default: a local Ray)")
    p.add_argument("--workers", type=int, help="model actors (default: CPUs // threads, or GPUs)")
    p.add_argument("--threads-per-worker", type=int, default=1, help="CPU threads per actor")
    p.add_argument(
        "--batch-seconds", type=float, default=60.0, help="padded audio per model call (60)"
    )
    p.add_argument("--overlap", type=float, default=10.0, help="long-file window overlap, s")
    p.add_argument("--shard-size", type=int, default=256, help="items per Parquet shard (256)")
    p.set_defaults(func=_cmd_tokenize)

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
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("synth", help="write a seeded synthetic checkpoint in the official layout")
    p.add_argument(
        "--config", type=Path, help="model YAML (default: the built-in xy_tokenizer_16k)"
    )
    p.add_argument("-o", "--output", type=Path, required=True, help="output .ckpt")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_synth)
    return parser


FILE_OUTPUT_COMMANDS = ("encode", "decode", "calib", "synth")  # -o names a file


def _check_finite(args: argparse.Namespace) -> None:
    """Every float option (``type=float``) must be finite: nan and inf are refused here, once."""
    for name, value in vars(args).items():
        if isinstance(value, float) and not math.isfinite(value):
            option = "--" + name.replace("_", "-")
            raise XyrtError(f"{option} must be a finite number, got {value}")


def one_line(message: str) -> str:
    """A multi-line message (a list of problems) as one line: "head: item; item"."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[0] + (" " + "; ".join(lines[1:]) if len(lines) > 1 else "") if lines else "?"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xyrt`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "decode" and args.output is None and not (args.stream and args.play):
        parser.error("decode needs -o/--output (or --stream with --play)")
    if args.command == "decode" and args.play and not args.stream:
        parser.error("--play needs --stream")
    try:
        _check_finite(args)
        if args.command in FILE_OUTPUT_COMMANDS and getattr(args, "output", None) is not None:
            from xyrt.atomic import check_output_file

            check_output_file(args.output)  # before any work, not after it
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
