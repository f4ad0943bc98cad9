"""``xyrt export``: checkpoint -> DIR/{encoder.onnx, decoder.onnx, manifest.json}.

Everything is written into a hidden folder beside DIR that replaces DIR in one step when complete
(`xyrt.atomic.replace_dir`): an interrupted export leaves the old one loadable, never a mix, and
files in DIR that no xyrt export wrote are kept.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

import xyrt
from xyrt.atomic import check_output_dir, replace_dir
from xyrt.config import CHUNK_SECONDS, CODES_PER_CHUNK, N_SAMPLES, SAMPLES_PER_CODE_IN
from xyrt.errors import XyrtError, require
from xyrt.export.graphs import DecoderGraph, EncoderGraph
from xyrt.runtime.graph_io import DECODER, DECODER_IO, ENCODER, ENCODER_IO, LOG_MEL_MIN
from xyrt.runtime.modeldir.dirs import EXPORT_DIR
from xyrt.runtime.modeldir.manifest import (
    EXTERNAL_DATA_BYTES,
    FORMAT,
    FORMAT_VERSION,
    graph_entry,
    metadata_facts,
    stamp_graph,
)
from xyrt.runtime.network.checkpoint import checkpoint_sha256, load_model
from xyrt.runtime.network.model import XYTokenizer

DEFAULT_OPSET = 17
OPSETS = range(14, 21)  # attention (SDPA) needs 14; the TorchScript exporter stops at 20


def _dynamic_axes(io: dict) -> dict[str, dict[int, str]]:
    out = {}
    for group in ("inputs", "outputs"):
        for name, (_, dims) in io[group].items():
            out[name] = {i: d for i, d in enumerate(dims) if isinstance(d, str)}
    return out


def _io_listing(io: dict) -> dict[str, list[dict[str, Any]]]:
    return {
        group: [{"name": n, "dtype": t, "shape": s} for n, (t, s) in io[group].items()]
        for group in ("inputs", "outputs")
    }


def _trace(module: torch.nn.Module, args: tuple, path: Path, io: dict, opset: int) -> None:
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # TorchScript tracer warnings about shape-derived ints
        torch.onnx.export(
            module.eval(),
            args,
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=list(io["inputs"]),
            output_names=list(io["outputs"]),
            dynamic_axes=_dynamic_axes(io),
            do_constant_folding=True,
        )


def base_manifest(model: XYTokenizer, checkpoint: Path, opset: int) -> dict[str, Any]:
    """Everything manifest.json says except the graphs."""
    onnx = require("onnx", "export", "xyrt export")
    cfg = model.cfg
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "precision": "fp32",
        "source_checkpoint": {
            "file": checkpoint.name,
            "path": str(checkpoint.resolve()),
            "sha256": checkpoint_sha256(checkpoint),
        },
        "variant": cfg.variant,
        "config": cfg.to_dict(),
        "input_sample_rate": cfg.input_sample_rate,
        "output_sample_rate": cfg.output_sample_rate,
        "samples_per_code_in": SAMPLES_PER_CODE_IN,
        "samples_per_code_out": cfg.samples_per_code_out,
        "num_quantizers": cfg.num_quantizers,
        "codebook_size": cfg.codebook_size,
        "max_window": {"seconds": CHUNK_SECONDS, "samples": N_SAMPLES, "codes": CODES_PER_CHUNK},
        "opset": opset,
        "exporter": {
            "xyrt": xyrt.__version__,
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "method": "torch.onnx.export (TorchScript tracer)",
        },
    }


def export_onnx(
    checkpoint: str | Path,
    out_dir: str | Path,
    config: str | Path | None = None,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Export encoder.onnx, decoder.onnx and manifest.json into ``out_dir``; return it."""
    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    if isinstance(opset, bool) or not isinstance(opset, int) or opset not in OPSETS:
        raise XyrtError(
            f"opset {opset!r} is not supported; expected an integer {OPSETS[0]}..{OPSETS[-1]} "
            f"(default {DEFAULT_OPSET})"
        )
    check_output_dir(out_dir, EXPORT_DIR)  # fail on a wrong output before loading a 2 GB model
    model = load_model(checkpoint, config)
    with replace_dir(out_dir, EXPORT_DIR) as tmp:
        manifest = base_manifest(model, checkpoint, opset)
        facts = metadata_facts(manifest)
        spc = SAMPLES_PER_CODE_IN
        wav = torch.zeros(2, 25 * spc)
        lengths = torch.tensor([25 * spc - 400, 15 * spc + 77])
        codes = torch.zeros(8, 2, 20, dtype=torch.long)
        graphs = {}
        positions = torch.tensor([0, 3])  # any in-range offsets: traced as inputs
        reference = torch.full((2,), LOG_MEL_MIN)
        for name, module, args, io in [
            (ENCODER, EncoderGraph(model), (wav, lengths, positions, reference), ENCODER_IO),
            (DECODER, DecoderGraph(model), (codes, torch.tensor([20, 20]), positions), DECODER_IO),
        ]:
            path = tmp / f"{name}.onnx"
            _trace(module, args, path, io, opset)
            stamp_graph(path, facts, name, EXTERNAL_DATA_BYTES)
            graphs[name] = graph_entry(path, _io_listing(io))
        manifest["graphs"] = graphs
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")  # last
    return out_dir
