"""The ``openvino`` int8 scheme: NNCF post-training quantization into an OpenVINO IR.

The FP32 ONNX graph is read by OpenVINO, quantized by NNCF (``nncf.quantize``: symmetric
int8 weights and activations, transformer model type, calibrated on `xyrt calib` windows) with
the float scopes (front end, residual VQ, iSTFT) in an ``nncf.IgnoredScope`` (the encoder as
NNCF's transformer model type; the decoder as a plain model, since the transformer type puts
per-channel activation quantizers in the vocoder that OpenVINO's CPU plugin cannot compile), and
saved as
``<key>.xml`` + ``<key>.bin`` with the xyrt metadata in its ``rt_info["framework"]``, which the
OpenVINO backend checks as it checks ONNX ``metadata_props``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xyrt.errors import require
from xyrt.runtime.backends.openvino.backend import ov_feed
from xyrt.runtime.compare import snr_db
from xyrt.runtime.graph_io import ENCODER, GRAPH_OUTPUT
from xyrt.runtime.modeldir.manifest import METADATA_PREFIX, sha256_file

FACTS = {
    "weights": "int8 symmetric, per output channel (NNCF, OpenVINO IR)",
    "activations": "int8, NNCF MinMax calibration (encoder: transformer model type)",
}


def ignored_scope(prefixes: Sequence[str]):
    """An NNCF IgnoredScope over every node whose name starts with one of ``prefixes``."""
    nncf = require("nncf", "openvino", "the openvino int8 scheme")
    patterns = [f"^{re.escape(p)}.*" for p in prefixes]
    return nncf.IgnoredScope(patterns=patterns, validate=False)


def write_openvino_int8(
    src: Path,
    dst: Path,
    keep_float: Sequence[str],
    feeds: list[dict[str, np.ndarray]],
    facts: dict[str, str],
    key: str,
    transformer: bool = True,
) -> None:
    """Quantize the ONNX graph ``src`` with NNCF and save the IR as ``dst`` (.xml, + .bin).

    ``keep_float``: node-name prefixes left float; ``feeds``: calibration inputs."""
    ov = require("openvino", "openvino", "the openvino int8 scheme")
    nncf = require("nncf", "openvino", "the openvino int8 scheme")
    model = ov.Core().read_model(str(src))
    quantized = nncf.quantize(
        model,
        nncf.Dataset([ov_feed(f) for f in feeds]),
        preset=nncf.QuantizationPreset.PERFORMANCE,
        subset_size=len(feeds),
        model_type=nncf.ModelType.TRANSFORMER if transformer else None,
        ignored_scope=ignored_scope(keep_float),
    )
    for name, value in {**facts, METADATA_PREFIX + "graph": key}.items():
        quantized.set_rt_info(value, ["framework", name])
    ov.save_model(quantized, str(dst), compress_to_fp16=False)


def ir_entry(xml: Path, io: dict[str, Any]) -> dict[str, Any]:
    """The manifest entry of a written IR: the .xml, its .bin as external data, sha256s."""
    binary = xml.with_suffix(".bin")
    return {
        "file": xml.name,
        "sha256": sha256_file(xml),
        "external_data": binary.name,
        "external_data_sha256": sha256_file(binary),
        "bytes": xml.stat().st_size + binary.stat().st_size,
        "format": "openvino-ir",
        **io,
    }


def score_ir(graph: str, xml: Path, pairs: list[tuple[dict, np.ndarray]]) -> float:
    """Stage-0 agreement (encoder) or SNR dB (decoder) of the IR against FP32 outputs."""
    ov = require("openvino", "openvino", "the openvino int8 scheme")
    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    output = compiled.output(GRAPH_OUTPUT[graph])
    got = [compiled(ov_feed(feed))[output] for feed, _ in pairs]
    if graph == ENCODER:
        same = sum(int((g[0] == r[0]).sum()) for g, (_, r) in zip(got, pairs, strict=True))
        return float(same / sum(r[0].size for _, r in pairs))
    ref = np.concatenate([r.ravel() for _, r in pairs])
    return float(snr_db(ref, np.concatenate([g.ravel() for g in got])))
