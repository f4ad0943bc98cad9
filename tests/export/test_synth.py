"""Synthetic checkpoints: official layout, seeded, every tensor exercised; full size too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import FIXTURES, golden
from xyrt.config import XYConfig
from xyrt.errors import ConfigError
from xyrt.export.synth import synth_checkpoint, synth_model
from xyrt.runtime.backends.pytorch.codec import XYCodec
from xyrt.runtime.network.state import read_state_dict

TINY_CONFIG = FIXTURES / "tiny_16k" / "config.yaml"


@pytest.fixture(scope="module")
def speech() -> list[np.ndarray]:
    return [golden("tiny_16k")[f"speech_{i}/wav"] for i in range(3)]


def test_seeded_and_deterministic(speech) -> None:
    cfg = XYConfig.from_yaml(TINY_CONFIG)
    a = synth_model(cfg, seed=3, speech=speech).state_dict()
    b = synth_model(cfg, seed=3, speech=speech).state_dict()
    c = synth_model(cfg, seed=4, speech=speech).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(
        a["quantizer.quantizers.0.codebook"], c["quantizer.quantizers.0.codebook"]
    )


def test_every_tensor_is_exercised(speech) -> None:
    state = synth_model(XYConfig.from_yaml(TINY_CONFIG), seed=0, speech=speech).state_dict()
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    ln = [k for k in state if "layer_norm.weight" in k or k.endswith("norm.weight")]
    assert ln and all(state[k].std() > 0.01 for k in ln), "LayerNorm gains are random"
    gains = [k for k in state if k.endswith("weight_g")]
    assert len(gains) == 2 and all(state[k].std() > 0.01 for k in gains)
    for i in range(8):
        book = state[f"quantizer.quantizers.{i}.codebook"]
        assert torch.unique(book, dim=0).shape[0] == book.shape[0], "codebook rows distinct"
        assert bool(state[f"quantizer.quantizers.{i}.inited"])
    # later stages quantize residuals: their rows are smaller than the first stage's
    norms = [state[f"quantizer.quantizers.{i}.codebook"].norm(dim=1).mean() for i in range(8)]
    assert norms[-1] < norms[0]


def test_synth_checkpoint_round_trip(tmp_path: Path) -> None:
    out = synth_checkpoint(tmp_path / "m" / "model.ckpt", TINY_CONFIG, seed=1)
    assert (out.parent / "config.yaml").read_text() == TINY_CONFIG.read_text()
    assert set(read_state_dict(out)) == set(read_state_dict(FIXTURES / "tiny_16k" / "model.ckpt"))
    codec = XYCodec.from_checkpoint(out)
    codes = codec.encode(golden("tiny_16k")["speech_0/wav"])
    assert codes.shape == (8, 63)
    # codebooks seeded from speech residuals: speech uses many different codes
    assert len(np.unique(codes[0])) > 10
    audio = codec.decode(codes)
    assert audio.shape == (63 * 1280,) and np.isfinite(audio).all()
    assert not list(out.parent.glob(".*tmp")), "no temporary files left behind"


@pytest.mark.fullsize
def test_full_size_synth_encodes_and_decodes_10s(fullsize_checkpoint: Path) -> None:
    from xyrt.data import bundled_speech
    from xyrt.runtime.formats.audio import load_audio

    out = fullsize_checkpoint
    assert out.stat().st_size > 2_000_000_000
    codec = XYCodec.from_checkpoint(out)
    wav = load_audio(bundled_speech()["speech_3"])[:160000]
    codes = codec.encode(wav)
    assert codes.shape == (8, 125) and codes.min() >= 0 and codes.max() < 1024
    audio = codec.decode(codes)
    assert audio.shape == (160000,) and np.isfinite(audio).all()


def test_synth_refuses_to_replace_a_different_config(tmp_path: Path) -> None:
    from xyrt.export.synth import synth_checkpoint

    (tmp_path / "config.yaml").write_text("sample_rate: 16000\n")
    with pytest.raises(ConfigError, match="exists and differs"):
        synth_checkpoint(tmp_path / "model.ckpt", FIXTURES / "tiny_16k" / "config.yaml")
    assert not (tmp_path / "model.ckpt").exists()
