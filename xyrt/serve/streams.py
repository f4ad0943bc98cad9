"""WebSocket stream sessions of one replica, stepped together.

Each open WebSocket is a `Session` holding one runtime stream (`EncodeStream`: PCM in, code
frames out; `DecodeStream`: code frames in, audio out). Messages are parsed as they arrive and
queued on the session; one stepping task per replica (`StreamHub`) moves them into the streams
and runs one step of every ready stream as a batch (`ChunkedCodec.encode_streams` /
``decode_streams``: each stream's ``plan()``, one backend call within its limits, each
``complete()``) on the replica's `ModelThread`, until no stream is ready, then sends what the
steps produced. Only the stepping task touches the streams, so a step never races new input.

A session has an id; ``{"type": "reset"}`` starts a new stream (new id, frames from 0) and
``{"type": "end"}`` finishes the input: the rest is stepped, then ``{"type": "done"}`` is sent and
the socket closed. A bad message fails only its session (an error message, then a close code of
4000 + the HTTP status); a client that disconnects frees its stream at once.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from xyrt.runtime.codec import ChunkedCodec
from xyrt.runtime.formats.frames import frame_line, parse_frame
from xyrt.serve.batching import ModelThread
from xyrt.serve.requests import (
    RequestError,
    TooManyStreams,
    control,
    error_json,
    pcm_samples,
    status_of,
)

CLOSE_REASON_BYTES = 120  # a WebSocket close reason holds at most 123 bytes


@dataclass(frozen=True)
class Close:
    """The last item of a session's outbox: close the socket with this code and reason."""

    code: int = 1000
    reason: str = ""


def refusal(exc: BaseException, stream: str | None = None) -> tuple[str, Close]:
    """The error message of a failed stream (one line, as the CLI prints it) and its close:
    4000 + the HTTP status, the message (cut to fit) as the reason."""
    body = error_json(exc)
    message = json.dumps({"type": "error", **({"stream": stream} if stream else {}), **body})
    reason = body["error"].encode()[:CLOSE_REASON_BYTES].decode(errors="ignore")
    return message, Close(4000 + status_of(exc), reason)


class Session:
    """One WebSocket's stream: parsed input waiting for the stepper, output waiting to be sent."""

    def __init__(self, kind: str, make: Callable[[], Any], rate: int, fmt: str) -> None:
        self.kind, self.make, self.rate, self.fmt = kind, make, rate, fmt
        self.outbox: asyncio.Queue = asyncio.Queue()
        self.closed = False
        self._new_stream()

    def _new_stream(self) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.stream = self.make()
        self.inbox: list[np.ndarray] = []
        self.end = False
        self.frames_in = 0  # decode: code frames received (the next frame's expected index)

    def hello(self) -> dict[str, Any]:
        return {"type": "ready", "stream": self.id, "kind": self.kind}

    # -- input: called by the socket's receiving loop --------------------------------------
    def receive(self, message: dict) -> None:
        """Parse one ASGI ``websocket.receive`` message onto the inbox; `XyrtError` if bad."""
        data, text = message.get("bytes"), message.get("text")
        if self.end:
            raise RequestError("a message after {'type': 'end'}: the stream is finishing")
        if data is not None:
            if self.kind != "encode":
                raise RequestError(
                    f"a binary message of {len(data)} bytes; the decode stream takes code frames "
                    'as JSON text ({"index": 0, "codes": [8 ints]}, as xyrt stream writes)'
                )
            self.inbox.append(pcm_samples(data, self.fmt, what="a PCM message"))
            return
        for line in (text or "").splitlines():
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                obj = line  # parse_frame says what is wrong with it
            if isinstance(obj, dict) and "type" in obj:
                self._control(control(obj))
            elif self.kind == "decode":
                where = f"frame {self.frames_in}"
                frame = parse_frame(obj, where, self.frames_in, self._quantizers())
                self.inbox.append(frame.codes)
                self.frames_in += 1
            else:
                raise RequestError(
                    f"text message {line[:60]!r}; the encode stream takes PCM as binary "
                    'messages and {"type": "end"} or {"type": "reset"}'
                )

    def _quantizers(self) -> int:
        return self.stream.info.num_quantizers

    def _control(self, kind: str) -> None:
        if kind == "end":
            self.end = True
        else:
            self._new_stream()
            self.outbox.put_nowait(json.dumps({"type": "reset", "stream": self.id}))

    # -- stepping: called by the hub's task only -------------------------------------------
    def feed(self) -> None:
        """Move the inbox into the stream. After "end", the stream is finished only once the
        steps its input made ready have run, as ``xyrt stream`` and ``xyrt decode --stream``
        finish theirs: the steps, so the output, do not depend on when the input arrived."""
        inbox, self.inbox = self.inbox, []
        if self.kind == "encode":
            for chunk in inbox:
                self.stream.accept_waveform(self.rate, chunk)
        elif inbox:
            self.stream.accept_codes(np.stack(inbox, axis=1))
        if self.end and not self.stream.finished and not self.stream.ready():
            self.stream.input_finished()

    def deliver(self) -> None:
        """Queue what the last steps produced; after "end", once all is out, done and close."""
        if self.kind == "encode":
            for frame in self.stream.pop_codes():
                self.outbox.put_nowait(frame_line(frame))
        else:
            audio = self.stream.pop_audio()
            if len(audio):
                self.outbox.put_nowait(audio.astype("<f4").tobytes())
        if self.stream.finished and not self.stream.ready() and not self.closed:
            done = {"type": "done", "stream": self.id, "frames": self.stream.frames_emitted}
            if self.kind == "decode":
                done["samples"] = self.stream.samples_emitted
            self.outbox.put_nowait(json.dumps(done))
            self.close(Close())

    def fail(self, exc: BaseException) -> None:
        """Send the error (one line, as the CLI prints it) and close with 4000 + its status."""
        if self.closed:
            return
        message, close = refusal(exc, self.id)
        self.outbox.put_nowait(message)
        self.close(close)

    def close(self, how: Close) -> None:
        self.closed = True
        self.outbox.put_nowait(how)


class StreamHub:
    """The open sessions of one replica and the task that steps them."""

    def __init__(self, codec: ChunkedCodec, run: ModelThread, max_streams: int) -> None:
        self.codec, self.run, self.max_streams = codec, run, max_streams
        self.sessions: list[Session] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def open(self, kind: str, make: Callable[[], Any], rate: int = 16000, fmt: str = "f32"):
        """A new session (`TooManyStreams` past ``max_streams``); ``make`` builds its stream."""
        if len(self.sessions) >= self.max_streams:
            raise TooManyStreams(
                f"too many streams: this replica serves at most {self.max_streams} at once "
                f"({len(self.sessions)} open); try again later, or start xyrt serve with more "
                "--replicas or a larger --max-streams"
            )
        session = Session(kind, make, rate, fmt)
        self.sessions.append(session)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._step_loop())
        return session

    def leave(self, session: Session) -> None:
        """Forget ``session`` (its socket closed or the client went away): its stream is freed."""
        session.closed = True
        if session in self.sessions:
            self.sessions.remove(session)

    def wake(self) -> None:
        self._wake.set()

    async def _step_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.step_all()

    async def step_all(self) -> None:
        """Feed every session, then step all ready streams together until none is ready."""
        while True:
            live = [s for s in self.sessions if not s.closed]
            for session in live:
                try:
                    session.feed()
                except Exception as exc:  # noqa: BLE001 - this session's input only
                    session.fail(exc)
            live = [s for s in live if not s.closed]
            ready = [s for s in live if s.stream.ready()]
            for session in live:
                if session not in ready:
                    session.deliver()  # a finished stream with nothing left: done
            if not ready:
                return
            encode = [s.stream for s in ready if s.kind == "encode"]
            decode = [s.stream for s in ready if s.kind == "decode"]
            try:
                await self.run(self._step, encode, decode)
            except Exception as exc:  # noqa: BLE001 - the model failed: these sessions end
                for session in ready:
                    session.fail(exc)
                continue
            for session in ready:
                session.deliver()
            await asyncio.sleep(0)  # let the sockets send and receive between steps

    def _step(self, encode: list, decode: list) -> None:
        if encode:
            self.codec.encode_streams(encode)
        if decode:
            self.codec.decode_streams(decode)
