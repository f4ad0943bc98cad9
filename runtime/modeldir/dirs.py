"""The kinds of output directory xyrt writes, and how each marks what it wrote (the rules for
writing them are `xyrt.atomic`'s: replace_dir, output_dir, check_output_dir)."""

from __future__ import annotations

from xyrt.atomic import DirKind

EXPORT_DIR = DirKind("manifest.json", "xyrt-onnx", "graphs", "an xyrt model directory")
ENGINE_DIR = DirKind("engines.json", "xyrt-trt-engines", "engines", "an xyrt engine directory")
