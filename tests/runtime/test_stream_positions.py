"""Streams follow the offline plan: window positions, the offline window's bounds and its log-mel
floor (issue: streaming that matches offline). Tiny models; ONNX Runtime, OpenVINO and torch."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import xyrt.runtime
from helpers import FIXTURES, exported, golden
from xyrt.errors import XyrtError
from xyrt.runtime.chunking import decode_plan, offline_window
from xyrt.runtime.features import REFERENCE_MARGIN, LogMelPeaks
from xyrt.runtime.graph_io import (
    LOG_MEL_MIN,
    MEL_REFERENCE,
    OPTIONAL_INPUTS,
    POSITIONS,
    encoder_feed,
    has_window_inputs,
    pack_windows,
)

OVERLAP = 29.2  # offline windows every 0.8 s (10 codes): a 4 s clip spans five of them


def stream_codes(codec, wav, cuts, **options) -> np.ndarray:
    stream = codec.create_stream(**options)
    for piece in np.split(wav, cuts):
        stream.accept_waveform(16000, piece)
        while codec.is_ready(stream):
            codec.encode_stream(stream)
    stream.input_finished()
    while codec.is_ready(stream):
        codec.encode_stream(stream)
    return np.stack([f.codes for f in stream.pop_codes()], axis=1)


def stream_audio(codec, codes, cuts, **options) -> np.ndarray:
    stream = codec.create_decode_stream(**options)
    out = []
    for piece in np.split(codes, cuts, axis=1):
        stream.accept_codes(piece)
        while codec.is_ready(stream):
            codec.decode_stream(stream)
        out.append(stream.pop_audio())
    stream.input_finished()
    while codec.is_ready(stream):
        codec.decode_stream(stream)
    return np.concatenate([*out, stream.pop_audio()])


def test_offline_window_is_the_plan_window_that_keeps_the_frame() -> None:
    for overlap in (0.0, 10.0, OVERLAP):
        plan = decode_plan(2000, overlap)
        for frame in range(0, 2000, 7):
            window = offline_window(frame, overlap)
            owner = [w for w in plan if w.start <= frame < w.start + w.keep][0]
            assert (window.start, window.keep) == (owner.start, owner.keep)
            assert window.stop == window.start + 375


def test_mel_peaks_reference_is_the_front_ends_maximum() -> None:
    wav = golden("tiny_16k")["speech_4/wav"]
    peaks = LogMelPeaks()
    for lo in range(0, len(wav), 3000):  # arrival in pieces gives the same frames
        peaks.update(wav, 0, min(len(wav), lo + 3000))
    from xyrt.runtime.network.frontend import LogMel

    torch = pytest.importorskip("torch")
    mel, _ = LogMel()(torch.from_numpy(np.pad(wav, (0, 1280)))[None], torch.tensor([len(wav)]))
    top = float(mel.max()) * 4 - 4  # undo (x + 4) / 4
    assert peaks.reference(0, len(wav)) == pytest.approx(top - REFERENCE_MARGIN, abs=2e-4)
    assert peaks.reference(0, 300) == LOG_MEL_MIN  # no frame wholly inside
    quiet = peaks.reference(0, 4000)
    assert LOG_MEL_MIN < quiet < peaks.reference(0, len(wav))


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_positions_and_reference_are_live_and_agree_with_torch(backend: str) -> None:
    if backend == "openvino":
        pytest.importorskip("openvino")
    codec = xyrt.runtime.load(exported("tiny_16k"), backend=backend)
    torch_codec = xyrt.runtime.load(FIXTURES / "tiny_16k" / "model.ckpt", backend="torch")
    wav = golden("tiny_16k")["speech_4/wav"][: 30 * 1280]
    batch, lengths = pack_windows([wav, wav[:25600]])
    at = (np.array([0, 0]), np.array([200, 340]))
    refs = (None, np.array([-1.0, 0.5], np.float32))
    results = {}
    for name, c in (("graph", codec), ("torch", torch_codec)):
        for k, (pos, ref) in enumerate(zip(at, refs, strict=True)):
            results[name, k] = c.backend.encode_window(batch, lengths, pos, ref)
    for k in range(2):
        same = (results["graph", k] == results["torch", k]).mean()
        assert same > 0.99, f"case {k}: ONNX and torch agree on {same:.1%} of codes"
    assert (results["graph", 0] != results["graph", 1]).mean() > 0.2  # the inputs are used
    codes = results["graph", 0][:, :1, :30]
    audio = {
        (name, p): c.backend.decode_window(codes, np.array([p]))
        for name, c in (("graph", codec), ("torch", torch_codec))
        for p in (0, 300)
    }
    for p in (0, 300):
        np.testing.assert_allclose(audio["graph", p], audio["torch", p], atol=1e-4, rtol=0)
    assert np.abs(audio["graph", 0] - audio["graph", 300]).max() > 1e-3


def test_positions_outside_the_window_are_refused() -> None:
    wav = np.zeros((1, 12800), np.float32)
    with pytest.raises(XyrtError, match="position 370"):
        encoder_feed(wav, np.array([12800]), np.array([370]))
    with pytest.raises(XyrtError, match="expected 1"):
        encoder_feed(wav, np.array([12800]), np.array([0, 1]))


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino", "torch"])
def test_streams_covering_their_offline_windows_equal_offline(backend: str) -> None:
    """Context back to each offline window's start and lookahead to the clip's end: every step
    encodes exactly an offline window, across five of them (overlap 29.2 s)."""
    if backend == "openvino":
        pytest.importorskip("openvino")
    model = FIXTURES / "tiny_16k" / "model.ckpt" if backend == "torch" else exported("tiny_16k")
    codec = xyrt.runtime.load(model, backend=backend)
    wav = golden("tiny_16k")["speech_4/wav"]  # 3.6 s
    offline = codec.encode(wav, overlap=OVERLAP)
    opts = dict(hop=0.32, context=0.8, lookahead=4.0, overlap=OVERLAP)
    np.testing.assert_array_equal(stream_codes(codec, wav, [5000, 20000], **opts), offline)
    codes = golden("tiny_16k")["speech_4/codes_ov10"]
    audio = codec.decode(codes, overlap=OVERLAP)
    streamed = stream_audio(codec, codes, [3, 20], **opts)
    np.testing.assert_allclose(streamed, audio, rtol=0, atol=1e-5 * np.abs(audio).max())


def test_short_context_streams_give_positions_and_differ_from_the_old_behaviour() -> None:
    codec = xyrt.runtime.load(exported("tiny_16k"))
    wav = golden("tiny_16k")["speech_4/wav"]
    stream = codec.create_stream(hop=0.32, context=0.32, lookahead=0.16, overlap=OVERLAP)
    stream.accept_waveform(16000, wav)
    positions = []
    while stream.ready():
        step = stream.plan()
        positions.append(step.position)
        assert step.mel_reference > LOG_MEL_MIN
        codes = codec.backend.encode_window(
            *pack_windows([step.samples]), [step.position], [step.mel_reference]
        )
        stream.complete(step, codes[:, 0])
    assert max(positions) > 0 and min(positions) == 0
    new = stream_codes(codec, wav, [], hop=0.32, context=0.32, lookahead=0.16, overlap=OVERLAP)
    old = stream_codes(  # no overlap: the old behaviour follows no offline windows
        codec, wav, [], hop=0.32, context=0.32, lookahead=0.16, match_offline=False,
    )  # fmt: skip
    assert new.shape == old.shape and (new != old).any()


def _strip_window_inputs(src: Path, dst: Path) -> Path:
    """A copy of an export as xyrt wrote it before the window inputs: the graphs take only
    waveform/codes and lengths (the inputs become constants 0 and LOG_MEL_MIN)."""
    import onnx
    from onnx import helper, numpy_helper

    from xyrt.runtime.modeldir.manifest import graph_entry

    shutil.copytree(src, dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    for name, entry in manifest["graphs"].items():
        path = dst / entry["file"]
        model = onnx.load(str(path))
        for inp in [i for i in model.graph.input if i.name in OPTIONAL_INPUTS]:
            model.graph.input.remove(inp)
            value = np.array([0] if inp.name == POSITIONS else [LOG_MEL_MIN])
            dtype = np.int64 if inp.name == POSITIONS else np.float32
            model.graph.initializer.append(numpy_helper.from_array(value.astype(dtype), inp.name))
        onnx.save(model, str(path))
        io = {
            "inputs": [i for i in entry["inputs"] if i["name"] not in OPTIONAL_INPUTS],
            "outputs": entry["outputs"],
        }
        manifest["graphs"][name] = graph_entry(path, io)
    assert helper  # the graphs stay valid ONNX
    (dst / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return dst


def test_exports_without_window_inputs_keep_working(tmp_path: Path) -> None:
    from xyrt.export.verify import window_inputs_note

    old_dir = _strip_window_inputs(exported("tiny_16k"), tmp_path / "old")
    old, new = xyrt.runtime.load(old_dir), xyrt.runtime.load(exported("tiny_16k"))
    inputs = [codec.backend.graph_inputs for codec in (old, new)]
    assert [all(has_window_inputs(i[g], g) for g in i) for i in inputs] == [False, True]
    wav = golden("tiny_16k")["speech_4/wav"]
    np.testing.assert_array_equal(old.encode(wav), new.encode(wav))
    opts = dict(hop=0.32, context=0.32, lookahead=0.16, overlap=OVERLAP)
    assert stream_codes(old, wav, [], **opts).shape == new.encode(wav).shape
    assert "predate the window inputs" in window_inputs_note(old_dir)
    assert window_inputs_note(exported("tiny_16k")) is None
    assert MEL_REFERENCE not in old.backend.graph_inputs["encoder"]


def test_decode_settings_have_one_set_of_names(capsys) -> None:
    from xyrt.cli import build_parser, main
    from xyrt.commands import decode_stream_settings

    parser = build_parser()
    short = parser.parse_args(["decode", "--model", "m", "c.jsonl", "--stream", "--context", "1"])
    long = parser.parse_args(
        ["decode", "--model", "m", "c.jsonl", "--stream", "--decode-context=1"]
    )
    assert decode_stream_settings(short) == decode_stream_settings(long)
    assert decode_stream_settings(short)["context"] == 1.0
    loop = parser.parse_args(
        ["stream", "--model", "m", "--loopback", "--decode-lookahead", "0.32", "--overlap", "5"]
    )
    got = decode_stream_settings(loop, loop.hop)
    assert (got["lookahead"], got["context"], got["overlap"]) == (0.32, 2.0, 5.0)
    for argv, hint in (
        (["stream", "--model", "m", "--source", "x.wav", "--max-hop", "1"], "--loopback"),
        (["decode", "--model", "m", "c.npy", "-o", "a.wav", "--decode-context", "1"], "--stream"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2 and hint in capsys.readouterr().err
