"""Messages that say what happened (issue 21, class 8): echoed input is capped, a folder is not
"not found", a CSV's BOM is not part of its header, NaN codes are called NaN, an OpenVINO-only
directory points to --backend openvino, and the loser of two racing exports says so."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers import exported
from xyrt.atomic import replace_dir
from xyrt.checks import finite
from xyrt.cli import main
from xyrt.errors import ECHO_LIMIT, CodesError, XyrtError, received
from xyrt.runtime.formats.codes import load_codes, validate_codes
from xyrt.runtime.formats.frames import read_frames
from xyrt.runtime.modeldir.dirs import EXPORT_DIR
from xyrt.runtime.modeldir.manifest import Manifest


@given(st.one_of(st.text(max_size=5000), st.lists(st.integers(), max_size=3000)))
def test_received_values_are_capped(value: object) -> None:
    """Property: an echoed value is its repr when short, else a prefix of it plus its length,
    never more than ECHO_LIMIT characters."""
    text = received(value)
    assert len(text) <= ECHO_LIMIT
    full = repr(value)
    if len(full) <= ECHO_LIMIT:
        assert text == full
    else:
        assert full.startswith(text.split("... (")[0]) and f"({len(full)} characters)" in text


def test_a_jsonl_line_of_300000_codes_is_not_echoed_whole(tmp_path: Path, capsys) -> None:
    line = json.dumps({"index": 0, "time": 0.0, "codes": list(range(300_000))})
    with pytest.raises(CodesError, match=r"characters\); expected a list of 8 integers") as exc:
        list(read_frames([line]))
    assert len(str(exc.value)) < 300
    frames = tmp_path / "big.jsonl"
    frames.write_text(line + "\n")
    argv = ["decode", "--model", str(exported("tiny_16k")), "--stream", str(frames)]
    assert main([*argv, "-o", str(tmp_path / "o.wav")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 400, len(err)
    assert not (tmp_path / "o.wav").exists()


def test_a_cli_error_line_is_capped() -> None:
    from xyrt.errors import MESSAGE_LIMIT, one_line

    line = one_line("head\n" + "x" * 100_000)
    assert len(line) <= MESSAGE_LIMIT and line.endswith("(100005 characters in all)")
    assert one_line("a\nb\n c ") == "a b; c"


def test_option_checks_cap_what_they_echo() -> None:
    with pytest.raises(XyrtError, match=r"characters\)$") as exc:
        finite("9" * 100_000, "--hop")
    assert len(str(exc.value)) < 200


def test_a_folder_given_to_decode_stream_is_called_a_folder(tmp_path: Path, capsys) -> None:
    argv = ["decode", "--model", str(exported("tiny_16k")), "--stream", str(tmp_path)]
    assert main([*argv, "-o", str(tmp_path / "o.wav")]) == 1
    err = capsys.readouterr().err
    assert f"code frames file is a folder, not a file: {tmp_path}" in err, err
    assert "not found" not in err
    assert main([*argv[:-1], str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "o.wav")]) == 1
    assert "code frames file not found" in capsys.readouterr().err


@pytest.mark.parametrize("suffix, sep", [(".csv", ","), (".tsv", "\t")])
def test_a_bom_in_a_manifest_header_is_not_part_of_the_first_column(
    tmp_path: Path, suffix: str, sep: str
) -> None:
    from xyrt.corpus.inputs import read_manifest

    (tmp_path / "a.wav").write_bytes(b"")
    manifest = tmp_path / f"list{suffix}"
    manifest.write_text(f"path{sep}id\na.wav{sep}first\n", encoding="utf-8-sig")
    assert manifest.read_bytes().startswith(b"\xef\xbb\xbf")
    (item,) = read_manifest(manifest)
    assert Path(item.path).name == "a.wav" and item.id == "first"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_codes_are_called_nan(tmp_path: Path, dtype: type) -> None:
    codes = np.zeros((8, 5), dtype)
    codes[3, 2] = np.nan
    with pytest.raises(CodesError, match=r"codes contain 1 NaN value\(s\)"):
        validate_codes(codes)
    np.save(tmp_path / "c.npy", codes)
    with pytest.raises(CodesError, match=r"c.npy: codes contain 1 NaN value\(s\)"):
        load_codes(tmp_path / "c.npy")
    with pytest.raises(CodesError, match=r"line 1: codes contain NaN"):
        list(read_frames(['{"index": 0, "codes": [0, 1, 2, NaN, 4, 5, 6, 7]}']))
    with pytest.raises(CodesError, match=r"codes have dtype float"):  # no NaN: the dtype
        validate_codes(np.zeros((8, 5), dtype))


def test_nan_codes_on_the_command_line(tmp_path: Path, capsys) -> None:
    codes = np.full((8, 5), np.nan)
    np.save(tmp_path / "c.npy", codes)
    argv = ["decode", "--model", str(exported("tiny_16k")), str(tmp_path / "c.npy")]
    assert main([*argv, "-o", str(tmp_path / "o.wav")]) == 1
    assert "codes contain 40 NaN value(s)" in capsys.readouterr().err


def test_an_openvino_only_directory_suggests_the_openvino_backend(tmp_path: Path) -> None:
    graphs = {
        f"{g}.ov": {"file": f"{g}.ov.xml", "external_data": f"{g}.ov.bin"}
        for g in ("encoder", "decoder")
    }
    manifest = Manifest(tmp_path, {"graphs": graphs})
    with pytest.raises(XyrtError, match=r"lists no 'encoder' graph .* pass --backend openvino"):
        manifest.graph_path("encoder")
    onnx = Manifest(tmp_path, {"graphs": {"decoder": {"file": "decoder.onnx"}}})
    with pytest.raises(XyrtError, match=r"lists no 'encoder' graph") as exc:
        onnx.graph_path("encoder")
    assert "--backend openvino" not in str(exc.value)


def _write(folder: Path, tag: str) -> None:
    (folder / "encoder.onnx").write_text(tag)
    doc = {"format": EXPORT_DIR.format, "graphs": {"encoder": {"file": "encoder.onnx"}}}
    (folder / "manifest.json").write_text(json.dumps(doc))


def test_the_loser_of_two_racing_exports_says_another_run_wrote_it(tmp_path: Path) -> None:
    """Two runs check the same absent -o, the winner swaps its complete output in first: the
    loser names that, and the winner's output stays whole."""
    out = tmp_path / "model"
    race = r"another xyrt process wrote .* while this one ran"
    with pytest.raises(XyrtError, match=race) as e, replace_dir(out, EXPORT_DIR) as loser:
        _write(loser, "loser")
        with replace_dir(out, EXPORT_DIR) as winner:
            _write(winner, "winner")
    assert "not written by xyrt" not in str(e.value) and "did not write" not in str(e.value)
    assert (out / "encoder.onnx").read_text() == "winner"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no hidden leftovers


def test_a_foreign_file_in_the_way_is_still_named_as_foreign(tmp_path: Path) -> None:
    out = tmp_path / "model"
    with replace_dir(out, EXPORT_DIR) as first:
        _write(first, "first")
    (out / "notes.txt").write_text("mine")
    foreign = r"notes.txt is not listed .* xyrt did not write it"
    with pytest.raises(XyrtError, match=foreign), replace_dir(out, EXPORT_DIR) as second:
        _write(second, "second")
        (second / "notes.txt").write_text("clash")
    assert (out / "notes.txt").read_text() == "mine"
