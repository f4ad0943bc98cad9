"""The output folder of `xyrt tokenize`: shard plan, Parquet layout, resume checks, summary.

OUT_DIR/
  tokenize.json            what the run is (model, backend, options, inputs hash): a rerun with
                           anything else is refused
  inputs.parquet           every item's id, path, segment, size and mtime_ns, to name the files
                           that changed when a rerun's inputs hash differs
  codes/part-NNNNN.parquet one row per tokenized item (schema below)
  errors/part-NNNNN.parquet one row per item that could not be tokenized: id, path, start, end,
                           kind (unreadable, empty, bad-segment, invalid, too-short, encode),
                           reason
  summary.json             totals over every shard written so far

Items are sorted by (rough length, id) and cut into shards of ``shard_size``: the same inputs
always give the same shards. A shard is written atomically (temporary name, then rename;
errors file first, codes file last), so a shard whose codes file exists is complete, and
a rerun skips it. Each shard's Parquet metadata (key ``xyrt``) records the model's sha256,
backend, precision and options.

A file's identity is its path, size and modification time (mtime_ns), as make and rsync judge
it (hashing every file would mean reading the whole corpus before each rerun): a file replaced or
edited since its codes were written changes the inputs hash, and the rerun is refused naming the
files, rather than skipping their shards as done with codes of the old audio.

Codes column layout: ``codes`` is ``fixed_size_list<list<int16>, 8>``: codes[q][t] is the code of
RVQ stage q (0..7) at frame t (80 ms each); ``np.array(row["codes"])`` has shape (8, T), int16,
values 0..1023; ``frames`` = T = floor(16 kHz samples / 1280).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xyrt.atomic import atomic_write
from xyrt.corpus.inputs import Item
from xyrt.errors import XyrtError, require

RUN_FILE = "tokenize.json"
INPUTS_FILE = "inputs.parquet"
FORMAT = "xyrt-tokenize"
FORMAT_VERSION = 2  # 2: file identity includes mtime_ns; inputs.parquet
CODES_LAYOUT = "codes[q][t]: fixed_size_list<list<int16>, 8>, RVQ stage q, frame t at 12.5 Hz"
ERROR_KINDS = ("unreadable", "empty", "bad-segment", "invalid", "too-short", "encode")
# facts of a run that change its output: a rerun must match them all
RUN_KEYS = ("model_sha256", "encoder_sha256", "precision", "backend", "target", "overlap")
RUN_KEYS += ("shard_size", "num_items", "inputs_sha256")


def _pa():
    return require("pyarrow", "scale", "xyrt tokenize (Parquet output)")


def plan_shards(items: Sequence[Item], shard_size: int) -> list[list[Item]]:
    """Items sorted by (rough length, id), cut into shards of ``shard_size``."""
    ordered = sorted(items, key=lambda it: it.sort_key)
    return [ordered[i : i + shard_size] for i in range(0, len(ordered), shard_size)]


def inputs_sha256(shards: Sequence[Sequence[Item]]) -> str:
    """Hash of every item (id, path, segment, file size and mtime_ns, extra columns) in shard
    order."""
    h = hashlib.sha256()
    for shard in shards:
        for it in shard:
            row = [it.id, it.path, it.start, it.end, it.size, it.mtime_ns, it.extra]
            h.update(json.dumps(row, sort_keys=True, default=str).encode() + b"\n")
    return h.hexdigest()


def _inputs_table(items: Sequence[Item]):
    pa = _pa()
    return pa.table(
        {
            "id": pa.array([it.id for it in items], pa.string()),
            "path": pa.array([it.path for it in items], pa.string()),
            "size": pa.array([it.size for it in items], pa.int64()),
            "mtime_ns": pa.array([it.mtime_ns for it in items], pa.int64()),
        }
    )


def changed_files(recorded: Path, items: Sequence[Item]) -> list[str]:
    """Files of ``items`` whose size or mtime differ from ``recorded`` (an inputs.parquet), as
    "path (what changed)" lines; empty when none did or the record cannot be read."""
    pq = require("pyarrow.parquet", "scale", "xyrt tokenize (Parquet output)")
    try:
        old = pq.read_table(recorded).to_pylist()
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        return [f"({recorded} cannot be read: {exc})"]
    before = {row["path"]: (row["size"], row["mtime_ns"]) for row in old}
    out: dict[str, str] = {}
    for it in items:
        was = before.get(it.path)
        if was is None or was == (it.size, it.mtime_ns) or it.path in out:
            continue
        what = f"size {was[0]} -> {it.size} bytes" if was[0] != it.size else "modified"
        out[it.path] = f"{it.path} ({what})"
    return list(out.values())


def extra_types(items: Sequence[Item]) -> dict[str, Any]:
    """Arrow type of each extra column, inferred over all items (strings where values mix)."""
    pa = _pa()
    names = sorted({k for it in items for k in it.extra})
    types = {}
    for name in names:
        try:
            t = pa.array([it.extra.get(name) for it in items]).type
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            t = None
        types[name] = pa.string() if t is None or pa.types.is_null(t) else t
    return types


def _extra_value(value: Any, t) -> Any:
    pa = _pa()
    if pa.types.is_string(t) and value is not None and not isinstance(value, str):
        return json.dumps(value, default=str)
    return value


def shard_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


@dataclass(frozen=True)
class OutputDir:
    """An output folder and the run it belongs to (``run``: the RUN_KEYS facts and more)."""

    root: Path
    run: dict[str, Any]

    def codes_path(self, shard: int) -> Path:
        return self.root / "codes" / shard_name(shard)

    def errors_path(self, shard: int) -> Path:
        return self.root / "errors" / shard_name(shard)

    def shard_facts(self, shard: int) -> dict[str, Any] | None:
        """The metadata of a complete shard (its codes file, written last, exists), None when
        it is not complete; `XyrtError` naming the file when it is damaged or not this run's."""
        path = self.codes_path(shard)
        if not path.is_file():
            return None
        pq = require("pyarrow.parquet", "scale", "xyrt tokenize (Parquet output)")
        try:
            facts = json.loads(pq.read_schema(path).metadata[b"xyrt"])
            if not isinstance(facts, dict):
                raise ValueError(f"metadata is {type(facts).__name__}, not an object")
            for key in ("rows", "errors", "audio_seconds"):
                float(facts[key])
        except (OSError, ValueError, KeyError, TypeError) as exc:  # ArrowInvalid: ValueError
            raise XyrtError(
                f"shard {path} is damaged ({type(exc).__name__}: {str(exc)[:200]}); delete it "
                "and rerun the same command to tokenize that shard again"
            ) from exc
        own = self.metadata(shard)[b"xyrt"]
        wrong = [k for k, v in json.loads(own).items() if k != "xyrt_version" and facts.get(k) != v]
        if wrong:
            raise XyrtError(
                f"shard {path} was not written by this run ({', '.join(wrong)} differ); delete "
                "it and rerun the same command to tokenize that shard again"
            )
        return facts

    def done(self, shard: int) -> bool:
        """Whether the shard is complete (see `shard_facts`)."""
        return self.shard_facts(shard) is not None

    def open(self, items: Sequence[Item]) -> None:
        """Check the folder is new, or holds this same run of ``items``; record the run.
        `XyrtError` when the folder holds something else, or inputs that changed since."""
        path = self.root / RUN_FILE
        if path.is_file():
            self._check_same_run(path, items)
            return
        if self.root.exists() and (not self.root.is_dir() or any(self.root.iterdir())):
            raise XyrtError(
                f"{self.root} exists and is not an xyrt tokenize output (no {RUN_FILE}); "
                "xyrt will not write into it: give a new or empty folder (-o)"
            )
        pq = require("pyarrow.parquet", "scale", "xyrt tokenize (Parquet output)")
        with atomic_write(self.root / INPUTS_FILE, claim=False) as tmp:  # owned folder
            pq.write_table(_inputs_table(items), tmp)
        with atomic_write(path, claim=False) as tmp:
            tmp.write_text(
                json.dumps(
                    {"format": FORMAT, "format_version": FORMAT_VERSION, **self.run}, indent=2
                )
                + "\n"
            )

    def _check_same_run(self, path: Path, items: Sequence[Item]) -> None:
        from xyrt.runtime.modeldir.jsonfile import read_json

        old = read_json(path)
        if not isinstance(old, dict) or old.get("format") != FORMAT:
            raise XyrtError(f"{path} is not an xyrt tokenize run file; use another -o folder")
        if old.get("format_version") != FORMAT_VERSION:
            raise XyrtError(
                f"{self.root} was written by an xyrt tokenize of format version "
                f"{old.get('format_version')!r}; this one writes version {FORMAT_VERSION} (a "
                "file's identity now includes its modification time): write to a new folder (-o)"
            )
        changed = [k for k in RUN_KEYS if old.get(k) != self.run.get(k)]
        if changed == ["inputs_sha256"]:
            files = changed_files(self.root / INPUTS_FILE, items)
            if files:
                raise XyrtError(
                    f"{len(files)} input file(s) changed (size or modification time) since "
                    f"their codes were written to {self.root}, e.g. {'; '.join(files[:3])}. "
                    "Their stored codes would no longer match the audio: restore the files (with "
                    "their modification times), or tokenize into a new folder (-o)"
                )
        if changed:
            diff = "; ".join(f"{k}: {old.get(k)!r} there, {self.run.get(k)!r} now" for k in changed)
            raise XyrtError(
                f"{self.root} holds the output of a different run ({diff}). Its shards "
                "would mix with this one's: write to a new folder (-o)"
            )

    def metadata(self, shard: int, **counts: Any) -> dict[bytes, bytes]:
        facts = {k: self.run.get(k) for k in RUN_KEYS if k not in ("num_items", "shard_size")}
        facts.update(shard=shard, codes_layout=CODES_LAYOUT, xyrt_version=self.run.get("xyrt"))
        return {b"xyrt": json.dumps({**facts, **counts}).encode()}

    def write_shard(
        self, shard: int, items: Sequence[Item], results: dict[str, dict], types: dict
    ) -> dict[str, Any]:
        """Write a complete shard (``results``: one dict per item id, with ``codes`` (8, T) or
        ``kind``/``reason``); returns its counts."""
        pa = _pa()
        pq = require("pyarrow.parquet", "scale", "xyrt tokenize (Parquet output)")
        good = [it for it in items if results[it.id].get("codes") is not None]
        bad = [it for it in items if results[it.id].get("codes") is None]
        seconds = float(sum(results[it.id]["duration"] for it in good))
        counts = {"rows": len(good), "errors": len(bad), "audio_seconds": seconds}
        meta = self.metadata(shard, **counts)
        errors = pa.table(
            {
                "id": pa.array([it.id for it in bad], pa.string()),
                "path": pa.array([it.path for it in bad], pa.string()),
                "start": pa.array([it.start for it in bad], pa.float64()),
                "end": pa.array([it.end for it in bad], pa.float64()),
                "kind": pa.array([results[it.id]["kind"] for it in bad], pa.string()),
                "reason": pa.array([results[it.id]["reason"] for it in bad], pa.string()),
            }
        ).replace_schema_metadata(meta)
        codes = codes_table([results[it.id] for it in good], good, types).replace_schema_metadata(
            meta
        )
        for table, path in ((errors, self.errors_path(shard)), (codes, self.codes_path(shard))):
            with atomic_write(path, claim=False) as tmp:  # in this run's folder
                pq.write_table(table, tmp)
        return counts

    def totals(self, num_shards: int) -> dict[str, Any]:
        """Rows, errors and audio seconds over the complete shards (from their metadata)."""
        out = {"shards_done": 0, "rows": 0, "errors": 0, "audio_seconds": 0.0}
        for k in range(num_shards):
            facts = self.shard_facts(k)
            if facts is not None:
                out["shards_done"] += 1
                for key in ("rows", "errors", "audio_seconds"):
                    out[key] += facts[key]
        return out


def codes_table(results: Sequence[dict], items: Sequence[Item], types: dict):
    """The codes table of ``items`` (layout in the module docstring)."""
    pa = _pa()
    codes = [np.asarray(r["codes"], np.int16) for r in results]
    lengths = np.repeat([c.shape[1] for c in codes], 8) if codes else np.zeros(0, np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    values = np.concatenate([c.ravel() for c in codes]) if codes else np.zeros(0, np.int16)
    inner = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, pa.int16()))
    columns = {
        "id": pa.array([it.id for it in items], pa.string()),
        "path": pa.array([it.path for it in items], pa.string()),
        "start": pa.array([it.start for it in items], pa.float64()),
        "end": pa.array([it.end for it in items], pa.float64()),
        "sample_rate": pa.array([r["sample_rate"] for r in results], pa.int32()),
        "duration": pa.array([r["duration"] for r in results], pa.float64()),
        "frames": pa.array([c.shape[1] for c in codes], pa.int32()),
        "codes": pa.FixedSizeListArray.from_arrays(inner, 8),
    }
    for name, t in types.items():
        column = f"extra_{name}" if name in columns else name
        columns[column] = pa.array([_extra_value(it.extra.get(name), t) for it in items], t)
    return pa.table(columns)


def iter_codes(out_dir: str | Path) -> Iterator[tuple[str, np.ndarray]]:
    """(id, codes (8, T) int16) of every row of an output folder, shard by shard."""
    pq = require("pyarrow.parquet", "scale", "reading xyrt tokenize output")
    for path in sorted((Path(out_dir) / "codes").glob("part-*.parquet")):
        table = pq.read_table(path, columns=["id", "frames", "codes"])
        flat = table["codes"].combine_chunks().flatten().flatten().to_numpy()
        frames = table["frames"].to_numpy()
        pos = 0
        for item_id, t in zip(table["id"].to_pylist(), frames, strict=True):
            yield item_id, flat[pos : pos + 8 * t].reshape(8, t)
            pos += 8 * t
