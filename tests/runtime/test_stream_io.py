"""Streaming sources, sinks and `xyrt stream`: files, stdin PCM, a real PortAudio device
(PulseAudio null sink), Ctrl-C."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import xyrt.runtime
from helpers import exported, golden
from xyrt.runtime.formats.audio import write_wav
from xyrt.runtime.realtime.encode_loop import FileSource, JsonlSink, PcmSource, run_stream

XYRT = str(Path(sys.executable).parent / "xyrt")


def _frames(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_file_and_stdin_pcm_sources_give_the_same_codes(tmp_path: Path) -> None:
    pcm = (golden("tiny_16k")["speech_4/wav"] * 32767).astype("<i2")
    wav = pcm.astype(np.float32) / 32768.0  # the same samples the PCM path decodes
    path = write_wav(tmp_path / "a.wav", wav, 16000)
    codec = xyrt.runtime.load(exported("tiny_16k"))
    outs = []
    for source in (FileSource(path), PcmSource(io.BytesIO(pcm.tobytes()))):
        buf = io.StringIO()
        stats = run_stream(codec, source, JsonlSink(buf), codec.create_stream())
        outs.append(_frames(buf.getvalue()))
        assert stats.frames == len(wav) // 1280 and stats.overruns == 0
        assert len(stats.latencies_ms) == stats.frames
    file_frames, pcm_frames = outs
    assert [f["index"] for f in file_frames] == list(range(len(wav) // 1280))
    assert [f["time"] for f in file_frames][:3] == [0.0, 0.08, 0.16]
    assert file_frames == pcm_frames


def test_cli_stream_from_file_and_stdin(tmp_path: Path) -> None:
    wav = golden("tiny_16k")["speech_2/wav"]
    path = write_wav(tmp_path / "a.wav", wav, 16000)
    model = str(exported("tiny_16k"))
    out = tmp_path / "codes.jsonl"
    run = subprocess.run(
        [XYRT, "stream", "--model", model, "--source", str(path), "-o", str(out)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert len(_frames(out.read_text())) == len(wav) // 1280 and "summary: frames 59" in run.stderr
    pcm = (wav * 32767).astype("<i2").tobytes()
    run = subprocess.run(
        [XYRT, "stream", "--model", model, "--source", "-", "--hop", "0.16"],
        input=pcm,
        capture_output=True,
    )
    assert run.returncode == 0 and len(_frames(run.stdout.decode())) == len(wav) // 1280


def read_until(pipe, done, timeout: float) -> str:
    """Text read from a subprocess's ``pipe`` (raw reads, nothing left buffered) until
    ``done(text)``; fails after ``timeout`` s or at end of file."""
    import selectors

    text, deadline = b"", time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(pipe, selectors.EVENT_READ)
        while not done(text.decode(errors="replace")):
            left = deadline - time.monotonic()
            assert left > 0, f"not seen within {timeout} s; got {text[-300:]!r}"
            if sel.select(left):
                chunk = os.read(pipe.fileno(), 1 << 16)
                assert chunk, f"the process ended first; got {text[-300:]!r}"
                text += chunk
    return text.decode()


def test_ctrl_c_stops_cleanly_with_every_complete_frame(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            XYRT,
            "stream",
            "--model",
            str(exported("tiny_16k")),
            "--source",
            "-",
            "--hop",
            "0.08",
            "--lookahead",
            "0",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    pcm = (golden("tiny_16k")["speech_3/wav"][:32000] * 32767).astype("<i2").tobytes()
    proc.stdin.write(pcm)  # 2 s = 25 frames, then the writer keeps the pipe open
    proc.stdin.flush()
    # synchronised on what it reports: Ctrl-C once it has printed all 25 frames (JsonlSink
    # flushes each line), however long a loaded machine takes to get there
    head = read_until(proc.stdout, lambda text: len(_frames(text)) >= 25, timeout=120)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    frames = _frames(head + out.decode())
    assert proc.returncode == 0, err.decode()
    assert [f["index"] for f in frames] == list(range(25))
    assert "summary: frames 25" in err.decode()


@pytest.fixture(scope="module")
def pulse_device() -> str:
    """A real PortAudio input: PulseAudio with a null sink, recording the sink's monitor."""
    if shutil.which("pulseaudio") is None or shutil.which("paplay") is None:
        pytest.skip("PulseAudio is not installed (.ci/run installs pulseaudio, pulseaudio-utils)")
    if subprocess.run(["pulseaudio", "--check"]).returncode != 0:
        subprocess.run(
            [
                "pulseaudio",
                "-D",
                "--exit-idle-time=-1",
                "--disallow-exit",
                "-n",
                "--load=module-native-protocol-unix",
                "--load=module-null-sink sink_name=vsink",
            ],
            capture_output=True,
        )
        deadline = time.monotonic() + 30  # until the daemon answers (polled, not assumed)
        while subprocess.run(["pactl", "info"], capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                pytest.skip("PulseAudio did not start within 30 s")
            time.sleep(0.1)
    if (
        "vsink"
        not in subprocess.run(
            ["pactl", "list", "short", "sinks"], capture_output=True, text=True
        ).stdout
    ):
        subprocess.run(
            ["pactl", "load-module", "module-null-sink", "sink_name=vsink"], capture_output=True
        )
    subprocess.run(["pactl", "set-default-source", "vsink.monitor"], capture_output=True)
    try:
        import sounddevice as sd
    except OSError as exc:
        pytest.skip(f"PortAudio library missing ({exc}); .ci/run installs libportaudio2")
    names = [d["name"] for d in sd.query_devices()]
    if "pulse" not in names:
        pytest.skip(f"PortAudio lists no 'pulse' device (found {names})")
    return "pulse"


def test_microphone_through_a_real_portaudio_device(pulse_device: str, tmp_path: Path) -> None:
    speech = write_wav(tmp_path / "speech.wav", golden("tiny_16k")["speech_1/wav"], 16000)
    out = tmp_path / "mic.jsonl"
    proc = subprocess.Popen(
        [
            XYRT,
            "stream",
            "--model",
            str(exported("tiny_16k")),
            "--source",
            "mic",
            "--input-device",
            pulse_device,
            "--rate",
            "16000",
            "--duration",
            "3",
            "-o",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    # play the speech once xyrt says it is recording (not after a guessed delay)
    head = read_until(proc.stderr, lambda text: "recording from" in text, timeout=60)
    player = subprocess.Popen(["paplay", "--device=vsink", str(speech)])
    stdout, rest = proc.communicate(timeout=60)
    player.wait(timeout=30)
    run = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, head + rest.decode())
    assert run.returncode == 0, run.stderr
    frames = _frames(out.read_text())
    assert len(frames) >= 35  # 3 s = 37 frames (the device may deliver a block less)
    assert [f["index"] for f in frames] == list(range(len(frames)))
    assert all(0 <= c < 1024 for f in frames for c in f["codes"])
    assert len({f["codes"][0] for f in frames}) > 5, "speech, not silence, was recorded"
    assert "overruns 0" in run.stderr


class _Recorder:
    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []

    def play(self, audio: np.ndarray) -> None:
        self.chunks.append(audio)


def test_loopback_plays_the_decode_stream_of_every_frame() -> None:
    from xyrt.runtime.realtime.encode_loop import LoopbackSink

    codec = xyrt.runtime.load(exported("tiny_16k"))
    wav = golden("tiny_16k")["speech_4/wav"]
    player, inner = _Recorder(), io.StringIO()
    sink = LoopbackSink(codec, JsonlSink(inner), player, codec.create_decode_stream(hop=0.32))
    stats = run_stream(
        codec,
        PcmSource(io.BytesIO((wav * 32767).astype("<i2").tobytes())),
        sink,
        codec.create_stream(hop=0.32),
    )
    sink.flush()
    assert stats.frames == 44 and len(_frames(inner.getvalue())) == 44
    assert sum(len(c) for c in player.chunks) == 44 * 1280 == sink.samples_played
    assert len(player.chunks) > 5, "audio is played while the codes are produced"
    codes = np.array([f["codes"] for f in _frames(inner.getvalue())]).T
    replay = codec.create_decode_stream(hop=0.32)  # the same steps: frame by frame
    for k in range(codes.shape[1]):
        replay.accept_codes(codes[:, k : k + 1])
        while codec.is_ready(replay):
            codec.decode_stream(replay)
    replay.input_finished()
    codec.decode_stream(replay)
    np.testing.assert_array_equal(np.concatenate(player.chunks), replay.pop_audio())


def test_cli_loopback_on_a_real_device(pulse_device: str, tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav", golden("tiny_16k")["speech_5/wav"], 16000)
    run = subprocess.run(
        [
            XYRT,
            "stream",
            "--model",
            str(exported("tiny_16k")),
            "--source",
            str(path),
            "--loopback",
            "--output-device",
            pulse_device,
            "-o",
            str(tmp_path / "c.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert len(_frames((tmp_path / "c.jsonl").read_text())) == 40


def test_cli_decode_stream_plays_on_a_real_device(pulse_device: str, tmp_path: Path) -> None:
    frames = tmp_path / "c.jsonl"
    codes = golden("tiny_16k")["speech_5/codes_ov10"]
    frames.write_text(
        "".join(json.dumps({"index": i, "codes": c.tolist()}) + "\n" for i, c in enumerate(codes.T))
    )
    run = subprocess.run(
        [
            XYRT,
            "decode",
            "--model",
            str(exported("tiny_16k")),
            "--stream",
            str(frames),
            "--play",
            "--output-device",
            pulse_device,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert f"summary: frames {codes.shape[1]}" in run.stderr
