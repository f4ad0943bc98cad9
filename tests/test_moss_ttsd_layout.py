"""The MOSS-TTSD v0.7 default codec layout (issue 28): the 32 kHz decoder shipped as
``XY_Tokenizer/weights/MOSS_TTSD_tokenizer`` (a checkpoint file without an extension) with
``XY_Tokenizer/config/MOSS_TTSD_tokenizer.yaml`` (flat: only ``generator_params``), loaded by
the CLI (``--checkpoint ... --config ...``), `xyrt.runtime.load` and `xyrt.compat`.

The tiny stand-in is made here: the 24 kHz golden fixture's encoder and quantizer (so its codes
are the golden codes) under a 32 kHz vocoder head with seeded weights."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from helpers import FIXTURES, expect_codes, golden, golden_reference
from xyrt.cli import main
from xyrt.compat import XY_Tokenizer
from xyrt.config import XYConfig
from xyrt.export.synth import synth_model
from xyrt.runtime.io.audio import write_wav
from xyrt.runtime.network.checkpoint import save_checkpoint
from xyrt.runtime.network.state import read_state_dict

NAME = "tiny_moss_ttsd_24k"
CLIP = "speech_3"


@cache
def moss_ttsd_v07(root: Path) -> tuple[Path, Path]:
    """(weights, config) of a tiny v0.7-layout codec under ``root``."""
    raw = yaml.safe_load((FIXTURES / NAME / "config.yaml").read_text())
    gp = raw["generator_params"]
    gp["output_sample_rate"], gp["decoder_upsample_rate"] = 32000, 2560
    gp["vocos_kwargs"].update(n_fft=1280, hop_size=320)
    config = root / "XY_Tokenizer" / "config" / "MOSS_TTSD_tokenizer.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(yaml.safe_dump({"generator_params": gp}, sort_keys=False))  # flat
    state = synth_model(XYConfig.from_yaml(config), seed=7).state_dict()
    for name, tensor in read_state_dict(FIXTURES / NAME / "model.ckpt").items():
        if not name.startswith("enhanced_vocos."):
            state[name] = tensor
    weights = root / "XY_Tokenizer" / "weights" / "MOSS_TTSD_tokenizer"
    weights.parent.mkdir(parents=True)
    save_checkpoint(state, weights)
    return weights, config


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> tuple[Path, Path]:
    return moss_ttsd_v07(tmp_path_factory.mktemp("moss-ttsd-v07"))


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
