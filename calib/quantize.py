"""``xyrt quantize``: an FP32 export -> a quantized export (its own manifest and precision).

Implemented scheme: ``cpu-dynamic``, for ONNX Runtime on CPUs: MatMul weights stored as
symmetric per-channel int8, activations quantized at run time (ORT's dynamic quantization,
MatMulInteger with VNNI). The front end (``/frontend/``), the residual VQ (``/rvq/``) and the
iSTFT head (``/istft/``) stay float32: code selection and the DFT bases need the precision.
The TensorRT-oriented Q/DQ scheme (static, calibrated) and FP16 are not implemented yet.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from xyrt.errors import XyrtError, require
from xyrt.runtime.manifest import (
    graph_entry,
    metadata_facts,
    read_manifest,
    stamp_graph,
)

FLOAT_SCOPES = ("/frontend/", "/rvq/", "/istft/")
SCHEMES = ("cpu-dynamic",)
EXTERNAL_DATA_BYTES = 1_800_000_000


def float_nodes(model_path: Path, scopes: tuple[str, ...] = FLOAT_SCOPES) -> list[str]:
    """Names of the nodes under ``scopes``: they are kept in float."""
    onnx = require("onnx", "export", "xyrt quantize")
    graph = onnx.load(str(model_path), load_external_data=False).graph
    return [n.name for n in graph.node if n.name.startswith(scopes)]


def quantize(
    model_dir: str | Path,
    out_dir: str | Path,
    precision: str = "int8",
    scheme: str = "cpu-dynamic",
    exclude: tuple[str, ...] = (),
) -> Path:
    """Write a quantized copy of the export in ``model_dir`` to ``out_dir``; return it."""
    if precision != "int8":
        raise XyrtError(f"precision {precision!r} is not implemented yet (available: int8)")
    if scheme not in SCHEMES:
        raise XyrtError(f"scheme {scheme!r} is not implemented yet (available: {SCHEMES})")
    q = require("onnxruntime.quantization", "ort", "xyrt quantize")
    source = read_manifest(model_dir)
    if source.data.get("precision") != "fp32":
        raise XyrtError(
            f"{model_dir} holds a {source.data.get('precision')} model; quantize an fp32 export"
        )
    out_dir = Path(out_dir)
    if out_dir.resolve() == Path(model_dir).resolve():
        raise XyrtError("the quantized model needs its own directory (-o) next to the fp32 one")
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = json.loads(json.dumps(source.data))
    manifest["precision"] = precision
    facts = metadata_facts(manifest)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.quantize-"))
    try:
        graphs = {}
        for name in ("encoder", "decoder"):
            src = source.check_graph(name)
            keep = float_nodes(src, FLOAT_SCOPES + tuple(exclude))
            dst = tmp / f"{name}.onnx"
            q.quantize_dynamic(
                src,
                dst,
                op_types_to_quantize=["MatMul"],
                per_channel=True,
                weight_type=q.QuantType.QInt8,
                nodes_to_exclude=keep,
                use_external_data_format=False,
            )
            stamp_graph(dst, facts, name, EXTERNAL_DATA_BYTES)
            entry = source.data["graphs"][name]
            graphs[name] = graph_entry(
                dst, {"inputs": entry["inputs"], "outputs": entry["outputs"]}
            )
            graphs[name]["float_nodes"] = len(keep)
        manifest["graphs"] = graphs
        manifest["quantization"] = {
            "scheme": scheme,
            "target": "onnxruntime CPU",
            "weights": "int8, symmetric, per output channel (MatMul)",
            "activations": "int8, quantized at run time (dynamic)",
            "float_scopes": list(FLOAT_SCOPES) + list(exclude),
            "source_sha256": {n: source.data["graphs"][n]["sha256"] for n in graphs},
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        (out_dir / "manifest.json").unlink(missing_ok=True)
        for stale in out_dir.glob("*.onnx*"):
            stale.unlink()
        for item in sorted(tmp.iterdir(), key=lambda p: p.name == "manifest.json"):
            item.replace(out_dir / item.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
