"""Issue 21 class 10: every command that writes refuses to replace a file xyrt did not write,
and replaces its own. The commands and their output options are enumerated from the parser, so
a new writing command or option fails here until it is covered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import FIXTURES, exported, golden
from xyrt.cli import build_parser, main
from xyrt.runtime.formats.audio import write_wav

CKPT = FIXTURES / "tiny_16k" / "model.ckpt"
OUTPUT_OPTIONS = ("output", "json", "plot")  # argparse dests that name something xyrt writes
FOREIGN = b"the user's own file\n"


def _writing_options() -> set[tuple[str, str]]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return {
        (name, action.dest)
        for name, p in sub.choices.items()
        for action in p._actions
        if action.dest in OUTPUT_OPTIONS
    }


def _cases(tmp: Path) -> dict[tuple[str, str], list[list[str]]]:
    model = str(exported("tiny_16k"))
    wav = str(write_wav(tmp / "in.wav", golden("tiny_16k")["speech_4/wav"], 16000))
    np.save(tmp / "codes.npy", np.zeros((8, 4), np.int64))
    (tmp / "frames.jsonl").write_text('{"index": 0, "time": 0.0, "codes": [1,2,3,4,5,6,7,8]}\n')
    codes, frames, ckpt = str(tmp / "codes.npy"), str(tmp / "frames.jsonl"), str(CKPT)
    return {
        ("encode", "output"): [["encode", "--model", model, wav, "-o"]],
        ("decode", "output"): [
            ["decode", "--model", model, codes, "-o"],
            ["decode", "--stream", "--model", model, frames, "-o"],
        ],
        ("export", "output"): [["export", "--checkpoint", ckpt, "-o"]],
        ("bench", "json"): [["bench", "--checkpoint", ckpt, "--runs", "1", "--json"]],
        ("bench", "plot"): [["bench", "--checkpoint", ckpt, "--runs", "1", "--plot"]],
        ("stream", "output"): [["stream", "--model", model, "--source", wav, "-o"]],
        ("calib", "output"): [["calib", wav, "-o"]],
        ("quantize", "output"): [["quantize", model, "--scheme", "cpu-dynamic", "-o"]],
        ("build", "output"): [["build", model, "-o"]],
        ("tokenize", "output"): [["tokenize", wav, "--model", model, "-o"]],
        ("convert", "output"): [["convert", ckpt, "--to", "ckpt", "-o"]],
        ("synth", "output"): [["synth", "-o"]],
    }


def test_every_writing_command_refuses_a_file_it_did_not_write(tmp_path: Path, capsys) -> None:
    cases = _cases(tmp_path)
    assert set(cases) == _writing_options(), "a command writes something this test does not try"
    for (command, _), variants in cases.items():
        for args in variants:
            target = tmp_path / f"users-{command}.out"
            target.write_bytes(FOREIGN)
            assert main([*args, str(target)]) == 1, args
            err = capsys.readouterr().err
            assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
            assert any(
                m in err
                for m in ("will not overwrite", "not written by xyrt", "is not a directory")
                + ("not an xyrt tokenize output",)
            ), err
            assert target.read_bytes() == FOREIGN, f"{args} changed the user's file"


def test_own_outputs_are_replaced_and_a_replaced_one_is_refused(tmp_path: Path, capsys) -> None:
    """`xyrt synth -o DIR/model.ckpt` on a checkpoint xyrt did not write is refused; xyrt's own
    outputs are rewritten by a rerun, until someone else replaces them."""
    (tmp_path / "model.ckpt").write_bytes(FOREIGN)
    assert main(["synth", "-o", str(tmp_path / "model.ckpt")]) == 1
    assert "will not overwrite" in capsys.readouterr().err
    assert (tmp_path / "model.ckpt").read_bytes() == FOREIGN
    wav = str(write_wav(tmp_path / "in.wav", golden("tiny_16k")["speech_4/wav"], 16000))
    out = tmp_path / "codes.npy"
    args = ["encode", "--model", str(exported("tiny_16k")), wav, "-o", str(out)]
    assert main(args) == 0 and main(args) == 0  # a rerun replaces its own output
    np.save(out, np.load(out))  # rewritten by someone else: same content, but not xyrt's
    assert main(args) == 1
    assert f"will not overwrite {out}: xyrt did not write it" in capsys.readouterr().err


def test_stream_output_is_claimed_and_written_whole(tmp_path: Path) -> None:
    from xyrt.atomic import written_by_xyrt

    wav = str(write_wav(tmp_path / "in.wav", golden("tiny_16k")["speech_4/wav"], 16000))
    out = tmp_path / "frames.jsonl"
    args = ["stream", "--model", str(exported("tiny_16k")), "--source", wav, "-o", str(out)]
    assert main(args) == 0 and written_by_xyrt(out)
    lines = out.read_text().splitlines()
    assert main(args) == 0 and out.read_text().splitlines() == lines
    assert not [p for p in tmp_path.iterdir() if ".xyrt-" in p.name]  # no temporaries left


@pytest.mark.parametrize("name", ["x.npy", "x.wav"])
def test_library_writers_follow_the_same_rule(tmp_path: Path, name: str) -> None:
    from xyrt.errors import XyrtError
    from xyrt.runtime.formats.codes import save_codes

    path = tmp_path / name
    path.write_bytes(FOREIGN)
    with pytest.raises(XyrtError, match="will not overwrite"):
        if name.endswith(".npy"):
            save_codes(path, np.zeros((8, 2), np.int64))
        else:
            write_wav(path, np.zeros(100, np.float32), 16000)
    assert path.read_bytes() == FOREIGN
