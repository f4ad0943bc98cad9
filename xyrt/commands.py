"""What each ``xyrt`` subcommand does, given its parsed arguments (the parser is in
`xyrt.cli`): build the objects, run, print. Errors are `XyrtError`s; `xyrt.cli.main` prints them."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from xyrt.config import INPUT_SAMPLE_RATE
from xyrt.errors import XyrtError, received, require
from xyrt.runtime.formats.audio import load_audio, write_wav
from xyrt.runtime.formats.codes import load_codes, save_codes
from xyrt.runtime.formats.frames import read_frames
from xyrt.runtime.graph_io import DECODER, ENCODER
from xyrt.runtime.realtime.decode_loop import DevicePlayer, FrameDecoder, WavWriter, run_decode
from xyrt.runtime.streams.decode_stream import DecodeStreamOptions

DECODE_STREAM_DEFAULTS = {  # the --decode-* options' defaults: DecodeStreamOptions'
    "decode_hop": DecodeStreamOptions.hop,
    "decode_context": DecodeStreamOptions.context,
    "decode_lookahead": DecodeStreamOptions.lookahead,
}


DECODE_STREAM_OPTIONS = ("decode_hop", "decode_context", "decode_lookahead", "max_hop", "crossfade")


def decode_stream_settings(
    args: argparse.Namespace, hop: float | None = None
) -> dict[str, float | None]:
    """`DecodeStreamOptions` keywords from the parsed ``--decode-*`` options (defaults:
    `DECODE_STREAM_DEFAULTS`, the hop ``hop`` when given)."""
    value = {k: getattr(args, k) for k in DECODE_STREAM_OPTIONS}
    defaults = {**DECODE_STREAM_DEFAULTS, **({"decode_hop": hop} if hop else {})}
    for k, default in defaults.items():
        value[k] = default if value[k] is None else value[k]
    return {
        "hop": value["decode_hop"],
        "context": value["decode_context"],
        "lookahead": value["decode_lookahead"],
        "max_hop": value["max_hop"],
        "crossfade": value["crossfade"],
        "overlap": args.overlap,
    }


def parse_list(text: str, kind: type, name: str) -> tuple:
    """'1,5,10' -> (1, 5, 10); `XyrtError` naming the option on bad input."""
    try:
        return tuple(kind(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise XyrtError(
            f"{name} takes a comma-separated list of numbers, got {received(text)}"
        ) from exc


def backend_options(args: argparse.Namespace):
    """The backend options of a command line, built once here and passed whole
    (`registry.Options`): every option field the command declares a flag for (the flag's dest
    is the field's name; ``--providers a,b`` is split). A new backend option is its field and
    its flag, nothing between; the registry refuses one the backend cannot take, naming it."""
    from xyrt.runtime.backends.registry import Options

    fields = {}
    for name in Options.__dataclass_fields__:
        value = getattr(args, name, None)
        if value is not None:
            fields[name] = tuple(value.split(",")) if name == "providers" else value
    return Options.of(**fields)


def _load_runtime(args: argparse.Namespace, source: Path | None = None, **kwargs):
    """xyrt.runtime.load for --model (or ``source``) with the command's backend options."""
    import xyrt.runtime

    model = source if source is not None else args.model
    return xyrt.runtime.load(model, args.backend, options=backend_options(args), **kwargs)


def _codec(args: argparse.Namespace):
    """The codec of encode/decode: --model (an export, an engine directory or a checkpoint) or
    --checkpoint (the PyTorch backend), through the backend registry."""
    from xyrt.checks import threads
    from xyrt.runtime.backends.registry import REGISTRY, entry_for, source_kind
    from xyrt.runtime.chunking import codes_per_step

    if args.batch_size is not None and args.batch_size < 1:
        raise XyrtError(f"--batch-size must be at least 1, got {args.batch_size}")
    threads(args.threads, "--threads")
    codes_per_step(args.overlap)  # a bad --overlap fails before a model is loaded
    source = args.model if args.model is not None else args.checkpoint
    kind = source_kind(source)
    if args.pad_to_30s and not entry_for(kind, args.backend).takes("pad_to_30s"):
        takers = " or ".join(f"--backend {e.name}" for e in REGISTRY if e.takes("pad_to_30s"))
        raise XyrtError(f"--pad-to-30s is for the PyTorch model (--checkpoint, or {takers}) only")
    if args.config is not None and kind != "checkpoint":
        raise XyrtError("--config is the YAML of a checkpoint; a model directory has its own")
    codec = _load_runtime(args, source, batch_size=args.batch_size, progress=sys.stderr.isatty())
    codec.pad_to_30s = args.pad_to_30s
    return codec


def _report_backend(codec) -> None:
    from xyrt.runtime.backends.ort.backend import OnnxRuntimeBackend

    if isinstance(codec.backend, OnnxRuntimeBackend):
        used = sorted({p for graph in codec.backend.providers.values() for p in graph})
        print(f"ONNX Runtime providers in use: {', '.join(used)}", file=sys.stderr)


def cmd_encode(args: argparse.Namespace) -> None:
    if args.server:
        from xyrt import remote

        return remote.encode(args)
    wav = load_audio(args.input)
    t0 = time.perf_counter()
    codec = _codec(args).load([ENCODER])
    loaded = time.perf_counter()
    codes = codec.encode(wav, INPUT_SAMPLE_RATE, overlap=args.overlap)
    dt = time.perf_counter() - loaded
    _report_backend(codec)
    save_codes(args.output, codes)
    print(
        f"{args.input}: {len(wav) / INPUT_SAMPLE_RATE:.2f} s -> codes {codes.shape} in {dt:.2f} s "
        f"{_load_note(loaded - t0)} -> {args.output}",
        file=sys.stderr,
    )


def _load_note(seconds: float) -> str:
    """What a one-shot command's time is made of, besides the run it reports."""
    return f"(after {seconds:.2f} s loading the model; a loaded model pays only the run)"


def cmd_decode(args: argparse.Namespace) -> None:
    if args.server:
        from xyrt import remote

        return remote.decode(args)
    if args.stream:
        return _decode_stream(args)
    t0 = time.perf_counter()
    codec = _codec(args)
    with codec.facts_checked():
        codes = load_codes(args.input, codec.info.num_quantizers, codec.info.codebook_size)
        prompt = _prompt(args, codec)
    codec.load([DECODER])
    loaded = time.perf_counter()
    audio = codec.decode(codes, overlap=args.overlap, prompt=prompt)
    dt = time.perf_counter() - loaded
    _report_backend(codec)
    write_wav(args.output, audio, codec.output_sample_rate)
    print(
        f"{args.input}: codes {codes.shape} -> {len(audio) / codec.output_sample_rate:.2f} s at "
        f"{codec.output_sample_rate} Hz in {dt:.2f} s {_load_note(loaded - t0)} -> "
        f"{args.output}",
        file=sys.stderr,
    )


def _prompt(args: argparse.Namespace, codec):
    """The --prompt codes (8, P), or None."""
    if getattr(args, "prompt", None) is None:
        return None
    info = codec.info
    return load_codes(args.prompt, info.num_quantizers, info.codebook_size)


def _decode_stream(args: argparse.Namespace) -> None:
    """``xyrt decode --stream`` with a local model."""
    from xyrt.runtime.streams.decode_stream import DecodeStream

    options = DecodeStreamOptions(**decode_stream_settings(args))

    def open_decoder() -> tuple[int, int, FrameDecoder]:
        codec = _codec(args)
        stream = DecodeStream(options, codec.info, _prompt(args, codec))
        decode = lambda frames, out: run_decode(codec, frames, stream, out)  # noqa: E731
        return stream.sample_rate, codec.info.num_quantizers, decode

    decode_frames_file(args, open_decoder)


def decode_frames_file(
    args: argparse.Namespace, open_decoder: Callable[[], tuple[int, int, FrameDecoder]]
) -> None:
    """The loop of ``xyrt decode --stream``, local or with ``--server``: the code frames of
    ``args.input`` (JSON lines from xyrt stream, or - for stdin, read as they arrive) decoded to
    ``--output`` (a WAV written as the audio comes) and/or ``--play``, then a summary line.
    ``open_decoder()``, called once the input is known to exist, gives the output rate, the
    codes per frame, and ``decode(frames, out)``, which passes each piece of audio to ``out``
    and returns the `DecodeStats`."""
    if str(args.input) != "-" and not args.input.is_file():
        what = "is a folder, not a file" if args.input.is_dir() else "not found"
        raise XyrtError(
            f"code frames file {what}: {args.input}; expected a file of JSON lines from xyrt "
            "stream (or - for stdin)"
        )
    rate, quantizers, decode = open_decoder()
    with ExitStack() as stack:
        lines = sys.stdin if str(args.input) == "-" else stack.enter_context(open(args.input))
        writer = stack.enter_context(WavWriter(args.output, rate)) if args.output else None
        player = DevicePlayer(rate, args.output_device) if args.play else None
        if player is not None:
            stack.callback(player.close)

        def out(audio) -> None:
            if writer is not None:
                writer.write(audio)
            if player is not None:
                player.play(audio)

        stats = decode(read_frames(lines, quantizers), out)
        if stats.frames == 0:
            raise XyrtError(f"no code frames in {args.input}; expected JSON lines from xyrt stream")
    where = f" -> {args.output}" if args.output else ""
    print(f"summary: {stats.line()}{where}", file=sys.stderr)


def cmd_synth(args: argparse.Namespace) -> None:
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


def cmd_convert(args: argparse.Namespace) -> None:
    from xyrt.errors import require

    require("torch", "export", "xyrt convert")
    from xyrt.export.convert import convert

    t0 = time.perf_counter()
    out = convert(args.source, args.output, args.to, args.config, args.weight_norm, args.force)
    print(f"wrote {out} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)


def cmd_export(args: argparse.Namespace) -> None:
    require("torch", "export", "xyrt export")
    require("onnx", "export", "xyrt export")
    from xyrt.export.onnx_export import export_onnx
    from xyrt.runtime.modeldir.manifest import read_manifest

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
    from xyrt.export.verify import format_report, model_facts, verify_dir, window_inputs_note
    from xyrt.runtime.backends.registry import entry_for, source_kind

    _, stored, targets = model_facts(model_dir)
    note = window_inputs_note(model_dir)
    if note:
        print(note)
    entry = entry_for(source_kind(model_dir), backend)
    # a backend without graph targets that takes a precision picks its own graph set for it
    own_graphs = not entry.takes("target") and bool(entry.precisions)
    if not entry.takes("target"):
        targets = [None]
    failed = []
    for target in targets:
        label = f"{stored} graphs for {target}" if target else f"{stored} (default graphs)"
        if own_graphs:
            label = f"{entry.name} {precision or 'default precision'}, {stored} graphs"
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


def cmd_verify(args: argparse.Namespace) -> None:
    from xyrt.runtime.backends.registry import (
        Options,
        canonical_precision,
        check_options,
        entry_for,
        source_kind,
    )

    if not 0 <= args.min_stage0 <= 1:
        raise XyrtError(f"--min-stage0 must be in [0, 1], got {args.min_stage0}")
    kind = source_kind(args.model_dir)
    entry = entry_for(kind, args.backend)
    precision = canonical_precision(args.precision)
    check_options(entry, kind, Options(device=args.device, precision=precision))
    if kind == "checkpoint":  # its backend (on a GPU, say) against float32 on the CPU
        if args.checkpoint is not None:
            raise XyrtError("--checkpoint: the checkpoint to verify is --model itself here")
        return _verify_torch(args, precision)
    if args.device is not None:
        raise XyrtError(
            "--device applies to verifying the torch backend (--model a checkpoint); "
            f"{entry.name} is verified on the CPU"
        )
    _run_verify(
        args.model_dir,
        args.checkpoint,
        args.config,
        args.min_stage0,
        entry.name,
        precision,
    )


def _verify_torch(args: argparse.Namespace, precision: str | None) -> None:
    from xyrt.export.verify import format_report, verify_torch

    print(
        f"== {args.model_dir}: torch {precision or 'fp32'} on {args.device or 'cpu'} "
        "against float32 on the CPU"
    )
    results = verify_torch(
        args.model_dir,
        args.config,
        args.device,
        precision,
        progress=lambda name: print(f"verifying {name} ...", file=sys.stderr),
        min_stage0=args.min_stage0,
    )
    print(format_report(results))
    failed = [r.name for r in results if not r.ok]
    if failed:
        raise XyrtError(f"verification failed for {len(failed)} clip(s): {', '.join(failed)}")


def cmd_quantize(args: argparse.Namespace) -> None:
    from xyrt.calib.quantize import quantize
    from xyrt.calib.sensitivity import SensitivityOptions, format_report

    calib = None
    if args.calib is not None:
        from xyrt.calib.dataset import read_calib

        calib = read_calib(args.calib)
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
        attention=args.attention,
    )
    from xyrt.calib.quantize import measured_on

    host = measured_on()
    print(f"agreement measured on this CPU: {host['isa']} ({host['int8_dot']} int8 products)")
    for scheme, reports in result.reports.items():
        print(f"[{scheme}] for {result.targets[scheme]}")
        for report in reports.values():
            print(format_report(report))
    took = time.perf_counter() - t0
    print(f"wrote {result.directory} ({args.precision}) in {took:.1f} s", file=sys.stderr)


def cmd_build(args: argparse.Namespace) -> None:
    from xyrt.calib.trt_build import build_engines
    from xyrt.runtime.backends.trt.profiles import Profile

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


def cmd_bench(args: argparse.Namespace) -> None:
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
        batch=parse_list(args.batch, int, "--batch-size"),
        runs=args.runs,
        warmup=args.warmup,
        threads=args.threads,
    )
    from xyrt.atomic import claim_file

    for target in (args.json, args.plot):  # fail now, not after a 10-minute measurement
        if target not in (None, "-") and not Path(target).parent.is_dir():
            raise XyrtError(f"cannot write {target}: folder {Path(target).parent} does not exist")
        if target not in (None, "-"):
            claim_file(target)
    if args.plot:
        require("matplotlib", "plot", "xyrt bench --plot")
    t0 = time.perf_counter()
    resolved = models.resolve(opts, log)  # builds (once, cached) what no --model gave
    build_s = time.perf_counter() - t0
    report = run_bench(*resolved, log)
    report["phases"] = {"build": build_s, **report["phases"]}
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


def cmd_stream(args: argparse.Namespace) -> None:
    from xyrt.runtime.realtime.encode_loop import (
        FileSource,
        JsonlSink,
        LoopbackSink,
        MicSource,
        PcmSource,
        run_stream,
    )

    if args.device is not None and not args.device.startswith(("cpu", "cuda")):
        raise XyrtError(
            f"--device {args.device!r}: --device is the compute device (cpu, cuda, cuda:N); "
            "the microphone is --input-device"
        )
    if args.server:
        from xyrt import remote

        remote.client(args)  # local-only options refused before a microphone opens
    else:
        codec = _load_runtime(args)
        stream = codec.create_stream(args.hop, args.context, args.lookahead, args.overlap)
    if args.source == "mic":
        source = MicSource(args.input_device, args.rate, duration=args.duration)
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

    with ExitStack() as stack:
        out = sys.stdout
        if args.output:  # written beside -o and renamed onto it when the stream ends (Ctrl-C too)
            from xyrt.atomic import atomic_write

            tmp = stack.enter_context(atomic_write(args.output))
            out = stack.enter_context(open(tmp, "w"))
        sink = JsonlSink(out)
        if args.server:
            return remote.stream(args, source, sink)
        player = None
        if args.loopback:
            player = DevicePlayer(codec.output_sample_rate, args.output_device)
            stack.callback(player.close)
            decoding = codec.create_decode_stream(**decode_stream_settings(args, args.hop))
            sink = LoopbackSink(codec, sink, player, decoding)
        stats = run_stream(codec, source, sink, stream, update)
        if args.loopback:
            sink.flush()
    print(("\n" if live else "") + "summary: " + stats.line(), file=sys.stderr)


def cmd_calib(args: argparse.Namespace) -> None:
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


def cmd_tokenize(args: argparse.Namespace) -> None:
    from xyrt.corpus import tokenize

    summary = tokenize(
        args.inputs,
        args.output,
        args.model,
        backend=args.backend,
        options=backend_options(args),
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


def cmd_serve(args: argparse.Namespace) -> None:
    from xyrt.serve.options import ServeOptions
    from xyrt.serve.server import run

    options = ServeOptions(
        model=str(args.model),
        backend=args.backend,
        load=backend_options(args),
        replicas=args.replicas,
        gpus_per_replica=args.gpus_per_replica,
        max_batch=args.batch_size,
        max_delay_ms=args.max_delay_ms,
        max_body_mb=args.max_body_mb,
        max_streams=args.max_streams,
        drain_seconds=args.drain_seconds,
    )
    lost = run(options, args.host, args.port, args.address, log=lambda m: print(m, file=sys.stderr))
    if lost:  # Ray's exit handlers would wait seconds for the Ray the signal ended: exit now
        import os

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
