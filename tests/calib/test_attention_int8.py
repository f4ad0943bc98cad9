"""xyrt quantize --quantize-attention: cpu-dynamic also quantizes the attention products."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx

import xyrt.runtime
from helpers import exported, golden
from xyrt.calib.quantize import FLOAT_SCOPES
from xyrt.calib.schemes import activation_matmuls
from xyrt.cli import main
from xyrt.runtime.compare import compare_codes


def test_attention_products_become_matmulinteger(tmp_path: Path) -> None:
    src = exported("tiny_16k")
    out = tmp_path / "int8-attn"
    args = ["quantize", str(src), "--scheme", "cpu-dynamic", "--quantize-attention"]
    assert main([*args, "--no-sensitivity", "-o", str(out)]) == 0
    info = json.loads((out / "manifest.json").read_text())["quantization"]["schemes"]
    assert info["cpu-dynamic"]["attention_products"] == "int8 dynamic"
    attention = [
        n for n in activation_matmuls(src / "encoder.onnx") if not n.startswith(FLOAT_SCOPES)
    ]
    assert attention, "the tiny encoder has attention MatMuls"
    graph = onnx.load(str(out / "encoder.onnx")).graph
    float_matmuls = {n.name for n in graph.node if n.op_type == "MatMul"}
    assert not float_matmuls & set(attention)  # every attention product is quantized
    assert all(n.startswith(FLOAT_SCOPES) for n in float_matmuls)  # islands stay float
    wav = golden("tiny_16k")["speech_3/wav"]
    ref = xyrt.runtime.load(src).encode(wav)
    got = xyrt.runtime.load(out).encode(wav)
    assert got.shape == ref.shape
    np.testing.assert_array_equal(got, xyrt.runtime.load(out).encode(wav))  # deterministic
    assert compare_codes(ref, got).per_stage[0] > 0.8
