"""Code arrays: validation, atomic .npy round trip, errors naming what was received."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from xyrt.errors import CodesError
from xyrt.runtime.formats import codes as codes_mod
from xyrt.runtime.formats.codes import load_codes, save_codes, validate_codes


def _codes(t: int = 5, dtype=np.int64) -> np.ndarray:
    return np.random.default_rng(t).integers(0, 1024, size=(8, t)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int16, np.uint16, np.uint64])
def test_validate_accepts_integer_dtypes(dtype) -> None:
    c = _codes(7, dtype)
    out = validate_codes(c)
    assert out.dtype == np.int64 and out.shape == (8, 7)
    np.testing.assert_array_equal(out, c.astype(np.int64))


def test_validate_edges_and_other_layouts() -> None:
    edge = np.array([[0, 1023]] * 8)
    np.testing.assert_array_equal(validate_codes(edge), edge)
    assert validate_codes(np.zeros((4, 3), np.int32), 4, 16).shape == (4, 3)
    assert validate_codes([[1, 2]] * 8).dtype == np.int64


@pytest.mark.parametrize(
    ("codes", "match"),
    [
        (np.zeros(8, np.int64), r"shape \(8,\); expected \(8, T\)"),
        (np.zeros((1, 8, 4), np.int64), r"shape \(1, 8, 4\); expected \(8, T\)"),
        (np.zeros((4, 8), np.int64), r"shape \(4, 8\); expected \(8, T\)"),
        (np.zeros((8, 0), np.int64), r"shape \(8, 0\): no frames"),
        (np.zeros((8, 3), np.float32), "dtype float32; expected an integer dtype"),
        (np.zeros((8, 3), bool), "dtype bool; expected an integer dtype"),
        (np.full((8, 3), 1024), r"range over \[1024, 1024\]; expected values in \[0, 1024\)"),
        (np.full((8, 3), -1), r"range over \[-1, -1\]"),
    ],
)
def test_validate_rejects(codes: np.ndarray, match: str) -> None:
    with pytest.raises(CodesError, match=match):
        validate_codes(codes)


def test_validate_rejects_ragged() -> None:
    with pytest.raises(CodesError, match="not a rectangular integer array"):
        validate_codes([[1, 2], [3]])


def test_validate_reports_min_and_max() -> None:
    c = _codes()
    c[0, 0], c[7, 4] = -3, 5000
    with pytest.raises(CodesError, match=r"\[-3, 5000\]"):
        validate_codes(c)


def test_round_trip_and_no_temp_files(tmp_path: Path) -> None:
    c = _codes(40, np.int32)
    path = save_codes(tmp_path / "out" / "codes.npy", c)
    assert path == tmp_path / "out" / "codes.npy"
    assert np.load(path).dtype == np.int64
    back = load_codes(path)
    assert back.dtype == np.int64
    np.testing.assert_array_equal(back, c)
    save_codes(path, c[:, :3])  # overwrite in place
    assert load_codes(path).shape == (8, 3)
    assert [p.name for p in path.parent.iterdir()] == ["codes.npy"]


def test_save_writes_exactly_the_given_path(tmp_path: Path) -> None:
    save_codes(tmp_path / "codes.bin", _codes())
    assert [p.name for p in tmp_path.iterdir()] == ["codes.bin"]


def test_save_validates(tmp_path: Path) -> None:
    with pytest.raises(CodesError, match="expected values in"):
        save_codes(tmp_path / "c.npy", np.full((8, 2), 2000))
    assert list(tmp_path.iterdir()) == []


def test_save_failure_removes_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(codes_mod.np, "save", boom)
    with pytest.raises(CodesError, match=r"cannot write .*c\.npy: disk full"):
        save_codes(tmp_path / "c.npy", _codes())
    assert list(tmp_path.iterdir()) == []


def test_load_custom_layout(tmp_path: Path) -> None:
    np.save(tmp_path / "c.npy", np.ones((4, 9), np.int16))
    assert load_codes(tmp_path / "c.npy", num_quantizers=4, codebook_size=2).shape == (4, 9)
    with pytest.raises(CodesError, match=r"c\.npy: codes have shape \(4, 9\); expected \(8, T\)"):
        load_codes(tmp_path / "c.npy")


def test_load_missing(tmp_path: Path) -> None:
    with pytest.raises(CodesError, match=r"codes file not found: .*none\.npy"):
        load_codes(tmp_path / "none.npy")


def test_load_directory(tmp_path: Path) -> None:
    with pytest.raises(CodesError, match="codes file is not a file"):
        load_codes(tmp_path)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", r"cannot read codes from .*bad\.npy: .*expected a \.npy file"),
        (b"not numpy at all" * 10, r"cannot read codes from .*bad\.npy"),
        (b"\x93NUMPY\x01\x00garbage", r"cannot read codes from .*bad\.npy"),
    ],
)
def test_load_corrupt(tmp_path: Path, content: bytes, match: str) -> None:
    (tmp_path / "bad.npy").write_bytes(content)
    with pytest.raises(CodesError, match=match):
        load_codes(tmp_path / "bad.npy")


def test_load_truncated(tmp_path: Path) -> None:
    save_codes(tmp_path / "c.npy", _codes(100))
    data = (tmp_path / "c.npy").read_bytes()
    (tmp_path / "c.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(CodesError, match=r"cannot read codes from .*c\.npy"):
        load_codes(tmp_path / "c.npy")


def test_load_rejects_pickles_and_npz(tmp_path: Path) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(CodesError, match=r"cannot read codes from .*obj\.npy: .*allow_pickle"):
        load_codes(tmp_path / "obj.npy")
    np.savez(tmp_path / "c.npz", codes=_codes())
    with pytest.raises(CodesError, match=r"c\.npz is an \.npz archive; expected a single \.npy"):
        load_codes(tmp_path / "c.npz")


def test_load_rejects_float_file(tmp_path: Path) -> None:
    np.save(tmp_path / "f.npy", np.zeros((8, 4), np.float32))
    with pytest.raises(CodesError, match=r"f\.npy: codes have dtype float32"):
        load_codes(tmp_path / "f.npy")


def test_outputs_get_the_usual_file_mode(tmp_path: Path) -> None:
    path = save_codes(tmp_path / "c.npy", np.zeros((8, 3), np.int64))
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
