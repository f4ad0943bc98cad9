"""Graph-level precision transforms, one function per scheme: FP32 ONNX in, one graph out.

- ``cpu-dynamic`` (ONNX Runtime CPU): MatMul weights int8 symmetric per output channel,
  activations uint8 quantized at run time (MatMulInteger/DynamicQuantizeMatMul); the float
  attention is fused into ORT's ``MultiHeadAttention`` (`calib.attention_fusion`). Beside each
  graph, its uint8 twin (`u8_twin`): the same weights plus 128 with zero-point 128, so the same
  integers. ORT's u8 x s8 kernel on x86 CPUs without VNNI (AVX2, AVX-512 before Cascade Lake)
  sums pairs of products in int16 with saturation (VPMADDUBSW): the tiny model kept 0.37 of its
  stage-0 agreement on an AVX2 host instead of 0.89. Its u8 x u8 kernel widens to int16 and sums
  in int32 (VPMADDWD) with no saturation, at about half the speed of VNNI's u8 x s8; the ONNX
  Runtime backend runs the twin on such CPUs (`xyrt.runtime.hostcpu.int8_dot`) and the int8
  graph everywhere else, and both give the agreement measured on any of them.
- ``trt-qdq`` (TensorRT explicit quantization): QuantizeLinear/DequantizeLinear pairs around
  MatMul and Conv inputs: int8, symmetric (zero-point 0) activations from MinMax calibration,
  per-channel symmetric weights, float biases. Only MatMuls with a constant weight are quantized
  (attention score products stay float).
- ``fp16``: float16 weights and activations with float32 islands: the ``keep_float`` nodes,
  LayerNormalization, Softmax and the additive mask in front of it (float32's minimum is -inf in
  float16), and the exponential/trigonometric ops of the vocoder head. Graph inputs and outputs
  keep their float32 types so the runtime feeds every precision alike.

The nodes named in ``keep_float`` stay float in every scheme: the caller passes the front end,
the residual VQ, the iSTFT head and whatever the sensitivity pass excluded.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xyrt.calib.attention_fusion import fuse_attention
from xyrt.errors import XyrtError, require

FP16_FLOAT_OPS = ("LayerNormalization", "Softmax", "Exp", "Sin", "Cos", "Range", "Max", "Min")
QUANTIZED_OPS = ("MatMul", "Conv")


@dataclass(frozen=True)
class NodeInfo:
    name: str
    op_type: str
    inputs: tuple[str, ...]


@dataclass(frozen=True)
class GraphTable:
    """What the precision passes ask of a graph: its nodes and its constant tensors."""

    nodes: tuple[NodeInfo, ...]
    constants: frozenset[str]


def graph_table(model_path: Path) -> GraphTable:
    """The node table of ``model_path``, parsed once per file version (a full-size graph is a
    1 GB protobuf: the quantize loop and every sensitivity trial ask for it)."""
    stat = Path(model_path).stat()
    return _graph_table(str(Path(model_path).resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _graph_table(path: str, _mtime_ns: int, _size: int) -> GraphTable:
    onnx = require("onnx", "export", "xyrt quantize")
    graph = onnx.load(path, load_external_data=False).graph
    constants = {t.name for t in graph.initializer}
    constants |= {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    nodes = tuple(NodeInfo(n.name, n.op_type, tuple(n.input)) for n in graph.node)
    return GraphTable(nodes, frozenset(constants))


def nodes_under(model_path: Path, scopes: Iterable[str]) -> list[str]:
    """Names of the nodes whose name starts with one of ``scopes``."""
    scopes = tuple(scopes)
    nodes = graph_table(model_path).nodes
    return [n.name for n in nodes if scopes and n.name.startswith(scopes)]


@contextlib.contextmanager
def _quiet_root_logger():
    """onnxruntime.quantization logs advice through the root logger on every call."""
    level = logging.root.level
    logging.root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logging.root.setLevel(level)


ATTENTION_MODES = {  # cpu-dynamic: how the attention runs -> the manifest's words for it
    "fused": "float32, fused MultiHeadAttention",
    "float": "float32",
    "int8": "int8 dynamic",
}


def write_cpu_dynamic(
    src: Path, dst: Path, keep_float: list[str], attention: str = "fused"
) -> None:
    """ORT dynamic quantization of the MatMuls with constant weights (see module docstring).
    ``attention``: ``"fused"`` then fuses each float attention into ORT's MultiHeadAttention
    (`calib.attention_fusion`); ``"float"`` leaves it as exported; ``"int8"`` also quantizes the
    activation x activation products (attention scores and context) dynamically, both sides
    per tensor at run time (MatMulInteger)."""
    q = require("onnxruntime.quantization", "ort", "xyrt quantize")
    with _quiet_root_logger():
        _dynamic(q, src, dst, keep_float, attention == "int8")
    if attention == "fused":
        import onnx

        model = onnx.load(str(dst))
        if fuse_attention(model):
            onnx.save(model, str(dst))


def _dynamic(q, src: Path, dst: Path, keep_float: list[str], attention: bool = False) -> None:
    q.quantize_dynamic(
        src,
        dst,
        op_types_to_quantize=["MatMul"],
        per_channel=True,
        weight_type=q.QuantType.QInt8,  # its uint8 twin: `u8_twin` (module docstring)
        nodes_to_exclude=keep_float,
        extra_options={"MatMulConstBOnly": not attention},
        use_external_data_format=False,
    )


def u8_twin(src: Path, dst: Path) -> int:
    """Write ``src`` (a cpu-dynamic graph) to ``dst`` with every int8 MatMulInteger weight as
    uint8 (w + 128, zero-point + 128): the same products, computed by ORT's u8 x u8 kernels,
    which never saturate. Returns how many weights were converted."""
    onnx = require("onnx", "export", "xyrt quantize")
    from onnx import numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    users: dict[str, set[str]] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, set()).add(node.op_type)
    converted, shifted = 0, set()
    for node in graph.node:
        if node.op_type != "MatMulInteger" or node.input[1] not in inits:
            continue
        weight = inits[node.input[1]]
        if weight.name in shifted:  # shared with a node converted before: already uint8
            converted += 1
            continue
        if weight.data_type != onnx.TensorProto.INT8 or users[weight.name] != {"MatMulInteger"}:
            continue
        zero = inits.get(node.input[3]) if len(node.input) > 3 and node.input[3] else None
        if zero is not None and users[zero.name] != {"MatMulInteger"}:
            continue
        _shift(weight, numpy_helper)
        shifted.add(weight.name)
        if zero is None:  # int8 weights with no zero-point: zero; as uint8, 128
            name = f"{weight.name}_u8_zero_point"
            graph.initializer.append(numpy_helper.from_array(np.array(128, np.uint8), name))
            inputs = list(node.input) + [""] * (4 - len(node.input))
            inputs[3] = name
            del node.input[:]
            node.input.extend(inputs)
        elif zero.data_type == onnx.TensorProto.INT8 and zero.name not in shifted:
            _shift(zero, numpy_helper)
            shifted.add(zero.name)
        converted += 1
    onnx.save(model, str(dst))
    return converted


def _shift(tensor, numpy_helper) -> None:
    """An int8 initializer, in place, as uint8 holding the value + 128."""
    values = numpy_helper.to_array(tensor).astype(np.int16) + 128
    tensor.CopyFrom(numpy_helper.from_array(values.astype(np.uint8), tensor.name))


def write_trt_qdq(src: Path, dst: Path, keep_float: list[str], feeds: Iterable[dict]) -> None:
    """Static Q/DQ quantization calibrated on ``feeds`` (input dicts of the graph)."""
    q = require("onnxruntime.quantization", "ort", "xyrt quantize")
    keep = sorted(set(keep_float) | set(activation_matmuls(src)))
    with _quiet_root_logger():
        try:
            _static(q, src, dst, keep, feeds)
        except (AssertionError, ValueError, ZeroDivisionError) as exc:  # ORT's range checks
            raise XyrtError(
                f"ONNX Runtime's static quantizer rejected the calibration ranges of {src.name} "
                f"({type(exc).__name__}: {exc}); check the calibration set (xyrt calib)"
            ) from exc


def activation_matmuls(model_path: Path) -> list[str]:
    """MatMuls whose second input is not a weight (attention scores and context): the static
    quantizer would quantize them; they stay float."""
    table = graph_table(model_path)
    return [
        n.name for n in table.nodes if n.op_type == "MatMul" and n.inputs[1] not in table.constants
    ]


def _static(q, src: Path, dst: Path, keep_float: list[str], feeds: Iterable[dict]) -> None:
    q.quantize_static(
        src,
        dst,
        _Reader(iter(feeds)),
        quant_format=q.QuantFormat.QDQ,
        op_types_to_quantize=list(QUANTIZED_OPS),
        per_channel=True,
        activation_type=q.QuantType.QInt8,
        weight_type=q.QuantType.QInt8,
        nodes_to_exclude=keep_float,
        calibrate_method=q.CalibrationMethod.MinMax,
        use_external_data_format=False,
        extra_options={
            "ActivationSymmetric": True,
            "WeightSymmetric": True,
            "MatMulConstBOnly": True,
            "QuantizeBias": False,  # TensorRT takes int8 Q/DQ; biases stay float
        },  # MinMax keeps only per-tensor ReduceMin/ReduceMax outputs: memory stays small
    )


class _Reader:
    """The calibration-reader protocol of onnxruntime.quantization (``get_next`` -> dict|None)."""

    def __init__(self, feeds: Iterator[dict]) -> None:
        self.feeds = feeds

    def get_next(self) -> dict | None:
        return next(self.feeds, None)


def write_fp16(src: Path, dst: Path, keep_float: list[str]) -> None:
    """FP16 graph with float32 islands (see module docstring)."""
    onnx = require("onnx", "export", "xyrt quantize")
    f16 = require("onnxruntime.transformers.float16", "ort", "xyrt quantize --precision fp16")
    model = onnx.load(str(src))
    block = set(keep_float) | set(_mask_adds(model.graph))
    converted = f16.convert_float_to_float16(
        model,
        keep_io_types=True,
        op_block_list=list(f16.DEFAULT_OP_BLOCK_LIST) + list(FP16_FLOAT_OPS),
        node_block_list=sorted(block),
    )
    onnx.save_model(converted, str(dst))


def _mask_adds(graph) -> list[str]:
    """Nodes that feed a Softmax through an Add: the additive attention mask lives there."""
    producer = {out: n for n in graph.node for out in n.output}
    names = []
    for node in graph.node:
        if node.op_type == "Softmax":
            src = producer.get(node.input[0])
            if src is not None and src.op_type == "Add":
                names.append(src.name)
    return names


def qdq_properties(model_path: Path) -> dict:
    """What a Q/DQ graph quantizes: per node type counts, zero-points, per-channel weights and
    which consumers are quantized (for tests and the manifest)."""
    onnx = require("onnx", "export", "xyrt quantize")
    from onnx import numpy_helper

    graph = onnx.load(str(model_path)).graph
    inits = {t.name: t for t in graph.initializer}
    consumers: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    zero_points, per_channel, quantized = [], 0, set()
    for n in graph.node:
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        if len(n.input) > 2 and n.input[2] in inits:
            zero_points.append(numpy_helper.to_array(inits[n.input[2]]))
        if n.op_type == "DequantizeLinear":
            scale = inits.get(n.input[1])
            if scale is not None and numpy_helper.to_array(scale).size > 1:
                per_channel += 1
            for c in consumers.get(n.output[0], []):
                if c.op_type in QUANTIZED_OPS:
                    quantized.add(c.name)
    dtypes = {str(z.dtype) for z in zero_points}
    return {
        "quantize_nodes": sum(n.op_type == "QuantizeLinear" for n in graph.node),
        "dequantize_nodes": sum(n.op_type == "DequantizeLinear" for n in graph.node),
        "zero_points_all_zero": all(not np.any(z) for z in zero_points),
        "zero_point_dtypes": sorted(dtypes),
        "per_channel_weights": per_channel,
        "quantized_nodes": sorted(quantized),
    }
