"""xyrt.compat: the published XY_Tokenizer interface reproduces the golden codes and audio
through the PyTorch and ONNX Runtime backends, torch tensors in and out (numpy without torch)."""

from __future__ import annotations

import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import FIXTURES, expect_codes, exported, golden, golden_reference, reference_margins
from xyrt.compat import XY_Tokenizer
from xyrt.errors import XyrtError
from xyrt.runtime.compare import compare_codes, max_error_ratio

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ["pytorch", "onnxruntime"]


@cache
def compat(name: str, backend: str) -> XY_Tokenizer:
    if backend == "pytorch":
        return XY_Tokenizer.load_from_checkpoint(
            str(FIXTURES / name / "config.yaml"), str(FIXTURES / name / "model.ckpt")
        )
    return XY_Tokenizer.from_pretrained(exported(name))


def _assert_codes(name: str, clip: str, codes: np.ndarray, overlap: int = 10) -> None:
    ref = golden(name)[f"{clip}/codes_ov{overlap}"]
    agreement = compare_codes(ref, codes, reference_margins(name, clip, overlap))
    assert codes.shape == ref.shape and agreement.unexplained == 0, clip


@pytest.mark.parametrize("backend", BACKENDS)
def test_encode_decode_reproduce_golden_with_tensors(golden_name: str, backend: str) -> None:
    g, spt = golden(golden_name), compat(golden_name, backend).eval().to("cpu")
    clips = ["speech_1", "speech_3", "speech_5", "short_quarter_second", "long_concat"]
    wavs = [torch.from_numpy(g[f"{c}/wav"]) for c in clips]
    codes_list = spt.encode(wavs, overlap_seconds=10)["codes_list"]
    for clip, codes in zip(clips, codes_list, strict=True):
        assert isinstance(codes, torch.Tensor) and codes.dtype == torch.int64
        _assert_codes(golden_name, clip, codes.numpy())
    refs = [torch.from_numpy(g[f"{c}/codes_ov10"]) for c in clips]
    for clip, audio in zip(clips, spt.decode(refs)["syn_wav_list"], strict=True):
        assert isinstance(audio, torch.Tensor) and audio.dtype == torch.float32 and audio.ndim == 1
        assert max_error_ratio(g[f"{clip}/recon_ov10"], audio.numpy()) <= 1e-4, clip
    long = spt.encode([wavs[-1]], overlap_seconds=0)["codes_list"][0]
    _assert_codes(golden_name, "long_concat", long.numpy(), overlap=0)


def test_moss_ttsd_call_pattern_and_numpy() -> None:
    g, spt = golden("tiny_moss_ttsd_24k"), compat("tiny_moss_ttsd_24k", "onnxruntime")
    assert spt.eval().cuda() is spt  # nn.Module habits are harmless on exported graphs
    wav = torch.from_numpy(g["speech_1/wav"])[None]  # (1, n), as torchaudio.load gives
    tokens = spt.encode([wav.squeeze().to("cpu")])["codes_list"][0].permute(1, 0)  # (T, 8)
    reference = golden_reference("tiny_moss_ttsd_24k", "speech_1", 10)
    expect_codes(reference, tokens.permute(1, 0).numpy(), "compat moss-ttsd call pattern")
    audio = spt.decode([tokens.permute(1, 0)], overlap_seconds=10)["syn_wav_list"][0]
    assert audio.shape == (tokens.shape[0] * 1920,) and spt.output_sample_rate == 24000
    as_numpy = spt.encode([g["speech_1/wav"]])["codes_list"][0]
    assert isinstance(as_numpy, np.ndarray) and np.array_equal(as_numpy, tokens.T.numpy())
    assert isinstance(spt.decode([as_numpy])["syn_wav_list"][0], np.ndarray)
    short = spt.encode([np.zeros(1000, np.float32)])["codes_list"][0]
    assert short.shape == (8, 0) and spt.decode([short])["syn_wav_list"][0].shape == (0,)


@pytest.mark.parametrize("backend", BACKENDS)
def test_inference_tokenize_and_detokenize_one_window(backend: str) -> None:
    name = "tiny_moss_ttsd_24k"
    g, spt = golden(name), compat(name, backend)
    clips = ["speech_3", "short_quarter_second", "speech_0", "exact_frames"]
    wavs = [g[f"{c}/wav"] for c in clips]
    lengths = torch.tensor([len(w) for w in wavs])
    x = torch.zeros(len(wavs), 1, int(lengths.max()))
    for i, w in enumerate(wavs):
        x[i, 0, : len(w)] = torch.from_numpy(w)
    out = spt.inference_tokenize(x, lengths)
    assert out["codes"].shape[:2] == (8, len(wavs)) and out["codes"].dtype == torch.int64
    np.testing.assert_array_equal(out["codes_lengths"], (lengths + 159) // 160 // 8)
    for i, clip in enumerate(clips):
        _assert_codes(name, clip, out["codes"][:, i, : len(wavs[i]) // 1280].numpy())
    if backend == "pytorch":
        zq = out["zq"]
        assert zq.shape == (len(wavs), spt.code_dim, out["codes"].shape[2])
        q = spt.model.quantizer
        full = q.decode(out["codes"][:, :1]).transpose(1, 2)  # the longest item: no padding
        torch.testing.assert_close(zq[:1], full, rtol=1e-5, atol=1e-6)
        short = int(out["codes_lengths"][1])
        torch.testing.assert_close(
            zq[1, :, short:].T, q.output_proj.bias.expand(zq.shape[2] - short, -1)
        )
    else:
        assert "zq" not in out
        with pytest.raises(XyrtError, match="needs the PyTorch model"):
            out["zq"]
    codes = torch.from_numpy(np.zeros((8, len(wavs), 140), np.int64))
    n = torch.tensor([c.shape[1] for c in (g[f"{c}/codes_ov10"] for c in clips)])
    for i, clip in enumerate(clips):
        codes[:, i, : n[i]] = torch.from_numpy(g[f"{clip}/codes_ov10"])
    y = spt.inference_detokenize(codes, n)
    assert y["y"].shape == (len(wavs), 1, 140 * 1920)
    np.testing.assert_array_equal(y["output_length"], n * 1920)
    for i, clip in enumerate(clips):
        ref = g[f"{clip}/recon_ov10"]
        assert max_error_ratio(ref, y["y"][i, 0, : len(ref)].numpy()) <= 1e-4, clip
        assert not y["y"][i, 0, len(ref) :].any()


def test_bad_input_is_a_clear_error() -> None:
    spt = compat("tiny_16k", "onnxruntime")
    with pytest.raises(XyrtError, match="non-empty list"):
        spt.encode(torch.zeros(16000))
    with pytest.raises(XyrtError, match=r"expected a 1-D waveform .* wav.squeeze\(\)"):
        spt.encode([torch.zeros(1, 16000)])
    with pytest.raises(XyrtError, match="at most 30 s"):
        spt.inference_tokenize(torch.zeros(1, 1, 500000), torch.tensor([500000]))
    with pytest.raises(XyrtError, match=r"expected \(8, B, T\)"):
        spt.inference_detokenize(torch.zeros(8, 10, dtype=torch.long), torch.tensor([10]))
    with pytest.raises(XyrtError, match="code values"):
        spt.decode([torch.full((8, 5), 1024)])
    with pytest.raises(XyrtError, match="not an export directory"):
        XY_Tokenizer.from_pretrained(FIXTURES / "tiny_16k" / "model.ckpt", backend="onnxruntime")


def test_numpy_only_without_torch(tmp_path: Path) -> None:
    """compat imports torch lazily: with torch unavailable, numpy in and out on ONNX Runtime."""
    script = f"""
import sys
sys.modules["torch"] = None  # any import of torch now fails
import numpy as np
from xyrt.compat import XY_Tokenizer
g = np.load({str(FIXTURES / "tiny_16k" / "golden.npz")!r})
spt = XY_Tokenizer.from_pretrained({str(exported("tiny_16k"))!r})
codes = spt.encode([g["speech_2/wav"]])["codes_list"][0]
np.save({str(tmp_path / "codes.npy")!r}, codes)
audio = spt.decode([codes])["syn_wav_list"][0]
assert audio.shape == (codes.shape[1] * 1280,)
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
    codes = np.load(tmp_path / "codes.npy")
    expect_codes(golden_reference("tiny_16k", "speech_2", 10), codes, "compat without torch")


@pytest.mark.parametrize("backend", BACKENDS)
def test_moss_ttsd_style_example(backend: str) -> None:
    name = "tiny_moss_ttsd_24k"
    source = ["--model", str(exported(name))] if backend == "onnxruntime" else []
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "moss_ttsd_style.py"),
            "--config",
            str(FIXTURES / name / "config.yaml"),
            "--ckpt",
            str(FIXTURES / name / "model.ckpt"),
            "--golden",
            str(FIXTURES / name / "golden.npz"),
            *source,
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert "golden codes reproduced" in done.stdout


def test_openvino_backend() -> None:
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    name = "tiny_moss_ttsd_24k"
    g, spt = golden(name), XY_Tokenizer.from_pretrained(exported(name), backend="openvino")
    assert spt.codec.backend.name == "openvino"
    codes = spt.encode([torch.from_numpy(g["speech_2/wav"])])["codes_list"][0]
    _assert_codes(name, "speech_2", codes.numpy())
    audio = spt.decode([codes])["syn_wav_list"][0]
    assert max_error_ratio(g["speech_2/recon_ov10"], audio.numpy()) <= 1e-4
