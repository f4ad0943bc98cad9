"""``xyrt export``: checkpoint -> DIR/{encoder.onnx, decoder.onnx, manifest.json}.

Everything is written into a temporary folder beside DIR and moved into place at the end: the
old manifest is removed first and the new one written last, so a directory with a manifest
always holds one complete export (an interrupted export leaves no manifest, never a mix).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

import xyrt
from xyrt.config import CHUNK_SECONDS, CODES_PER_CHUNK, N_SAMPLES, SAMPLES_PER_CODE_IN
from xyrt.errors import XyrtError, require
from xyrt.export.checkpoint import checkpoint_sha256, load_model
from xyrt.export.graphs import DecoderGraph, EncoderGraph
from xyrt.export.model import XYTokenizer
from xyrt.runtime.graph_io import DECODER, DECODER_IO, ENCODER, ENCODER_IO
from xyrt.runtime.manifest import (
    FORMAT,
    FORMAT_VERSION,
    graph_entry,
    metadata_facts,
    stamp_graph,
)

DEFAULT_OPSET = 17
EXTERNAL_DATA_BYTES = 1_800_000_000  # protobuf's limit is 2 GiB: larger graphs use external data


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
    if out_dir.exists() and not out_dir.is_dir():
        raise XyrtError(f"output {out_dir} exists and is not a directory")
    try:  # fail on an unwritable output before loading a 2 GB model
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.export-"))
    except OSError as exc:
        raise XyrtError(f"cannot write the export to {out_dir}: {exc}") from exc
    try:
        model = load_model(checkpoint, config)
        manifest = base_manifest(model, checkpoint, opset)
        facts = metadata_facts(manifest)
        spc = SAMPLES_PER_CODE_IN
        wav = torch.zeros(2, 25 * spc)
        lengths = torch.tensor([25 * spc - 400, 15 * spc + 77])
        codes = torch.zeros(8, 2, 20, dtype=torch.long)
        graphs = {}
        for name, module, args, io in [
            (ENCODER, EncoderGraph(model), (wav, lengths), ENCODER_IO),
            (DECODER, DecoderGraph(model), (codes, torch.tensor([20, 20])), DECODER_IO),
        ]:
            path = tmp / f"{name}.onnx"
            _trace(module, args, path, io, opset)
            stamp_graph(path, facts, name, EXTERNAL_DATA_BYTES)
            graphs[name] = graph_entry(path, _io_listing(io))
        manifest["graphs"] = graphs
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        # the old manifest goes first (the directory is "not a model" meanwhile, never a mix),
        # then stale graphs and data files, then the new files, the manifest last
        (out_dir / "manifest.json").unlink(missing_ok=True)
        for stale in out_dir.glob("*.onnx*"):
            stale.unlink()
        for item in sorted(tmp.iterdir(), key=lambda p: p.name == "manifest.json"):
            item.replace(out_dir / item.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir
