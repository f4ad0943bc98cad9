"""Parts of ``xyrt serve`` without Ray: options and command-line refusals before Ray starts,
body limits, the stream hub stepping several sessions in one batch, the batch fallback."""

from __future__ import annotations

import asyncio
import json
import socket

import numpy as np
import pytest

from helpers import exported

pytest.importorskip("ray.serve", reason="xyrt[serve] (ray[serve]) is not installed")

from xyrt.cli import main  # noqa: E402
from xyrt.data import speech_clip  # noqa: E402
from xyrt.errors import XyrtError  # noqa: E402
from xyrt.runtime import Options  # noqa: E402
from xyrt.serve.options import ServeOptions  # noqa: E402
from xyrt.serve.requests import BodyTooLarge, read_body  # noqa: E402


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"replicas": 0}, "--replicas must be an integer >= 1, got 0"),
        ({"max_batch": 0}, "--batch-size must be an integer >= 1, got 0"),
        ({"max_delay_ms": -1.0}, "--max-delay-ms must be >= 0, got -1"),
        ({"max_body_mb": 0.0}, "--max-body-mb must be > 0, got 0"),
        ({"load": Options(threads=0)}, "--threads must be at least 1, got 0"),
    ],
)
def test_bad_options_are_refused(kwargs, message):
    with pytest.raises(XyrtError, match=message):
        ServeOptions("m", **kwargs)


def _error(args: list[str], capsys) -> str:
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    return err


def test_serve_refuses_before_ray_starts(tmp_path, capsys):
    import ray

    err = _error(["serve", "--model", str(tmp_path / "nope")], capsys)
    assert "model not found" in err
    with socket.socket() as s:  # a port in use
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        err = _error(["serve", "--model", str(exported("tiny_16k")), "--port", str(port)], capsys)
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert not ray.is_initialized()


def test_client_errors_are_one_line(tmp_path, capsys):
    from xyrt.data import bundled_speech

    mp3 = str(bundled_speech()["speech_0"])
    err = _error(
        ["encode", "--server", "localhost:8000", mp3, "-o", str(tmp_path / "c.npy")], capsys
    )
    assert "expected http://HOST:PORT" in err
    with socket.socket() as s:  # nothing listens there
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    err = _error(["encode", "--server", url, mp3, "-o", str(tmp_path / "c.npy")], capsys)
    assert f"cannot reach the xyrt server at {url}" in err
    err = _error(["stream", "--server", url, "--loopback", "--source", mp3], capsys)
    assert "--loopback applies to a local model" in err


async def _chunks(parts):
    for p in parts:
        yield p


def test_body_limits():
    assert asyncio.run(read_body(_chunks([b"ab", b"cd"]), "4", 4)) == b"abcd"
    with pytest.raises(BodyTooLarge, match="limit of 1 MiB"):
        asyncio.run(read_body(_chunks([]), str(2**20 + 1), 2**20))  # declared: nothing read
    with pytest.raises(BodyTooLarge):
        asyncio.run(read_body(_chunks([b"x" * 3, b"x" * 3]), None, 4))  # received


def test_hub_steps_sessions_together_with_the_codes_of_a_lone_stream():
    """Three encode sessions fed in different chunkings, stepped by one hub: each gets the frames
    a lone stream gets, and the hub ran batched steps (fewer model calls than steps)."""
    import xyrt.runtime
    from xyrt.runtime.streams.encode_stream import EncodeStream, EncodeStreamOptions
    from xyrt.serve.batching import ModelThread
    from xyrt.serve.streams import Close, StreamHub

    codec = xyrt.runtime.load(exported("tiny_16k"))
    clips = [speech_clip(s) for s in (1.5, 2.0, 2.6)]
    want = []
    for clip in clips:
        stream = codec.create_stream()
        stream.accept_waveform(16000, clip)
        stream.input_finished()
        while codec.is_ready(stream):
            codec.encode_stream(stream)
        want.append([f.codes.tolist() for f in stream.pop_codes()])

    calls = []
    step = codec.encode_streams
    codec.encode_streams = lambda streams: calls.append(len(streams)) or step(streams)

    async def run() -> list[list]:
        hub = StreamHub(codec, ModelThread(), max_streams=3)
        opts = EncodeStreamOptions()
        sessions = [hub.open("encode", lambda: EncodeStream(opts)) for _ in clips]
        for k, (session, clip) in enumerate(zip(sessions, clips, strict=True)):
            size = 1000 * (k + 1)
            for i in range(0, len(clip), size):
                session.receive({"bytes": clip[i : i + size].astype("<f4").tobytes()})
            session.receive({"text": json.dumps({"type": "end"})})
        await hub.step_all()
        out = []
        for session in sessions:
            items = []
            while not isinstance(item := session.outbox.get_nowait(), Close):
                items.append(json.loads(item))
            assert items[-1]["type"] == "done" and item == Close()
            out.append([m["codes"] for m in items[:-1]])
        return out

    got = asyncio.run(run())
    assert got == want
    assert max(calls) == 3 and len(calls) < sum(len(w) for w in want) // 4


def test_a_failing_batch_fails_only_the_request_at_fault():
    from xyrt.serve.batching import each

    def fn(items):
        if any(x < 0 for x in items):
            raise ValueError("negative")
        return [x * 2 for x in items]

    out = each(fn, [1, -1, 3])
    assert out[0] == 2 and out[2] == 6 and isinstance(out[1], ValueError)
    assert np.array_equal(each(fn, [1, 2]), [2, 4])


def test_the_next_batch_takes_every_request_waiting_when_the_model_is_free():
    """Requests that arrive while a batch runs are all in the next one (up to max_batch), each
    gets its own result, a failing one only its own error, and a lone request waits at most
    the delay."""
    import threading
    import time

    from xyrt.serve.batching import BatchQueue, ModelThread

    sizes: list[int] = []
    release = threading.Event()

    def fn(items: list) -> list:
        sizes.append(len(items))
        if len(sizes) == 1:
            release.wait(10)  # the first batch runs until the others have queued
        if any(x < 0 for x in items):
            raise ValueError("negative")
        return [x * 10 for x in items]

    async def run() -> list:
        queue = BatchQueue(fn, ModelThread(), max_batch=4, max_delay_s=0.005)
        first = asyncio.ensure_future(queue.submit(0))
        while not sizes:
            await asyncio.sleep(0.001)
        later = [asyncio.ensure_future(queue.submit(x)) for x in (1, 2, -3, 4, 5, 6)]
        await asyncio.sleep(0.05)  # far longer than the delay: they still wait for the model
        release.set()
        out = await asyncio.gather(first, *later, return_exceptions=True)
        t = time.monotonic()
        alone = await queue.submit(7)
        return [out, alone, time.monotonic() - t]

    out, alone, waited = asyncio.run(run())
    assert sizes == [1, 4, 1, 1, 1, 1, 2, 1], sizes  # the failing batch of 4 rerun one by one
    assert out[0] == (0, 1)
    assert [o if isinstance(o, tuple) else "error" for o in out[1:]] == [
        (10, 4), (20, 4), "error", (40, 4), (50, 2), (60, 2)
    ]  # fmt: skip
    assert isinstance(out[3], ValueError)
    assert alone == (70, 1) and waited < 5


def test_a_batch_with_the_wrong_number_of_results_fails_its_requests_not_the_queue():
    """fn answering a batch with too few results: each of its requests gets an error, and the
    next request is still served (the queue's task did not die)."""
    from xyrt.serve.batching import BatchQueue, ModelThread

    def fn(items: list) -> list:
        return [x * 10 for x in items][: 1 if 99 in items else None]

    async def run() -> list:
        queue = BatchQueue(fn, ModelThread(), max_batch=2, max_delay_s=0.05)
        bad = await asyncio.gather(queue.submit(99), queue.submit(1), return_exceptions=True)
        return [bad, await asyncio.wait_for(queue.submit(2), 10)]

    bad, good = asyncio.run(run())
    assert all(isinstance(b, RuntimeError) and "1 results for a batch of 2" in str(b) for b in bad)
    assert good == (20, 1)


def test_load_benchmark_direct_form_times_the_batched_model_call(tmp_path):
    """benchmarks/serve_load.py --direct (the replica's model call without Ray, for a GPU host
    Ray cannot be carried to): one report row per batch size, encode and decode timed."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "benchmarks" / "serve_load.py"
    out = tmp_path / "direct.json"
    cmd = [sys.executable, str(script), "--model", str(exported("tiny_16k")), "--direct", "1,3"]
    cmd += ["--seconds", "1", "--runs", "1", "--threads", "1", "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())["direct"]
    assert report["backend"] == "onnxruntime" and report["device"] == "cpu", report
    assert [c["requests"] for c in report["cases"]] == [1, 3]
    for case in report["cases"]:
        for part in ("encode", "decode"):
            timing = case[part]
            assert timing["singles_s"] > 0 and timing["batched_s"] > 0, case
            assert timing["batch_gain"] == pytest.approx(
                timing["singles_s"] / timing["batched_s"], rel=0.05, abs=0.01
            )


def test_a_proxy_that_dies_while_starting_is_waited_for_again(monkeypatch):
    """Ray Serve kills an HTTP proxy that is not ready in time (a busy machine); serve.start()
    then raises ActorDiedError or TimeoutError. xyrt serve tries again (the controller restarts
    the proxy), and after the last try says what happened and what to change."""
    import ray
    from ray import serve

    from xyrt.serve import server

    calls: list[dict] = []

    def dies(times):
        def start(**kwargs):
            calls.append(kwargs)
            if len(calls) <= times:
                raise (ray.exceptions.ActorDiedError() if len(calls) % 2 else TimeoutError())

        return start

    monkeypatch.setattr(serve, "start", dies(server.START_TRIES - 1))
    server.start_serve("127.0.0.1", 8123)
    assert len(calls) == server.START_TRIES
    assert calls[-1]["http_options"] == {"host": "127.0.0.1", "port": 8123}

    calls.clear()
    monkeypatch.setattr(serve, "start", dies(server.START_TRIES))
    with pytest.raises(XyrtError, match=f"HTTP proxy did not start \\({server.START_TRIES} tries"):
        server.start_serve("127.0.0.1", 8123)
    assert len(calls) == server.START_TRIES


def test_options_reach_a_replica_whole():
    """What `build` binds (`to_dict`) gives each replica the same options, the backend's
    `Options` value included (a replica rebuilt them from a dict: every deployment failed)."""
    options = ServeOptions("m", load=Options(providers=("cpu",), threads=2), max_batch=3)
    again = ServeOptions(**options.to_dict())
    assert again == options and isinstance(again.load, Options)
