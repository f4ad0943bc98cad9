"""Every CPU path against the published code in one process, one run: encode 10 s, encode one
30 s window, decode 10 s; stage-0/all-stage agreement and decoder SNR against ORT FP32.

    python benchmarks/cpu_paths.py --fp32 DIR [--int8 DIR] [--openvino-int8 DIR]
        [--paths ort-fp32,published,ort-int8,openvino-fp32,openvino-bf16,openvino-int8,
                 openvino-w8dq]
        [--runs 2] [--threads 2] [--dq-group 32]

openvino-w8dq: NNCF int8 weight compression + OpenVINO's run-time activation quantization on the
FP32 graphs (built in memory, ~15 s), the OpenVINO int8 a user reaching ORT's agreement would run.

Audio: the bundled held-out speech repeated to 10 s / 30 s. Every path is loaded first, then the
timed runs go round-robin over the paths, so a slower spell of the host (they drift by tens of
percent here) hits every path alike and the ratios hold. Published =
PyTorch (`xyrt.runtime.backends.pytorch.backend.TorchBackend`) with the window padded to 30 s.
With `xyrt synth`
checkpoints the weights are SYNTHETIC: timings are real, agreement is a lower bound.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from xyrt.data import heldout_speech
from xyrt.runtime.compare import compare_codes, snr_db
from xyrt.runtime.graph_io import pack_windows

CASES = (("encode", 10.0), ("encode", 30.0), ("decode", 10.0))
# OpenMP (PyTorch), ONNX Runtime and OpenVINO worker threads spin for a while after a run: a path
# timed right after another would share the cores with them
SETTLE = 0.5


def clip(seconds: float) -> np.ndarray:
    speech = np.concatenate(list(heldout_speech().values()))
    return np.resize(speech, int(seconds * 16000)).astype(np.float32)


def runner(path: str, args):
    """(encode(wav), decode(codes)) of one path, loaded."""
    if path == "published":
        import torch

        from xyrt.runtime.backends.pytorch.backend import TorchBackend
        from xyrt.runtime.modeldir.manifest import read_manifest
        from xyrt.runtime.network.checkpoint import load_model

        if args.threads:
            torch.set_num_threads(args.threads)
        ckpt = read_manifest(args.fp32).data["source_checkpoint"]["path"]
        t = TorchBackend(load_model(ckpt))
        return lambda w: t.encode_window(*pack_windows([w], pad_to_30s=True)), t.decode_window
    if path == "openvino-w8dq":
        return openvino_w8dq(args)
    if path.startswith("ort"):
        from xyrt.runtime.backends.ort.backend import OnnxRuntimeBackend

        b = OnnxRuntimeBackend(args.fp32 if path == "ort-fp32" else args.int8, None, args.threads)
    else:
        from xyrt.runtime.backends.openvino.backend import OpenVinoBackend

        precision = path.split("-")[1]
        model = args.openvino_int8 if precision == "int8" else args.fp32
        b = OpenVinoBackend(model, precision, args.threads)
    return lambda w: b.encode_window(*pack_windows([w])), b.decode_window


def openvino_w8dq(args):
    """OpenVINO + NNCF int8 the way an LLM user sets it up: ``nncf.compress_weights``
    (INT8_SYM, per channel; front end, RVQ and iSTFT kept float) on the FP32 graphs, activations
    quantized at run time by the CPU plugin (``DYNAMIC_QUANTIZATION_GROUP_SIZE``)."""
    import nncf
    import openvino as ov

    from xyrt.calib.openvino_ptq import ignored_scope
    from xyrt.runtime.graph_io import FLOAT_SCOPES, decoder_feed, encoder_feed

    core = ov.Core()
    config = {
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "f32",
        "INFERENCE_NUM_THREADS": args.threads,
        "DYNAMIC_QUANTIZATION_GROUP_SIZE": str(args.dq_group),
    }
    compiled = {}
    for graph in ("encoder", "decoder"):
        model = core.read_model(f"{args.fp32}/{graph}.onnx")
        model = nncf.compress_weights(
            model, mode=nncf.CompressWeightsMode.INT8_SYM, ignored_scope=ignored_scope(FLOAT_SCOPES)
        )
        compiled[graph] = core.compile_model(model, "CPU", config)

    def encode(w):
        return compiled["encoder"](encoder_feed(*pack_windows([w])))[0]

    def decode(codes):
        return compiled["decoder"](decoder_feed(codes))[0]

    return encode, decode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fp32", required=True)
    parser.add_argument("--int8")
    parser.add_argument("--openvino-int8")
    parser.add_argument(
        "--paths", default="ort-fp32,published,ort-int8,openvino-fp32,openvino-bf16,openvino-int8"
    )
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dq-group", type=int, default=32, help="openvino-w8dq: group size")
    args = parser.parse_args()
    paths = args.paths.split(",")
    assert paths[0] == "ort-fp32", "ort-fp32 first: it is the accuracy reference"
    wavs = {s: clip(s) for _, s in CASES}
    print(f"threads {args.threads}, runs {args.runs} (median), interleaved across paths")
    loaded, accuracy = {}, {}
    ref: dict = {}
    for path in paths:  # every path loaded (and checked) before any timing
        t0 = time.perf_counter()
        encode, decode = runner(path, args)
        codes10 = np.ascontiguousarray(encode(wavs[10.0])[:, :, :125])  # also the warm-up
        load = time.perf_counter() - t0
        if path == "ort-fp32":
            ref["codes"], ref["audio"] = codes10, decode(codes10)
        agree = compare_codes(ref["codes"][:, 0], codes10[:, 0])
        accuracy[path] = (agree, snr_db(ref["audio"], decode(ref["codes"])), load)
        loaded[path] = (encode, decode)
        print(f"  loaded {path} ({load:.1f} s)", flush=True)
    laps: dict = {(p, c): [] for p in paths for c in CASES}
    for op, seconds in CASES:
        jobs = {}
        for path, (encode, decode) in loaded.items():
            if op == "encode":
                jobs[path] = lambda w=wavs[seconds], f=encode: f(w)  # noqa: E731
            else:
                jobs[path] = lambda f=decode: f(ref["codes"])  # noqa: E731
            jobs[path]()  # warm-up of this shape
        for _ in range(args.runs):  # round-robin: a slower spell of the host hits every path
            for path, run in jobs.items():
                time.sleep(SETTLE)  # the last path's spinning worker threads go idle first
                t = time.perf_counter()
                run()
                laps[(path, (op, seconds))].append(time.perf_counter() - t)
    base = (
        {c: statistics.median(laps[("published", c)]) for c in CASES}
        if ("published" in paths)
        else {}
    )
    for path in paths:
        times = {c: statistics.median(laps[(path, c)]) for c in CASES}
        agree, snr, load = accuracy[path]
        cells = "  ".join(
            f"{op} {s:g}s {times[(op, s)]:6.3f} s"
            + (f" ({base[(op, s)] / times[(op, s)]:5.2f}x pub)" if base else "")
            for op, s in CASES
        )
        print(
            f"{path:<14} {cells}  stage-0 {100 * agree.per_stage[0]:5.1f}%  all "
            f"{100 * agree.identical:5.1f}%  SNR {snr:6.1f} dB  (load+first {load:.1f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
