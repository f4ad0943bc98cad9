"""Issue 29 through `xyrt.runtime` and the CLI: an option that would have no effect is refused
naming it and when it applies (class 1); option values are checked, not coerced (class 2);
what the backend registry can decide is decided before a model loads, or Ray starts (class 3)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

import xyrt.runtime
from helpers import FIXTURES, exported, golden
from xyrt.cli import main
from xyrt.errors import XyrtError

CKPT = FIXTURES / "tiny_16k" / "model.ckpt"


def _err(argv: list[str], capsys) -> str:
    capsys.readouterr()
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cuda_graphs": False}, "cuda_graphs=False applies only on a CUDA device"),
        ({"autocast": False}, "autocast=False applies only with precision 'bf16' or 'fp16'"),
        ({"autocast": False, "precision": "fp32"}, "autocast=False applies only with precision"),
    ],
)
def test_torch_options_that_would_do_nothing_are_refused(options, message):
    pytest.importorskip("torch")
    with pytest.raises(XyrtError, match=message):
        xyrt.runtime.load(CKPT, **options)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"compile": "yes"}, r"compile must be True or False, got 'yes' \(str\)"),
        ({"cuda_graphs": "false"}, "cuda_graphs must be True or False, got 'false'"),
        ({"max_batch": "4"}, "max_batch must be an integer >= 1 or None, got '4'"),
        ({"max_batch": 0}, "max_batch must be an integer >= 1 or None, got 0"),
        ({"device": 3}, "device must be 'cpu', 'cuda' or 'cuda:N'"),
    ],
)
def test_option_values_are_checked_not_coerced(options, message):
    with pytest.raises(XyrtError, match=message):
        xyrt.runtime.load(CKPT, **options)


def test_a_torch_device_is_taken_as_the_docs_say():
    torch = pytest.importorskip("torch")
    codec = xyrt.runtime.load(CKPT, device=torch.device("cpu"))
    assert codec.backend.limits.device == "cpu"


def test_stream_options_are_checked():
    codec = xyrt.runtime.load(exported("tiny_16k"), threads=1)
    with pytest.raises(XyrtError, match="overlap=5 applies only with match_offline=True"):
        codec.create_stream(overlap=5, match_offline=False)
    with pytest.raises(XyrtError, match="overlap=5 applies only with match_offline=True"):
        codec.create_decode_stream(overlap=5, match_offline=False)
    for value in ("no", "false", None, 0):
        with pytest.raises(XyrtError, match="match_offline must be True or False"):
            codec.create_stream(match_offline=value)
    stream = codec.create_stream()
    with pytest.raises(XyrtError, match="sample_rate must be 1000..768000 Hz, got 1000000000000"):
        stream.accept_waveform(10**12, np.zeros(1600, np.float32))


def _wav(tmp_path: Path) -> Path:
    from xyrt.runtime.formats.audio import write_wav

    return write_wav(tmp_path / "a.wav", golden("tiny_16k")["speech_4/wav"], 16000)


def test_device_and_providers_that_disagree_are_refused(capsys, tmp_path):
    model, wav = str(exported("tiny_16k")), _wav(tmp_path)
    with pytest.raises(XyrtError, match=r"device 'cuda' and providers \['cpu'\] disagree"):
        xyrt.runtime.load(model, device="cuda", providers=["cpu"])
    argv = ["encode", "--model", model, "--device", "cuda", "--providers", "cpu", str(wav)]
    assert "disagree" in _err([*argv, "-o", str(tmp_path / "c.npy")], capsys)


def test_stream_rate_from_stdin_is_checked(capsys, monkeypatch):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\0" * 6400)))
    argv = ["stream", "--model", str(exported("tiny_16k")), "--source", "-"]
    err = _err([*argv, "--rate", "1000000000000"], capsys)
    assert "--rate) must be 1000..768000 Hz, got 1000000000000" in err


def _ray_running() -> bool:
    try:
        import ray
    except ImportError:
        return False
    return ray.is_initialized()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", str(CKPT), "--precision", "fp16"], "precision 'fp16' needs a CUDA device"),
        (
            ["--model", "EXPORT", "--backend", "openvino", "--precision", "int8"],
            "has no int8 graphs for OpenVINO",
        ),
        (["--model", "EXPORT", "--device", "cuda"], "['CUDAExecutionProvider'] are not available"),
    ],
)
def test_serve_options_the_backend_refuses_fail_before_ray(argv, message, capsys):
    pytest.importorskip("ray.serve")
    argv = [a.replace("EXPORT", str(exported("tiny_16k"))) for a in argv]
    t0 = time.monotonic()
    err = _err(["serve", *argv, "--port", "1"], capsys)
    assert message in err
    assert time.monotonic() - t0 < 30 and not _ray_running()  # refused before Ray started


def test_tokenize_fp16_on_the_cpu_fails_before_ray(capsys, tmp_path):
    pytest.importorskip("ray.data")
    (tmp_path / "in").mkdir()
    _wav(tmp_path / "in")
    argv = ["tokenize", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(CKPT)]
    t0 = time.monotonic()
    err = _err([*argv, "--precision", "fp16"], capsys)
    assert "precision 'fp16' needs a CUDA device" in err
    assert time.monotonic() - t0 < 30 and not _ray_running()


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_a_foreign_graph_with_copied_metadata_is_refused_by_every_backend(backend, tmp_path):
    onnx = pytest.importorskip("onnx")
    if backend == "openvino":
        pytest.importorskip("openvino")
    from xyrt.runtime.modeldir.manifest import sha256_file

    d = tmp_path / "model"
    shutil.copytree(exported("tiny_16k"), d)
    encoder = onnx.load(str(d / "encoder.onnx"))
    foreign = onnx.load(str(d / "decoder.onnx"))  # another graph, the encoder's metadata
    del foreign.metadata_props[:]
    foreign.metadata_props.extend(encoder.metadata_props)
    onnx.save(foreign, str(d / "encoder.onnx"))
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["graphs"]["encoder"]["sha256"] = sha256_file(d / "encoder.onnx")
    (d / "manifest.json").write_text(json.dumps(manifest))
    codec = xyrt.runtime.load(d, backend=backend, threads=1)
    with pytest.raises(XyrtError, match=r"encoder.onnx has inputs .* the graph belongs to another"):
        codec.encode(golden("tiny_16k")["speech_4/wav"])


def test_messages_name_what_is_wrong(tmp_path: Path, capsys):
    """Class 8: a 1-byte text file as --model is not blamed on a missing --config."""
    text = tmp_path / "model.txt"
    text.write_text("x")
    wav = str(_wav(tmp_path))
    err = _err(["encode", "--model", str(text), wav, "-o", str(tmp_path / "c.npy")], capsys)
    assert "--config" not in err and "model.txt" in err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch_size": "4"}, "batch_size must be an integer >= 1, got '4'"),
        ({"batch_size": True}, "batch_size must be an integer >= 1, got True"),
        ({"progress": "yes"}, "progress must be True or False, got 'yes'"),
    ],
)
def test_codec_options_are_checked_not_coerced(options, message):
    with pytest.raises(XyrtError, match=message):
        xyrt.runtime.load(exported("tiny_16k"), **options)
