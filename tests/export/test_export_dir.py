"""`xyrt export`/`xyrt quantize` output directories: the user's files are never touched."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import xyrt.runtime
from helpers import FIXTURES, exported, golden
from xyrt.errors import XyrtError
from xyrt.export.onnx_export import export_onnx

CKPT = FIXTURES / "tiny_16k" / "model.ckpt"


def test_reexport_keeps_user_files_and_a_killed_one_keeps_the_old_export(tmp_path: Path) -> None:
    out = tmp_path / "onnx"
    export_onnx(CKPT, out)
    (out / "notes.onnx.txt").write_text("mine")
    (out / "mine.onnx").write_bytes(b"user graph")
    wav = golden("tiny_16k")["speech_4/wav"]
    want = xyrt.runtime.load(exported("tiny_16k")).encode(wav)
    script = f"""
        import os
        import xyrt.export.onnx_export as ox
        real = ox.stamp_graph
        def dies(path, facts, graph, *a):
            real(path, facts, graph, *a)
            if graph == "decoder":
                os._exit(9)  # killed after both graphs are written, before the manifest
        ox.stamp_graph = dies
        ox.export_onnx({str(CKPT)!r}, {str(out)!r})
    """
    assert subprocess.run([sys.executable, "-c", textwrap.dedent(script)]).returncode == 9
    np.testing.assert_array_equal(xyrt.runtime.load(out).encode(wav), want)
    assert any(p.name.startswith(".onnx.xyrt-") for p in tmp_path.iterdir())
    export_onnx(CKPT, out)  # the next run cleans the killed one's folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx"]
    assert (out / "mine.onnx").read_bytes() == b"user graph"
    assert (out / "notes.onnx.txt").read_text() == "mine"
    np.testing.assert_array_equal(xyrt.runtime.load(out).encode(wav), want)


def test_export_refuses_foreign_folders_files_and_bad_opsets(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "model.onnx").write_bytes(b"precious")
    with pytest.raises(XyrtError, match="is not empty and is not an xyrt model directory"):
        export_onnx(CKPT, mine)
    assert (mine / "model.onnx").read_bytes() == b"precious"
    (tmp_path / "file").write_text("x")
    with pytest.raises(XyrtError, match="exists and is not a directory"):
        export_onnx(CKPT, tmp_path / "file")
    for opset in (13, 21, 99, "17"):
        with pytest.raises(XyrtError, match=r"opset .* is not supported; expected an integer 14"):
            export_onnx(CKPT, tmp_path / "o", opset=opset)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "mine"]


def test_failed_export_leaves_no_output_directory(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    (tmp_path / "config.yaml").write_bytes((FIXTURES / "tiny_16k" / "config.yaml").read_bytes())
    with pytest.raises(XyrtError, match="cannot read checkpoint"):
        export_onnx(bad, tmp_path / "new" / "onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.ckpt", "config.yaml"]


def test_quantize_refuses_a_folder_that_is_not_an_export(tmp_path: Path) -> None:
    from xyrt.calib.quantize import quantize

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "x.onnx").write_bytes(b"precious")
    with pytest.raises(XyrtError, match="is not empty and is not an xyrt model directory"):
        quantize(exported("tiny_16k"), mine, "int8", ["cpu-dynamic"])
    assert [p.name for p in mine.iterdir()] == ["x.onnx"]
