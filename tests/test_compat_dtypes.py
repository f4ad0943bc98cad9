"""xyrt.compat dtype calls (issue 28): ``.half()``, ``.bfloat16()``, ``.float()``, ``.to(dtype)``
and ``.to(device, dtype)`` select the PyTorch backend's precision and then work; a backend
that cannot run the precision asked for raises `XyrtError` naming what to use."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import FIXTURES, expect_codes, exported, golden, golden_reference
from xyrt.compat import XY_Tokenizer
from xyrt.compat.dtypes import backend_precision
from xyrt.errors import XyrtError

NAME = "tiny_moss_ttsd_24k"


def _torch_spt() -> XY_Tokenizer:
    return XY_Tokenizer.load_from_checkpoint(
        str(FIXTURES / NAME / "config.yaml"), str(FIXTURES / NAME / "model.ckpt")
    )


def _codes(spt: XY_Tokenizer) -> np.ndarray:
    wav = torch.from_numpy(golden(NAME)["speech_1/wav"])
    return spt.encode([wav])["codes_list"][0].numpy()


def test_bfloat16_then_float_on_the_torch_backend() -> None:
    spt = _torch_spt()
    assert spt.dtype == torch.float32
    assert spt.bfloat16() is spt and spt.dtype == torch.bfloat16
    assert spt.codec.backend.precision == "bf16"
    assert spt.model.quantizer is not None  # still the PyTorch model
    codes = _codes(spt)
    assert codes.shape == golden(NAME)["speech_1/codes_ov10"].shape
    audio = spt.decode([torch.from_numpy(codes)])["syn_wav_list"][0]
    assert audio.dtype == torch.float32 and audio.shape == (codes.shape[1] * 1920,)
    assert torch.isfinite(audio).all()
    assert spt.float() is spt and backend_precision(spt.codec) == "fp32"
    expect_codes(golden_reference(NAME, "speech_1", 10), _codes(spt), "compat .float()")


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.to(torch.bfloat16),
        lambda s: s.to("cpu", torch.bfloat16),
        lambda s: s.to(dtype=torch.bfloat16),
        lambda s: s.to(device="cpu", dtype=torch.bfloat16),
        lambda s: s.to(torch.zeros(1, dtype=torch.bfloat16)),
    ],
)
def test_to_dtype_is_never_ignored(call) -> None:
    spt = _torch_spt()
    assert call(spt) is spt and spt.codec.backend.precision == "bf16"
    assert spt.to(torch.float32).codec.backend.precision == "fp32"


def test_bad_dtypes_and_fp16_on_a_cpu_are_clear_errors() -> None:
    spt = _torch_spt()
    with pytest.raises(XyrtError, match=r"float16 needs a CUDA device .*\.bfloat16\(\)"):
        spt.half()
    assert spt.codec.backend.precision == "fp32"  # unchanged by the refused call
    with pytest.raises(XyrtError, match="torch.float64: XY-Tokenizer runs in torch.float32"):
        spt.to(torch.float64)
    with pytest.raises(XyrtError, match="unexpected keyword"):
        spt.to(copy=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="float16 needs a CUDA device")
def test_half_on_cuda() -> None:
    spt = _torch_spt().to("cuda", torch.float16)
    assert spt.dtype == torch.float16 and spt.codec.backend.device.type == "cuda"
    wav = torch.from_numpy(golden(NAME)["speech_1/wav"]).cuda()
    codes = spt.encode([wav])["codes_list"][0]
    assert codes.device.type == "cuda" and codes.shape[0] == 8
    assert spt.float().half().dtype == torch.float16


def test_exported_graphs_refuse_another_precision() -> None:
    spt = XY_Tokenizer.from_pretrained(exported(NAME))
    assert spt.float() is spt and spt.to(torch.float32) is spt  # what it runs already
    with pytest.raises(XyrtError, match=r"half\(\): this onnxruntime backend runs fp32 graphs"):
        spt.half()
    with pytest.raises(XyrtError, match=r"backend='torch', precision='bf16'"):
        spt.bfloat16()
    with pytest.raises(XyrtError, match=r"xyrt build EXPORT_DIR --precision fp16"):
        spt.to("cpu", torch.float16)
    expect_codes(golden_reference(NAME, "speech_1", 10), _codes(spt), "compat ort after refusal")
