"""TensorRT without TensorRT: profiles, engine-cache keys, stale/foreign engines, engine
directories, ONNX Runtime's TensorRT provider options (the builder: test_trt_build.py)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from helpers import H100, ORIN, exported, quantized
from xyrt.calib.trt_build import plan_builds
from xyrt.errors import XyrtError
from xyrt.runtime.backends.ort.backend import trt_provider_options
from xyrt.runtime.backends.trt.backend import check_engines, read_engines
from xyrt.runtime.backends.trt.profiles import (
    DeviceFacts,
    Profile,
    build_mode,
    check_engine,
    engine_key,
    ort_shape_options,
)
from xyrt.runtime.modeldir.manifest import read_manifest, sha256_file


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
    assert opts["trt_profile_min_shapes"] == (
        "waveform:1x1280,lengths:1,positions:1,mel_reference:1"
    )
    assert opts["trt_profile_max_shapes"] == (
        "waveform:2x480000,lengths:2,positions:2,mel_reference:2"
    )
    assert ort_shape_options(Profile(), "decoder")["trt_profile_opt_shapes"] == (
        "codes:8x1x125,lengths:1,positions:1"
    )
    old_export = ort_shape_options(Profile(), "decoder", inputs=["codes", "lengths"])
    assert old_export["trt_profile_opt_shapes"] == "codes:8x1x125,lengths:1"


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


def test_engine_directory_errors(tmp_path: Path) -> None:
    with pytest.raises(XyrtError, match="no engines.json"):
        read_engines(tmp_path)
    (tmp_path / "engines.json").write_text("{broken")
    with pytest.raises(XyrtError, match="not valid JSON"):
        read_engines(tmp_path)
    (tmp_path / "engines.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(XyrtError, match="not an xyrt engines file"):
        read_engines(tmp_path)


def test_ort_tensorrt_provider_options_follow_the_directory() -> None:
    m = read_manifest(quantized("int8"))
    trt = "TensorrtExecutionProvider"
    opts = trt_provider_options(m, [trt, "CPUExecutionProvider"], None, "encoder")
    assert opts[1] == {}
    assert opts[0]["trt_int8_enable"] == "True" and opts[0]["trt_fp16_enable"] == "False"
    assert opts[0]["trt_engine_cache_path"].endswith("trt-ep-cache")
    assert opts[0]["trt_profile_min_shapes"].startswith("waveform:1x1280")
    assert trt_provider_options(m, ["CPUExecutionProvider"], None, "encoder") is None


def test_engines_built_from_a_since_changed_model_directory_are_refused(tmp_path: Path) -> None:
    model = Path(shutil.copytree(exported("tiny_16k"), tmp_path / "model"))
    plans = plan_builds(read_manifest(model), "fp32", Profile(), ORIN, None)
    engines = {"model_dir": str(model), "engines": {}}
    for graph, plan in plans.items():
        plan_file = tmp_path / plan["entry"]["file"]
        plan_file.write_bytes(f"serialized {graph} engine".encode())
        engines["engines"][graph] = {**plan["entry"], "plan_sha256": sha256_file(plan_file)}
    check_engines(tmp_path, engines, ORIN)  # same graphs, same machine: accepted
    with pytest.raises(XyrtError, match=r"built on Orin \(compute 8.7\)"):
        check_engines(tmp_path, engines, H100)
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["graphs"]["decoder"]["sha256"] = "0" * 64  # as if re-exported since the build
    (model / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(XyrtError, match="decoder-fp32-.*built from a different graph"):
        check_engines(tmp_path, engines, ORIN)
    # the model directory gone: nothing to compare the graphs with; the plans are still checked
    check_engines(tmp_path, {**engines, "model_dir": str(tmp_path / "gone")}, ORIN)
    (tmp_path / plans["encoder"]["entry"]["file"]).write_bytes(b"another engine")
    with pytest.raises(XyrtError, match="missing or modified"):
        check_engines(tmp_path, {**engines, "model_dir": str(tmp_path / "gone")}, ORIN)
