"""Options that cannot take effect are errors naming the option and when it applies (issue 21,
class 1): the command line's `applies_when` declarations, the quantize schemes' options and the
backend registry's."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

import xyrt.runtime
from helpers import calib_set, exported, golden
from xyrt.calib.quantize import quantize
from xyrt.cli import build_parser, check_applies, main
from xyrt.errors import XyrtError
from xyrt.runtime.formats.audio import write_wav

M = "model_dir"  # never opened: these command lines are refused while parsing

S = ["stream", "--model", M, "--source", "a.wav"]  # a file source
D = ["decode", "--model", M, "c.npy", "-o", "o.wav"]  # offline decode
DS = ["decode", "--model", M, "--stream", "-", "-o", "o.wav"]  # streaming decode
REFUSED = [
    ([*S, "--duration", "0.5"], "--duration", "with --source mic"),
    ([*S, "--input-device", "2"], "--input-device", "with --source mic"),
    ([*S, "--rate", "8000"], "--rate", "with --source mic or -"),
    (["stream", "--model", M, "--source", "-", "--realtime"], "--realtime", "an audio file"),
    ([*S, "--output-device", "x"], "--output-device", "with --loopback"),
    ([*D, "--hop", "0.64"], "--hop", "with --stream"),
    ([*D, "--context", "3"], "--context", "with --stream"),
    ([*D, "--lookahead", "0"], "--lookahead", "with --stream"),
    ([*D, "--max-hop", "1"], "--max-hop", "with --stream"),
    ([*D, "--crossfade", "0"], "--crossfade", "with --stream"),
    ([*D, "--play"], "--play", "with --stream"),
    ([*DS, "--output-device", "x"], "--output-device", "with --play"),
    ([*DS, "--overlap", "5"], "--overlap", "without --stream"),
    ([*DS, "--batch-size", "2"], "--batch-size", "without --stream"),
    ([*DS, "--pad-to-30s"], "--pad-to-30s", "without --stream"),
    (["bench", "--pick-snr", "30"], "--pick-snr", "with --pick"),
    (["quantize", M, "-o", "q", "--no-sensitivity", "--granularity", "layer"], "--granularity",
     "not --no-sensitivity"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "option", "when"), REFUSED, ids=lambda x: str(x)[:40])
def test_an_option_that_cannot_take_effect_is_refused_naming_it(
    argv: list[str], option: str, when: str, capsys, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2  # a malformed command line
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"xyrt {argv[0]}: error: {option} applies only" in err, err
    assert when in err, err
    assert list(tmp_path.iterdir()) == []


def test_given_at_its_default_value_is_still_refused(capsys) -> None:
    """Given, not "different from the default": --hop 0.32 is the default, and still ignored."""
    with pytest.raises(SystemExit):
        main(["decode", "--model", M, "c.npy", "-o", "o.wav", "--hop", "0.32"])
    assert "--hop applies only with --stream" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["stream", "--model", M, "--source", "mic", "--duration", "1", "--input-device", "2"],
        ["stream", "--model", M, "--source", "-", "--rate", "8000"],
        ["stream", "--model", M, "--source", "a.wav", "--realtime"],
        ["stream", "--model", M, "--loopback", "--output-device", "x"],
        ["decode", "--model", M, "--stream", "-", "--play", "--output-device", "x", "--hop", "1"],
        ["decode", "--model", M, "c.npy", "-o", "o.wav", "--overlap", "5", "--batch-size", "2"],
        ["bench", "--pick", "0.9", "--pick-snr", "30"],
        ["quantize", M, "-o", "q", "--target-agreement", "0.9"],
    ],
)
def test_options_where_they_apply_pass_the_check(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert check_applies(args, argv) is None


def test_every_declaration_names_an_option_of_its_command() -> None:
    from xyrt.cli import applies_when

    p = argparse.ArgumentParser(prog="xyrt x")
    p.add_argument("--real")
    with pytest.raises(ValueError, match=r"has no option\(s\) \['--typo'\]"):
        applies_when(p, "never", lambda a: True, "--typo")


# -- quantize: the options each scheme takes (xyrt.calib.quantize.SCHEME_OPTIONS) -------------


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (
            {"precision": "fp16", "attention": "int8"},
            r"attention='int8' applies only to the cpu-dynamic scheme; this fp16 run writes fp16",
        ),
        (
            {"scheme_names": ["trt-qdq"], "attention": "fused", "calib": "calib"},
            r"attention='fused' applies only to the cpu-dynamic scheme; .* writes trt-qdq",
        ),
        (
            {"scheme_names": ["cpu-dynamic"], "calib": "calib"},
            r"calib applies only to the trt-qdq and openvino schemes; .* writes cpu-dynamic",
        ),
        ({"scheme_names": ["cpu-dynamic"], "exclude": ("",)}, r"exclude prefix '' is empty"),
        ({"scheme_names": ["cpu-dynamic"], "exclude": (" ",)}, r"exclude prefix ' ' is empty"),
        (
            {"scheme_names": ["cpu-dynamic"], "exclude": ("/semantic_encoder", "/no_such")},
            r"exclude prefix '/no_such' names no node .* start like: /acoustic_decoder",
        ),
        ({"scheme_names": ["cpu-dynamic"], "exclude": "/frontend"}, r"a list of node-name"),
    ],
)
def test_quantize_refuses_options_its_schemes_do_not_take(
    tmp_path: Path, kwargs: dict, pattern: str
) -> None:
    if kwargs.get("calib") == "calib":
        kwargs = {**kwargs, "calib": calib_set()}
    out = tmp_path / "q"
    with pytest.raises(XyrtError, match=pattern):
        quantize(exported("tiny_16k"), out, **kwargs)
    assert not out.exists()


def test_quantize_cli_empty_exclude_is_one_line_exit_1(tmp_path: Path, capsys) -> None:
    out = tmp_path / "q"
    argv = ["quantize", str(exported("tiny_16k")), "--scheme", "cpu-dynamic", "--exclude", ""]
    assert main([*argv, "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exclude prefix '' is empty" in err, err
    assert not out.exists()


# -- backends: the registry's options (xyrt.runtime.backends.registry.check_options) ----------


def test_providers_with_openvino_names_the_backend_they_apply_to() -> None:
    with pytest.raises(
        XyrtError,
        match=r"providers=\['cuda'\] does not apply to the openvino backend \(it applies to the "
        r"onnxruntime backend\)",
    ):
        xyrt.runtime.load(exported("tiny_16k"), backend="openvino", providers=["cuda"])


def test_providers_with_openvino_on_the_command_line(tmp_path: Path, capsys) -> None:
    wav = write_wav(tmp_path / "in.wav", golden("tiny_16k")["speech_0/wav"], 16000)
    argv = ["encode", "--model", str(exported("tiny_16k")), "--backend", "openvino"]
    out = tmp_path / "c.npy"
    assert main([*argv, "--providers", "cuda", str(wav), "-o", str(out)]) == 1
    assert "does not apply to the openvino backend" in capsys.readouterr().err
    assert not out.exists()
