"""Issue 29, class 6: a Hugging Face Hub cache snapshot (``<repo>/snapshots/<rev>/`` whose files
are symlinks into ``<repo>/blobs/``, as ``huggingface_hub`` downloads a sharded model) is a
model folder like any other, for loading and for ``xyrt convert``; a symlink anywhere else, or
into another repository's blobs, is still refused. Also (class 8) a malformed shard index is
named for what it is."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
st = pytest.importorskip("safetensors.torch")

import xyrt.runtime  # noqa: E402
from helpers import FIXTURES, golden  # noqa: E402
from xyrt.cli import main  # noqa: E402
from xyrt.errors import XyrtError  # noqa: E402
from xyrt.export.convert import convert  # noqa: E402

INDEX = "model.safetensors.index.json"


def _sharded(folder: Path) -> dict[str, bytes]:
    """The files of a two-shard HF folder of the tiny model (name -> bytes)."""
    hf = convert(FIXTURES / "tiny_16k" / "model.ckpt", folder / "hf", "hf")
    tensors = st.load_file(str(hf / "model.safetensors"))
    names = sorted(tensors)
    half = len(names) // 2
    files, weight_map = {}, {}
    for k, part in enumerate((names[:half], names[half:])):
        shard = f"model-0000{k + 1}-of-00002.safetensors"
        files[shard] = st.save({n: tensors[n].contiguous() for n in part})
        weight_map.update(dict.fromkeys(part, shard))
    files[INDEX] = json.dumps({"metadata": {}, "weight_map": weight_map}).encode()
    files["config.json"] = (hf / "config.json").read_bytes()
    return files


def _hub(root: Path, files: dict[str, bytes], repo: str = "models--x--tiny") -> Path:
    """``files`` laid out as the Hub cache does: blobs by sha256, snapshot symlinks to them."""
    blobs, snap = root / repo / "blobs", root / repo / "snapshots" / "0123abc"
    blobs.mkdir(parents=True)
    snap.mkdir(parents=True)
    for name, data in files.items():
        sha = hashlib.sha256(data).hexdigest()
        (blobs / sha).write_bytes(data)
        (snap / name).symlink_to(Path("..", "..", "blobs", sha))
    return snap


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, bytes]:
    return _sharded(tmp_path_factory.mktemp("sharded"))


def test_a_hub_cache_snapshot_loads_and_converts(files, tmp_path):
    snap = _hub(tmp_path / "hub", files)
    wav = golden("tiny_16k")["speech_4/wav"]
    want = xyrt.runtime.load(FIXTURES / "tiny_16k" / "model.ckpt").encode(wav)
    np.testing.assert_array_equal(xyrt.runtime.load(snap).encode(wav), want)
    out = tmp_path / "model.ckpt"
    assert main(["convert", str(snap), "-o", str(out)]) == 0
    np.testing.assert_array_equal(xyrt.runtime.load(out).encode(wav), want)


def test_other_escapes_are_still_refused(files, tmp_path):
    snap = _hub(tmp_path / "hub", files)
    other = _hub(tmp_path / "hub", files, repo="models--y--other")
    shard = "model-00001-of-00002.safetensors"
    target = os.readlink(other / shard)  # the same bytes, in another repository's blobs
    (snap / shard).unlink()
    (snap / shard).symlink_to(
        Path("..", "..", "..", "models--y--other", "blobs", Path(target).name)
    )
    with pytest.raises(XyrtError, match=f"names '{shard}', which is not a file inside"):
        xyrt.runtime.load(snap)
    plain = tmp_path / "plain"  # not a snapshot: a symlink out of the folder is refused
    plain.mkdir()
    for name in files:
        (plain / name).symlink_to(snap / name if name != shard else other / shard)
    with pytest.raises(XyrtError, match="which is not a file inside"):
        xyrt.runtime.load(plain)


def test_a_malformed_index_is_named_for_what_it_is(files, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    index = json.loads(files[INDEX])
    (folder / INDEX).write_text(json.dumps({"weight_map": list(index["weight_map"])}))
    with pytest.raises(XyrtError, match="'weight_map' is a list; expected an object mapping"):
        xyrt.runtime.load(folder)
    shard = "model-00001-of-00002.safetensors"
    (folder / INDEX).write_bytes(files[INDEX])
    (folder / shard).unlink()
    (folder / shard).mkdir()
    with pytest.raises(XyrtError, match=f"names {shard} as a weight file, but it is a folder"):
        xyrt.runtime.load(folder)
