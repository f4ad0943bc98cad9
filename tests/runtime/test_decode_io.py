"""`xyrt decode --stream`: JSONL frames from `xyrt stream` (file or stdin) -> a WAV written
progressively (complete or absent at its path), the same audio as the Python decode stream."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import xyrt.runtime
from helpers import exported, golden
from xyrt.errors import CodesError
from xyrt.runtime.formats.audio import write_wav
from xyrt.runtime.formats.frames import read_frames
from xyrt.runtime.realtime.decode_loop import WavWriter, run_decode

XYRT = str(Path(sys.executable).parent / "xyrt")


def _jsonl(codes: np.ndarray) -> str:
    return "".join(
        json.dumps({"index": i, "time": round(i * 0.08, 3), "codes": c.tolist()}) + "\n"
        for i, c in enumerate(codes.T)
    )


def test_frames_are_read_in_order_and_bad_lines_refused() -> None:
    codes = np.arange(24).reshape(8, 3)
    frames = list(read_frames(io.StringIO(_jsonl(codes) + "\n")))
    np.testing.assert_array_equal(np.stack(frames, axis=1), codes)
    good = json.dumps({"index": 0, "codes": list(range(8))})
    for text, match in [
        ("not json\n", "line 1: 'not json' is not a code frame"),
        ('{"index": 0}\n', "line 1: .* is not a code frame"),
        (good + "\n" + json.dumps({"index": 2, "codes": [0] * 8}), "index 2, expected 1"),
        (json.dumps({"index": 0, "codes": [0] * 7}), r"expected a list of 8 integers"),
        (json.dumps({"index": 0, "codes": [0.5] * 8}), r"expected a list of 8 integers"),
    ]:
        with pytest.raises(CodesError, match=match):
            list(read_frames(io.StringIO(text)))


def test_wav_is_complete_at_its_path_or_absent(tmp_path: Path) -> None:
    out = tmp_path / "a.wav"
    with WavWriter(out, 16000) as writer:
        writer.write(np.full(100, 0.25, np.float32))
        assert not out.exists()  # written beside it, under a hidden temporary name
        writer.write(np.full(50, -0.5, np.float32))
    audio, rate = sf.read(out, dtype="float32")
    assert rate == 16000 and len(audio) == 150 and audio[-1] == -0.5
    before = out.read_bytes()
    with pytest.raises(RuntimeError), WavWriter(out, 16000) as writer:
        writer.write(np.zeros(10, np.float32))
        raise RuntimeError("decoder failed")
    assert out.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["a.wav"]


def test_run_decode_equals_the_python_stream() -> None:
    codec = xyrt.runtime.load(exported("tiny_16k"))
    codes = golden("tiny_16k")["speech_2/codes_ov10"]
    pieces = []
    stats = run_decode(
        codec, read_frames(io.StringIO(_jsonl(codes))), codec.create_decode_stream(), pieces.append
    )
    direct = codec.create_decode_stream()
    for k in range(codes.shape[1]):
        direct.accept_codes(codes[:, k : k + 1])
        while codec.is_ready(direct):
            codec.decode_stream(direct)
    direct.input_finished()
    codec.decode_stream(direct)
    np.testing.assert_array_equal(np.concatenate(pieces), direct.pop_audio())
    assert stats.frames == codes.shape[1] and stats.first_audio is not None
    assert stats.audio_seconds == pytest.approx(codes.shape[1] * 0.08)


def test_cli_stream_then_decode_stream_from_a_file_and_a_pipe(tmp_path: Path) -> None:
    model = str(exported("tiny_16k"))
    wav = write_wav(tmp_path / "in.wav", golden("tiny_16k")["speech_2/wav"], 16000)
    frames = tmp_path / "codes.jsonl"
    run = subprocess.run(
        [XYRT, "stream", "--model", model, "--source", str(wav), "-o", str(frames)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    n = len(frames.read_text().splitlines())
    out = tmp_path / "out.wav"
    decode = [XYRT, "decode", "--model", model, "--stream", "--context", "1", "--hop", "0.16"]
    run = subprocess.run([*decode, str(frames), "-o", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert f"summary: frames {n}" in run.stderr
    audio, rate = sf.read(out, dtype="float32")
    assert rate == 16000 and len(audio) == n * 1280
    piped = tmp_path / "piped.wav"
    run = subprocess.run(
        [*decode, "-", "-o", str(piped)], input=frames.read_text(), capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    np.testing.assert_array_equal(sf.read(piped, dtype="float32")[0], audio)


def test_cli_decode_stream_errors(tmp_path: Path) -> None:
    model = str(exported("tiny_16k"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(_jsonl(np.zeros((8, 5), np.int64)) + '{"index": 9, "codes": [0]}\n')
    out = tmp_path / "out.wav"
    cmd = [XYRT, "decode", "--model", model, "--stream"]
    run = subprocess.run([*cmd, str(bad), "-o", str(out)], capture_output=True, text=True)
    assert run.returncode == 1 and "line 6: frame index 9, expected 5" in run.stderr
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl"]
    run = subprocess.run([*cmd, str(bad)], capture_output=True, text=True)
    assert run.returncode == 2 and "needs -o/--output" in run.stderr
    run = subprocess.run(
        [*cmd, str(bad), "-o", str(out), "--context", "nan"], capture_output=True, text=True
    )
    assert run.returncode == 1 and "context must be a finite number" in run.stderr
    run = subprocess.run([*cmd, "-", "-o", str(out)], input="", capture_output=True, text=True)
    assert run.returncode == 1 and "no code frames in -" in run.stderr and not out.exists()


def test_options_are_checked_before_the_model_loads(capsys) -> None:
    from xyrt.cli import main

    argv = ["decode", "--model", "/nonexistent", "--stream", "-", "-o", "x.wav", "--hop", "0.05"]
    assert main(argv) == 1
    assert "hop must be a positive multiple of 0.08 s" in capsys.readouterr().err


def test_ctrl_c_keeps_every_frame_received_in_a_complete_wav(tmp_path: Path) -> None:
    import signal
    import time

    out = tmp_path / "out.wav"
    proc = subprocess.Popen(
        [XYRT, "decode", "--model", str(exported("tiny_16k")), "--stream", "-", "-o", str(out)],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stdin.write(_jsonl(golden("tiny_16k")["speech_3/codes_ov10"][:, :20]))
    proc.stdin.flush()  # 20 frames, then the writer keeps the pipe open
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # until 16 frames' audio is in the temporary file (the
        # default hop 0.32 s, lookahead 0.16 s decode 16 of 20 before the input ends)
        tmp = [p for p in tmp_path.iterdir() if p.name.startswith(".out.wav.")]
        if tmp and tmp[0].stat().st_size >= 16 * 1280 * 4:
            break
        time.sleep(0.1)
    assert not out.exists()
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 0, err
    assert "summary: frames 20" in err and len(sf.read(out)[0]) == 20 * 1280
