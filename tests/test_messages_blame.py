"""Issue 29, class 8: messages blame what is wrong, not something near it. (The other cases of
the class are tested beside their surface: JSON codes and a body without 'rate' in
tests/serve/test_serve.py, a text file as --model and torch.device in
tests/runtime/test_options_checked.py, a shard index in tests/export/test_hub_cache.py.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import xyrt.runtime
from helpers import exported, golden
from xyrt.cli import main
from xyrt.errors import XyrtError


def _err(argv: list[str], capsys) -> str:
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_a_tampered_codebook_size_is_blamed_on_the_manifest_not_the_codes(tmp_path, capsys):
    d = tmp_path / "model"
    shutil.copytree(exported("tiny_16k"), d)
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["codebook_size"] = 16
    (d / "manifest.json").write_text(json.dumps(manifest))
    codes = xyrt.runtime.load(exported("tiny_16k")).encode(golden("tiny_16k")["speech_4/wav"])
    assert codes.max() >= 16  # valid codes, beyond the tampered size
    with pytest.raises(XyrtError, match=r"metadata does not match .*codebook_size.*'16'"):
        xyrt.runtime.load(d).decode(codes)
    np.save(tmp_path / "c.npy", codes)
    err = _err(["decode", "--model", str(d), str(tmp_path / "c.npy"), "-o", "x.wav"], capsys)
    assert "manifest.json was edited" in err and "code values" not in err


def test_a_text_file_as_calib_is_named_as_not_a_calibration_set(tmp_path, capsys):
    text = tmp_path / "calib.npz"
    text.write_text("just some text\n")
    argv = ["quantize", str(exported("tiny_16k")), "--scheme", "trt-qdq", "--calib", str(text)]
    err = _err([*argv, "-o", str(tmp_path / "q")], capsys)
    assert "is not an xyrt calibration set: it is not an .npz (zip) file" in err
    assert "pickle" not in err


def test_a_bad_host_is_blamed_on_the_host(capsys):
    pytest.importorskip("ray.serve")
    argv = ["serve", "--model", str(exported("tiny_16k")), "--host", "no.such.host.invalid"]
    err = _err(argv, capsys)
    assert "--host 'no.such.host.invalid' is not an address" in err and "--port" not in err


@pytest.mark.parametrize("kind", ["encode", "decode"])
def test_a_window_past_30_s_after_rounding_says_so(kind):
    codec = xyrt.runtime.load(exported("tiny_16k"), threads=1)
    make = codec.create_stream if kind == "encode" else codec.create_decode_stream
    with pytest.raises(
        XyrtError, match=r"make a window of .*more than one .*window holds \(at most 30 s"
    ):
        make(0.32, 29.61, 0.01)  # 29.94 s as given; the context is whole frames: 29.68 s
    make(0.32, 29.36, 0.32)  # exactly 30 s: allowed


def test_torch_device_is_accepted_as_documented(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from helpers import FIXTURES

    codec = xyrt.runtime.load(FIXTURES / "tiny_16k" / "model.ckpt", device=torch.device("cpu"))
    assert codec.encode(golden("tiny_16k")["speech_4/wav"]).shape[0] == 8
