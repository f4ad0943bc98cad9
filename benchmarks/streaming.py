"""Streaming at real-time pace: sustained RTF, capture-to-emission latency and agreement with
offline codes, per hop and left context, in one run.

    python benchmarks/streaming.py --model DIR [--seconds 10] [--hops 0.32,0.64]
                                   [--contexts 1,2,5] [--lookahead 0.32]

A speech file is played at its own pace (as a microphone would deliver it) through ONNX Runtime.
RTF = encode compute / audio duration: above 1 the stream falls behind and latency grows without
bound. Agreement compares streamed codes with the offline (30 s window) codes of the same audio;
with random (synthetic) weights every code depends strongly on its context, which exaggerates
the disagreement a trained model would show.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

import xyrt.runtime
from xyrt.data import speech_clip
from xyrt.runtime.compare import compare_codes
from xyrt.runtime.io.audio import write_wav
from xyrt.runtime.io.stream_io import FileSource, StreamStats, run_stream


class _Collect:
    def __init__(self) -> None:
        self.frames = []

    def write(self, frame) -> None:
        self.frames.append(frame)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--hops", default="0.32,0.64")
    ap.add_argument("--contexts", default="1,2,5")
    ap.add_argument("--lookahead", type=float, default=0.32)
    ap.add_argument("--threads", type=int)
    args = ap.parse_args()

    codec = xyrt.runtime.load(args.model, threads=args.threads)
    wav = speech_clip(args.seconds)
    offline = codec.encode(wav)
    path = write_wav(Path(tempfile.mkdtemp()) / "speech.wav", wav, 16000)
    print(
        f"{args.seconds:g} s of speech at real-time pace, lookahead {args.lookahead} s, "
        f"model {args.model}"
    )
    print(
        f"{'hop s':>6}{'context s':>10}{'RTF':>7}{'lat p50 ms':>12}{'lat p95 ms':>12}"
        f"{'stage-0 same':>14}{'all same':>10}{'overruns':>10}"
    )
    for hop in (float(h) for h in args.hops.split(",")):
        for context in (float(c) for c in args.contexts.split(",")):
            sink = _Collect()
            stream = codec.create_stream(hop, context, args.lookahead)
            stats: StreamStats = run_stream(codec, FileSource(path, realtime=True), sink, stream)
            codes = np.stack([f.codes for f in sink.frames], axis=1)
            agreement = compare_codes(offline, codes)
            print(
                f"{hop:>6.2f}{context:>10.2f}{stats.rtf:>7.2f}{stats.percentile(50):>12.0f}"
                f"{stats.percentile(95):>12.0f}{100 * agreement.per_stage[0]:>13.1f}%"
                f"{100 * agreement.identical:>9.1f}%{stats.overruns:>10}"
            )


if __name__ == "__main__":
    main()
