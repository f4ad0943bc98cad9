"""xyrt quantize: cpu-dynamic and trt-qdq int8, fp16; float islands, sensitivity, manifest,
runtime, verify and bad input, on the tiny model."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import xyrt.runtime
from helpers import calib_set, codec, exported, golden, quantized
from xyrt.calib.dataset import save
from xyrt.calib.quantize import FLOAT_SCOPES, quantize
from xyrt.calib.schemes import qdq_properties
from xyrt.calib.sensitivity import SensitivityOptions
from xyrt.cli import main
from xyrt.errors import XyrtError

DYNAMIC_OPS = {"MatMulInteger", "DynamicQuantizeLinear"}


def int8_dir() -> Path:
    return quantized("int8")


def fp16_dir() -> Path:
    return quantized("fp16")


def manifest(directory: Path) -> dict:
    return json.loads((directory / "manifest.json").read_text())


def kept_float_prefixes(directory: Path, scheme: str, graph: str) -> tuple[str, ...]:
    info = manifest(directory)["quantization"]["schemes"][scheme]
    return tuple(FLOAT_SCOPES) + tuple(info["kept_float_groups"][graph])


def test_cpu_dynamic_graphs_quantize_matmuls_outside_float_islands() -> None:
    for name in ("encoder", "decoder"):
        graph = onnx.load(str(int8_dir() / f"{name}.onnx")).graph
        assert {n.op_type for n in graph.node} >= DYNAMIC_OPS
        keep = kept_float_prefixes(int8_dir(), "cpu-dynamic", name)
        for node in graph.node:
            if node.name.startswith(keep):
                assert node.op_type not in DYNAMIC_OPS, node.name
        weights = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
        assert weights, "weights are stored as int8"
        # the uint8 twin (x86 without VNNI): the same weights + 128, no int8 weight left
        twin = onnx.load(str(int8_dir() / f"{name}.u8.onnx")).graph
        shifted = {t.name: t for t in twin.initializer if t.data_type == onnx.TensorProto.UINT8}
        assert {t.name for t in weights} <= set(shifted)
        w = weights[0]
        np.testing.assert_array_equal(
            numpy_helper.to_array(shifted[w.name]).astype(np.int16) - 128,
            numpy_helper.to_array(w),
        )
        mmi = [n for n in twin.node if n.op_type == "MatMulInteger" and n.input[1] in shifted]
        assert mmi and all(len(n.input) == 4 and n.input[3] for n in mmi)  # zero-points 128
    m = manifest(int8_dir())
    assert m["targets"]["onnxruntime-cpu-u8"] == {
        "scheme": "cpu-dynamic",
        "encoder": "encoder.u8",
        "decoder": "decoder.u8",
    }
    measured = m["quantization"]["measured_on"]
    assert measured["isa"].startswith(("x86_64", "aarch64")) and measured["int8_dot"]


def test_the_uint8_twin_computes_the_same_codes() -> None:
    """Same integers, other kernels (u8 x u8): codes and audio equal the int8 graphs' here."""
    wav = golden("tiny_16k")["speech_2/wav"]
    s8 = xyrt.runtime.load(int8_dir())
    u8 = xyrt.runtime.load(int8_dir(), target="onnxruntime-cpu-u8")
    codes = s8.encode(wav)
    np.testing.assert_array_equal(u8.encode(wav), codes)
    np.testing.assert_allclose(u8.decode(codes), s8.decode(codes), atol=1e-5)


def test_a_cpu_without_vnni_runs_the_twin(monkeypatch) -> None:
    from xyrt.runtime import hostcpu

    assert xyrt.runtime.load(int8_dir()).backend.target is None or hostcpu.int8_dot() == (
        "vpmaddubsw"
    )
    monkeypatch.setattr(hostcpu, "int8_dot", lambda *a: "vpmaddubsw")
    assert xyrt.runtime.load(int8_dir()).backend.target == "onnxruntime-cpu-u8"
    assert xyrt.runtime.load(exported("tiny_16k")).backend.target is None  # fp32: no twin
    old = shutil.copytree(int8_dir(), Path(tempfile.mkdtemp()) / "old")
    data = json.loads((old / "manifest.json").read_text())
    del data["targets"]["onnxruntime-cpu-u8"]  # an INT8 directory from before the twin
    (old / "manifest.json").write_text(json.dumps(data))
    with pytest.warns(RuntimeWarning, match="saturate.*re-run `xyrt quantize`"):
        assert xyrt.runtime.load(old).backend.target is None


def test_qdq_graphs_are_tensorrt_ready() -> None:
    for name in ("encoder", "decoder"):
        path = int8_dir() / f"{name}.qdq.onnx"
        props = qdq_properties(path)
        assert props["quantize_nodes"] > 0 and props["dequantize_nodes"] > 0
        assert props["zero_points_all_zero"], "symmetric: every zero-point is 0"
        assert props["zero_point_dtypes"] == ["int8"]
        assert props["per_channel_weights"] > 0, "weights are quantized per output channel"
        keep = kept_float_prefixes(int8_dir(), "trt-qdq", name)
        quantized = props["quantized_nodes"]
        assert quantized and not [n for n in quantized if n.startswith(keep)]
        graph = onnx.load(str(path), load_external_data=False).graph
        consts = {t.name for t in graph.initializer}
        producers = {o: n for n in graph.node for o in n.output}
        for node in graph.node:  # activation x activation products (attention) stay float
            if node.op_type == "MatMul" and node.name in quantized:
                weight = producers.get(node.input[1])
                assert weight is not None and weight.op_type == "DequantizeLinear"
                assert weight.input[0] in consts, node.name


def test_fp16_graph_keeps_float32_islands_and_io() -> None:
    for name in ("encoder", "decoder"):
        model = onnx.load(str(fp16_dir() / f"{name}.onnx"))
        inferred = onnx.shape_inference.infer_shapes(model)
        types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
        types |= {v.name: v.type.tensor_type.elem_type for v in inferred.graph.input}
        halves = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16]
        assert len(halves) > 10, "weights are float16"
        for io in (*model.graph.input, *model.graph.output):
            assert io.type.tensor_type.elem_type != onnx.TensorProto.FLOAT16, io.name
        checked = 0
        for node in model.graph.node:
            island = node.op_type != "Cast" and (
                node.name.startswith(FLOAT_SCOPES)
                or node.op_type in ("Softmax", "LayerNormalization")
            )
            if island and node.input and node.input[0] in types:
                assert types[node.input[0]] != onnx.TensorProto.FLOAT16, node.name
                checked += 1
        assert checked > 5


def test_manifest_records_targets_schemes_and_sensitivity() -> None:
    m = manifest(int8_dir())
    assert m["precision"] == "int8"
    assert m["targets"]["onnxruntime-cpu"] == {
        "scheme": "cpu-dynamic",
        "encoder": "encoder",
        "decoder": "decoder",
    }
    assert m["targets"]["tensorrt"]["encoder"] == "encoder.qdq"
    assert set(m["graphs"]) == {
        *("encoder", "decoder", "encoder.qdq", "decoder.qdq", "encoder.u8", "decoder.u8")
    }
    assert m["quantization"]["calibration"]["windows"] == len(calib_set().windows)
    for scheme in ("cpu-dynamic", "trt-qdq"):
        for graph in ("encoder", "decoder"):
            report = m["quantization"]["schemes"][scheme]["sensitivity"][graph]
            assert 0 <= len(report["chosen"]) <= 1
            assert report["final"] >= report["baseline"]
            if not report["met"] and report["baseline"] < report["target"]:
                assert report["per_group"], "groups were scored when the target was missed"
    assert manifest(fp16_dir())["targets"] == {
        "any": {"scheme": "fp16", "encoder": "encoder", "decoder": "decoder"}
    }


@pytest.mark.parametrize(
    ("directory", "target"), [("int8", None), ("int8", "tensorrt"), ("fp16", None)]
)
def test_runtime_runs_every_graph_set(directory: str, target: str | None) -> None:
    path = int8_dir() if directory == "int8" else fp16_dir()
    model = xyrt.runtime.load(path, target=target)
    wav = golden("tiny_16k")["speech_3/wav"]
    ref = codec("tiny_16k").encode(wav)
    codes = model.encode(wav)
    assert codes.shape == ref.shape and codes.dtype == np.int64 and codes.max() < 1024
    audio = model.decode(ref)
    assert audio.shape == (ref.shape[1] * 1280,) and np.isfinite(audio).all()


def test_runtime_rejects_an_unknown_target() -> None:
    with pytest.raises(XyrtError, match="no graphs for target 'tensorrt'"):
        xyrt.runtime.load(fp16_dir(), target="tensorrt")


def test_verify_judges_quantized_models_by_stage0_agreement(capsys) -> None:
    from xyrt.export.verify import verify_codec

    clips = {"speech_3": golden("tiny_16k")["speech_3/wav"]}
    model = codec("tiny_16k").model
    candidate = xyrt.runtime.load(int8_dir())
    assert verify_codec(model, candidate, clips, min_stage0=0.0)[0].ok
    result = verify_codec(model, candidate, clips, min_stage0=1.01)[0]
    assert not result.ok and "stage-0 codes" in result.failures[0]
    # the CLI verifies every graph set on held-out speech
    assert main(["verify", str(int8_dir()), "--min-stage0", "0"]) == 0
    out = capsys.readouterr().out
    assert "int8 (default graphs)" in out and "int8 graphs for tensorrt" in out
    assert "heldout_0" in out and "speech_0" not in out


def test_bench_picks_up_quantized_directories() -> None:
    from xyrt.bench.driver import BenchOptions, _model_dirs_by_precision, availability

    dirs = _model_dirs_by_precision([exported("tiny_16k"), int8_dir(), fp16_dir()])
    opts = BenchOptions(model_dirs=tuple(dirs.values()))
    assert availability("ort-int8", opts, dirs) is None
    assert availability("ort-fp16", opts, dirs) is None


def test_quantize_leaves_the_source_export_untouched(tmp_path: Path) -> None:
    import shutil

    src = tmp_path / "fp32"
    shutil.copytree(exported("tiny_16k"), src)
    before = {p.name: p.stat().st_mtime_ns for p in src.iterdir()}
    stamp = src.stat().st_mtime_ns
    quantize(src, tmp_path / "int8", "int8", ["cpu-dynamic"], sensitivity=SensitivityOptions(False))
    assert {p.name: p.stat().st_mtime_ns for p in src.iterdir()} == before
    assert src.stat().st_mtime_ns == stamp, "nothing was created (even briefly) in the source"
    assert sorted(p.name for p in (tmp_path / "int8").iterdir()) == [
        "decoder.onnx",
        "decoder.u8.onnx",
        "encoder.onnx",
        "encoder.u8.onnx",
        "manifest.json",
    ]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".int8")], "no scratch left"


def test_argument_errors(tmp_path: Path) -> None:
    src = exported("tiny_16k")
    with pytest.raises(XyrtError, match="precision 'int4' is not supported"):
        quantize(src, tmp_path / "x", precision="int4")
    with pytest.raises(XyrtError, match="choose from"):
        quantize(src, tmp_path / "x", "fp16", ["cpu-dynamic"])
    with pytest.raises(XyrtError, match="trt-qdq scheme calibrates"):
        quantize(src, tmp_path / "x", "int8", ["trt-qdq"])
    with pytest.raises(XyrtError, match="quantize an fp32 export"):
        quantize(int8_dir(), tmp_path / "y", "int8", ["cpu-dynamic"])
    with pytest.raises(XyrtError, match="its own directory"):
        quantize(src, src, "int8", ["cpu-dynamic"])
    with pytest.raises(XyrtError, match="granularity"):
        SensitivityOptions(granularity="node")
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_cli_bad_calibration_inputs(tmp_path: Path, capsys) -> None:
    src = str(exported("tiny_16k"))
    bad = tmp_path / "calib.npz"
    np.savez(bad, x=np.zeros(2))
    assert main(["quantize", src, "--calib", str(bad), "-o", str(tmp_path / "w")]) == 1
    assert "not an xyrt calibration set" in capsys.readouterr().err
    other_rate = tmp_path / "rate.npz"
    calib = calib_set()
    saved = save(calib, other_rate)
    with np.load(saved) as z:
        data = dict(z)
    data["sample_rate"] = np.int64(24000)
    np.savez(other_rate, **data)
    assert main(["quantize", src, "--calib", str(other_rate), "-o", str(tmp_path / "v")]) == 1
    assert "needs 16000 Hz" in capsys.readouterr().err
    assert main(["quantize", src, "--scheme", "qdq", "-o", str(tmp_path / "z")]) == 1
    assert "choose from" in capsys.readouterr().err
    assert not (tmp_path / "w").exists() and not (tmp_path / "z").exists()
