"""``xyrt encode/decode/stream --server URL``: the same commands with an ``xyrt serve`` running
the model, through `xyrt.client.Client`. Options that only shape a local model are refused."""

from __future__ import annotations

import argparse
import sys
import time

from xyrt.client import NOT_XYRT, Client
from xyrt.config import FRAME_SECONDS
from xyrt.errors import XyrtError, received
from xyrt.runtime.chunking import OVERLAP_SECONDS

# option -> the value that means "not given" (anything else only applies to a local model)
LOCAL_ONLY = {
    "backend": "auto",
    "device": None,
    "precision": None,
    "providers": None,
    "threads": None,
    "config": None,
    "batch_size": None,
    "pad_to_30s": False,
    "overlap": OVERLAP_SECONDS,
    "loopback": False,
}


def client(args: argparse.Namespace) -> Client:
    """The client of ``--server``, after refusing the options a server does not take."""
    for name, unset in LOCAL_ONLY.items():
        if getattr(args, name, unset) != unset:
            option = "--" + name.replace("_", "-")
            raise XyrtError(
                f"{option} applies to a local model; with --server the server's model and "
                f"options are used (see {args.server.rstrip('/')}/v1/info)"
            )
    return Client(args.server)


def encode(args: argparse.Namespace) -> None:
    from xyrt.runtime.formats.codes import save_codes

    remote = client(args)  # the file is read (and a missing one or a folder named) first
    t0 = time.perf_counter()
    codes = remote.encode_file(args.input)
    dt = time.perf_counter() - t0
    save_codes(args.output, codes)
    print(
        f"{args.input}: codes {codes.shape} in {dt:.2f} s from {args.server} -> {args.output}",
        file=sys.stderr,
    )


def decode(args: argparse.Namespace) -> None:
    from xyrt.runtime.formats.audio import write_wav
    from xyrt.runtime.formats.codes import load_codes

    remote = client(args)
    if args.stream:
        return _decode_stream(args, remote)
    codes = load_codes(args.input)
    t0 = time.perf_counter()
    audio = remote.decode(codes)
    dt = time.perf_counter() - t0
    write_wav(args.output, audio.samples, audio.sample_rate)
    print(
        f"{args.input}: codes {codes.shape} -> {len(audio.samples) / audio.sample_rate:.2f} s at "
        f"{audio.sample_rate} Hz in {dt:.2f} s from {args.server} -> {args.output}",
        file=sys.stderr,
    )


def _decode_stream(args: argparse.Namespace, remote: Client) -> None:
    """``xyrt decode --stream --server``: the loop of the local command, the server decoding.
    The summary's RTF counts the wall time of the exchange."""
    from xyrt.commands import decode_frames_file, decode_stream_settings
    from xyrt.runtime.realtime.decode_loop import DecodeStats

    settings = decode_stream_settings(args)
    options = {k: settings[k] for k in ("hop", "context", "lookahead", "max_hop", "crossfade")}

    def open_decoder():
        info = remote.info()
        try:
            rate, quantizers = int(info["output_sample_rate"]), int(info["num_quantizers"])
        except (KeyError, TypeError, ValueError):
            raise XyrtError(
                f"{remote.url}/v1/info answered without output_sample_rate and num_quantizers "
                f"({received(info)}): {NOT_XYRT}"
            ) from None

        def decode(frames, out) -> DecodeStats:
            stats, started = DecodeStats(), []  # when the first frame was read

            def counted():
                for codes in frames:
                    if not started:
                        started.append(time.perf_counter())
                    stats.frames += 1
                    yield codes

            for audio in remote.stream_decode(counted(), **options):
                if stats.first_audio is None:
                    stats.first_audio = time.perf_counter() - started[0]
                out(audio)
                stats.audio_seconds += len(audio) / rate
            stats.compute_seconds = time.perf_counter() - started[0] if started else 0.0
            return stats

        return rate, quantizers, decode

    decode_frames_file(args, open_decoder)


def stream(args: argparse.Namespace, source, sink) -> None:
    """``xyrt stream --server``: ``source``'s chunks to the server, its frames to ``sink``."""
    remote = client(args)
    rate: list[int] = []

    def chunks():
        for chunk in source:
            if rate and chunk.sample_rate != rate[0]:
                raise XyrtError(f"the source changed rate from {rate[0]} to {chunk.sample_rate} Hz")
            rate[:1] = [chunk.sample_rate]
            yield chunk.samples

    it = chunks()
    first = next(it, None)  # the stream's rate is the first chunk's
    frames = 0
    if first is not None:
        pieces = (c for part in ([first], it) for c in part)
        for frame in remote.stream_encode(pieces, rate[0], args.hop, args.context, args.lookahead):
            sink.write(frame)
            frames += 1
    print(
        f"summary: frames {frames}  audio {frames * FRAME_SECONDS:.2f} s via {args.server}",
        file=sys.stderr,
    )
