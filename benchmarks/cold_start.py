"""Cold start of the ONNX Runtime backend: time until encoder and decoder are ready, before and
after the hash stamps and the optimised-graph cache, against the encode time of a 10 s clip.

    python benchmarks/cold_start.py --model DIR [--model DIR2 ...] [--seconds 10] [--evict]

Every measurement runs in its own process (nothing shared in memory), in this order per model:
  before  hash every graph file and let ORT optimise on every load (the cache unwritable: what
          every load did before the cache existed)
  cold    first load ever with a fresh, empty cache: hash, optimise, save the optimised graph
  warm    a later load: stat the stamps, load the optimised graph with optimisation disabled
  warm-parallel   the same, with both sessions created side by side (`OnnxRuntimeBackend.open`)
Each process then encodes the clip twice and reports the second encode's time: "ready" is given
as a ratio to it (the 10 s encode time of the same process), and to the FP32 model's encode
time when one was measured in the run (median over its processes); "cpu/enc cpu" sets the CPU
seconds of getting ready against those of the encode, which a busy machine disturbs less.
The page-cache residency of every graph and cache file is reported before each measurement
(`fincore`); ``--evict`` drops those files from the page cache first (posix_fadvise DONTNEED:
those files only), for a cold-disk measurement. The codes of every process are compared with the
"before" process's codes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODES = ("before", "cold", "warm", "warm-parallel")
# the targets, on a machine where the FP32 10 s encode takes 1.4 s: FP32 encoder and
# decoder ready in <= 2 s, INT8 in <= 0.7 s
TARGET_RATIO = {"fp32": 2.0 / 1.4, "int8": 0.7 / 1.4}


def child(model_dir: str, mode: str, seconds: float, codes_out: str) -> None:
    """One measurement, in this process; prints one JSON line."""
    t0 = time.perf_counter()
    from xyrt.data import speech_clip
    from xyrt.runtime.backends.ort.backend import OnnxRuntimeBackend
    from xyrt.runtime.codec import ChunkedCodec

    t_import = time.perf_counter() - t0
    wav = speech_clip(seconds)
    t1, c1 = time.perf_counter(), time.process_time()
    backend = OnnxRuntimeBackend(model_dir)
    enc_s = dec_s = None
    if mode == "warm-parallel":
        backend.load()
    else:
        backend.encoder()
        enc_s = time.perf_counter() - t1
        backend.decoder()
        dec_s = time.perf_counter() - t1 - enc_s
    ready_s, ready_cpu = time.perf_counter() - t1, time.process_time() - c1
    codec = ChunkedCodec(backend)
    t2 = time.perf_counter()
    codes = codec.encode(wav)
    first_s = time.perf_counter() - t2
    t3, c3 = time.perf_counter(), time.process_time()
    codec.encode(wav)
    encode_s, encode_cpu = time.perf_counter() - t3, time.process_time() - c3
    np.save(codes_out, codes)
    record = {
        "mode": mode,
        "import_s": t_import,
        "encoder_s": enc_s,
        "decoder_s": dec_s,
        "ready_s": ready_s,
        "ready_cpu_s": ready_cpu,
        "first_encode_s": first_s,
        "encode_s": encode_s,
        "encode_cpu_s": encode_cpu,
        "origin": {"encoder": backend.encoder.origin, "decoder": backend.decoder.origin},
    }
    print(json.dumps(record), flush=True)


def files_of(model_dir: Path, cache: Path) -> list[Path]:
    return sorted(model_dir.glob("*.onnx*")) + sorted(cache.glob("ort-optimized/*/model.onnx*"))


def residency(paths: list[Path]) -> str:
    """Resident bytes / size of ``paths`` in the page cache, from util-linux fincore."""
    total = sum(p.stat().st_size for p in paths)
    try:
        out = subprocess.run(
            ["fincore", "--bytes", "--noheadings", "--raw", "-o", "RES", *map(str, paths)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        resident = sum(int(x) for x in out)
    except (OSError, subprocess.CalledProcessError, ValueError):
        return f"unknown (fincore not available) of {total / 2**30:.2f} GiB"
    return f"{resident / 2**30:.2f} of {total / 2**30:.2f} GiB resident"


def evict(paths: list[Path]) -> None:
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def measure(model_dir: Path, args, work: Path) -> list[dict]:
    """The four modes for one model, each in a fresh process."""
    cache = work / f"cache-{model_dir.name}"
    unwritable = work / "unwritable-cache"
    unwritable.write_text("a file, so the cache cannot be created")
    rows = []
    for mode in MODES:
        env = dict(os.environ, XYRT_CACHE=str(unwritable if mode == "before" else cache))
        paths = files_of(model_dir, cache)
        if args.evict:
            evict(paths)
        state = residency(paths)
        codes = work / f"{model_dir.name}-{mode}.npy"
        cmd = [sys.executable, __file__, "--child", mode, "--model", str(model_dir)]
        cmd += ["--seconds", str(args.seconds), "--codes", str(codes)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"{mode} failed:\n{out.stderr[-3000:]}")
        row = json.loads(out.stdout.strip().splitlines()[-1])
        row.update(page_cache=state, codes=np.load(codes))
        rows.append(row)
        print(f"  {mode:<14} done: ready {row['ready_s']:.2f} s ({state})", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, help="an exported model folder")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--evict", action="store_true", help="drop the files from the page cache")
    ap.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    ap.add_argument("--codes", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.model[0], args.child, args.seconds, args.codes)

    from xyrt.runtime.compare import compare_codes
    from xyrt.runtime.modeldir.manifest import read_manifest

    results = {}
    with tempfile.TemporaryDirectory(prefix="xyrt-cold-") as tmp:
        for model in map(Path, args.model):
            precision = read_manifest(model).data.get("precision", "fp32")
            print(f"{model} ({precision}):", flush=True)
            results[model] = (precision, measure(model, args, Path(tmp)))
    fp32_encode = [r["encode_s"] for p, rows in results.values() if p == "fp32" for r in rows]
    base = float(np.median(fp32_encode)) if fp32_encode else None
    print(
        f"\n{args.seconds:g} s clip; every row a fresh process; shared machine (other work ran "
        f"beside it): compare ratios, not seconds"
    )
    head = f"{'model':<10}{'mode':<15}{'encoder':>8}{'decoder':>8}{'ready':>8}{'cpu':>7}"
    head += f"{'encode':>8}{'ready/enc':>10}{'vs fp32 enc':>12}{'cpu/enc cpu':>12}"
    head += "  codes vs before; page cache"
    print(head + "\n" + "-" * len(head))
    failed = False
    for precision, rows in results.values():
        before = rows[0]["codes"]
        for r in rows:
            agreement = compare_codes(before, r["codes"])
            failed |= agreement.identical != 1.0
            same = "identical" if agreement.identical == 1.0 else agreement.describe(3)

            def sec(x):
                return f"{x:>8.2f}" if x is not None else f"{'-':>8}"

            line = f"{precision:<10}{r['mode']:<15}{sec(r['encoder_s'])}{sec(r['decoder_s'])}"
            line += f"{r['ready_s']:>8.2f}{r['ready_cpu_s']:>7.2f}{r['encode_s']:>8.2f}"
            line += f"{r['ready_s'] / r['encode_s']:>10.2f}"
            line += f"{r['ready_s'] / base:>12.2f}" if base else f"{'-':>12}"
            line += f"{r['ready_cpu_s'] / r['encode_cpu_s']:>12.2f}"
            print(line + f"  {same}; {r['page_cache']}")
        target = TARGET_RATIO.get(precision)
        if target and base:
            best = min(r["ready_s"] for r in rows if r["mode"].startswith("warm")) / base
            verdict = "meets" if best <= target else "misses"
            print(
                f"{precision}: warm ready = {best:.2f} x the FP32 {args.seconds:g} s encode; "
                f"target <= {target:.2f} x: {verdict}"
            )
    if failed:
        raise SystemExit("codes differ between load paths")


if __name__ == "__main__":
    main()
