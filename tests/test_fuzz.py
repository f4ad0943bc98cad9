"""Generated bad input thrown at the command line (in-process `main`) and the Python API.

Properties: the CLI exits 1 (bad input) or 2 (malformed command line) with one line on stderr
and no traceback, and touches no file outside its output; the API raises `XyrtError` (or
returns a well-formed result), never another exception.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import xyrt.runtime
from helpers import FIXTURES, exported, golden
from xyrt.cli import main
from xyrt.errors import XyrtError

FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same examples on every run: a failure reproduces
)


@cache
def world() -> Path:
    """Inputs the commands read: a model, a checkpoint, audio, codes (never written to)."""
    import tempfile

    import soundfile as sf

    root = Path(tempfile.mkdtemp(prefix="xyrt-fuzz-"))
    shutil.copytree(exported("tiny_16k"), root / "model")
    shutil.copy(FIXTURES / "tiny_16k" / "model.ckpt", root / "model.ckpt")
    shutil.copy(FIXTURES / "tiny_16k" / "config.yaml", root / "config.yaml")
    sf.write(root / "speech.wav", golden("tiny_16k")["speech_4/wav"][:16000], 16000)
    np.save(root / "codes.npy", np.zeros((8, 5), np.int64))
    (root / "folder").mkdir()
    return root


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def run_cli(argv: list[str], out: Path, monkeypatch, capsys) -> tuple[int, str]:
    """Run ``main`` in-process; assert nothing outside ``out`` changed; (status, stderr)."""
    root = world()
    before = snapshot(root)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\x01\x02" * 3000)))
    capsys.readouterr()
    try:
        status = main(argv)
    except SystemExit as exc:
        status = exc.code
    err = capsys.readouterr().err
    after = {k: v for k, v in snapshot(root).items() if not k.startswith(out.name)}
    assert after == {k: v for k, v in before.items() if not k.startswith(out.name)}, argv
    shutil.rmtree(out, ignore_errors=True)
    if out.exists():
        out.unlink()
    return status, err


def assert_clean_failure(status, err: str, argv) -> None:
    assert status in (1, 2), (argv, status, err)
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xyrt"), (argv, err)


BAD_NUMBERS = st.sampled_from(
    ["nan", "inf", "-inf", "NaN", "1e400", "-1", "0", "abc", "", "1e308", "-0", "99999999999"]
)
BAD_BYTES = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda b: b"RIFF" + b, st.binary(max_size=100)),
    st.builds(lambda b: b"ID3" + b, st.binary(max_size=100)),
    st.builds(lambda b: b"\x93NUMPY\x01\x00" + b, st.binary(max_size=100)),
    st.builds(lambda b: b"PK\x03\x04" + b, st.binary(max_size=100)),
    st.text(max_size=100).map(str.encode),
)


@FUZZ
@given(
    option=st.sampled_from(
        ["--overlap", "--batch-size", "--threads", "--hop", "--context", "--lookahead"]
    ),
    value=BAD_NUMBERS,
)
def test_cli_bad_numbers(option: str, value: str, tmp_path: Path, monkeypatch, capsys) -> None:
    valid = {"--overlap": ("0", "-0"), "--context": ("0", "-0"), "--lookahead": ("0", "-0")}
    assume(value not in valid.get(option, ()))  # the few valid values among the bad ones
    assume(not (option == "--batch-size" and value == "99999999999"))
    root = world()
    out = root / "out.npy"
    if option in ("--hop", "--context", "--lookahead"):
        argv = ["stream", "--model", str(root / "model"), "--source", str(root / "speech.wav")]
        argv += [f"{option}={value}", "-o", str(out)]
    else:
        argv = ["encode", "--model", str(root / "model"), str(root / "speech.wav")]
        argv += ["-o", str(out), f"{option}={value}"]
    status, err = run_cli(argv, out, monkeypatch, capsys)
    assert_clean_failure(status, err, argv)


@FUZZ
@given(content=BAD_BYTES, suffix=st.sampled_from([".wav", ".mp3", ".flac", ".npy", ".npz"]))
def test_cli_bad_files(content: bytes, suffix: str, tmp_path: Path, monkeypatch, capsys) -> None:
    root = world()
    bad = root / f"bad{suffix}"
    bad.write_bytes(content)
    try:
        out = root / "out"
        model = str(root / "model")
        argv = {
            ".wav": ["encode", "--model", model, str(bad), "-o", str(out)],
            ".mp3": ["calib", str(bad), "-o", str(out)],
            ".flac": ["stream", "--model", model, "--source", str(bad), "-o", str(out)],
            ".npy": ["decode", "--model", model, str(bad), "-o", str(out)],
            ".npz": ["quantize", model, "--calib", str(bad), "-o", str(out)],
        }[suffix]
        status, err = run_cli(argv, out, monkeypatch, capsys)
        assert_clean_failure(status, err, argv)
    finally:
        bad.unlink()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@FUZZ
@given(
    path=st.lists(
        st.sampled_from(["graphs", "encoder", "inputs", "source_checkpoint", "0"]), max_size=3
    ),
    key=st.sampled_from(
        ["output_sample_rate", "num_quantizers", "sha256", "file", "graphs", "encoder", "name"]
    ),
    value=JSON,
    delete=st.booleans(),
)
def test_damaged_manifests(path, key, value, delete, tmp_path: Path) -> None:
    model = tmp_path / "m"
    if not model.exists():
        shutil.copytree(world() / "model", model)
    doc = json.loads((world() / "model" / "manifest.json").read_text())
    node = doc
    for step in path:
        if isinstance(node, list) and step == "0" and node:
            node = node[0]
        elif isinstance(node, dict) and step in node:
            node = node[step]
    if not isinstance(node, dict):
        return
    if delete:
        node.pop(key, None)
    else:
        node[key] = value
    (model / "manifest.json").write_text(json.dumps(doc))
    try:
        codec = xyrt.runtime.load(model)
        codes = codec.encode(golden("tiny_16k")["speech_4/wav"][:4000])
    except XyrtError as exc:
        assert "\n" not in str(exc) and str(exc)
        return
    assert codes.shape == (8, 3)  # the edit did not touch anything the runtime reads


SAMPLE_RATES = st.one_of(
    st.sampled_from([0, -1, 16000, 8000.5, math.nan, math.inf, None, "16000", True, 10**12]),
    st.integers(-10, 200000),
)
ARRAYS = hnp.arrays(
    dtype=st.sampled_from(
        [
            np.float16,
            np.float32,
            np.float64,
            np.int8,
            np.int16,
            np.int32,
            np.uint8,
            np.bool_,
            np.complex64,
            np.int64,
        ]
    ),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=40),
)  # float elements include NaN, inf and extremes


@FUZZ
@given(samples=ARRAYS, rate=SAMPLE_RATES, scale=st.sampled_from([1.0, 1e20, math.inf, math.nan]))
def test_api_encode_and_stream_take_anything(samples, rate, scale) -> None:
    codec = api_codec()
    if samples.dtype.kind in "fc":
        with np.errstate(all="ignore"):
            samples = samples * scale
    if samples.ndim and samples.size:  # long enough for a code when otherwise valid
        samples = np.resize(samples, (1600, *samples.shape[1:]))
    try:
        codes = codec.encode(samples, rate)
        assert codes.dtype == np.int64 and codes.shape[0] == 8
    except XyrtError:
        pass
    stream = codec.create_stream()
    try:
        stream.accept_waveform(rate, samples)
        stream.input_finished()
        while codec.is_ready(stream):
            codec.encode_stream(stream)
    except XyrtError:
        pass


@FUZZ
@given(
    codes=hnp.arrays(
        dtype=st.sampled_from([np.int64, np.int32, np.uint16, np.float32, np.bool_, np.int8]),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=12),
    ),
    options=st.fixed_dictionaries(
        {
            "hop": st.sampled_from([0.08, 0.1, 0, -0.08, math.nan, math.inf, "0.32", None]),
            "context": st.sampled_from([0.0, 5.0, -1.0, math.nan, 40.0, None]),
            "lookahead": st.sampled_from([0.0, 0.32, math.inf, -0.5, 31.0]),
        }
    ),
)
def test_api_decode_and_create_stream_take_anything(codes, options) -> None:
    codec = api_codec()
    try:
        audio = codec.decode(codes)
        assert audio.dtype == np.float32 and np.isfinite(audio).all()
    except XyrtError:
        pass
    with contextlib.suppress(XyrtError):
        codec.create_stream(**{k: v for k, v in options.items() if v is not None})


@FUZZ
@given(
    providers=st.sampled_from(["cpu", ["cpu"], [1], ["nope"], None, ("cpu",), [None]]),
    threads=st.sampled_from([None, 0, -1, 1, 10**6, 1.5, "2", True]),
    model=st.sampled_from([None, 3, "", "/nonexistent", "model", "model/manifest.json"]),
)
def test_api_load_takes_anything(providers, threads, model) -> None:
    path = world() / model if isinstance(model, str) and model.startswith("model") else model
    with contextlib.suppress(XyrtError):
        xyrt.runtime.load(path, providers=providers, threads=threads)


@cache
def api_codec():
    return xyrt.runtime.load(world() / "model")


@pytest.mark.parametrize("backends", [",", ",,", " ", "pytorch,nope"])
def test_bench_backend_lists(backends: str, monkeypatch, capsys) -> None:
    out = world() / "bench.json"
    argv = ["bench", "--backends", backends, "--checkpoint", str(world() / "model.ckpt")]
    status, err = run_cli([*argv, "--json", str(out)], out, monkeypatch, capsys)
    assert_clean_failure(status, err, argv)
