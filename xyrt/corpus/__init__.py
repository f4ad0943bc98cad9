"""xyrt.corpus: tokenize a speech corpus into Parquet shards of codes, on Ray Data.

    import xyrt
    summary = xyrt.tokenize(["corpus/"], "tokens/", "xy_onnx_int8", workers=2)
    for item_id, codes in xyrt.corpus.iter_codes("tokens/"):  # codes: (8, T) int16
        ...

Needs ``pip install 'xyrt[scale]'`` (ray[data], pyarrow). Layout of the output: `shards`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from xyrt.corpus.pipeline import Progress, TokenizeOptions
from xyrt.corpus.shards import iter_codes
from xyrt.runtime.backends.registry import Options
from xyrt.runtime.chunking import OVERLAP_SECONDS


def tokenize(
    inputs: Sequence[str | os.PathLike] | str | os.PathLike,
    output: str | os.PathLike,
    model: str | os.PathLike,
    *,
    backend: str = "auto",
    device: str | None = None,
    precision: str | None = None,
    providers: Sequence[str] | None = None,
    options: Options | None = None,
    address: str | None = None,
    workers: int | None = None,
    threads_per_worker: int = 1,
    batch_seconds: float = 60.0,
    overlap: float = OVERLAP_SECONDS,
    shard_size: int = 256,
    progress: bool = True,
    on_progress: Callable[[Progress], None] | None = None,
    **advanced: Any,
) -> dict[str, Any]:
    """Tokenize audio folders, files, globs or manifests (JSONL/CSV/TSV) into ``output``;
    returns the summary (also in ``output/summary.json``). ``model``: an export or engine
    directory, or a checkpoint (PyTorch: ``device="cuda"``, ``precision="bf16"`` for GPU
    actors, one GPU each). ``address``: None starts a local
    Ray for the run, "auto" or "ray://host:10001" joins a cluster. ``options``: the backend
    options as one value (`xyrt.runtime.Options`; ``device``, ``precision``, ``providers``
    given here win). ``advanced``: the other `TokenizeOptions` fields (gpus_per_worker,
    read_block) and other backend options (target)."""
    from xyrt.corpus.pipeline import tokenize as run

    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    given = {"device": device, "precision": precision}
    given["providers"] = tuple(providers) if providers else None
    backend_fields = {
        k: advanced.pop(k) for k in list(advanced) if k in Options.__dataclass_fields__
    }
    load = Options.of(
        options, **{k: v for k, v in given.items() if v is not None}, **backend_fields
    )
    run_options = TokenizeOptions(
        backend=backend,
        options=load,
        address=address,
        workers=workers,
        threads_per_worker=threads_per_worker,
        batch_seconds=batch_seconds,
        overlap=overlap,
        shard_size=shard_size,
        **advanced,
    )
    return run(inputs, output, model, run_options, progress, on_progress)


__all__ = ["Progress", "TokenizeOptions", "iter_codes", "tokenize"]
