"""The command line on the PyTorch backend: --backend torch, --device, --precision on encode,
decode, verify and stream (CPU here; the same flags take cuda on a GPU), and the options it
refuses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import FIXTURES, exported, golden, golden_reference
from xyrt.cli import main
from xyrt.runtime.compare import check_codes
from xyrt.runtime.formats.audio import write_wav

CKPT = FIXTURES / "tiny_16k" / "model.ckpt"


def _err(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    return lines[-1] if lines else ""


def test_encode_decode_with_torch_flags(tmp_path: Path) -> None:
    wav = tmp_path / "s.wav"
    write_wav(wav, golden("tiny_16k")["speech_4/wav"], 16000)
    codes = tmp_path / "c.npy"
    flags = ["--model", str(CKPT), "--backend", "torch", "--device", "cpu", "--precision", "fp32"]
    assert main(["encode", *flags, str(wav), "-o", str(codes)]) == 0
    check_codes(golden_reference("tiny_16k", "speech_4", 10), np.load(codes))
    assert main(["decode", *flags, str(codes), "-o", str(tmp_path / "r.wav")]) == 0
    bf16 = tmp_path / "b.npy"
    assert (
        main(
            ["encode", "--checkpoint", str(CKPT), "--precision", "bf16", str(wav), "-o", str(bf16)]
        )
        == 0
    )
    assert np.load(bf16).shape == np.load(codes).shape


@pytest.mark.parametrize(
    "args, pattern",
    [
        (["--model", "EXPORT", "--backend", "torch"], "the torch backend runs a checkpoint"),
        (["--checkpoint", str(CKPT), "--backend", "onnxruntime"], "runs an xyrt export dir"),
        (["--checkpoint", str(CKPT), "--precision", "int8"], "does not apply to the torch"),
        (["--checkpoint", str(CKPT), "--device", "tpu"], "device 'tpu' does not apply"),
        (["--checkpoint", str(CKPT), "--providers", "cpu"], "option providers=.* does not apply"),
        (["--model", "EXPORT", "--device", "cuda", "--backend", "openvino"], "device 'cuda'"),
        (["--model", "EXPORT", "--pad-to-30s"], "--pad-to-30s is for the PyTorch model"),
        (
            ["--model", "EXPORT", "--config", str(FIXTURES / "tiny_16k" / "config.yaml")],
            "--config is the YAML of a checkpoint",
        ),
    ],
)
def test_options_that_cannot_apply_are_refused(tmp_path, capsys, args, pattern) -> None:
    args = [str(exported("tiny_16k")) if a == "EXPORT" else a for a in args]
    wav = tmp_path / "s.wav"
    write_wav(wav, np.zeros(16000, np.float32), 16000)
    out = tmp_path / "c.npy"
    assert main(["encode", *args, str(wav), "-o", str(out)]) == 1
    import re

    assert re.search(pattern, _err(capsys)), pattern
    assert not out.exists()


def test_verify_torch_backend_against_cpu_float32(capsys) -> None:
    assert main(["verify", str(CKPT), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "torch fp32 on cpu against float32 on the CPU" in out
    assert main(["verify", str(CKPT), "--precision", "bf16", "--min-stage0", "0.5"]) == 0
    capsys.readouterr()
    # bf16 is judged by first-stage agreement: not every code survives bf16 rounding
    assert main(["verify", str(CKPT), "--precision", "bf16", "--min-stage0", "1.0"]) == 1
    assert "stage-0 codes" in capsys.readouterr().out
    assert main(["verify", str(exported("tiny_16k")), "--device", "cuda"]) == 1
    assert "--device applies to verifying the torch backend" in _err(capsys)


def test_stream_on_the_torch_backend_and_the_renamed_mic_option(tmp_path, capsys) -> None:
    wav = tmp_path / "s.wav"
    write_wav(wav, golden("tiny_16k")["speech_4/wav"], 16000)
    out = tmp_path / "f.jsonl"
    args = ["stream", "--model", str(CKPT), "--device", "cpu", "--source", str(wav)]
    assert main([*args, "-o", str(out)]) == 0
    frames = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(frames) == len(golden("tiny_16k")["speech_4/wav"]) // 1280
    assert main(["stream", "--model", str(CKPT), "--device", "vsink", "--source", str(wav)]) == 1
    assert "the microphone is --input-device" in _err(capsys)
