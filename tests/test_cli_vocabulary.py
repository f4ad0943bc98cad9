"""Issue 27 item 6, one CLI vocabulary: ``xyrt --help`` lists the commands by workflow, every
command that reads a model takes ``--model``, and batch is spelled ``--batch-size``; the old
spellings still parse, to the same place, without being listed."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from xyrt.cli import build_parser, main

WORKFLOWS = {
    "prepare a model": ["synth", "convert", "export", "quantize", "calib", "build", "verify"],
    "run it": ["encode", "decode", "stream", "tokenize", "serve"],
    "measure it": ["bench"],
}
NO_MODEL = {"synth", "calib"}  # synth writes one, calib reads audio only


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _listed(help_text: str) -> dict[str, list[str]]:
    """Heading -> the commands under it, from ``xyrt --help``."""
    groups: dict[str, list[str]] = {}
    current = None
    for line in help_text.splitlines():
        if re.fullmatch(r"[a-z][a-z ]*:", line):
            current = line[:-1]
            groups[current] = []
        elif current is not None and (m := re.match(r"  ([a-z]+)  +\S", line)):
            groups[current].append(m.group(1))
    return groups


def test_help_lists_every_command_once_by_workflow() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "xyrt.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    groups = _listed(out)
    assert {k: v for k, v in groups.items() if k in WORKFLOWS} == WORKFLOWS
    assert list(groups)[:3] == list(WORKFLOWS)  # in this order, before the options
    listed = [c for names in WORKFLOWS.values() for c in names]
    assert sorted(listed) == sorted(_commands())  # every command, and each once
    assert "{" not in out  # no choices list: the commands are listed once, above


def test_every_command_that_reads_a_model_takes_model(tmp_path: Path) -> None:
    commands = _commands()
    for name, p in commands.items():
        if name in NO_MODEL:
            assert "--model" not in p._option_string_actions, name
            continue
        assert "--model" in p._option_string_actions, name
        assert re.search(r"^  --model ", p.format_help(), re.M), name
        assert "[--model" not in p.format_usage() or name == "bench", name  # required, not [..]
    argv = {
        "convert": ["-o", "hf"],
        "export": ["-o", "onnx"],
        "quantize": ["-o", "q"],
        "build": ["-o", "e"],
        "verify": [],
        "encode": ["in.wav", "-o", "c.npy"],
        "decode": ["c.npy", "-o", "a.wav"],
        "stream": [],
        "tokenize": ["audio/", "-o", "out"],
        "serve": [],
        "bench": [],
    }
    dest = {"convert": "source", "export": "checkpoint", "quantize": "model_dir"}
    dest |= {"build": "model_dir", "verify": "model_dir"}
    assert set(argv) == set(commands) - NO_MODEL
    parser = build_parser()
    for name, rest in argv.items():
        args = parser.parse_args([name, "--model", "m", *rest])
        got = getattr(args, dest.get(name, "model"))
        assert got == (Path("m") if name != "bench" else [Path("m")]), name


@pytest.mark.parametrize(
    ("new", "old", "dest"),
    [
        (["convert", "--model", "s", "-o", "h"], ["convert", "s", "-o", "h"], "source"),
        (["export", "--model", "c", "-o", "d"], ["export", "--checkpoint", "c", "-o", "d"], None),
        (["quantize", "--model", "d", "-o", "q"], ["quantize", "-o", "q", "d"], "model_dir"),
        (["build", "--model", "d", "-o", "e"], ["build", "d", "-o", "e"], "model_dir"),
        (["verify", "--model", "d"], ["verify", "d"], "model_dir"),
    ],
)
def test_old_model_spellings_still_parse_unlisted(new, old, dest) -> None:
    parser = build_parser()
    assert vars(parser.parse_args(new)) == vars(parser.parse_args(old))
    if dest is None:  # an old flag: not in the help
        assert "--checkpoint" not in _commands()[new[0]].format_help()


def test_encode_checkpoint_is_a_hidden_alias_of_model() -> None:
    p = _commands()["encode"]
    assert "--checkpoint" not in p.format_help()
    args = build_parser().parse_args(["encode", "--checkpoint", "c", "in.wav", "-o", "x.npy"])
    assert args.checkpoint == Path("c") and args.model is None  # xyrt.commands reads both


@pytest.mark.parametrize(
    ("argv", "alias", "dest", "value"),
    [
        (["build", "--model", "d", "-o", "e"], "--batch", "batch", "1,2,8"),
        (["bench"], "--batch", "batch", "1,4"),
        (["serve", "--model", "m"], "--max-batch", "batch_size", "8"),
    ],
)
def test_batch_aliases_reach_the_same_dest_and_are_hidden(argv, alias, dest, value) -> None:
    parser = build_parser()
    canonical = parser.parse_args([*argv, "--batch-size", value])
    old = parser.parse_args([*argv, alias, value])
    assert getattr(canonical, dest) == getattr(old, dest) != parser.parse_args(argv).__dict__[dest]
    assert vars(canonical) == vars(old)
    text = _commands()[argv[0]].format_help()
    assert "--batch-size" in text and not re.search(rf"{alias}\b(?!-)", text)


def test_batch_is_spelled_one_way() -> None:
    """No listed option spells a batch size other than --batch-size (--batch-seconds is
    audio per call, a different unit)."""
    for name, p in _commands().items():
        for action in p._actions:
            if action.help == argparse.SUPPRESS:
                continue
            for flag in action.option_strings:
                if "batch" in flag:
                    assert flag in ("--batch-size", "--batch-seconds"), (name, flag)


def test_a_model_given_twice_is_a_malformed_command_line(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", "a", "--model", "b"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.splitlines()) == 1
    assert "argument --model: not allowed with argument DIR" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "-o", "x"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "the following arguments are required: --model" in err
