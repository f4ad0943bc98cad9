"""What to tokenize: audio folders, globs, files or manifests -> `Item`s; reading one item.

A manifest is JSONL, CSV or TSV with a ``path`` column (relative paths are relative to the
manifest's folder) and optional ``id``, ``start`` and ``end`` (seconds: a segment of the file);
every other column is carried through to the output. Without a manifest an item's id is the
file's absolute path. An item records its file's size and modification time (``mtime_ns``):
together they are the file's identity in a run (`xyrt.corpus.shards`), so a file changed after
its codes were written is noticed without reading it.
"""

from __future__ import annotations

import csv
import glob
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xyrt.config import INPUT_SAMPLE_RATE
from xyrt.errors import AudioError, XyrtError, require
from xyrt.runtime.chunking import num_codes

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".aiff", ".aif", ".au", ".caf")
MANIFEST_SUFFIXES = (".jsonl", ".csv", ".tsv")
RESERVED = ("id", "path", "start", "end")  # manifest columns with a meaning
END_TOLERANCE = 0.01  # seconds a segment's end may pass the file's end (rounded durations)


@dataclass(frozen=True)
class Item:
    """One thing to tokenize: a whole file (start = end = None) or a segment of it (seconds)."""

    id: str
    path: str
    start: float | None = None
    end: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    size: int = 0  # bytes on disk (0 when unknown): orders items by length before reading
    mtime_ns: int = 0  # the file's modification time (0 when unknown): with size, its identity

    @property
    def sort_key(self) -> tuple[float, str]:
        """Rough length first (segments: seconds as 16-bit PCM bytes), then id."""
        if self.end is not None:
            return ((self.end - (self.start or 0.0)) * 2 * INPUT_SAMPLE_RATE, self.id)
        return (float(self.size), self.id)


class ItemError(AudioError):
    """An item that cannot be tokenized; ``kind`` is one of the errors table's kinds."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind


def _stat(path: str) -> tuple[int, int]:
    """(size, mtime_ns) of a file; (0, 0) when it cannot be read (reading it then fails)."""
    try:
        st = os.stat(path)
    except OSError:
        return 0, 0
    return st.st_size, st.st_mtime_ns


def _file_item(path: Path) -> Item:
    p = str(path.resolve())
    return Item(p, p, None, None, {}, *_stat(p))


def _seconds(value: Any, what: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise XyrtError(f"{what} must be a number of seconds, got {value!r}") from None
    if not np.isfinite(x) or x < 0:
        raise XyrtError(f"{what} must be a finite number of seconds >= 0, got {value!r}")
    return x


def _manifest_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(where, row) pairs of a JSONL/CSV/TSV manifest."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM is not part of the header
    except (OSError, UnicodeDecodeError) as exc:
        raise XyrtError(f"cannot read manifest {path}: {exc}") from exc
    if not text.strip():
        return []
    if path.suffix.lower() == ".jsonl":
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise XyrtError(f"{path}:{n} is not a JSON object: {exc}") from exc
            if not isinstance(row, dict):
                raise XyrtError(f"{path}:{n} is {type(row).__name__}; expected a JSON object")
            rows.append((f"{path}:{n}", row))
        return rows
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
    if reader.fieldnames is None or "path" not in reader.fieldnames:
        raise XyrtError(
            f"manifest {path} has columns {reader.fieldnames or []}; expected a header row with "
            "a 'path' column (and optionally id, start, end and any others)"
        )
    rows = []
    for row in reader:
        where = f"{path}:{reader.line_num}"
        if None in row:  # csv puts the fields past the header's under the key None
            fields = len(reader.fieldnames) + len(row[None])
            raise XyrtError(
                f"{where} has {fields} fields, but the header has {len(reader.fieldnames)} "
                f"({', '.join(reader.fieldnames)}); quote fields that hold a "
                f"{'tab' if delimiter == chr(9) else 'comma'}"
            )
        if any(v and v.strip() for v in row.values()):  # a blank line is no item
            rows.append((where, row))
    return rows


def read_manifest(path: str | Path) -> list[Item]:
    """Items of a JSONL/CSV/TSV manifest; `XyrtError` naming the line for a malformed row."""
    path = Path(path)
    items = []
    rows = _manifest_rows(path)
    if not rows:
        raise XyrtError(
            f"manifest {path} lists no items (it is empty, blank or only a header); expected "
            "one row per audio file or segment, with a 'path'"
        )
    for where, row in rows:
        audio = row.get("path")
        if not isinstance(audio, str) or not audio.strip():
            raise XyrtError(f"{where}: 'path' must be a non-empty string, got {audio!r}")
        full = Path(audio) if os.path.isabs(audio) else path.parent / audio
        start = _seconds(row.get("start"), f"{where}: start")
        end = _seconds(row.get("end"), f"{where}: end")
        if start is not None and end is not None and end <= start:
            raise XyrtError(f"{where}: end ({end}) must be after start ({start})")
        p = str(full.resolve())
        default = p if start is None and end is None else f"{p}#{start or 0:g}-{end or 'end'}"
        raw_id = row.get("id")
        item_id = default if raw_id is None or raw_id == "" else str(raw_id)
        extra = {k: v for k, v in row.items() if k not in RESERVED}
        items.append(Item(item_id, p, start, end, extra, *_stat(p)))
    return items


def collect_items(inputs: Sequence[str | os.PathLike]) -> list[Item]:
    """Items of every input (folder: its audio files, recursively; glob; audio file; manifest),
    in the order given; `XyrtError` for an input that names nothing or for duplicate ids."""
    if not inputs:
        raise XyrtError("no inputs: give audio folders, files, globs or a manifest")
    items: list[Item] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            files = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
            )
            if not files:
                raise XyrtError(f"folder {path} holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
            items += [_file_item(p) for p in files]
        elif path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
            items += read_manifest(path)
        elif path.is_file():
            items.append(_file_item(path))
        elif glob.has_magic(str(raw)):
            files = sorted(Path(p) for p in glob.glob(str(raw), recursive=True))
            files = [p for p in files if p.is_file()]
            if not files:
                raise XyrtError(f"glob {str(raw)!r} matches no files")
            items += [_file_item(p) for p in files]
        else:
            raise XyrtError(
                f"input {str(raw)!r} does not exist; expected an audio folder, file or glob, "
                f"or a manifest ({', '.join(MANIFEST_SUFFIXES)})"
            )
    seen: dict[str, int] = {}
    for item in items:
        seen[item.id] = seen.get(item.id, 0) + 1
    dup = [k for k, n in seen.items() if n > 1]
    if dup:
        raise XyrtError(
            f"{len(dup)} id(s) occur more than once, e.g. {dup[:3]}; every item needs its own id "
            "(give each input once, or a manifest with an 'id' column)"
        )
    return items


def read_item(item: Item) -> tuple[np.ndarray, int]:
    """16 kHz mono float32 samples of ``item`` and the file's own sample rate.

    Reads as `xyrt.runtime.formats.audio.load_audio` does (so whole files give the same samples);
    raises `ItemError` with kind ``unreadable``, ``empty``, ``bad-segment`` (a segment that
    starts at or past the file's end, or ends more than `END_TOLERANCE` past it), ``invalid`` or
    ``too-short``.
    """
    sf = require("soundfile", "audio", "reading audio files")
    from xyrt.runtime.formats.audio import MAX_SECONDS, prepare_audio

    try:
        with sf.SoundFile(item.path) as f:
            rate = f.samplerate
            first = 0 if item.start is None else int(round(item.start * rate))
            last = f.frames if item.end is None else int(round(item.end * rate))
            if f.frames == 0:
                raise ItemError("empty", f"{item.path} holds no samples")
            if last > f.frames + END_TOLERANCE * rate:
                raise ItemError(
                    "bad-segment",
                    f"segment {item.start or 0:g}-{item.end:g} s ends past the end of "
                    f"{item.path} ({f.frames / rate:.3f} s long); fix the manifest's end",
                )
            last = min(last, f.frames)
            if first >= last:
                raise ItemError(
                    "bad-segment",
                    f"segment {item.start}-{item.end} s is outside {item.path} "
                    f"({f.frames / rate:.2f} s long)",
                )
            if last - first > MAX_SECONDS * rate:
                raise ItemError(
                    "invalid",
                    f"{(last - first) / rate / 3600:.2f} hours; at most "
                    f"{MAX_SECONDS // 3600} hours per item are accepted: split it",
                )
            if first:
                f.seek(first)
            data = f.read(last - first, dtype="float32", always_2d=True)
    except ItemError:
        raise
    except (sf.SoundFileError, RuntimeError, TypeError, OSError) as exc:
        raise ItemError("unreadable", f"cannot read {item.path}: {exc}") from exc
    try:
        samples = prepare_audio(data, rate, what=f"audio file {item.path}")
    except AudioError as exc:
        raise ItemError("invalid", str(exc)) from exc
    if num_codes(len(samples)) == 0:
        raise ItemError(
            "too-short",
            f"{item.path} is {len(samples) / 16:.1f} ms long; at least 80 ms (one code) is needed",
        )
    return samples, rate
