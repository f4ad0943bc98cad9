"""Fuse xyrt's exported self-attention into ONNX Runtime's ``com.microsoft.MultiHeadAttention``.

The exporter writes each attention as plain ONNX: q/k/v (B, T, D) -> Reshape (B, T, H, d) ->
Transpose (q, v: 0213; k: 0231) -> optional scalar Mul -> MatMul(q, k) -> Add(mask bias) ->
Softmax -> MatMul(., v) -> Transpose 0213 -> Reshape (B, T, D). ONNX Runtime's CPU kernel for
``MultiHeadAttention`` runs the same arithmetic without materialising the transposes, the mask
add or a separate softmax pass (one layer at T = 1500: 0.72x the time of the plain ops;
`benchmarks/cpu_paths.py` measures the whole graph).

Only the ORT-only ``cpu-dynamic`` int8 graphs are fused (the float32 export stays portable ONNX
for TensorRT and OpenVINO). The mask bias (B, 1, 1, T), 0 for valid keys and float32's minimum
for padding, becomes a ``key_padding_mask`` (B, T) int32 with ``mask_filter_value`` = float32's
minimum, so padded keys get exactly the value they got before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xyrt.errors import require

MHA_DOMAIN = "com.microsoft"
FLOAT32_MIN = float(np.finfo(np.float32).min)


@dataclass
class _Match:
    q: str
    k: str
    v: str
    mask_bias: str
    scale: float
    heads: int
    output: str
    nodes: list  # matched nodes, removed after the rewrite
    scope: str  # module scope of the attention ("/…/self_attn"), for the new nodes' names


class _Graph:
    def __init__(self, graph) -> None:
        from onnx import numpy_helper

        self.graph = graph
        self.producer = {o: n for n in graph.node for o in n.output}
        self.consumers: dict[str, list] = {}
        for n in graph.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self.outputs = {o.name for o in graph.output}
        self._to_array = numpy_helper.to_array

    def const(self, name: str) -> np.ndarray | None:
        if name in self.inits:
            return self.inits[name]
        node = self.producer.get(name)
        if node is not None and node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    return self._to_array(a.t)
        return None

    def only_consumer(self, name: str, op: str):
        users = self.consumers.get(name, [])
        return users[0] if len(users) == 1 and users[0].op_type == op else None

    def made_by(self, name: str, op: str):
        node = self.producer.get(name)
        return node if node is not None and node.op_type == op else None


def _perm(node) -> list[int]:
    return next((list(a.ints) for a in node.attribute if a.name == "perm"), [])


def _head(g: _Graph, name: str, perm: list[int]):
    """(flat input, heads, scale, nodes) behind a (B, H, ., .) operand of the score MatMul."""
    nodes, scale = [], 1.0
    mul = g.made_by(name, "Mul")
    if mul is not None:
        c = g.const(mul.input[1])
        if c is None or c.size != 1:
            return None
        scale, name = float(c.reshape(())), mul.input[0]
        nodes.append(mul)
    tr = g.made_by(name, "Transpose")
    if tr is None or _perm(tr) != perm:
        return None
    rs = g.made_by(tr.input[0], "Reshape")
    if rs is None:
        return None
    heads = _heads(g, rs.input[1])
    if heads is None:
        return None
    return rs.input[0], heads, scale, nodes + [tr, rs]


def _heads(g: _Graph, shape: str) -> int | None:
    """H of a Reshape to (B, T, H, d): a constant shape, or a Concat of [B, T, H, d] pieces."""
    c = g.const(shape)
    if c is not None and c.size == 4:
        return int(c[2])
    cat = g.made_by(shape, "Concat")
    if cat is not None and len(cat.input) == 4:
        h = g.const(cat.input[2])
        if h is not None and h.size == 1:
            return int(h.reshape(()))
    return None


def _match(g: _Graph, softmax) -> _Match | None:
    if [a.i for a in softmax.attribute if a.name == "axis"] not in ([-1], [3]):
        return None
    add = g.made_by(softmax.input[0], "Add")
    if add is None:
        return None
    side = next((i for i in (0, 1) if g.made_by(add.input[i], "MatMul") is not None), None)
    if side is None or g.only_consumer(add.input[side], "Add") is None:
        return None
    scores, bias = g.made_by(add.input[side], "MatMul"), add.input[1 - side]
    context = g.only_consumer(softmax.output[0], "MatMul")
    if context is None or context.input[0] != softmax.output[0]:
        return None
    q = _head(g, scores.input[0], [0, 2, 1, 3])
    k = _head(g, scores.input[1], [0, 2, 3, 1])
    v = _head(g, context.input[1], [0, 2, 1, 3])
    if q is None or k is None or v is None or v[2] != 1.0 or not q[1] == k[1] == v[1]:
        return None
    back = g.only_consumer(context.output[0], "Transpose")
    if back is None or _perm(back) != [0, 2, 1, 3]:
        return None
    out = g.only_consumer(back.output[0], "Reshape")
    if out is None:
        return None
    inner = [*q[3], *k[3], *v[3], scores, add, softmax, context, back]
    ids = {id(n) for n in [*inner, out]}
    for n in inner:  # every intermediate stays inside the pattern
        for o in n.output:
            if o in g.outputs or any(id(u) not in ids for u in g.consumers.get(o, [])):
                return None
    scope = out.name.rsplit("/", 1)[0]
    return _Match(q[0], k[0], v[0], bias, q[2] * k[2], q[1], out.output[0], [*inner, out], scope)


def fuse_attention(model) -> int:
    """Rewrite every matched attention of ``model`` (onnx.ModelProto, in place) as one
    ``com.microsoft.MultiHeadAttention``; returns how many were fused."""
    onnx = require("onnx", "export", "attention fusion")
    helper = onnx.helper
    g = _Graph(model.graph)
    matches = [m for n in list(model.graph.node) if n.op_type == "Softmax" for m in [_match(g, n)]]
    matches = [m for m in matches if m is not None]
    if not matches:
        return 0
    masks: dict[str, str] = {}
    new_nodes: dict[str, list] = {}  # output of the pattern -> the nodes that replace it
    shape_name = "xyrt_mha_mask_shape"
    model.graph.initializer.append(
        onnx.numpy_helper.from_array(np.array([0, -1], np.int64), shape_name)
    )
    for m in matches:
        made = []
        if m.mask_bias not in masks:
            base = f"{m.mask_bias}_key_padding"
            made += [
                helper.make_node(
                    "Reshape", [m.mask_bias, shape_name], [base + "_2d"], name=base + "/Reshape"
                ),
                helper.make_node(
                    "Constant",
                    [],
                    [base + "_zero"],
                    name=base + "/Zero",
                    value=helper.make_tensor("v", onnx.TensorProto.FLOAT, [], [0.0]),
                ),
                helper.make_node(
                    "Equal", [base + "_2d", base + "_zero"], [base + "_valid"], name=base + "/Equal"
                ),
                helper.make_node(
                    "Cast",
                    [base + "_valid"],
                    [base],
                    name=base + "/Cast",
                    to=onnx.TensorProto.INT32,
                ),
            ]
            masks[m.mask_bias] = base
        made.append(
            helper.make_node(
                "MultiHeadAttention",
                [m.q, m.k, m.v, "", masks[m.mask_bias]],
                [m.output],
                name=f"{m.scope}/MultiHeadAttention",
                domain=MHA_DOMAIN,
                num_heads=m.heads,
                scale=m.scale,
                mask_filter_value=FLOAT32_MIN,
            )
        )
        new_nodes[m.output] = made
    dropped = {n.output[0] for m in matches for n in m.nodes}  # outputs are unique (SSA)
    kept = []
    for n in model.graph.node:
        if n.output[0] in new_nodes:
            kept.extend(new_nodes[n.output[0]])
        elif n.output[0] not in dropped:
            kept.append(n)
    kept = _live(kept, {o.name for o in model.graph.output})
    del model.graph.node[:]
    model.graph.node.extend(kept)
    made = {o for n in kept for o in n.output}
    infos = [v for v in model.graph.value_info if v.name in made]
    del model.graph.value_info[:]
    model.graph.value_info.extend(infos)
    if not any(o.domain == MHA_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MHA_DOMAIN, 1))
    return len(matches)


def _live(nodes: list, outputs: set[str]) -> list:
    """``nodes`` without those whose outputs nothing reads (the fused patterns' shape logic)."""
    while True:
        read = {i for n in nodes for i in n.input} | outputs
        alive = [n for n in nodes if any(o in read for o in n.output)]
        if len(alive) == len(nodes):
            return nodes
        nodes = alive
