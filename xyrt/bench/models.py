"""Finding or building what `xyrt bench` measures (cached synthetic default, exports)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from xyrt.bench.driver import BenchOptions
from xyrt.config import XYConfig
from xyrt.errors import XyrtError
from xyrt.runtime.modeldir.dirs import EXPORT_DIR
from xyrt.runtime.modeldir.filecheck import cache_dir


def default_model(
    log: Callable[[str], None] = print, exports: bool = True
) -> tuple[Path, list[Path]]:
    """The full-size synthetic checkpoint, its FP32 export and an INT8 one (the cpu-dynamic
    scheme: no calibration needed; a fuller ``onnx-int8`` made by hand is used as it is),
    built once and cached; ``exports=False``: the checkpoint alone (PyTorch backends only)."""
    from tqdm.auto import tqdm

    base = cache_dir() / "synth-16k-seed0"
    ckpt, onnx_dir, int8_dir = base / "model.ckpt", base / "onnx-fp32", base / "onnx-int8"
    steps = [
        s
        for s, done in (
            ("synth", ckpt.is_file()),
            ("export", not exports or (onnx_dir / EXPORT_DIR.marker).is_file()),
            ("quantize", not exports or (int8_dir / EXPORT_DIR.marker).is_file()),
        )
        if not done
    ]
    if steps:
        log(f"building the full-size synthetic model in {base} (once; cached) ...")
    for step in tqdm(steps, desc="build default model", unit="step", disable=not steps):
        if step == "synth":
            from xyrt.export.synth import synth_checkpoint

            synth_checkpoint(ckpt, seed=0)
        elif step == "export":
            from xyrt.export.onnx_export import export_onnx

            export_onnx(ckpt, onnx_dir)
        else:
            from xyrt.calib.quantize import quantize
            from xyrt.calib.sensitivity import SensitivityOptions

            no_pass = SensitivityOptions(enabled=False)
            quantize(onnx_dir, int8_dir, "int8", ["cpu-dynamic"], sensitivity=no_pass)
    return ckpt, [onnx_dir, int8_dir] if exports else []


def export_for(checkpoint: Path, log: Callable[[str], None] = print) -> Path:
    """An FP32 export of ``checkpoint`` in the cache, keyed by its sha256."""
    from xyrt.runtime.network.checkpoint import checkpoint_sha256

    out = cache_dir() / "exports" / checkpoint_sha256(checkpoint)[:16] / "onnx-fp32"
    if not (out / EXPORT_DIR.marker).is_file():
        from xyrt.export.onnx_export import export_onnx

        log(f"exporting {checkpoint} to {out} (once; cached) ...")
        export_onnx(checkpoint, out)
    return out


def source_checkpoint(model_dir: Path) -> Path | None:
    """The checkpoint an export was made from, if it is still where the manifest says."""
    from xyrt.runtime.modeldir.manifest import read_manifest

    path = read_manifest(model_dir).data["source_checkpoint"].get("path")
    return Path(path) if path and Path(path).exists() else None


def model_config(checkpoint: Path | None, model_dirs: list[Path]) -> XYConfig:
    """The model's config: from the checkpoint's config.yaml, else from an export's manifest."""
    if checkpoint is not None:
        from xyrt.runtime.network.checkpoint import resolve_config

        return resolve_config(checkpoint)
    if model_dirs:
        from xyrt.runtime.modeldir.manifest import read_manifest

        return XYConfig.from_plain(read_manifest(model_dirs[0]).data["config"])
    raise XyrtError("nothing to benchmark: pass --checkpoint and/or --model")


def resolve(
    opts: BenchOptions, log: Callable[[str], None] = print
) -> tuple[BenchOptions, XYConfig]:
    """What to measure, filled in: nothing given -> the cached full-size synthetic default
    (built once); a checkpoint alone -> its cached FP32 export; model directories alone -> the
    checkpoint they were exported from, if still there. Returns the options and the config."""
    if opts.checkpoint is not None and not Path(opts.checkpoint).exists():
        raise XyrtError(f"checkpoint not found: {opts.checkpoint}")
    from xyrt.bench.driver import BENCH_BACKENDS

    onnx = any("export" in BENCH_BACKENDS[b].entry.sources for b in opts.backends)
    checkpoint, dirs, synthetic = opts.checkpoint, list(opts.model_dirs), False
    if checkpoint is None and not dirs:
        checkpoint, dirs = default_model(log, exports=onnx)
        synthetic = True
    elif checkpoint is None:
        checkpoint = source_checkpoint(dirs[0])
    elif not dirs and onnx:  # no ONNX export unless an ONNX backend is asked for
        dirs = [export_for(checkpoint, log)]
    opts = replace(opts, checkpoint=checkpoint, model_dirs=tuple(dirs), synthetic=synthetic)
    return opts, model_config(checkpoint, dirs)
