"""TensorRT without TensorRT: profiles, engine-cache keys, stale/foreign engines, which graphs a
build uses, argument checks, ONNX Runtime's TensorRT provider options. The build and run
themselves need a GPU and the tensorrt package and are skipped here with the reason."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace
from pathlib import Path

import pytest

import xyrt.runtime
from conftest import exported, golden, quantized
from xyrt.calib.engine import graph_keys, plan_builds, timing_cache_path
from xyrt.cli import main
from xyrt.errors import XyrtError
from xyrt.runtime.manifest import read_manifest
from xyrt.runtime.onnxrt import trt_provider_options
from xyrt.runtime.tensorrt import read_engines
from xyrt.runtime.trt_profiles import (
    DeviceFacts,
    Profile,
    build_mode,
    check_engine,
    engine_key,
    ort_shape_options,
)

ORIN = DeviceFacts("Orin", "8.7", "10.3.0")
H100 = DeviceFacts("NVIDIA H100 80GB HBM3", "9.0", "11.0.0")


def test_profile_shapes_cover_one_code_to_a_30s_window() -> None:
    p = Profile()
    enc = p.shapes("encoder")
    assert enc["waveform"] == ((1, 1280), (1, 160000), (4, 480000))
    assert enc["lengths"] == ((1,), (1,), (4,))
    dec = p.shapes("decoder", 8)
    assert dec["codes"] == ((8, 1, 1), (8, 1, 125), (8, 4, 375))
    p.check("encoder", "waveform", (2, 12800))
    with pytest.raises(XyrtError, match="outside the engine's profile"):
        p.check("encoder", "waveform", (5, 12800))
    with pytest.raises(XyrtError, match="outside the engine's profile"):
        p.check("decoder", "codes", (8, 1, 376))


@pytest.mark.parametrize(
    ("batch", "seconds", "message"),
    [
        ("1,4,2", "0.08,10,30", "1 <= min <= opt <= max"),
        ("0,1,1", "0.08,10,30", "1 <= min <= opt <= max"),
        ("1,1,4", "1,10,31", "<= 30 s"),
        ("1,1,4", "10,1,30", "min <= opt <= max"),
        ("1,1", "1,10,30", "needs min,opt,max"),
        ("a,b,c", "1,10,30", "must be numbers"),
    ],
)
def test_bad_profiles_are_refused(batch: str, seconds: str, message: str) -> None:
    with pytest.raises(XyrtError, match=message):
        Profile.parse(batch, seconds)


def test_ort_tensorrt_provider_shape_strings() -> None:
    opts = ort_shape_options(Profile(max_batch=2), "encoder")
    assert opts["trt_profile_min_shapes"] == "waveform:1x1280,lengths:1"
    assert opts["trt_profile_max_shapes"] == "waveform:2x480000,lengths:2"
    assert ort_shape_options(Profile(), "decoder")["trt_profile_opt_shapes"] == (
        "codes:8x1x125,lengths:1"
    )


def test_engine_key_changes_with_every_fact() -> None:
    base = engine_key("sha", "fp16", "flags", Profile(), ORIN)
    assert base == engine_key("sha", "fp16", "flags", Profile(), ORIN)
    variants = [
        engine_key("sha2", "fp16", "flags", Profile(), ORIN),
        engine_key("sha", "int8", "flags", Profile(), ORIN),
        engine_key("sha", "fp16", "strongly-typed", Profile(), ORIN),
        engine_key("sha", "fp16", "flags", Profile(max_batch=8), ORIN),
        engine_key("sha", "fp16", "flags", Profile(), replace(ORIN, gpu_name="Orin Nano")),
        engine_key("sha", "fp16", "flags", Profile(), replace(ORIN, compute_capability="8.6")),
        engine_key("sha", "fp16", "flags", Profile(), replace(ORIN, tensorrt_version="10.4.0")),
    ]
    assert len({base, *variants}) == 1 + len(variants)


def test_build_mode_follows_the_tensorrt_generation() -> None:
    assert build_mode("10.3.0", "fp32") == "flags"
    assert build_mode("10.3.0", "int8") == "flags"
    assert build_mode("10.3.0", "fp16") == "strongly-typed"
    assert build_mode("11.0.1", "fp32") == "strongly-typed"
    with pytest.raises(XyrtError, match="too old"):
        build_mode("8.6.1", "fp32")


def entry(device: DeviceFacts = ORIN, sha: str = "abc") -> dict:
    return {"file": "encoder-fp16-0123.plan", "device": device.__dict__, "graph_sha256": sha}


def test_stale_or_foreign_engines_are_refused_with_the_reason() -> None:
    check_engine(entry(), ORIN, "abc")  # same machine, same graph: fine
    with pytest.raises(XyrtError, match=r"built on Orin \(compute 8.7\).*Rebuild it here"):
        check_engine(entry(), H100)
    with pytest.raises(XyrtError, match="built with TensorRT 10.3.0"):
        check_engine(entry(), replace(ORIN, tensorrt_version="10.4.0"))
    with pytest.raises(XyrtError, match="different graph"):
        check_engine(entry(), ORIN, "other")


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


def test_engine_directory_errors(tmp_path: Path) -> None:
    with pytest.raises(XyrtError, match="no engines.json"):
        read_engines(tmp_path)
    (tmp_path / "engines.json").write_text("{broken")
    with pytest.raises(XyrtError, match="not valid JSON"):
        read_engines(tmp_path)
    (tmp_path / "engines.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(XyrtError, match="not an xyrt engines file"):
        read_engines(tmp_path)


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


def test_ort_tensorrt_provider_options_follow_the_directory() -> None:
    m = read_manifest(quantized("int8"))
    trt = "TensorrtExecutionProvider"
    opts = trt_provider_options(m, [trt, "CPUExecutionProvider"], None, "encoder")
    assert opts[1] == {}
    assert opts[0]["trt_int8_enable"] == "True" and opts[0]["trt_fp16_enable"] == "False"
    assert opts[0]["trt_engine_cache_path"].endswith("trt-ep-cache")
    assert opts[0]["trt_profile_min_shapes"].startswith("waveform:1x1280")
    assert trt_provider_options(m, ["CPUExecutionProvider"], None, "encoder") is None


def test_real_engine_build_and_run(tmp_path: Path) -> None:
    if importlib.util.find_spec("tensorrt") is None:
        pytest.skip("needs the tensorrt package and an NVIDIA GPU (not installable on CI)")
    from xyrt.calib.engine import build_engines

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
