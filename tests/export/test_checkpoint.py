"""Loading checkpoints: both layouts, bare state dicts, any float dtype, and clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from helpers import FIXTURES, expect_codes, golden, golden_reference
from xyrt.errors import CheckpointError, ConfigError
from xyrt.runtime.backends.pytorch.codec import XYCodec
from xyrt.runtime.network.checkpoint import load_model
from xyrt.runtime.network.state import read_state_dict

TINY = FIXTURES / "tiny_16k"


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in read_state_dict(TINY / "model.ckpt").items()}


def _write(tmp_path: Path, obj, name: str = "model.ckpt") -> Path:
    path = tmp_path / name
    torch.save(obj, path)
    shutil.copy(TINY / "config.yaml", tmp_path / "config.yaml")
    return path


@pytest.mark.golden
def test_bare_state_dict_loads_and_matches(tmp_path: Path, state) -> None:
    path = _write(tmp_path, state)
    codes = XYCodec.from_checkpoint(path).encode(golden("tiny_16k")["speech_4/wav"])
    expect_codes(golden_reference("tiny_16k", "speech_4", 10), codes, "bare state dict speech_4")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_any_float_dtype_loads_as_float32(tmp_path: Path, state, dtype) -> None:
    cast = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    model = load_model(_write(tmp_path, {"generator": cast}))
    assert all(p.dtype == torch.float32 for p in model.parameters())
    codes = XYCodec(model).encode(golden("tiny_16k")["speech_4/wav"])
    assert codes.shape == (8, 44)


def test_missing_unexpected_and_misshaped_are_all_listed(tmp_path: Path, state) -> None:
    broken = dict(state)
    del broken["quantizer.quantizers.3.codebook"]
    broken["extra.weight"] = torch.zeros(3)
    broken["downsample.layer_norm.bias"] = torch.zeros(7)
    with pytest.raises(CheckpointError) as err:
        load_model(_write(tmp_path, {"generator": broken}))
    text = str(err.value)
    assert "missing 1 tensors: quantizer.quantizers.3.codebook" in text
    assert "unexpected 1 tensors: extra.weight" in text
    assert "downsample.layer_norm.bias: checkpoint (7,) vs model (256,)" in text


def test_moss_checkpoint_with_standalone_config_gets_a_hint(tmp_path: Path) -> None:
    ckpt = FIXTURES / "tiny_moss_ttsd_24k" / "model.ckpt"
    with pytest.raises(CheckpointError, match="enhanced_vocos.*MOSS-TTSD checkpoint"):
        load_model(ckpt, TINY / "config.yaml")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_model(tmp_path / "nope.ckpt", TINY / "config.yaml")


def test_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "model.ckpt"
    path.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_model(path, TINY / "config.yaml")


def test_not_a_state_dict(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="holds a list"):
        load_model(_write(tmp_path, [1, 2, 3]))
    with pytest.raises(CheckpointError, match="not tensors"):
        load_model(_write(tmp_path, {"generator": {"a": 1}}))


def test_config_must_be_given_or_beside(tmp_path: Path, state) -> None:
    path = tmp_path / "model.ckpt"
    torch.save(state, path)
    with pytest.raises(ConfigError, match="no config.yaml next to the checkpoint"):
        load_model(path)


def test_bad_configs(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("generator_params: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_model(TINY / "model.ckpt", bad)
    text = (TINY / "config.yaml").read_text()
    bad.write_text(text.replace("hop_size: 160", "hop_size: 240"))
    with pytest.raises(ConfigError, match="output sample rate 16000 does not match"):
        load_model(TINY / "model.ckpt", bad)
    bad.write_text(text.replace("    encoder_layers: 2\n", "", 1))
    with pytest.raises(ConfigError, match="missing key.*semantic_encoder_kwargs.encoder_layers"):
        load_model(TINY / "model.ckpt", bad)
    with pytest.raises(ConfigError, match="config file not found"):
        load_model(TINY / "model.ckpt", tmp_path / "absent.yaml")
