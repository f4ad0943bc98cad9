"""`xyrt build` (`xyrt.calib.trt_build`) without TensorRT: which graphs a build uses, which
engines are kept or rebuilt, argument checks. The build itself needs a GPU and the tensorrt
package and is skipped here with the reason."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

import xyrt.runtime
from helpers import H100, ORIN, exported, golden, quantized
from xyrt.calib.trt_build import build_engines, graph_keys, plan_builds, timing_cache_path
from xyrt.cli import main
from xyrt.errors import XyrtError
from xyrt.runtime.backends.trt.profiles import Profile
from xyrt.runtime.modeldir.manifest import read_manifest


def test_which_graphs_a_build_uses(tmp_path: Path) -> None:
    fp32 = read_manifest(exported("tiny_16k"))
    assert graph_keys(fp32, "fp32") == {"encoder": "encoder", "decoder": "decoder"}
    assert graph_keys(fp32, "fp16") == {"encoder": "encoder", "decoder": "decoder"}
    with pytest.raises(XyrtError, match="--scheme trt-qdq"):
        graph_keys(fp32, "int8")
    int8 = read_manifest(quantized("int8"))
    assert graph_keys(int8, "int8") == {"encoder": "encoder.qdq", "decoder": "decoder.qdq"}
    with pytest.raises(XyrtError, match="holds a int8 model"):
        graph_keys(int8, "fp32")
    fp16 = read_manifest(quantized("fp16"))
    assert graph_keys(fp16, "fp16")["encoder"] == "encoder"
    with pytest.raises(XyrtError, match="choose one of"):
        graph_keys(fp16, "bf16")


def test_plan_builds_reuses_fresh_engines_and_rebuilds_stale_ones() -> None:
    fp32 = read_manifest(exported("tiny_16k"))
    first = plan_builds(fp32, "fp16", Profile(), ORIN, None)
    assert all(p["build"] for p in first.values())
    assert first["encoder"]["entry"]["mode"] == "flags"
    existing = {"engines": {g: {**p["entry"], "plan_sha256": "x"} for g, p in first.items()}}
    again = plan_builds(fp32, "fp16", Profile(), ORIN, existing)
    assert not any(p["build"] for p in again.values())
    other = plan_builds(fp32, "fp16", Profile(max_batch=8), ORIN, existing)
    assert all(p["build"] for p in other.values())
    with pytest.raises(XyrtError, match="takes precision from the ONNX graph"):
        plan_builds(fp32, "fp16", Profile(), H100, None)
    assert timing_cache_path(Path("/e"), H100).name == (
        "timing-NVIDIA-H100-80GB-HBM3-sm9-0-trt11.0.0.cache"
    )


@pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here"
)
def test_without_tensorrt_build_and_load_say_what_is_missing(tmp_path: Path, capsys) -> None:
    out = tmp_path / "engines"
    assert main(["build", str(exported("tiny_16k")), "-o", str(out)]) == 1
    assert "tensorrt" in capsys.readouterr().err.lower()
    assert not out.exists()
    doc = {"format": "xyrt-trt-engines", "format_version": 1, "engines": {}}
    model = {
        "output_sample_rate": 16000,
        "samples_per_code_out": 1280,
        "num_quantizers": 8,
        "codebook_size": 1024,
    }
    (tmp_path / "engines.json").write_text(json.dumps({**doc, "model": model}))
    with pytest.raises(XyrtError, match="tensorrt"):
        xyrt.runtime.load(tmp_path, backend="auto")


def test_cli_build_argument_errors(tmp_path: Path, capsys) -> None:
    src = str(exported("tiny_16k"))
    assert main(["build", src, "--batch", "4,1,1", "-o", str(tmp_path / "e")]) == 1
    assert "1 <= min <= opt <= max" in capsys.readouterr().err
    assert main(["build", src, "--precision", "int8", "-o", str(tmp_path / "e")]) == 1
    assert "--scheme trt-qdq" in capsys.readouterr().err
    assert not (tmp_path / "e").exists()


def test_real_engine_build_and_run(tmp_path: Path) -> None:
    if importlib.util.find_spec("tensorrt") is None:
        pytest.skip("needs the tensorrt package and an NVIDIA GPU (not installable on CI)")
    profile = Profile(max_batch=2, opt_seconds=5, max_seconds=12)
    out = build_engines(exported("tiny_16k"), tmp_path / "e", "fp32", profile)
    plans = sorted(out.glob("*.plan"))
    assert len(plans) == 2 and any(out.glob("timing-*.cache"))
    wav = golden("tiny_16k")["speech_3/wav"]
    ref = xyrt.runtime.load(exported("tiny_16k")).encode(wav)
    trt = xyrt.runtime.load(out, backend="tensorrt")
    codes = trt.encode(wav)
    assert codes.shape == ref.shape and (codes[0] == ref[0]).mean() > 0.9
    stamps = [p.stat().st_mtime_ns for p in plans]
    build_engines(exported("tiny_16k"), out, "fp32", profile)  # up to date: kept
    assert [p.stat().st_mtime_ns for p in plans] == stamps
