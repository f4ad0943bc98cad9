"""Atomic writes: nothing half-written is ever left at the destination, nothing else is touched.

- `atomic_write(path)`: one file, written beside ``path`` under a hidden name and renamed onto it.
  An existing file at ``path`` is replaced only when xyrt wrote it (`claim_file`): every file
  written with ``claim=True`` (the default: every command's output) is recorded by its stat in a
  stamp in the xyrt cache (``$XYRT_CACHE/written``, never beside the user's files), and a file
  whose stat is not the one recorded (another program's, or edited since) is refused. Files
  inside a directory xyrt owns (its marker lists them) and xyrt's cache use ``claim=False``.
- `replace_dir(out, kind)`: a whole output directory (an export, a quantized copy), built in a
  hidden folder beside ``out`` and swapped in at once when complete. Only what a previous xyrt
  run listed in its marker file (``manifest.json``) is replaced; other files in ``out`` are kept
  (hard-linked into the new folder before the swap); a non-empty folder without that marker is
  refused. A run killed at any point leaves the old directory loadable.
- `output_dir(out, kind)`: the same checks for a directory updated in place (engine caches).

Every hidden name is ``.<name>.xyrt-<pid>-<random>``: a later run for the same destination removes
the ones whose process is gone (a killed run), and never anything it did not name.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from xyrt.errors import XyrtError

TAG = ".xyrt-"  # hidden temporary names: .<destination name>.xyrt-[old-]<pid>-<random>[.tmp]


def _hidden_prefix(name: str, old: bool = False) -> str:
    return f".{name}{TAG}{'old-' if old else ''}{os.getpid()}-"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def sweep_stale(destination: Path) -> None:
    """Remove hidden temporaries of ``destination`` left by killed xyrt runs (their process is
    gone); a directory moved aside by a run killed mid-swap is moved back first."""
    parent = destination.parent
    pattern = re.compile(rf"\.{re.escape(destination.name)}\.xyrt-(old-)?(\d+)-[^/]*\Z")
    try:
        entries = list(parent.iterdir())
    except OSError:
        return
    for entry in entries:
        m = pattern.match(entry.name)
        if m is None or _pid_alive(int(m.group(2))):
            continue
        try:
            if m.group(1) and not destination.exists():  # killed between the two renames
                os.rename(entry, destination)
            elif entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:
            pass  # best effort: never fail a run over someone else's leftovers


def _umask_mode(mode: int) -> int:
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def check_output_file(path: str | os.PathLike, error: type[XyrtError] = XyrtError) -> Path:
    """``path`` as a Path, or ``error`` when it names a directory (a file is expected)."""
    path = Path(path)
    if path.is_dir():
        raise error(f"cannot write {path}: it is a directory; expected a file name")
    return path


def _written_stamp(path: Path) -> Path:
    import hashlib

    from xyrt.runtime.modeldir.filecheck import cache_dir

    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
    return cache_dir() / "written" / f"{key}.json"


def write_record(path: str | os.PathLike) -> str | None:
    """What this cache records of the file at ``path``: "same" (xyrt wrote it, unchanged
    since: its stat, inode and ctime included, is the recorded one), "changed" (xyrt wrote
    a file there, and this one is not it: edited, replaced), or None (no record here)."""
    from xyrt.runtime.modeldir.filecheck import FileStat

    path = Path(path)
    try:
        record = json.loads(_written_stamp(path).read_text())
        if record["path"] != str(path.resolve()):
            return None
        return "same" if FileStat(**record["stat"]) == FileStat.of(path) else "changed"
    except (OSError, ValueError, KeyError, TypeError):
        return None


def written_by_xyrt(path: str | os.PathLike) -> bool:
    """Whether the file at ``path`` is one an xyrt run wrote, unchanged since (`write_record`)."""
    return write_record(path) == "same"


def record_written(path: str | os.PathLike) -> bool:
    """Record that xyrt wrote the file at ``path`` as it is now; False when the cache is not
    writable (`check_recordable` refuses that before a command's work)."""
    from dataclasses import asdict

    from xyrt.runtime.modeldir.filecheck import FileStat

    path = Path(path)
    try:
        record = {"path": str(path.resolve()), "stat": asdict(FileStat.of(path))}
        with atomic_write(_written_stamp(path), claim=False) as tmp:
            tmp.write_text(json.dumps(record))
    except (OSError, XyrtError):
        return False
    return True


def check_recordable(error: type[XyrtError] = XyrtError) -> None:
    """``error`` unless the cache's record folder can be written: an output xyrt could not
    record would be refused as foreign by the next run (it is checked before any work)."""
    from xyrt.runtime.modeldir.filecheck import cache_dir

    folder = cache_dir() / "written"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise error(
            f"cannot record what xyrt writes in {folder} ({exc.strerror or exc}): XYRT_CACHE "
            f"({cache_dir()}) must be a writable folder, or a later run could not replace this "
            "output. Set XYRT_CACHE to a writable folder"
        ) from None


FORCE_HINT = "pass --force to replace it"


def claim_file(
    path: str | os.PathLike, error: type[XyrtError] = XyrtError, force: bool = False
) -> Path:
    """``path`` as a Path when xyrt may write it: absent, or a file xyrt wrote
    (`written_by_xyrt`); ``error`` for a directory or a file xyrt did not write. ``force``
    (the user's word that the file may go): an existing file is taken as xyrt's."""
    path = check_output_file(path, error)
    if not os.path.lexists(path) or written_by_xyrt(path):
        return path
    if force and not path.is_dir():
        if not record_written(path):
            check_recordable(error)
        return path
    from xyrt.runtime.modeldir.filecheck import cache_dir

    if write_record(path) == "changed":
        why = "xyrt did not write it as it is now (xyrt wrote a file there; it was changed since)"
    else:
        why = (
            f"xyrt did not write it, as far as its cache ({cache_dir()}/written) records: "
            "another program's file, or one xyrt wrote under another XYRT_CACHE (another user, "
            "CI, a wiped cache)"
        )
    raise error(
        f"will not overwrite {path}: {why}. Choose another output name, move that file away, "
        f"or, if it may go, {FORCE_HINT}"
    )


@contextmanager
def atomic_write(
    path: str | os.PathLike, error: type[XyrtError] = XyrtError, claim: bool = True
) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds.

    On any failure the temporary file is removed and ``path`` is untouched; OS errors are raised
    as ``error`` naming the destination. ``claim``: refuse to replace a file xyrt did not write,
    and record this one as xyrt's (see the module docstring); False for files in a directory
    xyrt owns and for its cache.
    """
    path = claim_file(path, error) if claim else check_output_file(path, error)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(path)
        prefix = _hidden_prefix(path.name)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
        os.close(fd)
    except OSError as exc:
        raise error(f"cannot write {path}: {exc}") from exc
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, _umask_mode(0o666))  # mkstemp creates 0600; outputs get the usual mode
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise error(f"cannot write {path}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    if claim:
        record_written(path)


@dataclass(frozen=True)
class DirKind:
    """What xyrt writes into a kind of output directory: a JSON marker file with a ``format``,
    listing its files under ``section`` (entries with ``file``/``external_data`` names)."""

    marker: str
    format: str
    section: str
    what: str  # "an xyrt export", for messages

    def owned(self, directory: Path) -> set[str] | None:
        """Names in ``directory`` that an xyrt run wrote (marker included), None when the
        directory holds no readable marker of this kind."""
        try:
            doc = json.loads((directory / self.marker).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(doc, dict) or doc.get("format") != self.format:
            return None
        names = {self.marker}
        entries = doc.get(self.section)
        for entry in entries.values() if isinstance(entries, dict) else ():
            for key in ("file", "external_data"):
                value = entry.get(key) if isinstance(entry, dict) else None
                if isinstance(value, str) and value and Path(value).name == value:
                    names.add(value)
        return names


def check_output_dir(out: Path, kind: DirKind) -> set[str]:
    """`XyrtError` unless ``out`` is absent, an empty directory or one of ``kind``; returns
    the names a previous run wrote there (empty when there are none)."""
    if out.exists() and not out.is_dir():
        raise XyrtError(f"output {out} exists and is not a directory; expected a directory path")
    if not out.exists():
        return set()
    try:
        contents = [p.name for p in out.iterdir()]
    except OSError as exc:
        raise XyrtError(f"cannot read output directory {out}: {exc}") from exc
    if not contents:
        return set()
    owned = kind.owned(out)
    if owned is None:
        raise XyrtError(
            f"output directory {out} is not empty and is not {kind.what} (no xyrt "
            f"{kind.marker}); xyrt only replaces its own output: choose a new or empty directory"
        )
    return owned


def _make_parents(out: Path) -> list[Path]:
    """Create the missing parents of ``out``; return them (deepest first) for cleanup."""
    made = []
    for parent in [out.parent, *out.parent.parents]:
        if parent.exists():
            break
        made.append(parent)
    out.parent.mkdir(parents=True, exist_ok=True)
    return made


def _remove_empty(dirs: list[Path]) -> None:
    for d in dirs:
        try:
            d.rmdir()
        except OSError:
            return


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_in(new: Path, out: Path, owned: set[str], kind: DirKind) -> None:
    """Make the complete folder ``new`` become ``out``; ``out``'s files that no xyrt run wrote are
    hard-linked into ``new`` first (kept, untouched), so either state is a whole directory."""
    if out.exists():
        os.chmod(new, out.stat().st_mode & 0o7777)
        for item in out.iterdir():
            if item.name in owned:
                continue
            if os.path.lexists(new / item.name):
                now = kind.owned(out)
                if now is not None and item.name in now:  # written since this run checked `out`
                    raise XyrtError(
                        f"another xyrt process wrote {out} while this one ran (its "
                        f"{kind.marker} appeared after this run checked the folder); {out} is "
                        "that run's complete output, left as it is: run again to replace it"
                    )
                raise XyrtError(
                    f"{item} is not listed in {out / kind.marker}, so xyrt did not write it, "
                    f"and the new output has a file of that name: move it away and run again"
                )
            if item.is_dir() and not item.is_symlink():
                shutil.copytree(item, new / item.name, symlinks=True, copy_function=os.link)
            elif item.is_symlink():
                os.symlink(os.readlink(item), new / item.name)
            else:
                os.link(item, new / item.name)
        if _exchange(new, out):
            shutil.rmtree(new, ignore_errors=True)  # ``new`` now holds the old directory
            return
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=_hidden_prefix(out.name, old=True)))
        os.rmdir(old)
        os.rename(out, old)  # a run killed here: the next one moves ``old`` back (sweep_stale)
        try:
            os.rename(new, out)
        except OSError:
            os.rename(old, out)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.chmod(new, _umask_mode(0o777))
        os.rename(new, out)


@contextmanager
def replace_dir(out: str | os.PathLike, kind: DirKind) -> Iterator[Path]:
    """Yield an empty hidden folder beside ``out`` to write the new output into (marker file
    last); when the block succeeds it replaces ``out`` in one step. On failure the folder is
    removed and ``out`` is as it was (a directory this call created is removed too)."""
    out = Path(out)
    if out.is_symlink() and out.is_dir():
        out = out.resolve()
    owned = check_output_dir(out, kind)
    try:
        made = _make_parents(out)
        sweep_stale(out)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=_hidden_prefix(out.name)))
    except OSError as exc:
        raise XyrtError(f"cannot write to {out}: {exc}") from exc
    try:
        yield tmp
        if not (tmp / kind.marker).is_file():
            raise XyrtError(f"internal: {tmp} has no {kind.marker}; {out} left as it was")
        try:
            _swap_in(tmp, out, owned, kind)
        except OSError as exc:
            raise XyrtError(f"cannot write to {out}: {exc}; {out} is left as it was") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(made)
        raise


@contextmanager
def output_dir(out: str | os.PathLike, kind: DirKind) -> Iterator[Path]:
    """``out`` checked (absent, empty or of ``kind``) and created, for in-place updates whose
    files are each written with `atomic_write`, marker last; a directory this call created is
    removed again when the block fails before writing anything into it."""
    out = Path(out)
    check_output_dir(out, kind)
    existed = out.exists()
    try:
        made = [] if existed else [out, *_make_parents(out)]
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise XyrtError(f"cannot create output directory {out}: {exc}") from exc
    try:
        yield out
    except BaseException:
        _remove_empty(made)
        raise
