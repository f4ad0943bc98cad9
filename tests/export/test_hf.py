"""Hugging Face-layout folders: the golden checkpoints converted to that layout (each way of
storing weight norm) give the published codes and audio, and convert back unchanged."""

from __future__ import annotations

import json
import shutil
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import FIXTURES, expect_codes, golden, golden_reference, reference_margins
from xyrt.cli import main
from xyrt.config import XYConfig
from xyrt.errors import CheckpointError, ConfigError, XyrtError
from xyrt.export.convert import convert
from xyrt.export.verify import verify_dir
from xyrt.runtime.backends.pytorch.codec import XYCodec
from xyrt.runtime.compare import compare_codes, max_error_ratio
from xyrt.runtime.network.checkpoint import load_model
from xyrt.runtime.network.hf import CONFIG, SAFETENSORS, TORCH_BIN, WEIGHT_NORMS, read_hf_tensors
from xyrt.runtime.network.state import read_state_dict

CLIPS_HERE = ["speech_0", "speech_4", "short_quarter_second", "exact_frames", "chirp_loud"]


@cache
def hf_folder(name: str, weight_norm: str) -> Path:
    out = Path(tempfile.mkdtemp(prefix=f"xyrt-hf-{name}-")) / weight_norm
    return convert(FIXTURES / name / "model.ckpt", out, weight_norm=weight_norm)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("weight_norm", WEIGHT_NORMS)
def test_hf_folder_reproduces_golden_codes_and_audio(golden_name: str, weight_norm: str) -> None:
    g = golden(golden_name)
    codec = XYCodec.from_checkpoint(hf_folder(golden_name, weight_norm))
    if weight_norm != "folded":  # the very same numbers: test_golden.py covers every clip
        reference = load_model(FIXTURES / golden_name / "model.ckpt").state_dict()
        for name, tensor in codec.model.state_dict().items():
            assert torch.equal(tensor, reference[name]), name
    for clip in CLIPS_HERE:
        ref = g[f"{clip}/codes_ov10"]
        codes = codec.encode(g[f"{clip}/wav"], overlap=10)
        agreement = compare_codes(ref, codes, reference_margins(golden_name, clip, 10))
        assert codes.shape == ref.shape and agreement.unexplained == 0, clip
        audio = codec.decode(ref, overlap=10)
        assert max_error_ratio(g[f"{clip}/recon_ov10"], audio) <= 1e-4, clip


@pytest.mark.parametrize("weight_norm", WEIGHT_NORMS)
def test_round_trip_gives_the_original_checkpoint(
    golden_name: str, weight_norm: str, tmp_path: Path
) -> None:
    back = convert(hf_folder(golden_name, weight_norm), tmp_path / "back" / "model.ckpt")
    original = read_state_dict(FIXTURES / golden_name / "model.ckpt")
    state = read_state_dict(back)
    assert sorted(state) == sorted(original)
    for name, tensor in original.items():
        if weight_norm == "folded" and name.endswith(("weight_g", "weight_v")):
            continue  # g and v are not stored; the weight they make is compared below
        assert torch.equal(state[name], tensor), name
    for proj in ("quantizer.input_proj", "quantizer.output_proj"):
        want = torch._weight_norm(original[proj + ".weight_v"], original[proj + ".weight_g"], 0)
        got = torch._weight_norm(state[proj + ".weight_v"], state[proj + ".weight_g"], 0)
        torch.testing.assert_close(got, want, rtol=1e-6, atol=0)
    cfg = XYConfig.from_yaml(back.parent / "config.yaml")
    assert cfg == XYConfig.from_yaml(FIXTURES / golden_name / "config.yaml")


def test_hf_names_on_disk() -> None:
    names = set(read_hf_tensors(hf_folder("tiny_16k", "parametrizations")))
    assert "semantic_encoder.layers.0.mlp.fc1.weight" in names
    assert "quantizer.input_proj.parametrizations.weight.original0" in names
    assert any(n.startswith("enhanced_vocos.") for n in names)
    assert not any(n.startswith("vocos.") or ".fc1." in n.replace(".mlp.fc1.", "") for n in names)
    folded = set(read_hf_tensors(hf_folder("tiny_16k", "folded")))
    assert "quantizer.output_proj.weight" in folded and not any("weight_g" in n for n in folded)
    config = json.loads((hf_folder("tiny_moss_ttsd_24k", "gv") / CONFIG).read_text())
    assert config["model_type"] == "xy_tokenizer" and config["output_sample_rate"] == 24000
    assert config["decoder_upsample_rate"] == 1920 and config["code_dim"] == 256
    assert set(config["params"]) >= {"feature_extractor_kwargs", "vocos_kwargs"}


DROPPED = (
    "acoustic_decoder.positional_embedding",
    "istft.window",
    "quantizers.0.cluster_size",
    "quantizers.0.embed_avg",
)


def test_bin_weights_renamed_embeddings_and_missing_constants(tmp_path: Path) -> None:
    """pytorch_model.bin, positional_embedding.weight, absent sinusoids/window/training buffers,
    a scalar ``inited`` and only ``input_sampling_rate`` are all accepted."""
    src = hf_folder("tiny_moss_ttsd_24k", "gv")
    state = read_hf_tensors(src)
    for name in list(state):
        if name.startswith("semantic_encoder.positional_embedding"):
            state[name + ".weight"] = state.pop(name)
        elif name.endswith(DROPPED):
            del state[name]
        elif name.endswith(".inited"):
            state[name] = state[name].reshape(())
    folder = tmp_path / "bin"
    folder.mkdir()
    torch.save(state, folder / TORCH_BIN)
    config = json.loads((src / CONFIG).read_text())
    config["input_sampling_rate"] = config.pop("input_sample_rate")
    (folder / CONFIG).write_text(json.dumps(config))
    model = load_model(folder)
    reference = load_model(FIXTURES / "tiny_moss_ttsd_24k" / "model.ckpt").state_dict()
    for name, tensor in model.state_dict().items():
        if name.endswith(("cluster_size", "embed_avg")):
            continue  # training statistics, unused at inference
        assert torch.equal(tensor, reference[name]), name


def _break(folder: Path, how: str) -> None:
    config = json.loads((folder / CONFIG).read_text())
    if how == "no config":
        (folder / CONFIG).unlink()
    elif how == "no weights":
        (folder / SAFETENSORS).unlink()
    elif how == "missing tensor":
        from safetensors.torch import save_file

        state = read_hf_tensors(folder)
        del state["acoustic_encoder.layers.1.mlp.fc2.weight"]
        save_file(state, str(folder / SAFETENSORS))
    else:
        if how == "model_type":
            config["model_type"] = "whisper"
        elif how == "params":
            del config["params"]
        elif how == "rate":
            del config["output_sample_rate"]
        elif how == "vocos":
            del config["params"]["vocos_kwargs"]
        (folder / CONFIG).write_text(json.dumps(config))


@pytest.mark.parametrize(
    "how, error, match",
    [
        ("no config", ConfigError, "has no config.json"),
        ("no weights", CheckpointError, "has no weights: expected model.safetensors"),
        ("missing tensor", CheckpointError, "acoustic_encoder.layers.1.fc2.weight"),
        ("model_type", ConfigError, "model_type is 'whisper', expected 'xy_tokenizer'"),
        ("params", ConfigError, "missing 'params'"),
        ("rate", ConfigError, "missing 'output_sample_rate'"),
        ("vocos", ConfigError, "vocos_kwargs"),
    ],
)
def test_malformed_folder_names_what_is_missing(
    tmp_path: Path, how: str, error: type, match: str
) -> None:
    folder = _copy(hf_folder("tiny_16k", "gv"), tmp_path / "hf")
    _break(folder, how)
    with pytest.raises(error, match=match):
        load_model(folder)


def test_convert_never_replaces_foreign_files(tmp_path: Path) -> None:
    ckpt = FIXTURES / "tiny_16k" / "model.ckpt"
    out = tmp_path / "hf"
    out.mkdir()
    (out / CONFIG).write_text('{"model_type": "xy_tokenizer"}')
    with pytest.raises(XyrtError, match="not written by xyrt"):
        convert(ckpt, out)
    assert (out / CONFIG).read_text() == '{"model_type": "xy_tokenizer"}'
    (out / CONFIG).unlink()
    convert(ckpt, out)
    convert(ckpt, out, weight_norm="folded")  # its own files may be replaced
    mine = tmp_path / "mine" / "model.ckpt"
    mine.parent.mkdir()
    mine.write_bytes(b"someone's checkpoint")
    with pytest.raises(XyrtError, match="not written by xyrt"):
        convert(out, mine)
    assert mine.read_bytes() == b"someone's checkpoint"
    with pytest.raises(XyrtError, match="is the source itself"):
        convert(out, out, to="hf")


def test_cli_convert_encode_and_export_verify(tmp_path: Path, capsys) -> None:
    ckpt = FIXTURES / "tiny_moss_ttsd_24k" / "model.ckpt"
    hf = tmp_path / "hf"
    assert main(["convert", str(ckpt), "-o", str(hf), "--weight-norm", "gv"]) == 0
    g = golden("tiny_moss_ttsd_24k")
    wav = tmp_path / "speech.wav"
    import soundfile

    soundfile.write(wav, g["speech_2/wav"], 16000, subtype="FLOAT")
    codes = tmp_path / "codes.npy"
    assert main(["encode", "--checkpoint", str(hf), str(wav), "-o", str(codes)]) == 0
    expect_codes(golden_reference("tiny_moss_ttsd_24k", "speech_2", 10), np.load(codes), "hf cli")
    onnx = tmp_path / "onnx"
    assert main(["export", "--checkpoint", str(hf), "-o", str(onnx)]) == 0
    # the manifest points back at the folder: verify finds and checks it by itself
    results = verify_dir(onnx, clips={"speech_2": g["speech_2/wav"]})
    assert [r.ok for r in results] == [True]
    assert main(["convert", str(hf), "-o", str(tmp_path / "x.ckpt"), "--config", "y"]) == 1
    assert "drop --config" in capsys.readouterr().err
