"""What a model source run by a backend is, as a record (`Resolved.identity`): the sha256 of the
model (its source checkpoint) and of the encoder that runs, the precision, and the backend label.
``xyrt tokenize`` keeps it in every output's summary (a rerun must match it) and ``xyrt serve``
reports it at ``GET /v1/info``. Decided from files alone: no graph is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xyrt.runtime.backends.registry import Options


def torch_identity(checkpoint: Path, o: Options, device: str) -> dict[str, Any]:
    """A checkpoint run by the PyTorch backend: its sha256 is the model's and the encoder's."""
    from xyrt.errors import require

    require("torch", "export", "the PyTorch backend's model identity")
    from xyrt.runtime.network.checkpoint import checkpoint_sha256

    sha = checkpoint_sha256(checkpoint)
    return {
        "model_sha256": sha,
        "encoder_sha256": sha,
        "precision": o.precision or "fp32",
        "backend": f"torch[{device.split(':')[0]}]",
    }


def tensorrt_identity(engine_dir: Path, o: Options, device: str) -> dict[str, Any]:
    """An engine directory: the source it was built from and the encoder engine's plan."""
    from xyrt.runtime.backends.trt.backend import read_engines

    engines = read_engines(engine_dir)
    enc = engines.get("engines", {}).get("encoder", {})
    return {
        "model_sha256": engines.get("source_sha256") or enc.get("graph_sha256"),
        "encoder_sha256": enc.get("plan_sha256") or enc.get("graph_sha256"),
        "precision": enc.get("precision"),
        "backend": "tensorrt",
    }


def _export_identity(model_dir: Path, encoder: str, precision: str, label: str) -> dict[str, Any]:
    from xyrt.runtime.modeldir.manifest import read_manifest

    data = read_manifest(model_dir).data
    return {
        "model_sha256": data["source_checkpoint"]["sha256"],
        "encoder_sha256": data["graphs"][encoder]["sha256"],
        "precision": precision,
        "backend": label,
    }


def onnxruntime_identity(model_dir: Path, o: Options, device: str) -> dict[str, Any]:
    """An export run by ONNX Runtime: the graph set of ``target``, the directory's precision."""
    from xyrt.runtime.backends.ort.backend import graph_set
    from xyrt.runtime.modeldir.manifest import read_manifest

    manifest = read_manifest(model_dir)
    encoder = graph_set(manifest, o.target)["encoder"]
    label = f"onnxruntime[{','.join(o.providers or ('cpu',))}]"
    return _export_identity(model_dir, encoder, manifest.data.get("precision", "fp32"), label)


def openvino_identity(model_dir: Path, o: Options, device: str) -> dict[str, Any]:
    """An export run by OpenVINO: the graphs and precision it picks (`openvino.graph_plan`)."""
    from xyrt.runtime.backends.openvino.backend import graph_plan
    from xyrt.runtime.modeldir.manifest import read_manifest

    precision, _, graphs = graph_plan(read_manifest(model_dir), o.precision)
    return _export_identity(model_dir, graphs["encoder"], precision, "openvino")
