"""ONNX Runtime CPU sessions from a cached copy of the graph that ORT has already optimised.

ORT optimises a graph (constant folding, fusions, layout) every time a session is created: seconds
for a full-size graph. The first load saves ORT's optimised graph
(`SessionOptions.optimized_model_filepath`, every initializer over 1 KiB in ``model.onnx.data``,
so graphs over protobuf's 2 GB limit work and the weights are memory-mapped on load) into the
xyrt cache; later loads read it with graph optimisation disabled. The optimised graph is the one
ORT would run anyway, so the kernels, and the codes, are the same.

An entry is keyed by everything the optimised graph depends on: the source graph's sha256 (and
its external data's), the ORT version, the execution provider (CPU only) and the optimisation
level, and the CPU (ORT warns that ``ORT_ENABLE_ALL`` graphs may hold hardware-specific layout
nodes). It is built in a hidden temporary folder and renamed into place with its ``meta.json``
(the stat of each file as written) already inside, so a killed build leaves no entry. It is used
only when meta.json matches the key and every file's stat is still the one recorded: anything
else (edited, copied, truncated, unreadable by ORT) is rebuilt, never trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from xyrt.runtime.modeldir.filecheck import FileStat, cache_dir

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
MODEL, DATA, META = "model.onnx", "model.onnx.data", "meta.json"
LEVEL = "ORT_ENABLE_ALL"  # what a plain session uses; the saved graph is run as it is


def cpu_signature() -> str:
    """The CPU's name, architecture and instruction-set features (`xyrt.runtime.hostcpu`: what
    the CPU itself reports, since an emulator or a container can show another CPU's
    /proc/cpuinfo, and ORT's optimised graph follows the CPU it runs on)."""
    from xyrt.runtime import hostcpu

    return f"{hostcpu.machine()} {hostcpu.model()} {' '.join(sorted(hostcpu.features()))}"


def cache_key(ort: Any, graph_sha256: str) -> dict[str, str]:
    """What a cached optimised graph depends on (``graph_sha256``: of the graph and its data)."""
    return {
        "graph_sha256": graph_sha256,
        "onnxruntime": ort.__version__,
        "provider": CPU,
        "level": LEVEL,
        "cpu": hashlib.sha256(cpu_signature().encode()).hexdigest()[:16],
    }


def entry_dir(key: dict[str, str]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    return cache_dir() / "ort-optimized" / digest


def _valid(entry: Path, key: dict[str, str]) -> bool:
    """Whether ``entry`` is complete, for ``key``, and its files are as they were written."""
    try:
        meta = json.loads((entry / META).read_text())
        if meta["key"] != key:
            return False
        return all(FileStat.of(entry / n) == FileStat(**s) for n, s in meta["files"].items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _discard(entry: Path) -> None:
    """Move a stale entry aside (atomically) and delete it; xyrt wrote it, in its own cache."""
    if not entry.exists():
        return
    aside = entry.with_name(f".stale-{entry.name}-{os.getpid()}")
    try:
        entry.rename(aside)
    except OSError:
        return  # another process moved or replaced it
    shutil.rmtree(aside, ignore_errors=True)


def _sweep(root: Path, older_than_s: float = 3600.0) -> None:
    """Delete build or stale folders that a killed process left in the cache over an hour ago."""
    now = time.time()
    for leftover in [*root.glob(".build-*"), *root.glob(".stale-*")]:
        with contextlib.suppress(OSError):
            if now - leftover.stat().st_mtime > older_than_s:
                shutil.rmtree(leftover, ignore_errors=True)


def cached_session(
    ort: Any,
    graph: Path,
    graph_sha256: str,
    make_options: Callable[[], Any],
    create: Callable[[str, Any], Any],
) -> tuple[Any, str]:
    """A CPU session for ``graph`` and how it was made: "cached" (the optimised copy, loaded
    without optimisation), "built" (optimised from ``graph`` and saved for next time) or
    "uncached" (the cache cannot be written).

    ``make_options()`` returns fresh SessionOptions (threads etc.); ``create(path, options)``
    creates the session."""
    key = cache_key(ort, graph_sha256)
    entry = entry_dir(key)
    if _valid(entry, key):
        options = make_options()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            return create(str(entry / MODEL), options), "cached"
        except Exception as exc:  # noqa: BLE001 - ORT's own exception types
            log.warning("rebuilding the cached optimised graph %s: %s", entry, exc)
    _discard(entry)
    _sweep(entry.parent)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=entry.parent, prefix=".build-"))
    except OSError as exc:
        log.info("no optimised-graph cache (%s): optimising on every load", exc)
        return create(str(graph), make_options()), "uncached"
    try:
        return _build(ort, graph, key, entry, tmp, make_options, create), "built"
    except Exception as exc:  # noqa: BLE001 - ORT's own exception types
        log.warning("could not save an optimised copy of %s (%s); loading it directly", graph, exc)
        return create(str(graph), make_options()), "uncached"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _build(
    ort: Any,
    graph: Path,
    key: dict[str, str],
    entry: Path,
    tmp: Path,
    make_options: Callable[[], Any],
    create: Callable[[str, Any], Any],
) -> Any:
    """Optimise ``graph`` into ``tmp``, record the files' stat, rename ``tmp`` to ``entry``."""
    options = make_options()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, LEVEL)
    options.optimized_model_filepath = str(tmp / MODEL)
    # ORT warns that a fully optimised graph is hardware specific: the cache key holds the CPU,
    # so the warning tells the user nothing (failures still raise)
    options.log_severity_level = 3
    options.add_session_config_entry(
        "session.optimized_model_external_initializers_file_name", DATA
    )
    options.add_session_config_entry(
        "session.optimized_model_external_initializers_min_size_in_bytes", "1024"
    )
    session = create(str(graph), options)
    files = {n: asdict(FileStat.of(tmp / n)) for n in (MODEL, DATA) if (tmp / n).exists()}
    (tmp / META).write_text(json.dumps({"key": key, "source": str(graph), "files": files}))
    with contextlib.suppress(OSError):  # fails when another process put an entry there first
        tmp.rename(entry)
    return session
