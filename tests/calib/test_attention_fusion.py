"""calib.attention_fusion: xyrt's exported attention -> ORT MultiHeadAttention, same results."""

from __future__ import annotations

import json
import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import xyrt.runtime
from helpers import exported, golden, quantized
from xyrt.calib.attention_fusion import fuse_attention
from xyrt.runtime.compare import compare_codes
from xyrt.runtime.graph_io import decoder_feed, encoder_feed, pack_windows

STACKS = {
    "encoder": ("semantic_encoder", "semantic_adapter", "acoustic_encoder", "pre_rvq_adapter"),
    "decoder": ("post_rvq_adapter", "acoustic_decoder"),
}


def session(model) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    data = model if isinstance(model, str) else model.SerializeToString()
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def fused(graph: str) -> tuple[onnx.ModelProto, int]:
    model = onnx.load(str(exported("tiny_16k") / f"{graph}.onnx"))
    return model, fuse_attention(model)


@pytest.mark.parametrize("graph", ["encoder", "decoder"])
def test_every_attention_layer_is_fused(graph: str) -> None:
    config = json.loads((exported("tiny_16k") / "manifest.json").read_text())["config"]
    model, count = fused(graph)
    assert count == sum(config[s]["layers"] for s in STACKS[graph])
    onnx.checker.check_model(model)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("MultiHeadAttention") == count and "Softmax" not in ops
    names = [n.name for n in model.graph.node if n.op_type == "MultiHeadAttention"]
    assert all(n.endswith("/self_attn/MultiHeadAttention") for n in names)  # stage scopes kept
    assert fuse_attention(model) == 0  # nothing left to match


def test_fused_graphs_compute_the_same() -> None:
    src = exported("tiny_16k")
    wav = golden("tiny_16k")["speech_3/wav"]
    # a ragged batch: the key padding mask must hide the padded frames exactly as before
    feed = encoder_feed(*pack_windows([wav, wav[: len(wav) // 2], wav[: len(wav) // 3]]))
    ref = session(str(src / "encoder.onnx")).run(None, feed)[0]
    got = session(fused("encoder")[0]).run(None, feed)[0]
    for row in range(ref.shape[1]):
        assert compare_codes(ref[:, row], got[:, row]).identical >= 0.99
    codes = decoder_feed(ref[:, :1])
    audio_ref = session(str(src / "decoder.onnx")).run(None, codes)[0]
    audio = session(fused("decoder")[0]).run(None, codes)[0]
    np.testing.assert_allclose(audio, audio_ref, atol=1e-4 * np.abs(audio_ref).max())


def test_a_softmax_read_elsewhere_is_left_alone() -> None:
    model = onnx.load(str(exported("tiny_16k") / "decoder.onnx"))
    softmax = next(n for n in model.graph.node if n.op_type == "Softmax")
    probe = onnx.helper.make_tensor_value_info(softmax.output[0], onnx.TensorProto.FLOAT, None)
    model.graph.output.append(probe)  # the attention weights are now an output: cannot fuse
    total = sum(n.op_type == "Softmax" for n in model.graph.node)
    assert fuse_attention(model) == total - 1
    assert softmax in model.graph.node


def test_cpu_dynamic_graphs_carry_fused_float_attention() -> None:
    out = quantized("int8")
    info = json.loads((out / "manifest.json").read_text())["quantization"]["schemes"]
    assert info["cpu-dynamic"]["attention_products"] == "float32, fused MultiHeadAttention"
    graph = onnx.load(str(out / "encoder.onnx")).graph
    assert any(n.op_type == "MultiHeadAttention" for n in graph.node)
    float_matmuls = [n.name for n in graph.node if n.op_type == "MatMul"]
    products = [n for n in float_matmuls if re.search(r"/self_attn/MatMul(_1)?$", n)]
    assert not products  # scores and context are inside the fused attention
    wav = golden("tiny_16k")["speech_3/wav"]
    codes = xyrt.runtime.load(out).encode(wav)
    ref = xyrt.runtime.load(exported("tiny_16k")).encode(wav)
    assert compare_codes(ref, codes).per_stage[0] > 0.8


def test_attention_float_keeps_the_exported_ops(tmp_path) -> None:
    from xyrt.cli import main

    src = exported("tiny_16k")
    out = tmp_path / "int8-float-attention"
    args = ["quantize", str(src), "--scheme", "cpu-dynamic", "--attention", "float"]
    assert main([*args, "--no-sensitivity", "-o", str(out)]) == 0
    info = json.loads((out / "manifest.json").read_text())["quantization"]["schemes"]
    assert info["cpu-dynamic"]["attention_products"] == "float32"
    ops = {n.op_type for n in onnx.load(str(out / "encoder.onnx")).graph.node}
    assert "Softmax" in ops and "MultiHeadAttention" not in ops
    fused_dir = tmp_path / "int8-fused"
    assert main([*args[:-1], "fused", "--no-sensitivity", "-o", str(fused_dir)]) == 0
    wav = golden("tiny_16k")["speech_3/wav"]
    plain = xyrt.runtime.load(out).encode(wav)
    assert compare_codes(plain, xyrt.runtime.load(fused_dir).encode(wav)).identical >= 0.99


def test_unknown_attention_mode_is_refused(tmp_path) -> None:
    from xyrt.calib.quantize import quantize
    from xyrt.errors import XyrtError

    with pytest.raises(XyrtError, match="attention 'flash': choose from fused, float, int8"):
        quantize(exported("tiny_16k"), tmp_path / "out", "int8", attention="flash")
    assert not (tmp_path / "out").exists()
