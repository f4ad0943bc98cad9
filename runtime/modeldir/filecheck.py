"""Checking a file against its expected sha256 without re-reading it when it has not changed.

Hashing a full-size graph (1 GB) takes seconds on every load. Once a file has hashed to the
expected value, xyrt records its stat (size, mtime_ns, ctime_ns, inode, device) in a stamp, its
own small JSON file in the xyrt cache (`cache_dir()`; never beside or inside the user's files).
A later check whose stat matches the stamp does not read the file again; any difference (an
edit, even one of the same size with the old mtime put back, changes ctime; a copy or a
replacement changes the inode) means a full re-hash, as does ``rehash=True`` (`xyrt verify`).
Where the cache cannot be written, every check hashes, as before.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from xyrt.atomic import atomic_write
from xyrt.errors import XyrtError


def cache_dir() -> Path:
    """xyrt's cache: $XYRT_CACHE, else ~/.cache/xyrt."""
    return Path(os.environ.get("XYRT_CACHE", Path.home() / ".cache" / "xyrt"))


def hub_blobs(directory: Path) -> Path | None:
    """The ``blobs/`` folder of the Hugging Face Hub cache repository whose snapshot
    ``directory`` is (``<repo>/snapshots/<revision>/``, files symlinked into ``<repo>/blobs/``,
    the layout ``huggingface_hub`` downloads), else None."""
    real = directory.resolve()
    blobs = real.parent.parent / "blobs"
    return blobs if real.parent.name == "snapshots" and blobs.is_dir() else None


def member(directory: Path, name: str, listed_by: str) -> Path:
    """``directory / name`` when ``name`` is a plain file name inside ``directory`` (not a
    folder path, ``..`` or absolute, nor a symlink leading out; a Hub cache snapshot's symlink
    into its own repository's ``blobs/`` is inside, `hub_blobs`); `XyrtError` naming
    ``listed_by`` (the file that lists it) otherwise."""
    inside = name not in ("", ".", "..") and Path(name).name == name and "\\" not in name
    path = directory / name
    if inside and os.path.lexists(path):
        parent = path.resolve().parent
        blobs = hub_blobs(directory) if path.is_symlink() else None
        inside = parent == directory.resolve() or (blobs is not None and parent == blobs)
    if not inside:
        raise XyrtError(
            f"{directory / listed_by} names {name!r}, which is not a file inside {directory}; "
            "every file a model directory uses must be in it (no folders, '..', absolute "
            "paths or symlinks leading out)"
        )
    return path


def sha256_file(path: str | Path, chunk: int = 1 << 24) -> str:
    """Hex sha256 of a file, read in 16 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class FileStat:
    """What identifies one version of a file without reading it."""

    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int

    @classmethod
    def of(cls, path: Path) -> FileStat:
        st = path.stat()
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def _stamp_path(path: Path) -> Path:
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
    return cache_dir() / "verified" / f"{key}.json"


def read_stamp(path: Path) -> tuple[str, FileStat] | None:
    """(sha256, stat) recorded for ``path``, or None (none recorded, or unreadable)."""
    try:
        data = json.loads(_stamp_path(path).read_text())
        if data["path"] != str(path.resolve()):
            return None
        return str(data["sha256"]), FileStat(**data["stat"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_stamp(path: Path, sha256: str, stat: FileStat) -> bool:
    """Record that ``path`` with ``stat`` hashed to ``sha256``; False if the cache is not
    writable (the next check then hashes again)."""
    record = {"path": str(path.resolve()), "sha256": sha256, "stat": asdict(stat)}
    try:
        with atomic_write(_stamp_path(path), claim=False) as tmp:
            tmp.write_text(json.dumps(record))
    except XyrtError:
        return False
    return True


def verify_file(
    path: str | Path, sha256: str, rehash: bool = False, expected_by: str = "manifest.json"
) -> bool:
    """Check that ``path`` has the sha256 ``sha256``: from its stamp when its stat is unchanged
    (and ``rehash`` is False), else by hashing it, recording a stamp when it matches.

    Returns whether the file was hashed; raises `XyrtError` (naming ``expected_by``, the file
    that lists the hash) when it does not match."""
    path = Path(path)
    before = FileStat.of(path)
    if not rehash and read_stamp(path) == (sha256, before):
        return False
    got = sha256_file(path)
    if got != sha256:
        raise XyrtError(
            f"{path} has sha256 {got[:12]}..., but {expected_by} expects {sha256[:12]}...: "
            "the file was modified or belongs to another export; re-run xyrt export"
        )
    if FileStat.of(path) == before:  # not changed while it was read
        write_stamp(path, sha256, before)
    return True
