"""Issue 21 class 5: inputs that used to end in a traceback get one line and exit 1; anything
unexpected left is reported as an internal error in one line (exit 3), never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from helpers import FIXTURES, exported
from xyrt.cli import main
from xyrt.errors import XyrtError

CKPT = FIXTURES / "tiny_16k" / "model.ckpt"


def err_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_decode_stream_on_a_npy_file(tmp_path: Path, capsys) -> None:
    np.save(tmp_path / "codes.npy", np.zeros((8, 5), np.int64))
    args = ["decode", "--stream", "--model", str(exported("tiny_16k")), str(tmp_path / "codes.npy")]
    assert main([*args, "-o", str(tmp_path / "out.wav")]) == 1
    err = err_line(capsys)
    assert "line 1 is not UTF-8 text" in err and "without --stream" in err
    assert not (tmp_path / "out.wav").exists()


def test_csv_row_with_extra_fields_names_the_line(tmp_path: Path) -> None:
    from xyrt.corpus.inputs import collect_items

    (tmp_path / "m.csv").write_text("path,id\na.wav,1\nb.wav,2,oops\n")
    with pytest.raises(XyrtError, match=r"m.csv:3 has 3 fields, but the header has 2"):
        collect_items([tmp_path / "m.csv"])
    (tmp_path / "m.tsv").write_text("path\tid\na.wav\t1\textra\n")
    with pytest.raises(XyrtError, match=r"m.tsv:2 has 3 fields.*quote fields that hold a tab"):
        collect_items([tmp_path / "m.tsv"])


def test_a_npy_named_npz_as_calib(tmp_path: Path, capsys) -> None:
    np.save(tmp_path / "cal.npy", np.zeros(10, np.float32))
    shutil.move(tmp_path / "cal.npy", tmp_path / "cal.npz")
    model = str(exported("tiny_16k"))
    args = ["quantize", model, "--calib", str(tmp_path / "cal.npz"), "-o", str(tmp_path / "q")]
    assert main(args) == 1
    assert "holds a single array of shape (10,) (a .npy file)" in err_line(capsys)


def test_openvino_graph_stamped_as_another_graph(tmp_path: Path, capsys) -> None:
    pytest.importorskip("openvino", reason="xyrt[openvino] is not installed")
    from xyrt.runtime.modeldir.manifest import sha256_file

    d = Path(shutil.copytree(exported("tiny_16k"), tmp_path / "model"))
    shutil.copy(d / "encoder.onnx", d / "decoder.onnx")  # stamped 'encoder'
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["graphs"]["decoder"]["sha256"] = sha256_file(d / "decoder.onnx")
    (d / "manifest.json").write_text(json.dumps(manifest))
    np.save(tmp_path / "codes.npy", np.zeros((8, 5), np.int64))
    args = ["decode", "--model", str(d), "--backend", "openvino", str(tmp_path / "codes.npy")]
    assert main([*args, "-o", str(tmp_path / "out.wav")]) == 1
    assert "'xyrt.graph': ('encoder', 'decoder')" in err_line(capsys)


def test_an_unexpected_exception_is_one_line_marked_as_a_bug(monkeypatch, capsys) -> None:
    import xyrt.commands

    def broken(args) -> None:
        raise TypeError("'<' not supported between instances of 'NoneType' and 'str'")

    monkeypatch.setattr(xyrt.commands, "cmd_synth", broken)
    monkeypatch.delenv("XYRT_DEBUG", raising=False)
    assert main(["synth", "-o", "/nonexistent-dir/x.ckpt"]) == 3
    err = err_line(capsys)
    assert "internal error: TypeError: '<' not supported" in err and "bug in xyrt" in err
    assert "test_cli_tracebacks.py" in err  # where it was raised
    monkeypatch.setenv("XYRT_DEBUG", "1")
    with pytest.raises(TypeError):
        main(["synth", "-o", "/nonexistent-dir/x.ckpt"])
