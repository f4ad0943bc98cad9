"""The torch-free runtime on this CPU: golden codes and audio (ONNX Runtime, OpenVINO where it
installs) and INT8 agreement, without torch.

Run natively by ``make test`` (the bundle is made in the session, with torch), and on emulated
CPUs by ``make test-avx2`` (x86 without AVX-512/VNNI) and ``make test-aarch64`` (Jetson/Raspberry
Pi class Arm), which pass a bundle made on the host in ``XYRT_TEST_BUNDLE`` (`bundle.py`) and
the instruction-set level they emulate in ``XYRT_EXPECT_ISA``. Codes are identical to the
published implementation's except reference float32 near-ties, on every CPU.
"""

from __future__ import annotations

import os
import sys
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from helpers import CLIPS, GOLDEN_MODELS, SPEECH, expect_codes, golden
from xyrt.runtime import hostcpu
from xyrt.runtime.compare import ReferenceCodes, max_error_ratio

sys.path.insert(0, str(Path(__file__).parent))
from bundle import OVERLAP, STAMP  # noqa: E402

# emulated runs take every clip kind but fewer speech clips (an emulated CPU is 10-100x slower)
SUBSET = [c for c in os.environ.get("XYRT_TEST_CLIPS", "").replace(",", ":").split(":") if c]
RUN_CLIPS = [c for c in CLIPS if c in SUBSET] if SUBSET else CLIPS
INT8_STAGE0_FLOOR = 0.8  # all-INT8 tiny_16k: 0.89 with VNNI, 0.89 on AVX2 (0.37 with s8 weights)


@cache
def bundle() -> Path:
    given = os.environ.get("XYRT_TEST_BUNDLE")
    if given:
        path = Path(given)
        if not (path / STAMP).is_file():
            pytest.fail(
                f"XYRT_TEST_BUNDLE={given} holds no bundle (python tests/torchfree/bundle.py)"
            )
        return path
    try:
        import torch  # noqa: F401
    except ImportError:
        pytest.skip("no XYRT_TEST_BUNDLE given and no torch here to make one (bundle.py)")
    from bundle import make

    return make(Path(tempfile.mkdtemp(prefix="xyrt-bundle-")))


def _margins(name: str) -> dict[str, np.ndarray]:
    with np.load(bundle() / name / "margins.npz") as m:
        return {k: m[k] for k in m.files}


def _load(name: str, backend: str, folder: str = "onnx"):
    import xyrt.runtime

    if backend == "openvino":
        pytest.importorskip("openvino", reason="OpenVINO is not installed for this CPU")
        if hostcpu.machine() == "aarch64":
            pytest.skip(
                "OpenVINO 2026.4 on aarch64: under qemu its ARM plugin's encoder codes differ from "
                "the reference (6% identical on speech_0, with f32 and ACCURACY hints, on both "
                "neoverse-n1 and cortex-a72; ONNX Runtime matches), so it cannot be judged here; "
                "the backend warns on aarch64 (openvino.ARM_UNVERIFIED)"
            )
    return xyrt.runtime.load(bundle() / name / folder, backend=backend)


def test_openvino_warns_on_aarch64(monkeypatch) -> None:
    pytest.importorskip("openvino", reason="OpenVINO is not installed for this CPU")
    from xyrt.runtime import hostcpu as cpu
    from xyrt.runtime.backends.openvino import backend as openvino

    monkeypatch.setattr(cpu, "machine", lambda: "aarch64")
    with pytest.warns(RuntimeWarning, match="OpenVINO on aarch64 is unverified"):
        openvino.warn_if_arm()


def test_the_emulated_cpu_is_the_one_asked_for() -> None:
    expected = os.environ.get("XYRT_EXPECT_ISA")
    if not expected:
        pytest.skip(f"native run on {hostcpu.isa()} (XYRT_EXPECT_ISA is set by emulated runs)")
    assert hostcpu.isa() == expected


@pytest.mark.golden
@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("name", GOLDEN_MODELS)
def test_golden_codes_and_audio(name: str, backend: str) -> None:
    codec, g, margins = _load(name, backend), golden(name), _margins(name)
    for clip in RUN_CLIPS:
        codes = codec.encode(g[f"{clip}/wav"], overlap=OVERLAP)
        ref = ReferenceCodes(g[f"{clip}/codes_ov{OVERLAP}"], margins[f"{clip}/ov{OVERLAP}"])
        label = f"{backend} {name} {clip} on {hostcpu.isa()}"
        expect_codes(ref, codes, label)  # identical except reference float32 near-ties
        audio = codec.decode(ref.codes, overlap=OVERLAP)
        assert max_error_ratio(g[f"{clip}/recon_ov{OVERLAP}"], audio) < 1e-4, label


def test_int8_keeps_its_agreement_on_this_cpu() -> None:
    """Every module INT8 (cpu-dynamic, uint8 weights): stage-0 codes agree with FP32 on this CPU
    as on any other. With int8 weights an AVX2 CPU's VPMADDUBSW saturates (0.37 against 0.89)."""
    fp32, int8 = _load("tiny_16k", "onnxruntime"), _load("tiny_16k", "onnxruntime", "int8")
    g = golden("tiny_16k")
    same = total = 0
    for clip in SPEECH:
        ref, got = fp32.encode(g[f"{clip}/wav"]), int8.encode(g[f"{clip}/wav"])
        same += int((ref[0] == got[0]).sum())
        total += ref.shape[1]
    agreement = same / total
    twin = "onnxruntime-cpu-u8" if hostcpu.int8_dot() == "vpmaddubsw" else None
    assert int8.backend.target == twin  # the uint8 twin exactly where int8 products saturate
    print(f"INT8 stage-0 agreement on {hostcpu.isa()} ({hostcpu.int8_dot()}): {agreement:.3f}")
    assert agreement >= INT8_STAGE0_FLOOR
