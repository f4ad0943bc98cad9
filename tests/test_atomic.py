"""Output files and directories: only xyrt's own files are replaced, nothing half-written stays."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from xyrt.atomic import atomic_write, output_dir, replace_dir, sweep_stale
from xyrt.errors import XyrtError
from xyrt.runtime.modeldir.dirs import ENGINE_DIR, EXPORT_DIR


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` (hidden ones too) with file contents; None for folders."""
    out: dict[str, bytes | None] = {}
    for p in sorted(root.rglob("*")):
        out[str(p.relative_to(root))] = None if p.is_dir() else p.read_bytes()
    return out


def fake_export(folder: Path, tag: str, graphs=("encoder", "decoder")) -> None:
    """What an export writes: graphs listed in a manifest, the manifest last."""
    entries = {}
    for g in graphs:
        (folder / f"{g}.onnx").write_text(f"{g} {tag}")
        entries[g] = {"file": f"{g}.onnx", "external_data": None}
    (folder / "manifest.json").write_text(json.dumps({"format": "xyrt-onnx", "graphs": entries}))


def enter(manager) -> None:
    with manager:
        pytest.fail("must not get here")


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_new_directory_appears_complete_and_nothing_else_is_left(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "model"
    with replace_dir(out, EXPORT_DIR) as tmp:
        assert not out.exists() and tmp.parent == out.parent and tmp.name.startswith(".model.")
        fake_export(tmp, "new")
    assert sorted(p.name for p in out.iterdir()) == [
        "decoder.onnx",
        "encoder.onnx",
        "manifest.json",
    ]
    assert sorted(p.name for p in out.parent.iterdir()) == ["model"]


def test_failure_leaves_no_output_directory_and_no_created_parents(tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper" / "model"
    with pytest.raises(RuntimeError, match="boom"), replace_dir(out, EXPORT_DIR) as tmp:
        fake_export(tmp, "new")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_block_that_writes_no_manifest_publishes_nothing(tmp_path: Path) -> None:
    with (
        pytest.raises(XyrtError, match="has no manifest.json"),
        replace_dir(tmp_path / "m", EXPORT_DIR) as tmp,
    ):
        (tmp / "encoder.onnx").write_text("x")
    assert list(tmp_path.iterdir()) == []


def test_refuses_a_directory_that_is_not_an_export(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.onnx").write_text("user data")
    before = tree(tmp_path)
    with pytest.raises(XyrtError, match="is not empty and is not an xyrt model directory"):
        enter(replace_dir(out, EXPORT_DIR))
    (out / "manifest.json").write_text('{"format": "something-else"}')
    before = tree(tmp_path)
    with pytest.raises(XyrtError, match="not an xyrt model directory"):
        enter(replace_dir(out, EXPORT_DIR))
    assert tree(tmp_path) == before


def test_refuses_an_existing_file_and_an_engine_dir_for_an_export(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(XyrtError, match="exists and is not a directory"):
        enter(replace_dir(tmp_path / "file", EXPORT_DIR))
    engines = tmp_path / "engines"
    engines.mkdir()
    (engines / "engines.json").write_text('{"format": "xyrt-trt-engines", "engines": {}}')
    with pytest.raises(XyrtError, match="not an xyrt model directory"):
        enter(replace_dir(engines, EXPORT_DIR))
    with output_dir(engines, ENGINE_DIR) as out:  # the right kind is accepted
        assert out == engines


def test_overwrite_replaces_only_listed_files_and_keeps_the_users(tmp_path: Path) -> None:
    out = tmp_path / "model"
    out.mkdir()
    fake_export(out, "old", graphs=("encoder", "decoder", "encoder.qdq"))
    (out / "mine.onnx").write_text("user graph")
    (out / "notes").mkdir()
    (out / "notes" / "a.txt").write_text("user notes")
    inode = (out / "mine.onnx").stat().st_ino
    with replace_dir(out, EXPORT_DIR) as tmp:
        fake_export(tmp, "new")
    assert sorted(p.name for p in out.iterdir()) == [
        "decoder.onnx",
        "encoder.onnx",
        "manifest.json",
        "mine.onnx",
        "notes",
    ]  # encoder.qdq.onnx was the old export's: gone with it
    assert (out / "encoder.onnx").read_text() == "encoder new"
    assert (out / "mine.onnx").read_text() == "user graph"
    assert (out / "mine.onnx").stat().st_ino == inode  # the very same file, not a copy
    assert (out / "notes" / "a.txt").read_text() == "user notes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_an_unlisted_file_with_a_new_files_name_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "model"
    out.mkdir()
    fake_export(out, "old", graphs=("encoder",))
    (out / "decoder.onnx").write_text("not listed: the user's")
    before = tree(tmp_path)
    with (
        pytest.raises(XyrtError, match="decoder.onnx is not listed"),
        replace_dir(out, EXPORT_DIR) as tmp,
    ):
        fake_export(tmp, "new")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_a_killed_overwrite_leaves_the_old_export_and_the_next_run_cleans(
    tmp_path: Path, exchange: bool
) -> None:
    out = tmp_path / "model"
    out.mkdir()
    fake_export(out, "old")
    before = tree(out)
    script = f"""
        import os, xyrt.atomic as a
        from pathlib import Path
        from xyrt.runtime.modeldir.dirs import EXPORT_DIR
        if not {exchange}:
            a._exchange = lambda x, y: False
        with a.replace_dir(Path({str(out)!r}), EXPORT_DIR) as tmp:
            (tmp / "encoder.onnx").write_text("half")
            os._exit(9)
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)])
    assert proc.returncode == 9
    assert tree(out) == before  # old export untouched
    stale = [p.name for p in tmp_path.iterdir() if p.name != "model"]
    assert len(stale) == 1 and stale[0].startswith(".model.xyrt-")
    (tmp_path / ".model.other").write_text("not named by xyrt")
    with replace_dir(out, EXPORT_DIR) as tmp:
        fake_export(tmp, "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".model.other", "model"]
    assert (out / "encoder.onnx").read_text() == "encoder new"


def test_killed_between_the_two_renames_the_old_directory_comes_back(tmp_path: Path) -> None:
    out = tmp_path / "model"
    aside = tmp_path / f".model.xyrt-old-{dead_pid()}-abc"
    aside.mkdir()
    fake_export(aside, "old")
    sweep_stale(out)
    assert (out / "encoder.onnx").read_text() == "encoder old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_atomic_write_sweeps_only_its_own_dead_temporaries(tmp_path: Path) -> None:
    pid = dead_pid()
    dead = tmp_path / f".c.npy.xyrt-{pid}-x1.tmp"
    live = tmp_path / f".c.npy.xyrt-{os.getppid()}-x2.tmp"
    other = tmp_path / ".c.npy.user.tmp"
    for p in (dead, live, other):
        p.write_text("x")
    with atomic_write(tmp_path / "c.npy") as tmp:
        tmp.write_text("data")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["c.npy", live.name, other.name])
    with pytest.raises(XyrtError, match="is a directory"), atomic_write(tmp_path):
        pass


def test_in_place_output_dir_is_removed_when_the_work_fails(tmp_path: Path) -> None:
    out = tmp_path / "x" / "engines"
    with pytest.raises(XyrtError, match="boom"), output_dir(out, ENGINE_DIR):
        raise XyrtError("boom")
    assert list(tmp_path.iterdir()) == []
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "a.plan").write_text("user")
    with pytest.raises(XyrtError, match="not an xyrt engine directory"):
        enter(output_dir(mine, ENGINE_DIR))
