"""Every file a model directory uses is inside it, listed in its manifest and hashed: graph
files outside it are refused, unlisted ONNX external data is refused, listed external data is
hashed (a flipped byte is caught at load and by `xyrt verify`); sharded Hugging Face folders
read each tensor from the shard their index names, and only shards inside the folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import xyrt.runtime
from helpers import FIXTURES, exported
from xyrt.errors import CheckpointError, XyrtError
from xyrt.runtime.modeldir.manifest import sha256_file

onnx = pytest.importorskip("onnx", reason="xyrt[export] (onnx) is not installed")
CODES = np.arange(8 * 3, dtype=np.int64).reshape(8, 3) % 1024


def _copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(exported("tiny_16k"), tmp_path / "model"))


def _edit_manifest(d: Path, **decoder) -> None:
    manifest = json.loads((d / "manifest.json").read_text())
    manifest["graphs"]["decoder"].update(decoder)
    (d / "manifest.json").write_text(json.dumps(manifest))


def _external(d: Path, location: str) -> None:
    """decoder.onnx re-saved with its weights in ``location`` (the same graph and metadata)."""
    proto = onnx.load(str(d / "decoder.onnx"))
    onnx.save_model(
        proto,
        str(d / "decoder.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=location,
        size_threshold=0,
    )


@pytest.mark.parametrize("where", ["../outside/decoder.onnx", "ABS", "sub/decoder.onnx"])
def test_a_graph_file_outside_the_directory_is_refused(tmp_path: Path, where: str) -> None:
    d = _copy(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(d / "decoder.onnx", outside / "decoder.onnx")
    _edit_manifest(d, file=str(outside / "decoder.onnx") if where == "ABS" else where)
    with pytest.raises(XyrtError, match="is not a file inside .*no folders, '..', absolute"):
        xyrt.runtime.load(d)


def test_a_symlink_leading_out_is_refused(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    (tmp_path / "elsewhere.onnx").write_bytes((d / "decoder.onnx").read_bytes())
    (d / "decoder.onnx").unlink()
    (d / "decoder.onnx").symlink_to(tmp_path / "elsewhere.onnx")
    with pytest.raises(XyrtError, match="symlinks leading out"):
        xyrt.runtime.load(d)


def test_unlisted_external_data_is_refused(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    _external(d, "weights.bin")
    _edit_manifest(d, sha256=sha256_file(d / "decoder.onnx"))  # graph listed, weights.bin not
    with pytest.raises(XyrtError, match=r"reads tensors from weights.bin, which .* does not list"):
        xyrt.runtime.load(d).decode(CODES)


def test_listed_external_data_is_hashed_at_load_and_by_verify(tmp_path: Path, capsys) -> None:
    from xyrt.cli import main

    d = _copy(tmp_path)
    want = xyrt.runtime.load(d).decode(CODES)
    _external(d, "decoder.onnx.data")
    _edit_manifest(
        d,
        sha256=sha256_file(d / "decoder.onnx"),
        external_data="decoder.onnx.data",
        external_data_sha256=sha256_file(d / "decoder.onnx.data"),
    )
    np.testing.assert_array_equal(xyrt.runtime.load(d).decode(CODES), want)
    data = bytearray((d / "decoder.onnx.data").read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit in the weights
    (d / "decoder.onnx.data").write_bytes(bytes(data))
    with pytest.raises(XyrtError, match=r"decoder.onnx.data has sha256 .* expects"):
        xyrt.runtime.load(d).decode(CODES)
    ckpt = FIXTURES / "tiny_16k" / "model.ckpt"
    assert main(["verify", str(d), "--checkpoint", str(ckpt)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "decoder.onnx.data has sha256" in err[-1], err


def _sharded(tmp_path: Path) -> tuple[Path, dict]:
    """The tiny checkpoint as a two-shard Hugging Face folder."""
    from safetensors.torch import load_file, save_file

    from xyrt.export.convert import convert

    folder = convert(FIXTURES / "tiny_16k" / "model.ckpt", tmp_path / "hf")
    state = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    names = sorted(state)
    half = len(names) // 2
    shards = {"model-00001-of-00002.safetensors": names[:half]}
    shards["model-00002-of-00002.safetensors"] = names[half:]
    for shard, keys in shards.items():
        save_file({k: state[k].contiguous() for k in keys}, str(folder / shard))
    index = {"weight_map": {k: shard for shard, keys in shards.items() for k in keys}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return folder, state


def test_sharded_folder_reads_each_tensor_from_the_shard_its_index_names(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    from xyrt.runtime.network.hf import read_hf_tensors

    folder, state = _sharded(tmp_path)
    got = read_hf_tensors(folder)
    assert sorted(got) == sorted(state)
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    name = next(k for k, v in index["weight_map"].items() if v.startswith("model-00001"))
    second = folder / "model-00002-of-00002.safetensors"
    tensors = load_file(str(second))
    tensors[name] = torch.full_like(state[name], 7.0)  # a stray copy in the other shard
    save_file(tensors, str(second))
    assert torch.equal(read_hf_tensors(folder)[name], state[name])
    codec = xyrt.runtime.load(folder)  # the PyTorch backend on the folder works as before
    assert codec.encode(np.zeros(16000, np.float32)).shape == (8, 12)


@pytest.mark.parametrize("shard", ["../elsewhere.safetensors", "/tmp/x.safetensors", "a/b"])
def test_a_shard_outside_the_folder_is_refused(tmp_path: Path, shard: str) -> None:
    from xyrt.runtime.network.hf import read_hf_tensors

    folder, _ = _sharded(tmp_path)
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    first = next(iter(index["weight_map"]))
    index["weight_map"][first] = shard
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match="not a file inside"):
        read_hf_tensors(folder)
