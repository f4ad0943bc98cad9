"""``xyrt serve`` end to end: one server (``xyrt serve`` in a subprocess, its own local Ray with
2 CPUs, 2 replicas of the tiny ONNX model) for the module. HTTP and WebSocket results equal the
library and ``xyrt stream``; 16 concurrent clients; bad requests get 4xx and the CLI's one-line
messages; a killed replica is restarted with no request lost silently; SIGTERM drains an open
stream and stops the local Ray (last test)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from serving import Server

from helpers import exported

pytest.importorskip("ray.serve", reason="xyrt[serve] (ray[serve]) is not installed")
sync_client = pytest.importorskip("websockets.sync.client", reason="websockets is not installed")
sf = pytest.importorskip("soundfile", reason="xyrt[audio] is not installed")

import xyrt.runtime  # noqa: E402
from xyrt.cli import main  # noqa: E402
from xyrt.client import Client, ServerError  # noqa: E402
from xyrt.data import bundled_speech, speech_clip  # noqa: E402
from xyrt.errors import XyrtError  # noqa: E402
from xyrt.runtime.formats.audio import load_audio  # noqa: E402

MAX_STREAMS = 2  # per replica


@pytest.fixture(scope="module")
def model() -> Path:
    return exported("tiny_16k")


@pytest.fixture(scope="module")
def server(model):
    args = ["serve", "--model", str(model), "--replicas", "2", "--threads", "1", "--max-body-mb"]
    args += ["1", "--max-streams", str(MAX_STREAMS), "--max-delay-ms", "20"]
    srv = Server(args)
    try:
        srv.wait_serving()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def codec(model):
    return xyrt.runtime.load(model)


@pytest.fixture(scope="module")
def client(server) -> Client:
    return Client(server.url, timeout=60)


def _post(url: str, body: bytes, ctype: str = "application/octet-stream"):
    """(status, JSON or bytes) of a raw POST."""
    req = urllib.request.Request(url, body, {"Content-Type": ctype}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_health_and_info(client, model):
    from xyrt.serve.options import ServeOptions, check

    assert client.health() == {"status": "ok"}
    info = client.info()
    identity = check(ServeOptions(str(model))).identity
    assert {k: info[k] for k in identity} == identity
    assert info["backend"] == "onnxruntime[cpu]" and info["precision"] == "fp32"
    assert info["limits"]["max_body_bytes"] == 2**20 and info["limits"]["max_streams"] == 2
    assert info["limits"]["max_batch"] == 4  # the CPU backend's preferred batch
    assert info["output_sample_rate"] == 16000 and info["num_quantizers"] == 8


def test_http_encode_and_decode_equal_the_library(client, codec, server, tmp_path):
    mp3 = bundled_speech()["speech_3"]
    want = codec.encode(load_audio(mp3))
    np.testing.assert_array_equal(client.encode_file(mp3), want)
    x24 = speech_clip(2.5, 24000)
    np.testing.assert_array_equal(client.encode(x24, 24000), codec.encode(x24, 24000))
    status, body = _post(
        f"{server.url}/v1/encode",
        json.dumps({"samples": x24[:24000].tolist(), "rate": 24000}).encode(),  # < 1 MiB
        "application/json",
    )
    assert status == 200
    want24 = codec.encode(x24[:24000], 24000)
    np.testing.assert_array_equal(np.array(json.loads(body)["codes"]), want24)

    audio = client.decode(want)
    assert audio.sample_rate == codec.output_sample_rate
    np.testing.assert_allclose(audio.samples, codec.decode(want), atol=1e-5)
    np.save(tmp_path / "c.npy", want)
    status, wav = _post(f"{server.url}/v1/decode", (tmp_path / "c.npy").read_bytes())
    assert status == 200
    (tmp_path / "d.wav").write_bytes(wav)
    got, rate = sf.read(tmp_path / "d.wav", dtype="float32")
    assert rate == codec.output_sample_rate
    np.testing.assert_allclose(got, codec.decode(want), atol=1e-5)


def test_cli_server_option_gives_the_local_results(server, model, tmp_path, capsys):
    mp3 = str(bundled_speech()["speech_1"])
    assert main(["encode", "--model", str(model), mp3, "-o", str(tmp_path / "a.npy")]) == 0
    assert main(["encode", "--server", server.url, mp3, "-o", str(tmp_path / "b.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    args = [
        "decode",
        "--server",
        server.url,
        str(tmp_path / "a.npy"),
        "-o",
        str(tmp_path / "b.wav"),
    ]
    assert main(args) == 0
    assert (
        main(
            [
                "decode",
                "--model",
                str(model),
                str(tmp_path / "a.npy"),
                "-o",
                str(tmp_path / "a.wav"),
            ]
        )
        == 0
    )
    np.testing.assert_allclose(
        sf.read(tmp_path / "a.wav")[0], sf.read(tmp_path / "b.wav")[0], atol=1e-5
    )
    capsys.readouterr()
    assert (
        main(
            ["encode", "--server", server.url, "--threads", "2", mp3, "-o", str(tmp_path / "c.npy")]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--threads applies to a local model" in err
    assert not (tmp_path / "c.npy").exists()


def test_websocket_stream_equals_xyrt_stream(server, model, codec, client, tmp_path):
    mp3 = str(bundled_speech()["speech_3"])
    assert (
        main(["stream", "--model", str(model), "--source", mp3, "-o", str(tmp_path / "a.jsonl")])
        == 0
    )
    assert (
        main(["stream", "--server", server.url, "--source", mp3, "-o", str(tmp_path / "b.jsonl")])
        == 0
    )
    local = (tmp_path / "a.jsonl").read_text()
    assert local.count("\n") == int(len(load_audio(mp3)) // 1280)
    assert (tmp_path / "b.jsonl").read_text() == local
    # the client with other chunk sizes: the same frames
    audio = load_audio(mp3)
    chunks = [audio[i : i + 7000] for i in range(0, len(audio), 7000)]
    frames = list(client.stream_encode(chunks, 16000))
    assert [json.loads(x)["codes"] for x in local.splitlines()] == [
        f.codes.tolist() for f in frames
    ]
    assert [f.index for f in frames] == list(range(len(frames)))
    # decode stream: the audio of xyrt decode --stream
    args = ["decode", "--stream", "--model", str(model), str(tmp_path / "a.jsonl")]
    assert main([*args, "-o", str(tmp_path / "a.wav")]) == 0
    codes = np.stack([f.codes for f in frames], axis=1)
    pieces = list(client.stream_decode(codes[:, k : k + 3] for k in range(0, codes.shape[1], 3)))
    np.testing.assert_allclose(np.concatenate(pieces), sf.read(tmp_path / "a.wav")[0], atol=1e-5)


def test_16_concurrent_clients_get_their_own_results(server, codec):
    clips = [speech_clip(1.0 + 0.37 * k)[1000 * k :] for k in range(16)]
    want = [codec.encode(c) for c in clips]

    def one(k: int):
        c = Client(server.url, timeout=60)
        codes = c.encode(clips[k])
        return codes, c.decode(codes).samples

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(16)))
    for k, (codes, audio) in enumerate(results):
        np.testing.assert_array_equal(codes, want[k], err_msg=f"client {k}")
        np.testing.assert_allclose(audio, codec.decode(want[k]), atol=1e-5, err_msg=f"client {k}")


def test_requests_are_batched_across_clients(server):
    clip = speech_clip(1.0)
    body = clip.astype("<f4").tobytes()

    def one(_):
        return json.loads(_post(f"{server.url}/v1/encode?rate=16000", body)[1])["batch"]

    with ThreadPoolExecutor(16) as pool:
        batches = list(pool.map(one, range(32)))
    assert max(batches) > 1, batches
    assert max(batches) <= 4  # the backend's batch


def _cli_error(args: list[str], capsys) -> str:
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    return err.split(": error: ", 1)[1].strip()


def test_bad_requests_get_4xx_and_the_cli_one_line_messages(server, model, capsys, tmp_path):
    url = server.url
    nan = np.zeros(4000, np.float32)
    nan[7] = np.nan
    sf.write(tmp_path / "nan.wav", nan, 16000, subtype="FLOAT")
    status, body = _post(f"{url}/v1/encode", (tmp_path / "nan.wav").read_bytes())
    cli = _cli_error(
        ["encode", "--model", str(model), str(tmp_path / "nan.wav"), "-o", str(tmp_path / "x.npy")],
        capsys,
    )
    assert status == 400
    assert body["error"] == cli.replace(f"audio file {tmp_path / 'nan.wav'}", "the request body")

    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    status, body = _post(f"{url}/v1/decode", (tmp_path / "bad.npy").read_bytes())
    cli = _cli_error(
        ["decode", "--model", str(model), str(tmp_path / "bad.npy"), "-o", str(tmp_path / "x.wav")],
        capsys,
    )
    assert status == 400 and body["error"] == cli.replace(
        str(tmp_path / "bad.npy"), "the request body"
    )

    cases = [
        ("/v1/encode?rate=0", b"\0" * 4000, "rate must be a positive integer number of Hz, got 0"),
        (
            "/v1/encode?rate=16k",
            b"\0" * 4000,
            "rate must be a positive integer number of Hz, got '16k'",
        ),
        ("/v1/encode?rate=16000", nan.tobytes(), "the request body contains 1 NaN or Inf samples"),
        ("/v1/encode?rate=16000", b"\0" * 4001, "4001 bytes, not a whole number of f32 PCM frames"),
        ("/v1/encode?rate=16000", b"\0" * 400, "shorter than one code"),
        (
            "/v1/encode",
            b"RIFF not really a wave file",
            "cannot read the request body: it starts like WAV",
        ),
        ("/v1/encode", b"\0" * (2**20 + 1), "larger than this server's limit of 1 MiB"),
    ]
    for path, data, message in cases:
        status, body = _post(url + path, data)
        assert 400 <= status < 500 and message in body["error"], (path, status, body)
        assert "\n" not in body["error"]
    assert _post(url + "/v1/encode", b"\0" * (2**20 + 1))[0] == 413
    codes = {"codes": [[0, 1024]] * 8}
    status, body = _post(f"{url}/v1/decode", json.dumps(codes).encode(), "application/json")
    assert (
        status == 400
        and "code values range over [0, 1024]; expected values in [0, 1024)" in body["error"]
    )
    status, body = _post(f"{url}/v1/decode", b"{not json", "application/json")
    assert status == 400 and body["error"].startswith("the request body is not JSON")
    assert Client(url).health() == {"status": "ok"}  # the replicas served on


def test_unknown_inapplicable_and_coerced_parameters_are_refused(server):
    """Issue 29, classes 1 and 2 over HTTP: every query parameter and JSON field is declared
    (`xyrt.serve.params`); one the endpoint does not take, one that would have no effect, and a
    value of the wrong type are a 400 naming it, never ignored or coerced."""
    url, pcm = server.url, speech_clip(0.5).astype("<f4").tobytes()
    samples = speech_clip(0.5).tolist()
    cases = [
        ("/v1/encode?rate=16000&overlap=5", pcm, "unknown parameter ?overlap= ('5') for"),
        ("/v1/encode?rate=16000&channels=0", pcm, "channels must be an integer in 1..64"),
        ("/v1/encode?rate=16000&channels=1.5", pcm, "got '1.5'"),
        ("/v1/encode?rate=16000&channels=nan", pcm, "got 'nan'"),
        ("/v1/encode?rate=1000000000000", pcm, "rate must be 1000..768000 Hz"),
        ("/v1/encode?format=s16", pcm, "?format= applies only to a raw PCM body"),
        ("/v1/encode?rate=16000&rate=8000", pcm, "?rate= is given twice"),
        ("/v1/encode?rate=16000", {"samples": samples, "rate": 16000}, "?rate= applies"),
        ("/v1/encode", {"samples": samples, "rate": 16000, "hop": 1}, "unknown field 'hop'"),
        ("/v1/encode", {"samples": samples}, "JSON body of POST /v1/encode has no 'rate'"),
        ("/v1/encode", {"samples": ["0.1"] * 8000, "rate": 16000}, "'samples' holds str"),
        ("/v1/encode", {"samples": [True] * 8000, "rate": 16000}, "'samples' holds bool"),
        ("/v1/encode", {"samples": samples, "rate": "16000"}, "'rate' must be a positive"),
        ("/v1/decode?format=mp3", {"codes": [[1]] * 8}, "format 'mp3' is not one of"),
        ("/v1/decode", {"codes": [[]] * 8}, "codes have shape (8, 0): no frames"),
        ("/v1/decode", {"codes": [[2**70]] * 8}, "code values range over [1180591620"),
        ("/v1/decode", {"codes": [[1]] * 8, "x": 0}, "unknown field 'x'"),
    ]
    for path, body, message in cases:
        if isinstance(body, dict):
            status, answer = _post(url + path, json.dumps(body).encode(), "application/json")
        else:
            status, answer = _post(url + path, body)
        assert status == 400 and message in answer["error"], (path, status, answer)
    status, answer = _get(url + "/v1/health?verbose=1")
    assert (
        status == 400
        and "unknown parameter ?verbose= ('1') for GET /v1/health" in (answer["error"])
    )


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_unknown_and_bad_stream_parameters_are_refused(server):
    """Issue 29, classes 1 and 2 over WebSocket: the stream is refused (4400) naming the
    parameter; the server's streams take no ?overlap= or ?match_offline=, the decode stream no
    ?rate=."""
    cases = [
        (
            "/v1/stream/encode?overlap=5",
            "unknown parameter ?overlap= ('5') for WS /v1/stream/encode",
        ),
        ("/v1/stream/encode?match_offline=0", "unknown parameter ?match_offline="),
        ("/v1/stream/encode?hopp=0.08", "unknown parameter ?hopp= ('0.08')"),
        ("/v1/stream/decode?rate=16000", "unknown parameter ?rate= ('16000') for WS /v1/stream/"),
        ("/v1/stream/encode?rate=1000000000000", "rate must be 1000..768000 Hz"),
        ("/v1/stream/encode?hop=nan", "hop must be a finite number of seconds, got 'nan'"),
    ]
    for path, message in cases:
        with _ws(server, path) as (ws, hello):
            assert hello["type"] == "error" and message in hello["error"], (path, hello)
            assert _closed(ws) == 4400


@contextlib.contextmanager
def _ws(server, path: str):
    """A raw stream socket and the server's first message ("ready", or the refusal)."""
    url = f"ws://127.0.0.1:{server.port}{path}"
    with sync_client.connect(url, open_timeout=60) as ws:
        yield ws, json.loads(ws.recv(timeout=60))


def _closed(ws) -> int:
    """The close code, once the server has closed the socket."""
    from websockets.exceptions import ConnectionClosed

    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=60)
    return ws.close_code


def _error(ws) -> tuple[dict, int]:
    """The server's error message and its close code."""
    message = json.loads(ws.recv(timeout=60))
    assert message["type"] == "error", message
    return message, _closed(ws)


def test_malformed_stream_messages_end_only_their_stream(server):
    with _ws(server, "/v1/stream/decode") as (ws, hello):
        assert hello["type"] == "ready"
        ws.send(json.dumps({"index": 0, "codes": [1] * 8}))
        ws.send(json.dumps({"index": 2, "codes": [1] * 8}))
        message, code = _error(ws)
    assert code == 4400 and message["error"] == (
        "frame 1: frame index 2, expected 1: frames are missing or out of order"
    )
    with _ws(server, "/v1/stream/decode") as (ws, _):
        ws.send(json.dumps({"index": 0, "codes": [1] * 7}))
        message, code = _error(ws)
    assert code == 4400 and "expected a list of 8 integers" in message["error"]
    with _ws(server, "/v1/stream/encode") as (ws, _):
        ws.send(b"\0" * 7)
        message, code = _error(ws)
    assert code == 4400 and "a PCM message holds 7 bytes" in message["error"]
    with _ws(server, "/v1/stream/encode?hop=0.1") as (ws, hello):
        assert hello["type"] == "error" and _closed(ws) == 4400
    assert "hop must be a positive multiple of 0.08 s" in hello["error"]


def test_stream_ids_reset_and_too_many_streams(server, client):
    with _ws(server, "/v1/stream/encode") as (ws, hello):
        first = hello["stream"]
        ws.send(speech_clip(1.0).astype("<f4").tobytes())
        ws.send(json.dumps({"type": "reset"}))
        while (m := json.loads(ws.recv(timeout=60))).get("type") != "reset":
            assert "codes" in m  # frames of the first stream, sent before the reset
        assert m["stream"] != first
        ws.send(speech_clip(0.5).astype("<f4").tobytes())
        ws.send(json.dumps({"type": "end"}))
        frames = []
        while (m := json.loads(ws.recv(timeout=60))).get("type") != "done":
            frames.append(m["index"])
    assert frames == list(range(6)) and m["frames"] == 6 and m["stream"] != first

    with contextlib.ExitStack() as stack:
        hellos = [  # two replicas, MAX_STREAMS each: one at least is refused
            stack.enter_context(_ws(server, "/v1/stream/encode"))[1]
            for _ in range(2 * MAX_STREAMS + 1)
        ]
    refused = [h for h in hellos if h["type"] == "error"]
    assert refused and len(hellos) - len(refused) <= 2 * MAX_STREAMS
    assert refused[0]["status"] == 429 and refused[0]["error"].startswith(
        f"too many streams: this replica serves at most {MAX_STREAMS} at once"
    )
    deadline = time.monotonic() + 30
    while True:  # the clients left: both replicas report their streams freed
        replicas = _replica_info(client, 2, 30)
        if all(r["streams_open"] == 0 for r in replicas.values()):
            break
        assert time.monotonic() < deadline, replicas


def _replica_info(client: Client, want: int, timeout: float, exclude=()) -> dict[int, dict]:
    """/v1/info of ``want`` distinct replicas (by pid) not in ``exclude``, polled (every 0.1 s)
    until each has answered."""
    seen: dict[int, dict] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < want:
        assert time.monotonic() < deadline, f"replicas seen: {sorted(seen)}"
        try:
            info = client.info()
        except XyrtError:
            info = None
        if info is not None and info["replica"]["pid"] not in exclude:
            seen[info["replica"]["pid"]] = info["replica"]
        else:
            time.sleep(0.1)  # poll interval while a replica restarts
    return seen


class Outcomes:
    """Results of the load threads; `wait` blocks until there are ``n`` (or fails)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, int]] = []
        self.cond = threading.Condition()

    def add(self, item: tuple[str, int]) -> None:
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def wait(self, n: int, timeout: float = 60) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.items) >= n, timeout), self.items


def test_load_benchmark_quick_form_runs_against_the_server(server, tmp_path):
    """benchmarks/serve_load.py --quick (README's load test, on the tiny model): every HTTP
    request and stream frame comes back, and the report says how they were batched."""
    out = tmp_path / "load.json"
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "serve_load.py"
    cmd = [sys.executable, str(script), "--server", server.url, "--quick", "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert [c["clients"] for c in report["http"]] == [1, 4]
    assert all(c["errors"] == 0 and c["requests"] > 0 for c in report["http"]), report["http"]
    assert all(c["mean_batch"] >= 1 for c in report["http"]), report["http"]
    assert [c["streams"] for c in report["streams"]] == [1, 2]
    assert all(c["errors"] == 0 for c in report["streams"]), report["streams"]
    assert [c["frames"] for c in report["streams"]] == [25, 50]  # 2 s of audio per stream


def test_killed_replica_loses_no_request_silently(server, codec, client):
    pids = set(_replica_info(client, 2, 30))
    clips = [speech_clip(2.0 + 0.1 * k) for k in range(8)]
    want = [codec.encode(c) for c in clips]
    stop = threading.Event()
    outcomes = Outcomes()

    def load(k: int) -> None:
        c = Client(server.url, timeout=60)
        while not stop.is_set():
            try:
                got = c.encode(clips[k])
            except ServerError as exc:  # an error response: allowed, it is not silent
                outcomes.add(("error", exc.status))
                continue
            except BaseException:
                outcomes.add(("failed", 0))  # no response, or a wrong one: wakes the waiter
                raise
            outcomes.add(("ok", k) if np.array_equal(got, want[k]) else ("wrong", k))

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(load, k) for k in range(8)]
        try:
            outcomes.wait(16)
            os.kill(min(pids), signal.SIGKILL)
            outcomes.wait(len(outcomes.items) + 40)
        finally:
            stop.set()
        for f in futures:
            f.result()  # a request that got no response (a timeout, a reset) fails here
    kinds = [o for o, _ in outcomes.items]
    assert "wrong" not in kinds and kinds.count("ok") > 40
    assert all(status >= 500 for o, status in outcomes.items if o == "error")
    restarted = _replica_info(client, 1, 90, exclude=pids)  # Ray Serve started a new replica
    assert restarted and np.array_equal(client.encode(clips[0]), want[0])


def test_sigterm_drains_an_open_stream_and_stops_the_local_ray(server, client):
    audio = speech_clip(3.0)
    with _ws(server, "/v1/stream/encode") as (ws, hello):
        assert hello["type"] == "ready"
        ws.send(audio[:16000].astype("<f4").tobytes())
        first = json.loads(ws.recv(timeout=60))  # the stream is running
        assert first["index"] == 0
        server.proc.send_signal(signal.SIGTERM)
        server.wait_for("draining requests in flight", 30)
        ws.send(audio[16000:].astype("<f4").tobytes())
        ws.send(json.dumps({"type": "end"}))
        frames = [first["index"]]
        while (m := json.loads(ws.recv(timeout=60))).get("type") != "done":
            frames.append(m["index"])
    assert frames == list(range(37))
    assert server.proc.wait(60) == 0
    server.wait_for(r"stopped \(local Ray shut down\)", 5)
