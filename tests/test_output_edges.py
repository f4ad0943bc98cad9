"""Issue 29, class 5: the output-file rule's edges. Files written beside the main output
(convert's config.json / config.yaml) are covered by the rule too; a file written under another
XYRT_CACHE is refused with what the record is and how to proceed (--force); a cache that cannot
record is refused before any work; ``-o newdir/`` names a folder, not a file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import FIXTURES, exported, golden
from xyrt.cli import main
from xyrt.runtime.formats.audio import write_wav

CKPT = FIXTURES / "tiny_16k" / "model.ckpt"


def _err(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache-a"
    monkeypatch.setenv("XYRT_CACHE", str(folder))
    return folder


def _encode(tmp_path: Path, out: Path) -> list[str]:
    wav = tmp_path / "in.wav"
    if not wav.exists():
        write_wav(wav, golden("tiny_16k")["speech_4/wav"], 16000)
    return ["encode", "--model", str(exported("tiny_16k")), str(wav), "-o", str(out)]


@pytest.mark.parametrize(("to", "beside"), [("hf", "config.json"), ("ckpt", "config.yaml")])
def test_convert_keeps_an_edited_file_it_wrote_beside_its_output(
    to, beside, tmp_path, cache, capsys
):
    pytest.importorskip("torch")
    out = tmp_path / ("hf" if to == "hf" else "out/model.ckpt")
    args = ["convert", str(CKPT), "--to", to, "-o", str(out)]
    assert main(args) == 0 and main(args) == 0  # its own output, unchanged: replaced
    edited = (out if to == "hf" else out.parent) / beside
    text = edited.read_text() + ("\n" if to == "hf" else "# the user's note\n")
    edited.write_text(text)
    capsys.readouterr()
    assert main(args) == 1
    err = _err(capsys)
    assert f"will not overwrite {edited}" in err and "changed since" in err and "--force" in err
    assert edited.read_text() == text  # the user's edit is kept
    assert main([*args, "--force"]) == 0 and edited.read_text() != text


def test_a_file_written_under_another_cache_names_the_record_and_force(
    tmp_path, cache, monkeypatch, capsys
):
    out = tmp_path / "codes.npy"
    assert main(_encode(tmp_path, out)) == 0
    monkeypatch.setenv("XYRT_CACHE", str(tmp_path / "cache-b"))  # CI, another HOME, wiped
    capsys.readouterr()
    assert main(_encode(tmp_path, out)) == 1
    err = _err(capsys)
    assert f"will not overwrite {out}: xyrt did not write it, as far as its cache" in err
    assert str(tmp_path / "cache-b") in err and "another XYRT_CACHE" in err
    assert "pass --force to replace it" in err
    assert main([*_encode(tmp_path, out), "--force"]) == 0
    assert main(_encode(tmp_path, out)) == 0  # recorded in this cache now


def test_an_unwritable_cache_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("XYRT_CACHE", str(blocker / "cache"))
    out = tmp_path / "codes.npy"
    assert main(_encode(tmp_path, out)) == 1
    err = _err(capsys)
    assert "cannot record what xyrt writes in" in err and "XYRT_CACHE" in err
    assert not out.exists()  # nothing written that a later run could not replace


@pytest.mark.parametrize(
    "argv",
    [
        ["encode", "--model", "m", "a.wav"],
        ["decode", "--model", "m", "c.npy"],
        ["calib", "a.wav"],
        ["synth"],
        ["convert", str(CKPT), "--to", "ckpt"],
    ],
)
def test_an_output_with_a_trailing_slash_names_a_folder(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main([*argv, "-o", "newdir/"])
    assert exc.value.code == 2
    err = _err(capsys)
    assert "-o newdir/ ends with '/', so it names a folder" in err and "newdir/" in err
    assert list(tmp_path.iterdir()) == []


def test_convert_to_a_folder_with_a_trailing_slash_is_fine(tmp_path, cache):
    pytest.importorskip("torch")
    assert main(["convert", str(CKPT), "-o", f"{tmp_path / 'hf'}/"]) == 0
    assert (tmp_path / "hf" / "config.json").is_file()
    np.testing.assert_equal((tmp_path / "hf").is_dir(), True)
