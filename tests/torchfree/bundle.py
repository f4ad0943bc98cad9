"""What the torch-free tests run on another CPU: made on a host with torch, read without it.

``python tests/torchfree/bundle.py OUT`` writes, for each golden tiny model, its ONNX export
(``OUT/<model>/onnx``) and the tie margins of xyrt's PyTorch reference codes of every golden
clip (``OUT/<model>/margins.npz``, key ``<clip>/ov10``), plus tiny_16k quantized to INT8 with
every module quantized (``OUT/tiny_16k/int8``: cpu-dynamic, no sensitivity pass). An emulated
CPU (``make test-avx2``, ``make test-aarch64``) then runs `test_golden_torchfree.py` on it
without exporting or importing torch there: export and the reference are the slow, torch-bound
half, and the kernels under test are the runtime's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from helpers import CLIPS, FIXTURES, GOLDEN_MODELS, golden  # noqa: E402

OVERLAP = 10
STAMP = "bundle.json"


def make(out: Path) -> Path:
    """Write the bundle into ``out`` (made afresh); return it."""
    from xyrt.calib.quantize import quantize
    from xyrt.calib.sensitivity import SensitivityOptions
    from xyrt.export.onnx_export import export_onnx
    from xyrt.runtime.backends.pytorch.codec import XYCodec

    out.mkdir(parents=True, exist_ok=True)
    for name in GOLDEN_MODELS:
        export_onnx(FIXTURES / name / "model.ckpt", out / name / "onnx")
        codec = XYCodec.from_checkpoint(FIXTURES / name / "model.ckpt")
        g = golden(name)
        margins = {
            f"{clip}/ov{OVERLAP}": codec.encode_reference(g[f"{clip}/wav"], overlap=OVERLAP).margins
            for clip in CLIPS
        }
        np.savez_compressed(out / name / "margins.npz", **margins)
    quantize(
        out / "tiny_16k" / "onnx",
        out / "tiny_16k" / "int8",
        "int8",
        ["cpu-dynamic"],
        sensitivity=SensitivityOptions(False),
    )
    (out / STAMP).write_text(json.dumps({"models": GOLDEN_MODELS, "overlap": OVERLAP}) + "\n")
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/torchfree/bundle.py OUT")
    print(make(Path(sys.argv[1])))
