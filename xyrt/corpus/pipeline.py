"""`tokenize()`: a corpus -> Parquet shards of codes, on Ray Data (local or a cluster).

The driver lists the inputs, plans the shards (`xyrt.corpus.shards`), skips the complete ones,
and streams the rest through two Ray Data stages (`xyrt.corpus.stages`): reading tasks decode and
resample audio and group it by duration; a fixed pool of model actors (one per worker, GPU
actors for CUDA/TensorRT) encodes it. Results come back to the driver, which keeps the first
result of each item (a retried task can only repeat a result, never lose one) and writes each
shard atomically once all its items are in.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xyrt.corpus.inputs import collect_items
from xyrt.corpus.shards import OutputDir, extra_types, inputs_sha256, plan_shards
from xyrt.errors import MissingDependencyError, XyrtError
from xyrt.runtime.backends.registry import Options, is_cuda
from xyrt.runtime.chunking import OVERLAP_SECONDS

if TYPE_CHECKING:
    from xyrt.runtime.backends.registry import Resolved

SCALE_HINT = "pip install 'xyrt[scale]'  (ray[data] and pyarrow)"
READ_BYTES_PER_ITEM = 4 * 30 * 48000 * 4  # four float32 copies of 30 s at up to 48 kHz


@dataclass(frozen=True)
class TokenizeOptions:
    """How to run; only ``backend``, the backend ``options`` (`registry.Options`: device,
    precision, providers, target, ...), ``overlap`` and ``shard_size`` change the output (a
    rerun must keep them), the rest only the speed. ``backend`` "auto" picks by what the model
    is (`xyrt.runtime.backends.registry`); the torch backend takes ``device`` ("cpu", "cuda":
    one GPU per actor, the one Ray assigns) and ``precision`` ("fp32", "bf16", "fp16"); each
    actor runs ``threads_per_worker`` threads."""

    backend: str = "auto"
    options: Options = field(default_factory=Options)
    address: str | None = None  # None: a local Ray started for the run; "auto", "ray://..."
    workers: int | None = None  # model actors (default: CPUs // threads, or GPUs)
    threads_per_worker: int = 1
    gpus_per_worker: float | None = None  # default 1 for CUDA/TensorRT backends, else 0
    batch_seconds: float = 60.0  # padded audio per model call
    overlap: float = OVERLAP_SECONDS  # published chunking of long files, seconds
    shard_size: int = 256  # items per output shard
    read_block: int = 16  # items per reading task

    def __post_init__(self) -> None:
        from xyrt.checks import finite, positive_int
        from xyrt.runtime.backends.registry import backend_entry, canonical_precision
        from xyrt.runtime.chunking import codes_per_step

        if self.backend != "auto":
            backend_entry(self.backend)  # an unknown name fails here, naming the choices
        canonical_precision(self.options.precision)
        for name in ("threads_per_worker", "shard_size", "read_block"):
            positive_int(getattr(self, name), name)
        if self.workers is not None:
            positive_int(self.workers, "workers")
        finite(self.batch_seconds, "batch_seconds", low=0, strict_low=True)
        if self.gpus_per_worker is not None:
            finite(self.gpus_per_worker, "gpus_per_worker", low=0)
        finite(self.overlap, "overlap")
        codes_per_step(self.overlap)

    def resolve(self, model: str | Path) -> Resolved:
        """What the registry decides for ``model`` run with these options (`registry.resolve`):
        the backend, its device, whether its actors need a GPU; all it can decide fails here, not
        in a Ray actor. A local Ray: a GPU the backend needs must be on this machine."""
        from xyrt.runtime.backends.registry import resolve

        return resolve(model, self.backend, here=self.address is None, options=self.options)


@dataclass(frozen=True)
class Progress:
    """Passed to ``on_progress`` after each result: items and audio done in this run."""

    items_done: int
    items_total: int
    audio_seconds: float
    elapsed: float


def model_identity(model: str | Path, options: TokenizeOptions) -> dict[str, Any]:
    """sha256 of the model (source checkpoint) and of the encoder used, precision, backend."""
    return options.resolve(model).identity()


def _ray():
    try:
        import pyarrow  # noqa: F401
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            f"xyrt tokenize runs on Ray Data, which is not installed ({exc}). Install it with: "
            f"{SCALE_HINT}"
        ) from exc
    return ray


def connect(options: TokenizeOptions, workers: int):
    """Join the Ray cluster at ``options.address``, or start a local one sized for
    ``workers`` actors plus one reading slot (`xyrt.localray`: it ends with xyrt, even a
    killed one); returns what to stop at the end: the `LocalRay` this call started, or None."""
    ray = _ray()
    if ray.is_initialized():
        return None
    started = None
    if options.address is None:
        from xyrt.localray import LocalRay

        started = LocalRay(workers * options.threads_per_worker + 1, 1 << 30)
    else:
        try:
            ray.init(address=options.address, logging_level=logging.ERROR, log_to_driver=False)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise XyrtError(
                f"cannot connect to the Ray cluster at {options.address!r}: {exc}. Start one "
                "with `ray start --head`, or leave out --address for a local Ray"
            ) from exc
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    return started


def gpus_per_actor(options: TokenizeOptions, resolved: Resolved) -> float:
    """GPUs each model actor asks Ray for: ``gpus_per_worker``, else 1 where the resolved
    backend runs on a GPU (`TokenizeOptions.resolve`)."""
    if options.gpus_per_worker is not None:
        return options.gpus_per_worker
    return 1.0 if resolved.gpu else 0.0


def check_gpus(
    options: TokenizeOptions, resolved: Resolved, workers: int, resources: dict[str, float]
) -> None:
    """`XyrtError` when the model actors need GPUs the Ray cluster does not have (``resources``:
    `ray.cluster_resources()`): Ray would wait for them forever."""
    each = gpus_per_actor(options, resolved)
    need, have = workers * each, float(resources.get("GPU", 0))
    if each <= 0 or need <= have:
        return
    why = (
        f"gpus_per_worker={options.gpus_per_worker}"
        if options.gpus_per_worker is not None
        else f"--device {options.options.device}"
        if options.options.device is not None
        else f"--providers {','.join(options.options.providers)}"
        if options.options.providers
        else f"--backend {options.backend}"
        + (f" ({resolved.entry.name})" if options.backend == "auto" else "")
    )
    shown = ", ".join(
        f"{k} {v / 2**30:.1f} GiB" if "memory" in k else f"{k} {v:g}"
        for k, v in sorted(resources.items())
        if not k.startswith("node:") and k != "accelerator_type"
    )
    where = f"at {options.address!r}" if options.address else "started here (local)"
    raise XyrtError(
        f"{why} asks for {each:g} GPU per model actor, {need:g} for {workers} worker(s), but "
        f"the Ray cluster {where} reports {have:g} GPU(s) (resources: {shown or 'none'}); "
        "run on a cluster with GPUs, give fewer --workers, or use a CPU backend"
    )


def default_workers(options: TokenizeOptions, resolved: Resolved) -> int:
    """Model actors when --workers is not given: one per GPU, or CPUs // threads."""
    if options.workers is not None:
        return options.workers
    if options.address is not None:
        ray = _ray()
        resources = ray.cluster_resources() if ray.is_initialized() else {}
        if resolved.gpu:
            return max(1, int(resources.get("GPU", 1) // (options.gpus_per_worker or 1)))
        cpus = int(resources.get("CPU", os.cpu_count() or 1)) - 1
        return max(1, cpus // options.threads_per_worker)
    if resolved.gpu:
        return 1
    return max(1, (os.cpu_count() or 1) // options.threads_per_worker)


def build_dataset(
    model: str,
    shards,
    pending: Sequence[int],
    options: TokenizeOptions,
    resolved: Resolved,
    workers,
):
    """The Ray Data pipeline: read blocks -> packs (tasks) -> codes (actor pool)."""
    import ray

    from xyrt.corpus.stages import Encoder, items_to_json, read_stage

    blocks = [
        {"shard": k, "items": items_to_json(shards[k][i : i + options.read_block])}
        for k in pending
        for i in range(0, len(shards[k]), options.read_block)
    ]
    gpus = gpus_per_actor(options, resolved)
    ds = ray.data.from_items(blocks, override_num_blocks=len(blocks))
    ds = ds.map_batches(
        read_stage,
        batch_size=1,
        batch_format="pyarrow",
        fn_kwargs={"batch_seconds": options.batch_seconds, "overlap": options.overlap},
        num_cpus=1,
        # a decoded block (raw, float, resampled, packed copies of <= 30 s per item); differing
        # resources also keep Ray Data from fusing this stage into the model actors
        memory=options.read_block * READ_BYTES_PER_ITEM,
    )
    # one pack per block (streaming, no barrier): a block is one task for the model actors
    ds = ds.repartition(target_num_rows_per_block=1)
    return ds.map_batches(
        Encoder,
        batch_size=1,
        batch_format="pyarrow",
        fn_constructor_kwargs={
            "model": str(Path(model).resolve()),
            "backend": resolved.entry.name,
            # a GPU actor sees the GPU Ray assigned to it as its only one: "cuda"
            "options": Options.of(
                options.options,
                device="cuda" if is_cuda(options.options.device) else options.options.device,
                threads=options.threads_per_worker,
            ),
            "batch_seconds": options.batch_seconds,
            "overlap": options.overlap,
        },
        compute=ray.data.ActorPoolStrategy(size=workers),  # one model actor per worker
        num_cpus=options.threads_per_worker,
        num_gpus=gpus or None,
    )


def tokenize(
    inputs: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    model: str | os.PathLike,
    options: TokenizeOptions | None = None,
    progress: bool = True,
    on_progress: Callable[[Progress], None] | None = None,
) -> dict[str, Any]:
    """Tokenize audio folders/files/globs/manifests into ``output`` (Parquet shards, see
    `xyrt.corpus.shards`); returns the summary also written to ``output/summary.json``.
    A rerun resumes: complete shards are skipped; a different model or options are refused."""
    import xyrt

    options = options or TokenizeOptions()
    _ray()  # say what to install before anything else
    t0 = time.perf_counter()
    items = collect_items(inputs)
    shards = plan_shards(items, options.shard_size)
    resolved = options.resolve(model)
    run = {
        **resolved.identity(),
        "target": options.options.target,
        "overlap": options.overlap,
        "shard_size": options.shard_size,
        "num_items": len(items),
        "num_shards": len(shards),
        "inputs_sha256": inputs_sha256(shards),
        "xyrt": xyrt.__version__,
    }
    out = OutputDir(Path(output), run)
    types = extra_types(items)
    out.open(items)
    pending = [k for k in range(len(shards)) if not out.done(k)]
    total = sum(len(shards[k]) for k in pending)
    workers = options.workers
    this_run = {"shards_written": 0, "items": total, "audio_seconds": 0.0, "errors": []}
    this_run["pipeline_seconds"] = 0.0
    if pending:
        started = connect(options, workers or default_workers(options, resolved))
        workers = default_workers(options, resolved)
        try:
            import ray

            check_gpus(options, resolved, workers, ray.cluster_resources())
            this_run.update(
                _drive(
                    model,
                    shards,
                    pending,
                    options,
                    resolved,
                    workers,
                    out,
                    types,
                    progress,
                    on_progress,
                )
            )
        finally:
            if started is not None:
                started.stop()
    wall = time.perf_counter() - t0
    summary = {
        "output": str(out.root),
        **{k: run[k] for k in ("model_sha256", "precision", "backend", "num_items", "num_shards")},
        "shards_skipped": len(shards) - len(pending),
        **out.totals(len(shards)),
        "run": {
            **this_run,
            "wall_seconds": wall,
            "audio_seconds_per_second": this_run["audio_seconds"] / wall if wall > 0 else 0.0,
            "workers": workers,
            "threads_per_worker": options.threads_per_worker,
            "batch_seconds": options.batch_seconds,
            "address": options.address or "local",
        },
    }
    from xyrt.atomic import atomic_write

    with atomic_write(out.root / "summary.json", claim=False) as tmp:  # the run's folder
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _batches(ds):
    """Ray Data's result blocks; a failed job becomes one `XyrtError` (complete shards stay)."""
    import ray

    try:
        yield from ds.iter_batches(batch_size=None, batch_format="pyarrow")
    except (ray.exceptions.RayError, ray.data.exceptions.SystemException) as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
        raise XyrtError(
            f"the Ray Data job failed ({type(exc).__name__}: {lines[-1].strip()[:300]}); the "
            "complete shards are kept: fix the cause and rerun the same command to resume"
        ) from exc


def _drive(model, shards, pending, options, resolved, workers, out, types, progress, on_progress):
    """Stream results, keep the first per item, write each shard once complete."""
    from tqdm.auto import tqdm

    expected = {k: {it.id for it in shards[k]} for k in pending}
    results: dict[int, dict[str, dict]] = {k: {} for k in pending}
    done, seconds, written, errors = 0, 0.0, 0, []
    t0 = time.perf_counter()
    ds = build_dataset(model, shards, pending, options, resolved, workers)
    total = sum(len(v) for v in expected.values())
    with tqdm(total=total, unit="file", desc="tokenize", disable=not progress) as bar:
        for batch in _batches(ds):
            for row in batch.to_pylist():
                k, item_id = row["shard"], row["id"]
                if k not in results or item_id in results[k] or item_id not in expected[k]:
                    continue  # a retried task repeating a result, or a shard already written
                if row["codes"] is None:
                    results[k][item_id] = {"kind": row["kind"], "reason": row["reason"]}
                    errors.append({"id": item_id, "kind": row["kind"], "reason": row["reason"]})
                else:
                    codes = np.frombuffer(row["codes"], np.int16).reshape(8, row["frames"])
                    results[k][item_id] = {**row, "codes": codes}
                    seconds += row["duration"]
                done += 1
                elapsed = time.perf_counter() - t0
                bar.update(1)
                bar.set_postfix_str(
                    f"{seconds / 3600:.3f} h audio, {seconds / max(elapsed, 1e-9):.1f}x real time",
                    refresh=False,
                )
                if on_progress is not None:
                    on_progress(Progress(done, total, seconds, elapsed))
                if len(results[k]) == len(expected[k]):
                    out.write_shard(k, shards[k], results.pop(k), types)
                    written += 1
    if results:
        missing = sum(len(expected[k]) - len(results[k]) for k in results)
        raise XyrtError(f"Ray Data returned no result for {missing} item(s); rerun to resume")
    return {
        "shards_written": written,
        "audio_seconds": seconds,
        "pipeline_seconds": time.perf_counter() - t0,
        "errors": errors[:100],
    }
