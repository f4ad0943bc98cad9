"""ONNX export: golden parity through ONNX Runtime, op allow-list, manifest, fused RVQ."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import xyrt.runtime
from helpers import (
    CLIPS,
    FIXTURES,
    SPEECH,
    codec,
    expect_codes,
    exported,
    golden,
    golden_reference,
    ort_codec,
)
from xyrt.errors import XyrtError
from xyrt.export.graphs import FusedRVQDecode, FusedRVQEncode
from xyrt.runtime.compare import ReferenceCodes, compare_codes, max_error_ratio
from xyrt.runtime.modeldir.manifest import sha256_file

# Ops TensorRT's ONNX parser supports that these graphs may use. No STFT, DFT, Col2Im, and no
# Loop/If/Scan: control flow on data does not belong in an engine.
ALLOWED_OPS = {
    "Add",
    "ArgMax",
    "Cast",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "ConvTranspose",
    "Cos",
    "Div",
    "Equal",
    "Erf",
    "Exp",
    "Expand",
    "Gather",
    "Identity",
    "LayerNormalization",
    "Less",
    "Log",
    "MatMul",
    "Max",
    "Mod",
    "Mul",
    "Neg",
    "Not",
    "Pow",
    "Range",
    "ReduceMax",
    "ReduceSum",
    "Reshape",
    "Shape",
    "Sigmoid",
    "Sin",
    "Slice",
    "Softmax",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Transpose",
    "Unsqueeze",
    "Where",
}
FORBIDDEN_OPS = {"STFT", "DFT", "Col2Im", "Loop", "If", "Scan"}
COMPLEX = {onnx.TensorProto.COMPLEX64, onnx.TensorProto.COMPLEX128}


@pytest.mark.golden
@pytest.mark.parametrize("overlap", [10, 0])
@pytest.mark.parametrize("clip", CLIPS)
def test_onnxruntime_codes_match_golden(golden_name: str, clip: str, overlap: int) -> None:
    g = golden(golden_name)
    ort = ort_codec(exported(golden_name))
    codes = ort.encode(g[f"{clip}/wav"], overlap=overlap)
    ref = golden_reference(golden_name, clip, overlap)
    # identical, except a frame whose first differing stage is a float32 tie in the reference
    label = f"onnxruntime {golden_name} {clip} overlap {overlap}"
    assert expect_codes(ref, codes, label).frames_differing <= 1
    audio = ort.decode(ref.codes, overlap=overlap)
    assert audio.shape == g[f"{clip}/recon_ov{overlap}"].shape
    assert max_error_ratio(g[f"{clip}/recon_ov{overlap}"], audio) < 1e-5  # issue asks 1e-3


@pytest.mark.golden
def test_onnxruntime_ragged_batch(golden_name: str) -> None:
    g = golden(golden_name)
    out = ort_codec(exported(golden_name), batch_size=6).encode([g[f"{s}/wav"] for s in SPEECH])
    for s, codes in zip(SPEECH, out, strict=True):
        ref = golden_reference(golden_name, s, 10, batch=True)
        label = f"onnxruntime {golden_name} {s} batch of 6"
        assert expect_codes(ref, codes, label).frames_differing <= 1


def test_graphs_use_only_allowed_ops_and_no_complex_types() -> None:
    for name in ("encoder", "decoder"):
        proto = onnx.load(str(exported("tiny_16k") / f"{name}.onnx"))
        ops = {n.op_type for n in proto.graph.node}
        assert not ops & FORBIDDEN_OPS
        assert ops <= ALLOWED_OPS, f"{name}: ops outside the allow-list: {ops - ALLOWED_OPS}"
        types = [t.data_type for t in proto.graph.initializer]
        types += [v.type.tensor_type.elem_type for v in proto.graph.value_info]
        types += [v.type.tensor_type.elem_type for v in proto.graph.output]
        assert not set(types) & COMPLEX
        assert not any(n.domain not in ("", "ai.onnx") for n in proto.graph.node)


def test_rvq_and_frontend_nodes_are_named_for_precision_passes() -> None:
    enc = onnx.load(str(exported("tiny_16k") / "encoder.onnx"))
    argmax = [n.name for n in enc.graph.node if n.op_type == "ArgMax"]
    assert len(argmax) == 8 and all(n.startswith("/rvq/") for n in argmax)
    assert any(n.name.startswith("/frontend/") and n.op_type == "Conv" for n in enc.graph.node)
    dec = onnx.load(str(exported("tiny_16k") / "decoder.onnx"))
    assert any(
        n.name.startswith("/istft/") and n.op_type == "ConvTranspose" for n in dec.graph.node
    )
    assert any(n.name.startswith("/rvq/") and n.op_type == "Gather" for n in dec.graph.node)


def test_manifest_and_metadata_agree(golden_name: str) -> None:
    d = exported(golden_name)
    manifest = json.loads((d / "manifest.json").read_text())
    cfg = codec(golden_name).cfg
    assert manifest["source_checkpoint"]["sha256"] == sha256_file(
        FIXTURES / golden_name / "model.ckpt"
    )
    assert manifest["variant"] == cfg.variant
    assert manifest["output_sample_rate"] == cfg.output_sample_rate
    assert manifest["samples_per_code_out"] == cfg.samples_per_code_out
    assert (manifest["num_quantizers"], manifest["codebook_size"]) == (8, 1024)
    assert manifest["opset"] == 17 and manifest["exporter"]["torch"] == torch.__version__
    for name in ("encoder", "decoder"):
        graph = manifest["graphs"][name]
        assert graph["sha256"] == sha256_file(d / graph["file"])
        proto = onnx.load(str(d / graph["file"]))
        meta = {p.key: p.value for p in proto.metadata_props}
        assert meta["xyrt.graph"] == name
        assert meta["xyrt.output_sample_rate"] == str(cfg.output_sample_rate)
        assert meta["xyrt.source_sha256"] == manifest["source_checkpoint"]["sha256"]
        assert [i.name for i in proto.graph.input] == [i["name"] for i in graph["inputs"]]
        assert [o.name for o in proto.graph.output] == [o["name"] for o in graph["outputs"]]


def test_fused_decode_table_equals_unfused_path() -> None:
    model = codec("tiny_16k").model
    codes = torch.randint(0, 1024, (8, 3, 17), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        fused = FusedRVQDecode(model)(codes)
        unfused = model.post_rvq_adapter.proj(model.quantizer.decode(codes))
    assert fused.shape == unfused.shape == (3, 17, 64)
    torch.testing.assert_close(fused, unfused, rtol=1e-5, atol=1e-5)


def test_fused_encode_equals_reference_rvq() -> None:
    model = codec("tiny_16k").model
    x = torch.randn(2, 30, 256, generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([30, 21])
    with torch.no_grad():
        ref, margins = model.quantizer.encode_with_margins(x, lengths)
        fused = FusedRVQEncode(model)(x, lengths)
    for b, n in enumerate(lengths.tolist()):
        reference = ReferenceCodes(ref[:, b, :n].numpy(), margins[:, b, :n].numpy())
        assert compare_codes(reference, fused[:, b, :n].numpy()).ok


@pytest.mark.parametrize("samples", [1280, 480000])
def test_encoder_dynamic_shapes_one_code_to_full_window(samples: int) -> None:
    ort = xyrt.runtime.load(exported("tiny_16k"))
    wav = np.resize(golden("tiny_16k")["speech_3/wav"], samples).astype(np.float32)
    assert ort.encode(wav).shape == (8, samples // 1280)
    ref = codec("tiny_16k").encode(wav)
    assert np.mean(ort.encode(wav) == ref) > 0.99


@pytest.mark.parametrize("frames, batch", [(1, 1), (375, 2)])
def test_decoder_dynamic_shapes(frames: int, batch: int) -> None:
    backend = xyrt.runtime.load(exported("tiny_16k")).backend
    codes = np.random.default_rng(0).integers(0, 1024, (8, batch, frames))
    audio = backend.decode_window(codes)
    assert audio.shape == (batch, frames * 1280) and np.isfinite(audio).all()
    ref = codec("tiny_16k").backend.decode_window(codes)
    assert max_error_ratio(ref, audio) < 1e-5


@pytest.mark.fullsize
def test_full_size_export_runs_in_onnxruntime(fullsize_checkpoint, tmp_path) -> None:
    from xyrt.data import bundled_speech
    from xyrt.export.onnx_export import export_onnx
    from xyrt.runtime.backends.pytorch.codec import XYCodec
    from xyrt.runtime.formats.audio import load_audio

    out = export_onnx(fullsize_checkpoint, tmp_path / "onnx")
    wav = load_audio(bundled_speech()["speech_3"])[:160000]
    ref = XYCodec.from_checkpoint(fullsize_checkpoint)
    ort = xyrt.runtime.load(out)
    codes = ort.encode(wav)
    assert compare_codes(ref.encode(wav), codes).identical > 0.99
    assert max_error_ratio(ref.decode(codes), ort.decode(codes)) < 1e-4


def test_external_data_is_written_hashed_and_checked(tmp_path: Path, monkeypatch) -> None:
    import xyrt.export.onnx_export as ox

    monkeypatch.setattr(ox, "EXTERNAL_DATA_BYTES", 0)  # as if the graphs were over 2 GB
    out = ox.export_onnx(FIXTURES / "tiny_16k" / "model.ckpt", tmp_path / "ext")
    assert (out / "encoder.onnx.data").is_file() and (out / "decoder.onnx.data").is_file()
    wav = golden("tiny_16k")["speech_4/wav"]
    np.testing.assert_array_equal(
        xyrt.runtime.load(out).encode(wav), xyrt.runtime.load(exported("tiny_16k")).encode(wav)
    )
    with open(out / "encoder.onnx.data", "r+b") as f:
        f.seek(100)
        f.write(b"\xff\xff\xff\xff")
    with pytest.raises(XyrtError, match="encoder.onnx.data has sha256"):
        xyrt.runtime.load(out).encode(wav)
    # exporting again into the same folder leaves no stale data files behind
    monkeypatch.setattr(ox, "EXTERNAL_DATA_BYTES", 1 << 40)
    ox.export_onnx(FIXTURES / "tiny_16k" / "model.ckpt", out)
    assert sorted(p.name for p in out.iterdir()) == [
        "decoder.onnx",
        "encoder.onnx",
        "manifest.json",
    ]
