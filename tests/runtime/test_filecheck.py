"""Hash stamps: an unchanged file is not re-read; any change is still caught."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import xyrt.runtime.modeldir.filecheck as fc
from xyrt.errors import XyrtError


@pytest.fixture
def hashed(monkeypatch) -> list[Path]:
    """Counts the files `verify_file` actually reads."""
    calls: list[Path] = []
    real = fc.sha256_file

    def counting(path, *args):
        calls.append(Path(path))
        return real(path, *args)

    monkeypatch.setattr(fc, "sha256_file", counting)
    return calls


def _file(tmp_path: Path, data: bytes = b"graph bytes " * 1000) -> tuple[Path, str]:
    path = tmp_path / "encoder.onnx"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def test_a_file_is_hashed_once_then_trusted_by_its_stamp(tmp_path: Path, hashed) -> None:
    path, sha = _file(tmp_path)
    assert fc.verify_file(path, sha) is True
    assert fc.verify_file(path, sha) is False
    assert fc.verify_file(path, sha) is False
    assert hashed == [path]
    assert fc.verify_file(path, sha, rehash=True) is True  # xyrt verify: always re-read
    assert len(hashed) == 2


def test_same_size_edit_with_the_old_mtime_put_back_is_detected(tmp_path: Path) -> None:
    path, sha = _file(tmp_path)
    fc.verify_file(path, sha)
    st = path.stat()
    with open(path, "r+b") as f:  # same size, same mtime: only ctime tells
        f.seek(100)
        f.write(b"\xff\xff\xff\xff")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    with pytest.raises(XyrtError, match=r"encoder.onnx has sha256 .* manifest.json expects"):
        fc.verify_file(path, sha)


def test_a_replaced_file_is_hashed_again(tmp_path: Path, hashed) -> None:
    path, sha = _file(tmp_path)
    fc.verify_file(path, sha)
    other = tmp_path / "copy"
    other.write_bytes(path.read_bytes())
    other.replace(path)  # same content, new inode
    assert fc.verify_file(path, sha) is True and len(hashed) == 2


def test_a_stamp_for_another_hash_does_not_vouch(tmp_path: Path) -> None:
    path, sha = _file(tmp_path)
    fc.verify_file(path, sha)
    with pytest.raises(XyrtError, match="has sha256"):
        fc.verify_file(path, "0" * 64)


def test_unwritable_cache_hashes_every_time(tmp_path: Path, monkeypatch, hashed) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("XYRT_CACHE", str(blocker))
    path, sha = _file(tmp_path)
    assert fc.verify_file(path, sha) is True
    assert fc.verify_file(path, sha) is True
    assert len(hashed) == 2


def test_stamps_live_in_the_xyrt_cache_not_beside_the_file(tmp_path: Path) -> None:
    path, sha = _file(tmp_path)
    fc.verify_file(path, sha)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["encoder.onnx"]
    assert fc.read_stamp(path) == (sha, fc.FileStat.of(path))
    assert str(fc.cache_dir()) == os.environ["XYRT_CACHE"]
