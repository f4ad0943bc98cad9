"""Corpus tokenization throughput: `xyrt tokenize` (Ray Data) vs a Python loop vs the published
cost, in audio seconds per wall second, all measured in the same run on the same backend.

    flock /work/fullsize.lock python benchmarks/tokenize_throughput.py \
        --model /work/cache/synth-16k-seed0/onnx-int8 --corpus /work/cache/tokenize-corpus \
        --cases ray2 --json out/tokenize_full.json
    flock /work/fullsize.lock python benchmarks/tokenize_throughput.py \
        --model /work/cache/synth-16k-seed0/onnx-int8 --subset 48 \
        --cases ray2,ray1,loop,published,overhead --json out/tokenize_subset.json

The corpus (built once): ``--clips`` clips of 1-30 s (uniform, seeded) cut from the bundled
speech (speech_*, heldout_*, espeak_*) and fresh espeak-ng sentences when espeak-ng is
installed, looped; half written as 16 kHz FLAC, half as 44.1 kHz FLAC (so the reading stage
resamples). Cases:
  ray2 / ray1   xyrt.tokenize with 2 / 1 model actors, 1 thread each, local Ray (started by it)
  loop          one codec (`xyrt.runtime.load`, threads = cores), load_audio + encode per clip
  published     the published cost: every clip (<= 30 s) run as one padded 30 s window
  overhead      Ray Data per-task overhead: empty packs through a 2-actor no-op pool
and a paper model of N nodes from the per-worker rate and that overhead.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SOURCES = ("speech_*.mp3", "heldout_*.flac", "espeak_*.flac")
SENTENCES = [
    "Tokenizing a corpus once per checkpoint is the heaviest job a speech tokenizer does.",
    "The quick brown fox jumps over the lazy dog while the cluster hums along.",
    "Every shard is written once, and a rerun skips the shards that are already complete.",
    "Long recordings are cut into thirty second windows with ten seconds of overlap.",
    "Ray Data streams blocks from reading tasks to a pool of model actors.",
    "Please read the numbers slowly: four, eight, fifteen, sixteen, twenty three, forty two.",
]


def speech_pool() -> np.ndarray:
    """All source speech at 16 kHz, concatenated (bundled clips + espeak-ng sentences)."""
    import xyrt
    from xyrt.runtime.formats.audio import load_audio

    data = Path(xyrt.__file__).parent / "data"
    parts = [load_audio(p) for pattern in SOURCES for p in sorted(data.glob(pattern))]
    if shutil.which("espeak-ng"):
        with tempfile.TemporaryDirectory() as tmp:
            for i, text in enumerate(SENTENCES):
                wav = Path(tmp) / f"s{i}.wav"
                voice = ["en-us", "en", "en-gb-x-rp"][i % 3]
                subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), text], check=True)
                parts.append(load_audio(wav))
    else:
        print("espeak-ng not installed: corpus from the bundled speech only", file=sys.stderr)
    return np.concatenate(parts)


def build_corpus(root: Path, clips: int, seed: int) -> list[Path]:
    """``clips`` FLAC files of 1-30 s under ``root`` (kept if already built with this spec)."""
    import soundfile as sf
    import soxr

    spec = {"clips": clips, "seed": seed, "version": 1}
    stamp = root / "corpus.json"
    if stamp.is_file() and json.loads(stamp.read_text()).get("spec") == spec:
        return sorted(root.glob("clip_*.flac"))
    root.mkdir(parents=True, exist_ok=True)
    for old in root.glob("clip_*.flac"):
        old.unlink()
    pool = speech_pool()
    rng = np.random.default_rng(seed)
    seconds = rng.uniform(1.0, 30.0, clips)
    loop = np.tile(pool, int(np.ceil(31 * 16000 / len(pool))) + 1)  # any start + 30 s fits
    paths = []
    for i, s in enumerate(seconds):
        start = int(rng.integers(0, len(pool)))  # a different place in the looped speech
        clip = loop[start : start + int(s * 16000)]
        path = root / f"clip_{i:04d}.flac"
        if i % 2:
            sf.write(path, soxr.resample(clip, 16000, 44100), 44100)
        else:
            sf.write(path, clip, 16000)
        paths.append(path)
    total = float(seconds.sum())
    stamp.write_text(json.dumps({"spec": spec, "audio_seconds": total}, indent=2) + "\n")
    return paths


def subset(paths: list[Path], n: int | None) -> list[Path]:
    """Every k-th clip (the clips are in random length order, so lengths stay 1-30 s)."""
    if not n or n >= len(paths):
        return paths
    return paths[:: max(1, len(paths) // n)][:n]


def seconds_of(paths: list[Path]) -> float:
    import soundfile as sf

    return float(sum(sf.info(p).duration for p in paths))


def case_ray(model: str, paths: list[Path], workers: int, batch_seconds: float) -> dict:
    import xyrt

    with tempfile.TemporaryDirectory(dir="/work/cache") as tmp:
        listing = Path(tmp) / "manifest.jsonl"
        listing.write_text("".join(json.dumps({"path": str(p)}) + "\n" for p in paths))
        t0 = time.perf_counter()
        summary = xyrt.tokenize(
            [listing],
            Path(tmp) / "out",
            model,
            workers=workers,
            threads_per_worker=1,
            batch_seconds=batch_seconds,
            progress=sys.stderr.isatty(),
        )
        wall = time.perf_counter() - t0
    run = summary["run"]
    return {
        "clips": len(paths),
        "audio_seconds": run["audio_seconds"],
        "wall_seconds": wall,  # includes starting and stopping the local Ray
        "rate": run["audio_seconds"] / wall,
        "pipeline_seconds": run["pipeline_seconds"],  # Ray Data running, Ray already up
        "rate_pipeline": run["audio_seconds"] / run["pipeline_seconds"],
        "errors": summary["errors"],
    }


def case_loop(model: str, paths: list[Path], threads: int) -> dict:
    import xyrt.runtime
    from xyrt.runtime.formats.audio import load_audio

    codec = xyrt.runtime.load(model, threads=threads)
    codec.encode(load_audio(paths[0]))  # sessions created outside the timing
    t0, audio = time.perf_counter(), 0.0
    for p in paths:
        wav = load_audio(p)
        codec.encode(wav)
        audio += len(wav) / 16000
    wall = time.perf_counter() - t0
    return {"clips": len(paths), "audio_seconds": audio, "wall_seconds": wall, "rate": audio / wall}


def case_published(model: str, paths: list[Path], threads: int) -> dict:
    import xyrt.runtime
    from xyrt.runtime.codec import ChunkedCodec
    from xyrt.runtime.formats.audio import load_audio

    backend = xyrt.runtime.load(model, threads=threads).backend
    padded = ChunkedCodec(backend, batch_size=1, pad_to_30s=True)
    padded.encode(load_audio(paths[0]))
    t0, audio = time.perf_counter(), 0.0
    for p in paths:
        wav = load_audio(p)
        padded.encode(wav)
        audio += len(wav) / 16000
    wall = time.perf_counter() - t0
    return {"clips": len(paths), "audio_seconds": audio, "wall_seconds": wall, "rate": audio / wall}


class _NoOp:
    def __call__(self, batch):
        return batch


def case_overhead(tasks: int = 200) -> dict:
    """Seconds per task of a 2-actor Ray Data pool doing nothing (tiny blocks), driver included."""
    import logging

    import ray

    ray.init(num_cpus=3, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        rows = [{"x": i} for i in range(tasks)]

        def run():
            ds = ray.data.from_items(rows, override_num_blocks=tasks)
            ds = ds.map_batches(
                _NoOp, batch_size=1, compute=ray.data.ActorPoolStrategy(size=2), num_cpus=1
            )
            return sum(len(b["x"]) for b in ds.iter_batches(batch_size=None))

        run()  # actors and workers warm
        t0 = time.perf_counter()
        assert run() == tasks
        wall = time.perf_counter() - t0
    finally:
        ray.shutdown()
    return {"tasks": tasks, "wall_seconds": wall, "seconds_per_task": wall / tasks}


def paper_model(per_worker: float, overhead: float, pack_seconds: float, per_node: int) -> dict:
    """Audio s / wall s for N nodes: each pack of ``pack_seconds`` costs a worker
    pack/per_worker + overhead; the driver handles one result per ``overhead`` at most."""
    per = pack_seconds / (pack_seconds / per_worker + overhead)
    cap = pack_seconds / overhead  # one driver, one result stream
    return {str(n): min(n * per_node * per, cap) for n in (1, 2, 4, 8, 16, 64, 256)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cache = Path(os.environ.get("XYRT_CACHE", "/work/cache"))
    ap.add_argument("--model", default=str(cache / "synth-16k-seed0" / "onnx-int8"))
    ap.add_argument("--corpus", type=Path, default=cache / "tokenize-corpus")
    ap.add_argument("--clips", type=int, default=240)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--subset", type=int, help="clips of the corpus for these cases (default all)")
    ap.add_argument("--published-clips", type=int, default=12, help="clips for 'published'")
    ap.add_argument("--cases", default="ray2,ray1,loop,published,overhead")
    ap.add_argument("--batch-seconds", type=float, default=60.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    cases = args.cases.split(",")
    paths = build_corpus(args.corpus, args.clips, args.seed)
    total = json.loads((args.corpus / "corpus.json").read_text())["audio_seconds"]
    chosen = subset(paths, args.subset)
    threads = os.cpu_count() or 1
    report = {
        "model": args.model,
        "weights": "SYNTHETIC (seeded), real full-size configuration",
        "machine": f"{threads} cores, shared with other work",
        "corpus": {"clips": len(paths), "audio_seconds": total, "path": str(args.corpus)},
        "subset": {"clips": len(chosen), "audio_seconds": seconds_of(chosen)},
        "cases": {},
    }
    runners = {
        "ray2": lambda: case_ray(args.model, chosen, 2, args.batch_seconds),
        "ray1": lambda: case_ray(args.model, chosen, 1, args.batch_seconds),
        "loop": lambda: case_loop(args.model, chosen, threads),
        "published": lambda: case_published(
            args.model, subset(chosen, args.published_clips), threads
        ),
        "overhead": case_overhead,
    }
    for name in cases:
        print(f"== {name}", file=sys.stderr)
        report["cases"][name] = runners[name]()
        print(json.dumps(report["cases"][name]), file=sys.stderr)
        if args.json:  # after every case: a time limit keeps what was measured
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=2) + "\n")
    got = report["cases"]
    base = {k: got[k]["rate"] for k in ("loop", "published", "ray1") if k in got}
    for name, res in got.items():
        if "rate" in res:
            res["x_real_time"] = res["rate"]
            res["vs"] = {k: res["rate"] / v for k, v in base.items() if k != name}
    if "ray1" in got and "overhead" in got:
        report["paper_model_2_workers_per_node"] = paper_model(
            got["ray1"]["rate_pipeline"],
            got["overhead"]["seconds_per_task"],
            report["subset"]["audio_seconds"] / len(chosen),  # a task: at least one clip
            2,
        )
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
