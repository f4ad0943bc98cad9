"""xyrt.compat.XYTokenizer and XYTokenizerFeatureExtractor, the transformers-style API (issue 28):
the golden checkpoints converted to the Hugging Face layout, on PyTorch and ONNX Runtime, give
the original class's codes (identical except reference near-ties) for every clip up to
(30 - overlap) s and at every length with overlap_side="right"; "both" and "left" keep other
codes of each window, checked window by window."""

from __future__ import annotations

import json
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import FIXTURES, expect_codes, exported, golden, golden_reference
from xyrt.compat import ModelOutput, XY_Tokenizer, XYTokenizer, XYTokenizerFeatureExtractor
from xyrt.compat.hf_features import hf_plan
from xyrt.errors import XyrtError
from xyrt.export.convert import convert
from xyrt.runtime.compare import max_error_ratio

NAME = "tiny_moss_ttsd_24k"
BACKENDS = ["pytorch", "onnxruntime"]
SHORT = ["speech_1", "speech_3", "short_quarter_second", "exact_frames"]


@cache
def hf_folder() -> Path:
    out = Path(tempfile.mkdtemp(prefix="xyrt-hf-api-")) / "XY_Tokenizer_TTSD_V0_hf"
    folder = convert(FIXTURES / NAME / "model.ckpt", out)
    (folder / "preprocessor_config.json").write_text(
        json.dumps({"sampling_rate": 16000, "chunk_length": 30, "overlap_side": "both"})
    )
    return folder


@cache
def model(backend: str) -> XYTokenizer:
    if backend == "pytorch":
        return XYTokenizer.from_pretrained(hf_folder(), trust_remote_code=True).eval()
    return XYTokenizer.from_pretrained(exported(NAME))


def _fe() -> XYTokenizerFeatureExtractor:
    return XYTokenizerFeatureExtractor.from_pretrained(hf_folder())


@pytest.mark.parametrize("backend", BACKENDS)
def test_short_clips_give_the_original_codes_and_audio(backend: str) -> None:
    g, codec = golden(NAME), model(backend)
    wavs = [torch.from_numpy(g[f"{c}/wav"]) for c in SHORT]
    chunks = _fe()(wavs, sampling_rate=16000, return_tensors="pt")
    assert len(chunks) == 1 and chunks.overlap_side == "both"
    enc = codec.encode(chunks)
    assert isinstance(enc, ModelOutput) and enc.audio_codes is enc["audio_codes"]
    assert enc.audio_codes.shape[:2] == (8, len(SHORT)) and enc.audio_codes.dtype == torch.int64
    np.testing.assert_array_equal(enc.codes_lengths, [len(w) // 1280 for w in wavs])
    for i, clip in enumerate(SHORT):
        n = int(enc.codes_lengths[i])
        got = enc.audio_codes[:, i, :n].numpy()
        expect_codes(golden_reference(NAME, clip, 10), got, f"XYTokenizer {backend} {clip}")
        assert not enc.audio_codes[:, i, n:].any()
    if backend == "pytorch":
        zq = enc.quantized_representation
        assert zq.shape == (len(SHORT), codec.config.code_dim, enc.audio_codes.shape[2])
    else:
        with pytest.raises(XyrtError, match="quantized_representation.*needs the PyTorch"):
            _ = enc.quantized_representation
    out = codec.decode(enc, overlap_seconds=10)
    assert out.audio_values.shape == (len(SHORT), 1, enc.audio_codes.shape[2] * 1920)
    np.testing.assert_array_equal(out.output_length, enc.codes_lengths * 1920)
    for i, clip in enumerate(SHORT):
        ref = g[f"{clip}/recon_ov10"]
        assert max_error_ratio(ref, out.audio_values[i, 0, : len(ref)].numpy()) <= 1e-4, clip
    assert codec.encode(chunks, n_quantizers=3).audio_codes.shape[0] == 3


def _by_windows(spt: XY_Tokenizer, wav: np.ndarray, side: str) -> np.ndarray:
    """The codes of ``side``'s rule, each window tokenized on its own by the original class's
    window call (inference_tokenize)."""
    pieces = []
    for w in hf_plan(len(wav), 10, side):
        seg = wav[w.start : w.stop]
        out = spt.inference_tokenize(seg[None, None], np.array([len(seg)]))
        pieces.append(out["codes"][:, 0, w.lo : w.hi])
    return np.concatenate(pieces, axis=1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_long_audio_per_overlap_side(backend: str) -> None:
    wav = golden(NAME)["long_concat/wav"]  # 51.4 s: three windows
    codec, fe = model(backend), _fe()
    original = golden_reference(NAME, "long_concat", 10)
    right = codec.encode(fe(wav, overlap_side="right")).audio_codes[:, 0]
    expect_codes(original, right, f"XYTokenizer {backend} right")  # the original rule
    agree = {}
    for side in ("both", "left"):
        got = codec.encode(fe(wav, overlap_side=side)).audio_codes[:, 0]
        assert got.shape == original.codes.shape
        np.testing.assert_array_equal(got, _by_windows(codec._xy, wav, side))
        expect_codes(  # the first 20 s come from the first window, as in the original
            type(original)(original.codes[:, :250], original.margins[:, :250]),
            got[:, :250],
            f"XYTokenizer {backend} {side} first 20 s",
        )
        agree[side] = float((got[:, 250:] == original.codes[:, 250:]).mean())
    assert max(agree.values()) < 0.9  # other windows, other codes (random weights: far apart)


def test_plans() -> None:
    def kept(seconds: float, side: str) -> list[tuple[int, int]]:
        return [
            (w.start // 1280 + w.lo, w.start // 1280 + w.hi)
            for w in hf_plan(int(seconds * 16000), 10, side)
        ]

    assert kept(51.4, "right") == [(0, 250), (250, 500), (500, 642)]
    assert kept(51.4, "both") == [(0, 312), (312, 562), (562, 642)]  # [5, 25) s, 62 codes
    assert kept(51.4, "left") == [(0, 375), (375, 625), (625, 642)]
    assert kept(22, "both") == [(0, 275)]  # one window; the original runs a second from 20 s
    assert kept(26, "both") == [(0, 312), (312, 325)]
    with pytest.raises(XyrtError, match="overlap_side='middle'; expected one of both, left"):
        hf_plan(16000, 10, "middle")


def test_single_window_calls_and_outputs() -> None:
    g, codec = golden(NAME), model("onnxruntime")
    chunk = next(iter(_fe()([g["speech_1/wav"], g["speech_3/wav"]])))
    assert chunk.attention_mask.shape == (2, 3000) and chunk.chunk_seq_no == 0
    with pytest.raises(XyrtError, match="input_features.*input_values"):
        _ = chunk.input_features
    enc = codec._encode(chunk)
    full = codec.encode(_fe()([g["speech_1/wav"], g["speech_3/wav"]]))
    np.testing.assert_array_equal(enc["audio_codes"], full["audio_codes"])
    codes, lengths = enc.audio_codes, enc.codes_lengths
    dec = codec._decode(codes, lengths)
    np.testing.assert_array_equal(dec.output_length, lengths * 1920)
    whole = codec.decode(codes, codes_lengths=lengths)
    np.testing.assert_allclose(dec.audio_values, whole.audio_values, rtol=0, atol=1e-5)
    assert len(dec.to_tuple()) == 2 and dec[0] is dec.audio_values
    values, out_len = codec.decode(codes, codes_lengths=lengths, return_dict=False)
    assert values.shape == dec.audio_values.shape
    one = codec.decode(codes[:, 0, : lengths[0]])  # (nq, T): a batch of one
    assert one.audio_values.shape == (1, 1, lengths[0] * 1920)
    assert codec.config.sampling_rate == 24000 and codec.config.input_sampling_rate == 16000


def test_bad_input_is_a_clear_error() -> None:
    codec, fe = model("onnxruntime"), _fe()
    with pytest.raises(XyrtError, match="shorter than one code"):
        fe(np.zeros(100, np.float32))
    with pytest.raises(XyrtError, match="empty batch"):
        fe([])
    with pytest.raises(XyrtError, match="n_quantizers=9; expected 1..8"):
        codec.encode(fe(np.zeros(16000, np.float32)), n_quantizers=9)
    with pytest.raises(XyrtError, match=r"audio_codes have shape \(8,\)"):
        codec.decode(np.zeros(8, np.int64))
    with pytest.raises(XyrtError, match="codes_lengths range over"):
        codec.decode(np.zeros((8, 1, 5), np.int64), codes_lengths=[6])
    with pytest.raises(XyrtError, match="sampling_rate 24000"):
        XYTokenizerFeatureExtractor(sampling_rate=24000)


def test_transformers_loading_keywords() -> None:
    for dtype in (torch.bfloat16, "bfloat16"):
        codec = XYTokenizer.from_pretrained(hf_folder(), torch_dtype=dtype, device_map="cpu")
        assert codec.dtype == torch.bfloat16 and codec.codec.backend.precision == "bf16"
    with pytest.raises(XyrtError, match="runs fp32 graphs and cannot switch to bf16"):
        XYTokenizer.from_pretrained(exported(NAME), torch_dtype=torch.bfloat16)


def test_clip_between_20_and_25_seconds() -> None:
    """Where the rules part: a 22 s clip is one window for "both" and two (from 20 s) for the
    original class: the first 20 s agree, the last 2 s come from other windows."""
    codec = model("onnxruntime")
    wav = golden(NAME)["long_concat/wav"][: 22 * 16000]
    original = XY_Tokenizer(codec.codec).encode([wav])["codes_list"][0]
    right = codec.encode(_fe()(wav, overlap_side="right")).audio_codes[:, 0]
    both = codec.encode(_fe()(wav, sampling_rate=16000)).audio_codes[:, 0]
    assert original.shape == both.shape == (8, 275)
    np.testing.assert_array_equal(right, original)
    np.testing.assert_array_equal(both[:, :250], original[:, :250])
    assert not np.array_equal(both[:, 250:], original[:, 250:])
    resampled = _fe()(np.repeat(wav[:16000], 3), sampling_rate=48000)  # 1 s at 48 kHz
    assert resampled.lengths.tolist() == [12]
