"""The MOSS-TTSD v0.7 default codec layout (issue 28): the 32 kHz decoder shipped as
``XY_Tokenizer/weights/MOSS_TTSD_tokenizer`` (a checkpoint file without an extension) with
``XY_Tokenizer/config/MOSS_TTSD_tokenizer.yaml`` (flat: only ``generator_params``), loaded by
the CLI (``--checkpoint ... --config ...``), `xyrt.runtime.load` and `xyrt.compat`.

The tiny stand-in (`helpers.moss_ttsd_v07`, made per test module): the 24 kHz golden fixture's
encoder and quantizer (so its codes are the golden codes) under a seeded 32 kHz vocoder head."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from helpers import expect_codes, golden, golden_reference, moss_ttsd_v07
from xyrt.cli import main
from xyrt.compat import XY_Tokenizer
from xyrt.config import XYConfig
from xyrt.runtime.formats.audio import write_wav

NAME = "tiny_moss_ttsd_24k"
CLIP = "speech_3"


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> tuple[Path, Path]:
    return moss_ttsd_v07(tmp_path_factory.mktemp("moss-ttsd-v07") / "XY_Tokenizer")


def test_flat_config_is_the_32k_decoder(layout: tuple[Path, Path]) -> None:
    _, config = layout
    assert set(yaml.safe_load(config.read_text())) == {"generator_params"}
    cfg = XYConfig.from_yaml(config)
    assert (cfg.variant, cfg.output_sample_rate, cfg.samples_per_code_out) == (
        "moss_ttsd",
        32000,
        2560,
    )


def test_runtime_load_and_compat_agree(layout: tuple[Path, Path]) -> None:
    import xyrt.runtime

    weights, config = layout
    wav = golden(NAME)[f"{CLIP}/wav"]
    reference = golden_reference(NAME, CLIP, 10)
    codec = xyrt.runtime.load(weights, config=config)
    assert codec.backend.name == "torch" and codec.output_sample_rate == 32000
    codes = codec.encode(wav, 16000)
    expect_codes(reference, codes, "v0.7 layout, xyrt.runtime")
    audio = codec.decode(codes)
    assert audio.shape == (codes.shape[1] * 2560,) and np.isfinite(audio).all()

    spt = XY_Tokenizer.load_from_checkpoint(str(config), str(weights)).eval().to("cpu")
    assert spt.output_sample_rate == spt.sample_rate == 32000
    assert spt.decoder_upsample_rate == 2560
    tokens = spt.encode([torch.from_numpy(wav)])["codes_list"][0]
    expect_codes(reference, tokens.numpy(), "v0.7 layout, xyrt.compat")
    y = spt.decode([tokens])["syn_wav_list"][0]
    np.testing.assert_allclose(y.numpy(), audio, rtol=0, atol=1e-5 * np.abs(audio).max())


def test_cli_encode_decode(layout: tuple[Path, Path], tmp_path: Path) -> None:
    weights, config = layout
    wav = tmp_path / "in.wav"
    write_wav(wav, golden(NAME)[f"{CLIP}/wav"], 16000)
    common = ["--checkpoint", str(weights), "--config", str(config)]
    assert main(["encode", str(wav), "-o", str(tmp_path / "codes.npy"), *common]) == 0
    codes = np.load(tmp_path / "codes.npy")
    expect_codes(golden_reference(NAME, CLIP, 10), codes, "v0.7 layout, CLI")
    out = tmp_path / "out.wav"
    assert main(["decode", str(tmp_path / "codes.npy"), "-o", str(out), *common]) == 0
    import soundfile

    audio, rate = soundfile.read(out)
    assert rate == 32000 and len(audio) == codes.shape[1] * 2560
