"""Regression tests for problems found in review: each one failed before its fix."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

import xyrt.runtime
from conftest import FIXTURES, codec, exported, golden
from xyrt.cli import main
from xyrt.errors import ConfigError, XyrtError

CKPT = FIXTURES / "tiny_16k" / "model.ckpt"


def test_outputs_get_the_usual_file_mode(tmp_path: Path) -> None:
    from xyrt.runtime.codes import save_codes

    path = save_codes(tmp_path / "c.npy", np.zeros((8, 3), np.int64))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_external_data_is_written_hashed_and_checked(tmp_path: Path, monkeypatch) -> None:
    import xyrt.export.onnx_export as ox

    monkeypatch.setattr(ox, "EXTERNAL_DATA_BYTES", 0)  # as if the graphs were over 2 GB
    out = ox.export_onnx(CKPT, tmp_path / "ext")
    assert (out / "encoder.onnx.data").is_file() and (out / "decoder.onnx.data").is_file()
    wav = golden("tiny_16k")["speech_4/wav"]
    np.testing.assert_array_equal(
        xyrt.runtime.load(out).encode(wav), xyrt.runtime.load(exported("tiny_16k")).encode(wav)
    )
    with open(out / "encoder.onnx.data", "r+b") as f:
        f.seek(100)
        f.write(b"\xff\xff\xff\xff")
    with pytest.raises(XyrtError, match="encoder.onnx.data has sha256"):
        xyrt.runtime.load(out).encode(wav)
    # exporting again into the same folder leaves no stale data files behind
    monkeypatch.setattr(ox, "EXTERNAL_DATA_BYTES", 1 << 40)
    ox.export_onnx(CKPT, out)
    assert sorted(p.name for p in out.iterdir()) == [
        "decoder.onnx",
        "encoder.onnx",
        "manifest.json",
    ]


def test_a_2d_array_is_one_stereo_clip_not_a_batch() -> None:
    wav = golden("tiny_16k")["speech_4/wav"]
    stereo = np.stack([wav, wav], axis=1)
    np.testing.assert_array_equal(codec("tiny_16k").encode(stereo), codec("tiny_16k").encode(wav))


def test_manifest_that_is_not_an_object(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("[1, 2]")
    with pytest.raises(XyrtError, match="not an xyrt manifest"):
        xyrt.runtime.load(tmp_path)


def test_missing_checkpoint_is_reported_before_its_config(tmp_path: Path, capsys) -> None:
    wav = xyrt.runtime.audio.write_wav(tmp_path / "a.wav", np.zeros(16000, np.float32), 16000)
    args = ["encode", "--checkpoint", str(tmp_path / "typo.ckpt"), str(wav), "-o", "c.npy"]
    assert main(args) == 1
    assert "checkpoint not found" in capsys.readouterr().err


def test_cli_checks_before_loading(tmp_path: Path, capsys) -> None:
    wav = tmp_path / "a.wav"
    xyrt.runtime.audio.write_wav(wav, golden("tiny_16k")["speech_4/wav"], 16000)
    assert (
        main(
            [
                "encode",
                "--model",
                str(exported("tiny_16k")),
                "--providers",
                "cpu",
                str(wav),
                "-o",
                str(tmp_path / "c.npy"),
            ]
        )
        == 0
    )
    assert "providers in use: CPUExecutionProvider" in capsys.readouterr().err
    assert main(["encode", "--checkpoint", str(CKPT), "--threads", "0", str(wav), "-o", "x"]) == 1
    assert "--threads must be at least 1" in capsys.readouterr().err
    assert main(["bench", "--checkpoint", str(tmp_path / "none.ckpt")]) == 1
    assert "checkpoint not found" in capsys.readouterr().err
    assert main(["bench", "--checkpoint", str(CKPT), "--plot", str(tmp_path / "no" / "p.png")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_synth_refuses_to_replace_a_different_config(tmp_path: Path) -> None:
    from xyrt.export.synth import synth_checkpoint

    (tmp_path / "config.yaml").write_text("sample_rate: 16000\n")
    with pytest.raises(ConfigError, match="exists and differs"):
        synth_checkpoint(tmp_path / "model.ckpt", FIXTURES / "tiny_16k" / "config.yaml")
    assert not (tmp_path / "model.ckpt").exists()
