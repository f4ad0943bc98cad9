"""Bad input of every class gets an `XyrtError` saying what was received and what is expected."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import xyrt.runtime
from helpers import FIXTURES, calib_set, exported, golden
from xyrt.calib.dataset import CalibOptions, read_calib, save
from xyrt.calib.sensitivity import SensitivityOptions
from xyrt.checks import max_threads
from xyrt.cli import main
from xyrt.errors import AudioError, CheckpointError, CodesError, XyrtError
from xyrt.runtime.formats.audio import MAX_AMPLITUDE, load_audio, prepare_audio
from xyrt.runtime.formats.codes import load_codes

CKPT = FIXTURES / "tiny_16k" / "model.ckpt"
SPEECH = golden("tiny_16k")["speech_4/wav"]


def err_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


# -- silent wrong results ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "samples",
    [
        np.full(16000, 1e18, np.float32),
        np.full(16000, 1e300, np.float64),  # beyond float32: would become inf
        np.full(16000, 4e38, np.float64),
        np.r_[np.zeros(15999), np.inf],
        np.r_[np.zeros(15999), np.nan].astype(np.float32),
    ],
    ids=["1e18", "1e300-f64", "4e38-f64", "inf", "nan"],
)
def test_absurd_or_non_finite_audio_is_refused(samples: np.ndarray) -> None:
    with pytest.raises(AudioError, match="peak amplitude|NaN or Inf"):
        prepare_audio(samples, 16000)
    codec = xyrt.runtime.load(exported("tiny_16k"))
    with pytest.raises(AudioError, match="peak amplitude|NaN or Inf"):
        codec.encode(samples)
    stream = codec.create_stream()
    with pytest.raises(AudioError, match="peak amplitude|NaN or Inf"):
        stream.accept_waveform(16000, samples)


def test_loud_audio_within_the_bound_gives_real_codes() -> None:
    loud = (SPEECH / np.abs(SPEECH).max() * MAX_AMPLITUDE).astype(np.float32)
    codes = xyrt.runtime.load(exported("tiny_16k")).encode(loud)
    assert len(np.unique(codes[0])) > 3  # not the all-zero codes of an overflowed log-mel


def test_torch_front_end_never_codes_from_non_finite_features(monkeypatch) -> None:
    from helpers import codec

    model = codec("tiny_16k").model
    real = model.frontend.forward
    monkeypatch.setattr(
        model.frontend, "forward", lambda w, n, *ref: (real(w, n, *ref)[0] * math.inf, n)
    )
    with pytest.raises(AudioError, match="log-mel features of this audio are not finite"):
        codec("tiny_16k").encode(SPEECH)


def _damaged_checkpoint(tmp_path: Path, name: str, value) -> Path:
    obj = torch.load(CKPT, weights_only=True)
    state = obj.get("generator", obj)
    key = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 4)
    state[key] = value(state[key])
    out = tmp_path / name
    out.mkdir()
    torch.save(obj, out / "model.ckpt")
    shutil.copy(CKPT.parent / "config.yaml", out / "config.yaml")
    return out / "model.ckpt"


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda t: t.index_fill(0, torch.tensor([0]), math.nan), "NaN or Inf values in 1 tensors"),
        (lambda t: t.index_fill(0, torch.tensor([0]), math.inf), "NaN or Inf values in 1 tensors"),
        (lambda t: t.to(torch.int64), "1 not floating point .*: .*int64"),
    ],
    ids=["nan", "inf", "int64"],
)
def test_damaged_checkpoints_are_refused_at_load_and_export(tmp_path: Path, damage, match) -> None:
    from xyrt.export.onnx_export import export_onnx
    from xyrt.runtime.network.checkpoint import load_model

    ckpt = _damaged_checkpoint(tmp_path, "ck", damage)
    with pytest.raises(CheckpointError, match=match):
        load_model(ckpt)
    with pytest.raises(CheckpointError, match=match):
        export_onnx(ckpt, tmp_path / "onnx")
    assert not (tmp_path / "onnx").exists()


def _calib_file(tmp_path: Path, **change) -> Path:
    path = save(calib_set(), tmp_path / "good.npz")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(change)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(tmp_path / "bad.npz", **arrays)
    return tmp_path / "bad.npz"


def test_calibration_sets_are_validated_on_read(tmp_path: Path) -> None:
    good = save(calib_set(), tmp_path / "ok.npz")
    assert len(read_calib(good).windows) == len(calib_set().windows)
    audio = np.load(good)["audio"]
    cases = {
        "NaN or Inf": {"audio": np.where(np.arange(len(audio)) == 5, np.nan, audio)},
        "peak amplitude": {"audio": audio * np.float32(1e30)},
        "holds 8000 Hz audio": {"sample_rate": np.int64(8000)},
        "lengths add up to": {"lengths": np.load(good)["lengths"] - 1},
        r"lacks \['meta'\]": {"meta": None},
        "expected float32": {"audio": audio.astype(np.float64)},
        "window lengths range": {"lengths": np.array([len(audio) - 100, 100])},
    }
    for match, change in cases.items():
        with pytest.raises(XyrtError, match=match):
            read_calib(_calib_file(tmp_path, **change))
    data = good.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.npz").write_text("not a zip")
    for name in ("cut.npz", "text.npz"):
        with pytest.raises(XyrtError, match=r"is not an xyrt calibration set[ :(]"):
            read_calib(tmp_path / name)


def test_stdin_rate_zero_and_empty_backend_list(tmp_path: Path, capsys, monkeypatch) -> None:
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\x00\x01" * 4000)))
    args = ["stream", "--model", str(exported("tiny_16k")), "--source", "-", "--rate", "0"]
    assert main(args) == 1
    assert "sample rate (--rate) must be a positive integer number of Hz, got 0" in err_line(capsys)
    assert main(["bench", "--backends", ",", "--checkpoint", str(CKPT)]) == 1
    assert "--backends names no backend" in err_line(capsys)


# -- errors that were not XyrtError ---------------------------------------------------------------
def _npy_header(shape: str, descr: str = "<i8") -> bytes:
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
    header += " " * (63 - len(header) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (_npy_header("(8, 3")[:-10] + b"\n", "cannot read codes from .*: .*expected a .npy file"),
        (_npy_header("(8, 8796093022208)"), r"header says shape \(8, 8796093022208\)"),
        (_npy_header("(8, 4)", "|O"), "a pickle.*allow_pickle"),
        (b"0 1 2 3\n4 5 6 7\n", "cannot read codes from"),
        (_npy_header("(8, 2)", "<f8") + bytes(128), "codes have dtype float64"),
    ],
    ids=["corrupt-header", "64TiB-shape", "pickle", "text", "float"],
)
def test_bad_code_files(tmp_path: Path, content: bytes, match: str) -> None:
    (tmp_path / "c.npy").write_bytes(content)
    with pytest.raises(CodesError, match=match):
        load_codes(tmp_path / "c.npy")


def _model_copy(tmp_path: Path) -> Path:
    out = tmp_path / "m"
    shutil.copytree(exported("tiny_16k"), out)
    return out


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda m: m.pop("output_sample_rate"), "missing key 'output_sample_rate'"),
        (lambda m: m["source_checkpoint"].pop("sha256"), "missing key 'source_checkpoint.sha256'"),
        (lambda m: m.update(num_quantizers="8"), "num_quantizers is '8', expected positive"),
        (lambda m: m["graphs"]["encoder"].update(sha256=None), "graphs.encoder.sha256 is None"),
        (lambda m: m["graphs"]["decoder"].pop("file"), "missing key 'graphs.decoder.file'"),
        (lambda m: m.update(graphs=[]), "graphs is list, expected an object"),
    ],
)
def test_manifest_is_checked_against_its_schema_at_read(tmp_path: Path, edit, match) -> None:
    model = _model_copy(tmp_path)
    manifest = json.loads((model / "manifest.json").read_text())
    edit(manifest)
    (model / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(XyrtError, match=f"manifest.json is damaged or was edited: {match}"):
        xyrt.runtime.load(model)


def test_graph_io_names_must_match_the_manifest(tmp_path: Path) -> None:
    model = _model_copy(tmp_path)
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["graphs"]["encoder"]["inputs"][0]["name"] = "audio"
    (model / "manifest.json").write_text(json.dumps(manifest))
    names = r"has inputs \['waveform', 'lengths'.*\], but .* \['audio'"
    with pytest.raises(XyrtError, match=names):
        xyrt.runtime.load(model).encode(SPEECH)


def test_unreadable_files_say_permission_denied(tmp_path: Path, monkeypatch) -> None:
    import xyrt.runtime.formats.audio as audio_module

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    wav = tmp_path / "a.wav"
    sf.write(wav, SPEECH, 16000)
    model = _model_copy(tmp_path)
    (tmp_path / "c.npy").write_bytes(_npy_header("(8, 2)") + bytes(128))
    with monkeypatch.context() as m:  # as root, chmod cannot deny: the OS error is simulated
        m.setattr(audio_module, "open", denied, raising=False)
        with pytest.raises(AudioError, match="cannot read audio file .*a.wav: Permission denied"):
            load_audio(wav)
    with monkeypatch.context() as m:
        m.setattr(Path, "read_text", denied)
        with pytest.raises(XyrtError, match="cannot read .*manifest.json: Permission denied"):
            xyrt.runtime.load(model)
    with monkeypatch.context() as m:
        m.setattr("builtins.open", denied)
        with pytest.raises(CodesError, match="cannot read codes from .*Permission denied"):
            load_codes(tmp_path / "c.npy")


@pytest.mark.parametrize("name", ["hop", "context", "lookahead"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_options(name: str, value: float) -> None:
    codec = xyrt.runtime.load(exported("tiny_16k"))
    with pytest.raises(XyrtError, match=f"{name} must be a finite number, got {value}"):
        codec.create_stream(**{name: value})


def test_non_finite_library_options() -> None:
    with pytest.raises(XyrtError, match="must be a finite number, got nan"):
        CalibOptions(max_minutes=math.nan)
    with pytest.raises(XyrtError, match="must be a finite number, got -inf"):
        CalibOptions(trim_db=-math.inf)
    with pytest.raises(XyrtError, match="target SNR .dB. must be a finite number"):
        SensitivityOptions(target_snr_db=math.nan)


@pytest.mark.parametrize(
    "args",
    [
        ["stream", "--model", "m", "--hop", "nan"],
        ["stream", "--model", "m", "--context", "inf"],
        ["stream", "--model", "m", "--lookahead=-inf"],
        ["calib", "-o", "c.npz", "--max-minutes", "nan"],
        ["calib", "-o", "c.npz", "--trim-db", "nan"],
        ["encode", "--model", "m", "x.wav", "-o", "c.npy", "--overlap", "nan"],
    ],
)
def test_cli_non_finite_floats(args, capsys) -> None:
    assert main(args) == 1
    option = next(a for a in args if a.startswith("--") and a not in ("--model",))
    assert f"{option.split('=')[0]} must be a finite number, got" in err_line(capsys)


def test_python_api_misuse() -> None:
    codec = xyrt.runtime.load(exported("tiny_16k"))
    stream = codec.create_stream()
    for samples in (None, 0.5):
        with pytest.raises(AudioError, match=r"samples must be an array of shape \(n,\)"):
            stream.accept_waveform(16000, samples)
    with pytest.raises(AudioError, match="sample_rate must be a positive integer number of Hz"):
        stream.accept_waveform(0, SPEECH)
    with pytest.raises(XyrtError, match="providers must be a list of names .* got 'cpu'"):
        xyrt.runtime.load(exported("tiny_16k"), providers="cpu")
    with pytest.raises(XyrtError, match="model must be a path .* got None"):
        xyrt.runtime.load(None)
    with pytest.raises(
        XyrtError, match="expected an EncodeStream from codec.create_stream.., got NoneType"
    ):
        codec.is_ready(None)
    with pytest.raises(XyrtError, match="expected a list of EncodeStreams"):
        codec.encode_streams(stream)


def test_threads_are_bounded_by_the_machine(tmp_path: Path, capsys) -> None:
    with pytest.raises(XyrtError, match=rf"threads must be at most {max_threads()} "):
        xyrt.runtime.load(exported("tiny_16k"), threads=100000)
    sf.write(tmp_path / "x.wav", SPEECH, 16000)
    args = ["encode", "--model", str(exported("tiny_16k")), "--threads", "100000"]
    assert main([*args, str(tmp_path / "x.wav"), "-o", str(tmp_path / "c.npy")]) == 1
    assert f"--threads must be at most {max_threads()}" in err_line(capsys)


def test_unreadable_audio_says_what_happened(tmp_path: Path) -> None:
    mp3 = tmp_path / "bad.mp3"
    mp3.write_bytes(b"ID3" + bytes(range(256)) * 10)
    with pytest.raises(AudioError, match="starts like MP3 but its data is corrupt"):
        load_audio(mp3)
    wav = tmp_path / "rate0.wav"
    sf.write(wav, SPEECH[:1600], 16000, subtype="PCM_16")
    data = bytearray(wav.read_bytes())
    data[24:28] = (0).to_bytes(4, "little")
    wav.write_bytes(bytes(data))
    with pytest.raises(AudioError, match="WAV header saying 0 Hz"):
        load_audio(wav)
    text = tmp_path / "notes.wav"
    text.write_text("hello\n")
    with pytest.raises(AudioError, match="it is a text file, not audio"):
        load_audio(text)


def test_outputs_that_are_directories_or_files_of_the_wrong_kind(tmp_path: Path, capsys) -> None:
    from xyrt.calib.trt_build import build_engines

    sf.write(tmp_path / "x.wav", SPEECH, 16000)
    model = str(exported("tiny_16k"))
    assert main(["encode", "--model", model, str(tmp_path / "x.wav"), "-o", str(tmp_path)]) == 1
    assert "it is a directory; expected a file name" in err_line(capsys)
    assert main(["bench", "--checkpoint", str(CKPT), "--json", str(tmp_path)]) == 1
    assert "it is a directory; expected a file name" in err_line(capsys)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("user")
    with pytest.raises(XyrtError, match="is not empty and is not an xyrt engine directory"):
        build_engines(model, mine)
    with pytest.raises(XyrtError, match="exists and is not a directory"):
        build_engines(model, tmp_path / "x.wav")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "x.wav"]
