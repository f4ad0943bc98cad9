"""The OpenVINO backend: golden codes in f32 (up to float32 ties), bf16/int8 shape, determinism
and agreement, the same manifest/hash/metadata checks as ONNX Runtime, model caching, no torch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from helpers import (
    CLIPS,
    SPEECH,
    expect_codes,
    exported,
    golden,
    golden_reference,
    quantized,
)
from xyrt.errors import XyrtError
from xyrt.runtime.compare import compare_codes, max_error_ratio

pytest.importorskip("openvino", reason="openvino is not installed (pip install 'xyrt[openvino]')")

import xyrt.runtime  # noqa: E402
from xyrt.runtime.backends.openvino.backend import cpu_supports  # noqa: E402

CACHE = Path(tempfile.mkdtemp(prefix="xyrt-ov-cache-"))  # not the user's cache


def _load(model_dir: Path, precision: str | None = None, batch_size: int = 4, **kwargs):
    """A codec over `OpenVinoBackend` (compiled models cached in a folder of this session)."""
    from xyrt.runtime.backends.openvino.backend import OpenVinoBackend
    from xyrt.runtime.codec import ChunkedCodec

    kwargs.setdefault("cache_dir", CACHE)
    return ChunkedCodec(OpenVinoBackend(model_dir, precision, **kwargs), batch_size=batch_size)


def _needs_bf16() -> None:
    if not cpu_supports("BF16"):
        pytest.skip("this CPU has no AVX512-BF16/AMX (OpenVINO does not list BF16)")


@pytest.mark.golden
@pytest.mark.parametrize("overlap", [10, 0])
@pytest.mark.parametrize("clip", CLIPS)
def test_openvino_f32_codes_match_golden(golden_name: str, clip: str, overlap: int) -> None:
    g = golden(golden_name)
    codec = _load(exported(golden_name), "f32")
    codes = codec.encode(g[f"{clip}/wav"], overlap=overlap)
    ref = golden_reference(golden_name, clip, overlap)
    # identical, except frames whose first differing stage is a float32 tie in the reference
    label = f"openvino {golden_name} {clip} overlap {overlap}"
    assert expect_codes(ref, codes, label).frames_differing <= 2
    audio = codec.decode(ref.codes, overlap=overlap)
    assert audio.shape == g[f"{clip}/recon_ov{overlap}"].shape
    assert max_error_ratio(g[f"{clip}/recon_ov{overlap}"], audio) < 1e-4


@pytest.mark.golden
def test_openvino_ragged_batch_matches_golden(golden_name: str) -> None:
    g = golden(golden_name)
    out = _load(exported(golden_name), batch_size=6).encode([g[f"{s}/wav"] for s in SPEECH])
    for s, codes in zip(SPEECH, out, strict=True):
        ref = golden_reference(golden_name, s, 10, batch=True)
        label = f"openvino {golden_name} {s} batch of 6"
        assert expect_codes(ref, codes, label).frames_differing <= 2


def _low_precision_checks(codec, reference) -> None:
    """Shape, run-to-run determinism, and an agreement report against the f32 codes."""
    wavs = [golden("tiny_16k")[f"{s}/wav"] for s in ("speech_0", "speech_3")]
    first, second = codec.encode(wavs), codec.encode(wavs)
    for wav, a, b in zip(wavs, first, second, strict=True):
        assert a.shape == (8, len(wav) // 1280) and a.dtype == np.int64
        assert a.min() >= 0 and a.max() < 1024
        np.testing.assert_array_equal(a, b)  # deterministic
        agreement = compare_codes(reference.encode(wav), a)
        assert len(agreement.per_stage) == 8
        assert all(0.0 <= s <= 1.0 for s in agreement.per_stage)
        assert agreement.per_stage[0] > 0.2, agreement  # far above chance (1/1024)
    audio = codec.decode(first[0])
    assert audio.shape == (first[0].shape[1] * 1280,) and np.isfinite(audio).all()
    np.testing.assert_array_equal(audio, codec.decode(first[0]))


def test_openvino_bf16_shape_determinism_agreement() -> None:
    _needs_bf16()
    codec = _load(exported("tiny_16k"), "bf16")
    assert codec.backend.encoder.execution_precision == "bf16"
    _low_precision_checks(codec, _load(exported("tiny_16k"), "f32"))


def test_openvino_int8_shape_determinism_agreement() -> None:
    codec = _load(quantized("int8"))  # an int8 directory runs int8 by default
    assert codec.backend.precision == "int8"
    assert codec.backend.target in ("openvino-cpu", "tensorrt")
    _low_precision_checks(codec, _load(exported("tiny_16k"), "f32"))


@cache
def nncf_int8() -> Path:
    """tiny_16k quantized once by the openvino scheme (NNCF -> OpenVINO IR) only."""
    from helpers import calib_set
    from xyrt.calib.quantize import quantize
    from xyrt.calib.sensitivity import SensitivityOptions

    pytest.importorskip("nncf", reason="nncf is not installed (pip install 'xyrt[openvino]')")
    out = Path(tempfile.mkdtemp()) / "int8-ov"
    return quantize(
        exported("tiny_16k"), out, "int8", ["openvino"], calib_set(), (), SensitivityOptions(False)
    ).directory


def test_nncf_ir_scheme_manifest_and_run(tmp_path: Path) -> None:
    d = nncf_int8()
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["targets"] == {
        "openvino-cpu": {"scheme": "openvino", "encoder": "encoder.ov", "decoder": "decoder.ov"}
    }
    entry = manifest["graphs"]["encoder.ov"]
    assert entry["file"] == "encoder.ov.xml" and entry["external_data"] == "encoder.ov.bin"
    info = manifest["quantization"]["schemes"]["openvino"]
    assert info["float_scopes"][:3] == ["/frontend/", "/rvq/", "/istft/"]
    assert 0 < info["sensitivity"]["encoder"]["final"] <= 1  # measured stage-0 agreement
    codec = _load(d)
    assert (codec.backend.precision, codec.backend.target) == ("int8", "openvino-cpu")
    _low_precision_checks(codec, _load(exported("tiny_16k"), "f32"))
    copy = tmp_path / "copy"
    shutil.copytree(d, copy)
    with open(copy / "decoder.ov.bin", "ab") as f:
        f.write(b"\0")
    with pytest.raises(XyrtError, match="decoder.ov.bin has sha256"):
        _load(copy).decode(np.zeros((8, 3), np.int64))
    with pytest.raises(XyrtError, match="lists no 'encoder' graph .* pass --backend openvino"):
        xyrt.runtime.load(d).encode(golden("tiny_16k")["speech_4/wav"])


def test_bf16_refused_where_the_cpu_lacks_it(monkeypatch) -> None:
    import xyrt.runtime.backends.openvino.backend as ovb

    monkeypatch.setattr(ovb, "cpu_supports", lambda capability: False)
    with pytest.raises(XyrtError, match="bf16 needs a CPU with AVX512-BF16 or AMX"):
        _load(exported("tiny_16k"), "bf16")


def test_precision_and_graph_set_errors() -> None:
    with pytest.raises(XyrtError, match="unknown OpenVINO precision 'fp8'"):
        _load(exported("tiny_16k"), "fp8")
    with pytest.raises(XyrtError, match="no int8 graphs for OpenVINO"):
        _load(exported("tiny_16k"), "int8")
    with pytest.raises(XyrtError, match="holds int8 graphs"):
        _load(quantized("int8"), "f32")
    with pytest.raises(
        XyrtError, match="precision 'bf16' does not apply to the onnxruntime backend"
    ):
        xyrt.runtime.load(exported("tiny_16k"), precision="bf16")
    assert xyrt.runtime.load(exported("tiny_16k"), backend="openvino").backend.name == "openvino"


def test_modified_or_foreign_graphs_are_refused(tmp_path: Path) -> None:
    d = tmp_path / "model"
    shutil.copytree(exported("tiny_16k"), d)
    with open(d / "decoder.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(XyrtError, match="decoder.onnx has sha256 .* manifest.json expects"):
        _load(d, use_cache=False).decode(np.zeros((8, 3), np.int64))
    shutil.copy(exported("tiny_moss_ttsd_24k") / "decoder.onnx", d / "decoder.onnx")
    from xyrt.runtime.modeldir.manifest import sha256_file

    manifest = json.loads((d / "manifest.json").read_text())
    manifest["graphs"]["decoder"]["sha256"] = sha256_file(d / "decoder.onnx")
    (d / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(XyrtError, match="metadata does not match.*output_sample_rate"):
        _load(d, use_cache=False).decode(np.zeros((8, 3), np.int64))


def test_compiled_models_are_cached(tmp_path: Path) -> None:
    wav = golden("tiny_16k")["speech_4/wav"]
    cache = tmp_path / "ov-cache"
    first = _load(exported("tiny_16k"), "f32", cache_dir=cache)
    codes = first.encode(wav)
    blobs = sorted(cache.glob("*.blob"))
    assert blobs, "OpenVINO wrote no compiled model to the cache"
    again = _load(exported("tiny_16k"), "f32", cache_dir=cache)
    np.testing.assert_array_equal(again.encode(wav), codes)
    assert sorted(cache.glob("*.blob")) == blobs  # loaded from the cache, nothing recompiled


def test_runtime_openvino_without_torch(tmp_path: Path) -> None:
    wav = tmp_path / "speech.npy"
    np.save(wav, golden("tiny_16k")["speech_4/wav"])
    script = f"""
import sys
sys.modules["torch"] = None  # any 'import torch' now raises ImportError
import numpy as np
import xyrt.runtime
codec = xyrt.runtime.load({str(exported("tiny_16k"))!r}, backend="openvino")
codes = codec.encode(np.load({str(wav)!r}), 16000)
print(codes.shape, codec.decode(codes).shape)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(8, 44) (56320,)"


def test_streaming_through_openvino_equals_offline_when_context_covers_the_clip() -> None:
    wav = golden("tiny_16k")["speech_4/wav"]
    codec = _load(exported("tiny_16k"), "f32")
    stream = codec.create_stream(hop=0.32, context=10.0, lookahead=10.0)
    stream.accept_waveform(16000, wav)
    stream.input_finished()
    while codec.is_ready(stream):
        codec.encode_stream(stream)
    frames = stream.pop_codes()
    streamed = np.stack([f.codes for f in frames], axis=1)
    np.testing.assert_array_equal(streamed, codec.encode(wav))


def test_cli_backend_option(tmp_path: Path) -> None:
    from xyrt.cli import main
    from xyrt.data import bundled_speech

    clip = str(bundled_speech()["speech_4"])
    codes = tmp_path / "codes.npy"
    args = ["--model", str(exported("tiny_16k")), "--backend", "openvino"]
    assert main(["encode", *args, clip, "-o", str(codes)]) == 0
    assert np.load(codes).shape[0] == 8
    assert main(["decode", *args, str(codes), "-o", str(tmp_path / "a.wav")]) == 0
    bad = ["--model", str(exported("tiny_16k")), "--precision", "bf16"]
    assert main(["encode", *bad, clip, "-o", str(codes)]) == 1
