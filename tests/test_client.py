"""`xyrt.client.Client` raises only `XyrtError`, saying what is wrong and what is expected
(class 7 of issue 29): bad files, timeouts and URLs, and a server that is not xyrt serve."""

from __future__ import annotations

import http.server
import math
import threading

import pytest

from xyrt.client import Client
from xyrt.errors import XyrtError


@pytest.mark.parametrize("timeout", [0, -1, math.nan, math.inf, "5", True])
def test_a_bad_timeout_is_refused_when_the_client_is_made(timeout):
    with pytest.raises(XyrtError, match=r"timeout \(seconds\) must be"):
        Client("http://127.0.0.1:9", timeout=timeout)


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("http://127.0.0.1:8000/v1", r"has a path or query \('/v1'\); expected only http://"),
        ("http://127.0.0.1:8000/?x=1", "has a path or query"),
        ("127.0.0.1:8000", "expected http://HOST:PORT"),
        ("http://127.0.0.1:80x0", "expected http://HOST:PORT"),
        (8000, "expected http://HOST:PORT"),
    ],
)
def test_a_url_with_a_path_or_no_scheme_is_refused(url, match):
    with pytest.raises(XyrtError, match=match):
        Client(url)


def test_a_trailing_slash_is_fine():
    assert Client("http://127.0.0.1:8000/").url == "http://127.0.0.1:8000"


def test_missing_file_or_folder_to_encode_file(tmp_path):
    client = Client("http://127.0.0.1:9")
    with pytest.raises(XyrtError, match="audio file not found: .*nope.wav"):
        client.encode_file(tmp_path / "nope.wav")
    with pytest.raises(XyrtError, match="is a folder; expected an audio file"):
        client.encode_file(tmp_path)


class _Html(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        status = 200 if self.path == "/v1/health" else 404
        body = b"<!doctype html><html><body>" + b"x" * 500 + b"</body></html>"
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def html_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Html)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_server_that_is_not_xyrt_is_named_as_such(html_server):
    import numpy as np

    client = Client(html_server, timeout=10)
    with pytest.raises(XyrtError, match=r"answered HTTP 404, not an xyrt response: is the URL an"):
        client.encode(np.zeros(16000, np.float32))
    with pytest.raises(XyrtError, match="not xyrt's JSON") as info:
        client.health()
    assert "<html" not in str(info.value).split("starting")[0] and "x" * 50 not in str(info.value)


def test_decode_stream_with_a_server_runs_the_local_loop(tmp_path, monkeypatch, capsys):
    """``xyrt decode --stream --server`` reads, checks and writes as the local command does
    (one loop, `xyrt.commands.decode_frames_file`); the server is a fake client here."""
    import json

    import numpy as np
    import soundfile as sf

    from xyrt.cli import main

    sent: list[np.ndarray] = []

    def stream_decode(self, frames, **options):
        assert options["context"] == 1.0 and options["hop"] == 0.32
        for codes in frames:
            sent.append(codes)
            yield np.full(1280, len(sent) / 100, np.float32)

    monkeypatch.setattr(
        Client, "info", lambda self: {"output_sample_rate": 16000, "num_quantizers": 8}
    )
    monkeypatch.setattr(Client, "stream_decode", stream_decode)
    codes = np.arange(8 * 4).reshape(8, 4)
    lines = [
        json.dumps({"index": k, "time": k * 0.08, "codes": codes[:, k].tolist()}) for k in range(4)
    ]
    frames, out = tmp_path / "codes.jsonl", tmp_path / "out.wav"
    frames.write_text("\n".join(lines) + "\n")
    argv = ["decode", "--server", "http://127.0.0.1:9", "--stream", "--context", "1"]
    assert main([*argv, str(frames), "-o", str(out)]) == 0
    assert "summary: frames 4  audio 0.32 s" in capsys.readouterr().err
    assert np.array_equal(np.stack(sent, 1), codes)
    audio, rate = sf.read(out, dtype="float32")
    assert rate == 16000 and np.allclose(audio[::1280], [0.01, 0.02, 0.03, 0.04])
    frames.write_text(lines[0] + '\n{"index": 2, "codes": [0]}\n')
    assert main([*argv, str(frames), "-o", str(tmp_path / "bad.wav")]) == 1
    assert "line 2: frame index 2, expected 1" in capsys.readouterr().err
    assert not (tmp_path / "bad.wav").exists()
    assert main([*argv, str(tmp_path), "-o", str(out)]) == 1
    assert f"code frames file is a folder, not a file: {tmp_path}" in capsys.readouterr().err
