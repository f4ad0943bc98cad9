"""xyrt quantize (cpu-dynamic int8): graph properties, float islands, manifest, runtime, verify."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import onnx
import pytest

import xyrt.runtime
from conftest import codec, exported, golden
from xyrt.calib.quantize import FLOAT_SCOPES, quantize
from xyrt.cli import main
from xyrt.errors import XyrtError
from xyrt.runtime.compare import compare_codes

QUANTIZED_OPS = {"MatMulInteger", "DynamicQuantizeLinear"}


@cache
def int8_dir() -> Path:
    import tempfile

    return quantize(exported("tiny_16k"), Path(tempfile.mkdtemp()) / "int8")


def test_matmuls_are_int8_and_float_islands_stay_float() -> None:
    for name in ("encoder", "decoder"):
        graph = onnx.load(str(int8_dir() / f"{name}.onnx")).graph
        ops = {n.op_type for n in graph.node}
        assert ops >= QUANTIZED_OPS
        for node in graph.node:
            if node.name.startswith(FLOAT_SCOPES):
                assert node.op_type not in QUANTIZED_OPS, node.name
        weights = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
        assert weights, "weights are stored as int8"
        zero_points = [t for t in graph.initializer if t.name.endswith("_zero_point")]
        assert all(
            not onnx.numpy_helper.to_array(t).any()
            for t in zero_points
            if t.data_type == onnx.TensorProto.INT8
        ), "symmetric weights: zero-point 0"


def test_manifest_and_runtime() -> None:
    manifest = json.loads((int8_dir() / "manifest.json").read_text())
    assert manifest["precision"] == "int8"
    assert manifest["quantization"]["scheme"] == "cpu-dynamic"
    assert manifest["quantization"]["float_scopes"] == list(FLOAT_SCOPES)
    wav = golden("tiny_16k")["speech_3/wav"]
    int8 = xyrt.runtime.load(int8_dir())
    codes = int8.encode(wav)
    ref = codec("tiny_16k").encode(wav)
    assert codes.shape == ref.shape and codes.max() < 1024
    agreement = compare_codes(ref, codes)
    assert 0.0 <= agreement.per_stage[0] <= 1.0  # reported by verify; random weights: no target
    audio = int8.decode(ref)
    assert audio.shape == (ref.shape[1] * 1280,) and np.isfinite(audio).all()


def test_verify_judges_quantized_models_by_stage0_agreement() -> None:
    from xyrt.export.verify import verify_codec

    clips = {"speech_3": golden("tiny_16k")["speech_3/wav"]}
    model = codec("tiny_16k").model
    candidate = xyrt.runtime.load(int8_dir())
    assert verify_codec(model, candidate, clips, min_stage0=0.0)[0].ok
    result = verify_codec(model, candidate, clips, min_stage0=1.01)[0]
    assert not result.ok and "stage-0 codes" in result.failures[0]


def test_bench_picks_up_the_int8_directory() -> None:
    from xyrt.bench.driver import BenchOptions, _model_dirs_by_precision, availability

    dirs = _model_dirs_by_precision([exported("tiny_16k"), int8_dir()])
    opts = BenchOptions(model_dirs=tuple(dirs.values()))
    assert availability("ort-int8", opts, dirs) is None
    assert availability("ort-fp16", opts, dirs) is not None


def test_errors(tmp_path: Path, capsys) -> None:
    with pytest.raises(XyrtError, match="precision 'fp16' is not implemented yet"):
        quantize(exported("tiny_16k"), tmp_path / "x", precision="fp16")
    with pytest.raises(XyrtError, match="quantize an fp32 export"):
        quantize(int8_dir(), tmp_path / "y")
    with pytest.raises(XyrtError, match="its own directory"):
        quantize(exported("tiny_16k"), exported("tiny_16k"))
    assert (
        main(["quantize", str(exported("tiny_16k")), "--scheme", "qdq", "-o", str(tmp_path / "z")])
        == 1
    )
    assert "scheme 'qdq' is not implemented yet" in capsys.readouterr().err
    bad = tmp_path / "calib.npz"
    np.savez(bad, x=np.zeros(2))
    assert (
        main(
            ["quantize", str(exported("tiny_16k")), "--calib", str(bad), "-o", str(tmp_path / "w")]
        )
        == 1
    )
    assert "not an xyrt calibration set" in capsys.readouterr().err
