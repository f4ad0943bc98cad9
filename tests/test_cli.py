"""The command line as users (and acceptance checks) call it, on the golden tiny checkpoints."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import xyrt.runtime
from helpers import FIXTURES, codec, expect_codes, exported, golden, golden_reference
from xyrt.cli import main
from xyrt.runtime.formats.audio import write_wav

CKPT = FIXTURES / "tiny_16k" / "model.ckpt"


def _wav(tmp_path: Path, clip: str, name: str = "in.wav") -> Path:
    return write_wav(tmp_path / name, golden("tiny_16k")[f"{clip}/wav"], 16000)


@pytest.mark.golden
@pytest.mark.parametrize("name", ["tiny_16k", "tiny_moss_ttsd_24k"])
def test_encode_then_decode(tmp_path: Path, name: str, capsys) -> None:
    ckpt = FIXTURES / name / "model.ckpt"
    assert (
        main(
            [
                "encode",
                "--checkpoint",
                str(ckpt),
                str(_wav(tmp_path, "speech_2")),
                "-o",
                str(tmp_path / "c.npy"),
            ]
        )
        == 0
    )
    codes = np.load(tmp_path / "c.npy")
    assert codes.dtype == np.int64
    expect_codes(golden_reference(name, "speech_2", 10), codes, f"cli {name} speech_2")
    assert (
        main(
            [
                "decode",
                "--checkpoint",
                str(ckpt),
                str(tmp_path / "c.npy"),
                "-o",
                str(tmp_path / "r.wav"),
            ]
        )
        == 0
    )
    audio, rate = sf.read(tmp_path / "r.wav", dtype="float32")
    assert sf.info(tmp_path / "r.wav").subtype == "FLOAT"
    ref = golden(name)["speech_2/recon_ov10"]
    assert rate == (16000 if name == "tiny_16k" else 24000)
    assert np.abs(audio - ref).max() <= 1e-4 * np.abs(ref).max()
    err = capsys.readouterr().err
    assert "codes (8, 59)" in err
    # each one-shot command says its time is the run after loading the model, and how long that took
    assert err.count("s loading the model; a loaded model pays only the run") == 2, err


@pytest.mark.golden
def test_overlap_option_and_explicit_config(tmp_path: Path) -> None:
    ckpt = tmp_path / "elsewhere.ckpt"
    shutil.copy(FIXTURES / "tiny_16k" / "model.ckpt", ckpt)
    args = [
        "encode",
        "--checkpoint",
        str(ckpt),
        "--config",
        str(FIXTURES / "tiny_16k" / "config.yaml"),
        "--overlap",
        "0",
        str(_wav(tmp_path, "long_concat")),
        "-o",
        str(tmp_path / "c.npy"),
    ]
    assert main(args) == 0
    codes = np.load(tmp_path / "c.npy")
    expect_codes(golden_reference("tiny_16k", "long_concat", 0), codes, "cli long_concat")


def test_stereo_int16_other_rate_is_accepted(tmp_path: Path) -> None:
    t = np.arange(44100 * 2) / 44100
    tone = (0.3 * np.sin(2 * np.pi * 220 * t) * 32767).astype(np.int16)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([tone, tone // 2], axis=1), 44100, subtype="PCM_16")
    ckpt = FIXTURES / "tiny_16k" / "model.ckpt"
    assert (
        main(["encode", "--checkpoint", str(ckpt), str(path), "-o", str(tmp_path / "c.npy")]) == 0
    )
    assert np.load(tmp_path / "c.npy").shape == (8, 25)


def _fails(args: list[str], capsys, pattern: str) -> None:
    assert main(args) == 1
    err = capsys.readouterr().err
    assert pattern in err, err


def test_errors_are_one_clear_line_and_write_nothing(tmp_path: Path, capsys) -> None:
    ckpt = str(CKPT)
    out = tmp_path / "out.npy"
    lone = tmp_path / "lone.ckpt"
    shutil.copy(ckpt, lone)
    _fails(
        ["encode", "--checkpoint", str(lone), str(_wav(tmp_path, "speech_0")), "-o", str(out)],
        capsys,
        "no config.yaml next to the checkpoint",
    )
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really a wav")
    _fails(["encode", "--checkpoint", ckpt, str(bad), "-o", str(out)], capsys, "bad.wav")
    _fails(
        ["encode", "--checkpoint", ckpt, str(tmp_path / "missing.flac"), "-o", str(out)],
        capsys,
        "missing.flac",
    )
    _fails(
        [
            "encode",
            "--checkpoint",
            ckpt,
            "--overlap",
            "29.95",
            str(_wav(tmp_path, "speech_0")),
            "-o",
            str(out),
        ],
        capsys,
        "overlap must be in [0, 29.92] seconds",
    )
    short = write_wav(tmp_path / "short.wav", np.zeros(800, np.float32), 16000)
    _fails(
        ["encode", "--checkpoint", ckpt, str(short), "-o", str(out)],
        capsys,
        "shorter than one code",
    )
    assert not out.exists()
    codes = tmp_path / "codes.npy"
    np.save(codes, np.full((8, 5), 1024, dtype=np.int64))
    _fails(
        ["decode", "--checkpoint", ckpt, str(codes), "-o", str(tmp_path / "r.wav")],
        capsys,
        "expected values in [0, 1024)",
    )
    np.save(codes, np.zeros((4, 5), dtype=np.int64))
    _fails(
        ["decode", "--checkpoint", ckpt, str(codes), "-o", str(tmp_path / "r.wav")],
        capsys,
        "expected (8, T)",
    )
    assert not (tmp_path / "r.wav").exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).parent / "xyrt"
    result = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True)
    for command in ("encode", "decode", "synth"):
        assert command in result.stdout
    bad = subprocess.run([str(exe), "encode"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--model" in bad.stderr


def test_export_then_encode_decode_with_model_dir(tmp_path: Path, capsys) -> None:
    ckpt = FIXTURES / "tiny_16k" / "model.ckpt"
    out = tmp_path / "onnx"
    assert main(["export", "--checkpoint", str(ckpt), "-o", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"encoder.onnx", "decoder.onnx", "manifest.json"}
    wav = _wav(tmp_path, "speech_1")
    assert main(["encode", "--model", str(out), str(wav), "-o", str(tmp_path / "c.npy")]) == 0
    codes = np.load(tmp_path / "c.npy")
    assert (
        codes.shape == (8, 86)
        and np.mean(codes == golden("tiny_16k")["speech_1/codes_ov10"]) > 0.99
    )
    assert (
        main(
            ["decode", "--model", str(out), str(tmp_path / "c.npy"), "-o", str(tmp_path / "r.wav")]
        )
        == 0
    )
    assert sf.info(tmp_path / "r.wav").frames == 86 * 1280
    _fails(
        ["encode", "--model", str(out), "--pad-to-30s", str(wav), "-o", str(tmp_path / "x.npy")],
        capsys,
        "--pad-to-30s is for the PyTorch model",
    )


def test_verify_passes_and_fails(tmp_path: Path, capsys, monkeypatch) -> None:
    import xyrt.runtime.modeldir.filecheck as fc
    from xyrt.export.synth import synth_checkpoint

    model_dir = exported("tiny_16k")
    xyrt.runtime.load(model_dir).decode(np.zeros((8, 2), np.int64))  # graphs hashed, stamped
    hashed: list[str] = []
    real = fc.sha256_file
    monkeypatch.setattr(fc, "sha256_file", lambda p, *a: hashed.append(Path(p).name) or real(p))
    assert main(["verify", str(model_dir)]) == 0
    assert {"encoder.onnx", "decoder.onnx"} <= set(hashed)  # verify re-reads every graph
    report = capsys.readouterr().out
    assert "12/12 clips passed" in report and "s7" in report
    # a checkpoint with other weights but the same layout: everything must be reported, not
    # just the first failure
    other = synth_checkpoint(
        tmp_path / "other" / "model.ckpt", FIXTURES / "tiny_16k" / "config.yaml", seed=5
    )
    other_dir = tmp_path / "other_onnx"
    assert main(["export", "--checkpoint", str(other), "-o", str(other_dir)]) == 0
    manifest = (other_dir / "manifest.json").read_text()
    (other_dir / "manifest.json").write_text(
        manifest.replace(
            str(other.resolve()), str((FIXTURES / "tiny_16k" / "model.ckpt").resolve())
        )
    )
    assert main(["verify", str(other_dir), "--checkpoint", str(CKPT)]) == 1
    err = capsys.readouterr().err
    assert "is not the checkpoint" in err


def test_verification_collects_every_failure(tmp_path: Path) -> None:
    from xyrt.export.onnx_export import export_onnx
    from xyrt.export.synth import synth_checkpoint
    from xyrt.export.verify import format_report, verification_clips, verify_codec

    other = synth_checkpoint(
        tmp_path / "o" / "model.ckpt", FIXTURES / "tiny_16k" / "config.yaml", seed=5
    )
    candidate = xyrt.runtime.load(export_onnx(other, tmp_path / "o_onnx"))
    clips = {
        k: v for k, v in verification_clips(20.0).items() if k in ("speech_0", "silence", "long")
    }
    results = verify_codec(codec("tiny_16k").model, candidate, clips)
    assert [r.name for r in results] == ["speech_0", "silence", "long"]
    assert all(not r.ok for r in results)
    assert all(any("beyond float32 near-ties" in f for f in r.failures) for r in results)
    assert "0/3 clips passed" in format_report(results)


def test_missing_checkpoint_is_reported_before_its_config(tmp_path: Path, capsys) -> None:
    wav = xyrt.runtime.formats.audio.write_wav(
        tmp_path / "a.wav", np.zeros(16000, np.float32), 16000
    )
    args = ["encode", "--checkpoint", str(tmp_path / "typo.ckpt"), str(wav), "-o", "c.npy"]
    assert main(args) == 1
    assert "checkpoint not found" in capsys.readouterr().err


def test_cli_checks_before_loading(tmp_path: Path, capsys) -> None:
    wav = tmp_path / "a.wav"
    xyrt.runtime.formats.audio.write_wav(wav, golden("tiny_16k")["speech_4/wav"], 16000)
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
    assert (
        main(
            [
                "encode",
                "--checkpoint",
                str(CKPT),
                "--threads",
                "0",
                str(wav),
                "-o",
                "x",
            ]
        )
        == 1
    )
    assert "--threads must be at least 1" in capsys.readouterr().err
    assert main(["bench", "--checkpoint", str(tmp_path / "none.ckpt")]) == 1
    assert "checkpoint not found" in capsys.readouterr().err
    assert (
        main(
            [
                "bench",
                "--checkpoint",
                str(CKPT),
                "--plot",
                str(tmp_path / "no" / "p.png"),
            ]
        )
        == 1
    )
    assert "does not exist" in capsys.readouterr().err
