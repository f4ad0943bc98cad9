"""ORT's optimised graphs in the xyrt cache: used when valid, rebuilt otherwise, same codes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

import xyrt.runtime.backends.ort.cache as oc
from helpers import FIXTURES, expect_codes, exported, golden, golden_reference
from xyrt.runtime.backends.ort.backend import OnnxRuntimeBackend
from xyrt.runtime.codec import ChunkedCodec

CLIP = "speech_3"  # holds the golden models' known float32 near-tie (frame 11, stage 6)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> Path:
    """A fresh, empty xyrt cache for the test."""
    monkeypatch.setenv("XYRT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "ort-optimized"


def _encode(model_dir: Path, **options) -> tuple[np.ndarray, dict[str, str | None]]:
    backend = OnnxRuntimeBackend(model_dir, **options).load()
    codes = ChunkedCodec(backend).encode(golden("tiny_16k")[f"{CLIP}/wav"])
    return codes, {"encoder": backend.encoder.origin, "decoder": backend.decoder.origin}


def _entries(cache: Path) -> list[Path]:
    if not cache.exists():
        return []
    return sorted(p for p in cache.iterdir() if not p.name.startswith("."))


def test_first_load_builds_then_later_loads_use_the_cache_with_the_same_codes(cache) -> None:
    d = exported("tiny_16k")
    direct, how = _encode(d, cache=False)
    assert how == {"encoder": "direct", "decoder": "direct"} and not cache.exists()
    built, how = _encode(d)
    assert how == {"encoder": "built", "decoder": "built"}
    assert len(_entries(cache)) == 2
    cached, how = _encode(d)
    assert how == {"encoder": "cached", "decoder": "cached"}
    ref = golden_reference("tiny_16k", CLIP, 10)
    for label, codes in [("direct", direct), ("built", built), ("cached", cached)]:
        expect_codes(ref, codes, f"onnxruntime tiny_16k {CLIP} {label} session")
    entry = _entries(cache)[0]
    assert sorted(p.name for p in entry.iterdir()) == ["meta.json", "model.onnx", "model.onnx.data"]
    # the user's export is never written to
    assert sorted(p.name for p in d.iterdir()) == ["decoder.onnx", "encoder.onnx", "manifest.json"]


def test_decoded_audio_is_the_same_through_the_cache(cache) -> None:
    d = exported("tiny_16k")
    codes = golden("tiny_16k")[f"{CLIP}/codes_ov10"]
    direct = ChunkedCodec(OnnxRuntimeBackend(d, cache=False)).decode(codes)
    ChunkedCodec(OnnxRuntimeBackend(d)).decode(codes)  # builds
    backend = OnnxRuntimeBackend(d)
    cached = ChunkedCodec(backend).decode(codes)
    assert backend.decoder.origin == "cached"
    assert np.abs(cached - direct).max() <= 1e-6 * np.abs(direct).max()


@pytest.mark.parametrize("damage", ["same-size edit", "truncated", "removed", "meta"])
def test_a_damaged_entry_is_rebuilt_not_trusted(cache, damage: str) -> None:
    d = exported("tiny_16k")
    _encode(d)
    for entry in _entries(cache):
        data, meta = entry / "model.onnx.data", entry / "meta.json"
        if damage == "same-size edit":
            st = data.stat()
            with open(data, "r+b") as f:
                f.seek(64)
                f.write(b"\x00\x01\x02\x03")
            os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns))
        elif damage == "truncated":
            os.truncate(data, data.stat().st_size // 2)
        elif damage == "removed":
            data.unlink()
        else:
            meta.write_text("{not json")
    codes, how = _encode(d)
    assert how == {"encoder": "built", "decoder": "built"}
    expect_codes(golden_reference("tiny_16k", CLIP, 10), codes, f"rebuilt after {damage}")
    assert _encode(d)[1] == {"encoder": "cached", "decoder": "cached"}


def test_another_ort_version_or_cpu_gets_its_own_entry(cache, monkeypatch) -> None:
    d = exported("tiny_16k")
    _encode(d)
    monkeypatch.setattr(oc, "cpu_signature", lambda: "x86_64 another CPU avx2 fma")
    assert _encode(d)[1]["encoder"] == "built"
    assert len(_entries(cache)) == 4


def test_graphs_with_external_data_are_cached(cache, tmp_path: Path, monkeypatch) -> None:
    import xyrt.export.onnx_export as ox

    monkeypatch.setattr(ox, "EXTERNAL_DATA_BYTES", 0)  # as if the graphs were over 2 GB
    out = ox.export_onnx(FIXTURES / "tiny_16k" / "model.ckpt", tmp_path / "ext")
    assert (out / "encoder.onnx.data").is_file()
    _encode(out)
    codes, how = _encode(out)
    assert how["encoder"] == "cached"
    expect_codes(golden_reference("tiny_16k", CLIP, 10), codes, "external data, cached")


def test_unwritable_cache_loads_without_it(tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("XYRT_CACHE", str(blocker))
    codes, how = _encode(exported("tiny_16k"))
    assert how == {"encoder": "uncached", "decoder": "uncached"}
    expect_codes(golden_reference("tiny_16k", CLIP, 10), codes, "uncached session")


def test_a_failed_build_leaves_no_entry_and_old_leftovers_are_swept(cache, monkeypatch) -> None:
    def killed(*args, **kwargs):
        raise RuntimeError("killed while saving")

    cache.mkdir(parents=True)
    old = cache / ".build-leftover"
    old.mkdir()
    (old / "model.onnx").write_bytes(b"half")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    recent = cache / ".build-running"
    recent.mkdir()
    monkeypatch.setattr(oc, "_build", killed)
    codes, how = _encode(exported("tiny_16k"))
    assert how == {"encoder": "uncached", "decoder": "uncached"}
    assert _entries(cache) == [] and not old.exists() and recent.exists()
    assert [p.name for p in cache.iterdir()] == [".build-running"]


def test_filling_the_cache_prints_no_onnxruntime_warning(cache: Path, capfd) -> None:
    capfd.readouterr()
    backend = OnnxRuntimeBackend(exported("tiny_16k")).load()
    assert backend.encoder.origin == "built"
    assert "Serializing optimized model" not in capfd.readouterr().err
