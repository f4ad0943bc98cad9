"""The ONNX Runtime backend: no torch needed, stale or foreign graphs refused, providers checked."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import xyrt.runtime
from helpers import exported, golden
from xyrt.errors import XyrtError


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "model"
    shutil.copytree(src, dst)
    return dst


def test_runtime_imports_and_encodes_without_torch(tmp_path: Path) -> None:
    wav = tmp_path / "speech.npy"
    np.save(wav, golden("tiny_16k")["speech_4/wav"])
    script = f"""
import sys
sys.modules["torch"] = None  # any 'import torch' now raises ImportError
import numpy as np
import xyrt.runtime
codec = xyrt.runtime.load({str(exported("tiny_16k"))!r})
codes = codec.encode(np.load({str(wav)!r}), 16000)
audio = codec.decode(codes)
print(codes.shape, audio.shape, audio.dtype)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(8, 44) (56320,) float32"


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(XyrtError, match="not an xyrt model directory"):
        xyrt.runtime.load(tmp_path)


def test_modified_graph_is_refused(tmp_path: Path) -> None:
    d = _copy(exported("tiny_16k"), tmp_path)
    with open(d / "decoder.onnx", "ab") as f:
        f.write(b"\0")
    codec = xyrt.runtime.load(d)
    with pytest.raises(XyrtError, match="decoder.onnx has sha256 .* manifest.json expects"):
        codec.decode(np.zeros((8, 3), np.int64))


def test_graph_from_another_export_is_refused(tmp_path: Path) -> None:
    d = _copy(exported("tiny_16k"), tmp_path)
    shutil.copy(exported("tiny_moss_ttsd_24k") / "decoder.onnx", d / "decoder.onnx")
    manifest = json.loads((d / "manifest.json").read_text())
    from xyrt.runtime.modeldir.manifest import sha256_file

    manifest["graphs"]["decoder"]["sha256"] = sha256_file(d / "decoder.onnx")
    (d / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(XyrtError, match="metadata does not match.*output_sample_rate"):
        xyrt.runtime.load(d).decode(np.zeros((8, 3), np.int64))


def test_corrupt_or_foreign_manifest(tmp_path: Path) -> None:
    d = _copy(exported("tiny_16k"), tmp_path)
    (d / "manifest.json").write_text("{not json")
    with pytest.raises(XyrtError, match="not valid JSON"):
        xyrt.runtime.load(d)
    (d / "manifest.json").write_text(json.dumps({"format": "xyrt-onnx", "format_version": 99}))
    with pytest.raises(XyrtError, match="format_version 99"):
        xyrt.runtime.load(d)


def test_providers_are_checked() -> None:
    with pytest.raises(XyrtError, match="not available in this install"):
        xyrt.runtime.load(exported("tiny_16k"), providers=["cuda"])
    with pytest.raises(XyrtError, match="unknown backend"):
        xyrt.runtime.load(exported("tiny_16k"), backend="tensorflow")
    codec = xyrt.runtime.load(exported("tiny_16k"), providers=["cpu"])
    assert codec.backend.providers == {
        "encoder": ["CPUExecutionProvider"],
        "decoder": ["CPUExecutionProvider"],
    }


def test_cuda_provider_when_present() -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime-gpu with CUDA is not installed here (CPU-only machine)")
    codec = xyrt.runtime.load(exported("tiny_16k"), providers=["cuda"])
    assert "CUDAExecutionProvider" in codec.backend.providers["encoder"]


def test_bad_codes_and_audio_are_rejected() -> None:
    codec = xyrt.runtime.load(exported("tiny_16k"))
    with pytest.raises(XyrtError, match=r"expected values in \[0, 1024\)"):
        codec.decode(np.full((8, 4), 2000))
    with pytest.raises(XyrtError, match="NaN"):
        codec.encode(np.full(16000, np.nan, np.float32))


def test_backend_lifecycle_lazy_load_close_and_context_manager() -> None:
    from xyrt.runtime.backends.ort.backend import OnnxRuntimeBackend

    wav = golden("tiny_16k")["speech_4/wav"]
    backend = OnnxRuntimeBackend(exported("tiny_16k"))
    assert not backend.encoder.loaded and not backend.decoder.loaded  # sessions made lazily
    with backend as entered:
        assert entered is backend and backend.encoder.loaded and backend.decoder.loaded
    assert not backend.encoder.loaded and not backend.decoder.loaded  # closed on exit
    with xyrt.runtime.load(exported("tiny_16k")) as codec:
        assert codec.backend.encoder.loaded
        codes = codec.encode(wav)
    assert not codec.backend.encoder.loaded
    np.testing.assert_array_equal(codec.encode(wav), codes)  # a closed backend loads again


def test_manifest_that_is_not_an_object(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("[1, 2]")
    with pytest.raises(XyrtError, match="not an xyrt manifest"):
        xyrt.runtime.load(tmp_path)
