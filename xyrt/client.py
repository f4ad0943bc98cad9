"""`Client`: the Python client of ``xyrt serve`` (HTTP through urllib, WebSocket streams
through the ``websockets`` sync client).

    from xyrt.client import Client
    client = Client("http://127.0.0.1:8000")
    codes = client.encode_file("speech.mp3")             # (8, T) int64, as xyrt encode
    codes = client.encode(samples, 48000)                # any rate, mono or (n, channels)
    audio = client.decode(codes)                         # Audio(samples, sample_rate)
    for frame in client.stream_encode(chunks, 16000):    # CodeFrame(index, time, codes)
        ...
    for piece in client.stream_decode(frames): ...       # float32 audio at the output rate

A refused request raises `ServerError` (an `XyrtError`) with the server's one-line message and
its HTTP status; an unreachable server an `XyrtError` saying so.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from xyrt.checks import finite
from xyrt.config import INPUT_SAMPLE_RATE
from xyrt.errors import XyrtError, received, require
from xyrt.runtime.formats.audio import prepare_audio
from xyrt.runtime.formats.frames import EXPECTED, codes_frames, frame_line, parse_frame
from xyrt.runtime.streams.decode_stream import DecodeStreamOptions
from xyrt.runtime.streams.encode_stream import CodeFrame, EncodeStreamOptions


class ServerError(XyrtError):
    """The server refused a request (``status`` 4xx) or failed on it (5xx)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Audio(NamedTuple):
    samples: np.ndarray  # (n,) float32
    sample_rate: int


def _float32_mono(samples: np.ndarray, sample_rate: int, what: str) -> bytes:
    """Samples as float32 little-endian mono PCM at their own rate (the server resamples)."""
    return prepare_audio(samples, sample_rate, sample_rate, what=what).astype("<f4").tobytes()


class Client:
    """A client of the ``xyrt serve`` at ``url`` (http://host:port); ``timeout`` in seconds for
    each HTTP request and for each WebSocket message."""

    def __init__(self, url: str = "http://127.0.0.1:8000", timeout: float = 120.0) -> None:
        self.url = server_url(url)
        self.timeout = finite(timeout, "timeout (seconds)", low=0, strict_low=True)

    # -- HTTP ------------------------------------------------------------------------------
    def _request(
        self, path: str, body: bytes | None = None, content_type: str | None = None
    ) -> tuple[bytes, dict[str, str]]:
        headers = {"Content-Type": content_type} if content_type else {}
        req = urllib.request.Request(
            self.url + path, body, headers, method="POST" if body is not None else "GET"
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as exc:
            raise _server_error(exc.read(), exc.code, self.url + path) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise XyrtError(
                f"cannot reach the xyrt server at {self.url}: {reason}; start one with xyrt serve"
            ) from exc

    def _json(self, path: str, body: bytes | None = None, ctype: str | None = None) -> Any:
        data = self._request(path, body, ctype)[0]
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            obj = None
        if not isinstance(obj, dict):
            raise XyrtError(
                f"{self.url + path} answered {len(data)} bytes that are not xyrt's JSON "
                f"(starting {received(data[:40])}): {NOT_XYRT}"
            )
        return obj

    def health(self) -> dict[str, Any]:
        return self._json("/v1/health")

    def info(self) -> dict[str, Any]:
        """Model identity, backend, precision, device and limits of the replica that answered."""
        return self._json("/v1/info")

    def encode(self, samples: np.ndarray, sample_rate: int = INPUT_SAMPLE_RATE) -> np.ndarray:
        """Audio ((n,) or (n, channels), any rate) -> codes (8, T) int64."""
        pcm = _float32_mono(samples, sample_rate, "audio")
        return self._codes(f"/v1/encode?rate={int(sample_rate)}", pcm, "application/octet-stream")

    def encode_file(self, path: str | os.PathLike | bytes) -> np.ndarray:
        """An audio file (any format xyrt encode reads; a path, or its bytes) -> codes (8, T)."""
        data = path if isinstance(path, bytes) else _read_file(path)
        return self._codes("/v1/encode", data, "application/octet-stream")

    def _codes(self, path: str, body: bytes, ctype: str) -> np.ndarray:
        answer = self._json(path, body, ctype)
        if "codes" not in answer:
            raise XyrtError(f"{self.url + path} answered without 'codes': {NOT_XYRT}")
        return np.asarray(answer["codes"], np.int64)

    def decode(self, codes: np.ndarray) -> Audio:
        """Codes (8, T) -> float32 audio at the model's output rate."""
        body = json.dumps({"codes": np.asarray(codes).tolist()}).encode()
        data, headers = self._request("/v1/decode?format=pcm", body, "application/json")
        rate = {k.lower(): v for k, v in headers.items()}.get("x-sample-rate", "")
        if not rate.isdigit():
            raise XyrtError(f"{self.url}/v1/decode answered without X-Sample-Rate: {NOT_XYRT}")
        rate = int(rate)
        return Audio(np.frombuffer(data, "<f4").copy(), rate)

    # -- WebSocket streams -----------------------------------------------------------------
    @contextmanager
    def _connect(self, kind: str, params: dict[str, Any]) -> Iterator[Any]:
        """An open stream's socket, after the server's "ready"."""
        sync = require("websockets.sync.client", "serve", "xyrt streams over WebSocket")
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        url = "ws" + self.url[4:] + f"/v1/stream/{kind}" + (f"?{query}" if query else "")
        try:
            connection = sync.connect(
                url, open_timeout=self.timeout, max_size=None, compression=None
            )
        except Exception as exc:  # noqa: BLE001 - refused, unreachable: say which
            raise XyrtError(f"cannot open a stream at {url}: {exc}") from exc
        with connection as ws:
            hello = self._message(ws)
            if not isinstance(hello, dict) or hello.get("type") != "ready":
                raise XyrtError(f"unexpected first message from {url}: {str(hello)[:80]}")
            yield ws

    def _message(self, ws) -> Any:
        """The next message: bytes as they are, text as JSON; a server error raised."""
        from websockets.exceptions import ConnectionClosed

        try:
            data = ws.recv(timeout=self.timeout)
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            if rcvd is not None and rcvd.code >= 4000:
                raise ServerError(rcvd.reason, rcvd.code - 4000) from None
            raise XyrtError(f"the stream closed before it was done ({exc})") from None
        except TimeoutError:
            raise XyrtError(f"no message from the server in {self.timeout:g} s") from None
        if isinstance(data, bytes):
            return data
        try:
            obj = json.loads(data)
        except ValueError:
            raise XyrtError(f"a stream message that is not JSON ({data[:60]!r}): {NOT_XYRT}") from (
                None
            )
        if isinstance(obj, dict) and obj.get("type") == "error":
            raise ServerError(obj["error"], obj.get("status", 400))
        return obj

    def _pump(self, ws, messages: Iterator[bytes | str], failed: list) -> threading.Thread:
        """Send ``messages`` then {"type": "end"} from a thread; an exception is kept in
        ``failed`` and closes the socket."""

        def send() -> None:
            try:
                for message in messages:
                    ws.send(message)
                ws.send(json.dumps({"type": "end"}))
            except Exception as exc:  # noqa: BLE001 - handed to the receiving side
                failed.append(exc)
                ws.close()

        thread = threading.Thread(target=send, name="xyrt-client-send", daemon=True)
        thread.start()
        return thread

    def _run(self, kind: str, params: dict[str, Any], messages: Iterator) -> Iterator[Any]:
        with self._connect(kind, params) as ws:
            failed: list[BaseException] = []
            thread = self._pump(ws, messages, failed)
            try:
                while True:
                    try:
                        message = self._message(ws)
                    except XyrtError:
                        if failed:
                            raise failed[0] from None
                        raise
                    if isinstance(message, dict) and message.get("type") == "done":
                        return
                    yield message
            finally:
                ws.close()
                thread.join(timeout=self.timeout)

    def stream_encode(
        self,
        chunks: Iterable[np.ndarray],
        sample_rate: int = INPUT_SAMPLE_RATE,
        hop: float = EncodeStreamOptions.hop,
        context: float = EncodeStreamOptions.context,
        lookahead: float = EncodeStreamOptions.lookahead,
    ) -> Iterator[CodeFrame]:
        """Audio chunks (any size, one rate) in, code frames out as they are ready, as
        ``xyrt stream`` emits them (the same steps, so the same codes)."""
        messages = (_float32_mono(c, sample_rate, "audio chunk") for c in chunks if len(c))
        params = {"rate": int(sample_rate), "hop": hop, "context": context, "lookahead": lookahead}
        frames, quantizers = 0, None  # the first frame's quantizers; every frame after as many
        for m in self._run("encode", params, messages):
            if isinstance(m, dict) and "type" in m:
                continue  # a control message ("reset" answers only a reset, never sent here)
            where = f"{self.url} encode stream, message {frames}"
            if isinstance(m, bytes):
                raise XyrtError(f"{where}: a binary message of {len(m)} bytes; expected {EXPECTED}")
            frame = parse_frame(m, where, frames, quantizers)
            quantizers = len(frame.codes)
            frames += 1
            yield frame

    def stream_decode(
        self,
        frames: Iterable[np.ndarray],
        hop: float = DecodeStreamOptions.hop,
        context: float = DecodeStreamOptions.context,
        lookahead: float = DecodeStreamOptions.lookahead,
        max_hop: float | None = None,
        crossfade: float | None = None,
    ) -> Iterator[np.ndarray]:
        """Code frames ((8,) or (8, n) each) in, float32 audio at the output rate out. Stream
        options: as `DecodeStreamOptions` (whose defaults these are; `stream_encode`'s are
        `EncodeStreamOptions`')."""

        def messages() -> Iterator[str]:
            index = 0
            for block in frames:
                lines = [frame_line(f) for f in codes_frames(block, index)]
                index += len(lines)
                yield "\n".join(lines)

        params = {
            "hop": hop,
            "context": context,
            "lookahead": lookahead,
            "max_hop": max_hop,
            "crossfade": crossfade,
        }
        for m in self._run("decode", params, messages()):
            if isinstance(m, dict) and "type" in m:
                continue
            if not isinstance(m, bytes) or len(m) % 4:
                what = f"{len(m)} bytes" if isinstance(m, bytes) else received(m)
                raise XyrtError(
                    f"{self.url} decode stream sent {what}; expected float32 audio as binary "
                    f"messages (a multiple of 4 bytes): {NOT_XYRT}"
                )
            yield np.frombuffer(m, "<f4").copy()


NOT_XYRT = (
    "is the URL an xyrt serve (http://HOST:PORT, as xyrt serve prints it; its /v1/health "
    'answers {"status": "ok"})?'
)


def server_url(url: object) -> str:
    """``url`` checked: http(s)://HOST:PORT with no path, query or fragment (the client adds
    /v1/...); returned without a trailing slash."""
    parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise XyrtError(
            f"server URL {received(url)}: expected http://HOST:PORT (as xyrt serve prints it)"
        )
    try:
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError as exc:
        raise XyrtError(f"server URL {url!r}: {exc}; expected http://HOST:PORT") from None
    extra = parts.path.rstrip("/") or parts.query or parts.fragment
    if extra:
        raise XyrtError(
            f"server URL {url!r} has a path or query ({extra!r}); expected only "
            f"{parts.scheme}://{parts.netloc} (the client adds /v1/...)"
        )
    return f"{parts.scheme}://{parts.netloc}"


def _read_file(path: str | os.PathLike) -> bytes:
    """The bytes of an audio file, an `XyrtError` naming it when it cannot be read."""
    p = Path(path)
    if p.is_dir():
        raise XyrtError(f"audio file {p} is a folder; expected an audio file (wav, flac, mp3...)")
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise XyrtError(f"audio file not found: {p}") from None
    except OSError as exc:
        raise XyrtError(f"cannot read audio file {p}: {exc.strerror or exc}") from None


def _server_error(body: bytes, status: int, url: str) -> ServerError:
    try:
        message = json.loads(body)["error"]
        if not isinstance(message, str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        detail = f"HTTP {status}"
        with contextlib.suppress(ValueError, KeyError, TypeError):  # FastAPI's own: an unknown
            detail += f" {json.loads(body)['detail']}"  # path is {"detail": "Not Found"}
        message = f"{url} answered {detail}, not an xyrt response: {NOT_XYRT}"
    return ServerError(message, status)
