"""The Ray Serve deployment of ``xyrt serve``: a FastAPI app whose replicas each hold one codec.

    GET  /v1/health           {"status": "ok"}
    GET  /v1/info             model identity, backend, precision, device, limits, this replica
    POST /v1/encode           audio (see `xyrt.serve.requests`) -> {"codes": [8 x T ints], ...}
    POST /v1/decode           codes -> float32 WAV (?format=pcm: raw float32, X-Sample-Rate)
    WS   /v1/stream/encode    PCM in (binary; ?rate=, format=f32|s16, hop, context, lookahead)
                              -> one JSON code frame per message, as xyrt stream writes them
    WS   /v1/stream/decode    code frames in (JSON text; ?hop, context, lookahead, max_hop,
                              crossfade) -> float32 audio chunks (binary) at the output rate

A refused request gets a 4xx and ``{"error": one line, "status": N}``; an unexpected failure a
500; either way the replica keeps serving.
"""

import asyncio
import io
import json
import logging
import os
from typing import Any

import numpy as np
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse, Response
from ray import serve

import xyrt
from xyrt.config import CODE_RATE, INPUT_SAMPLE_RATE
from xyrt.errors import require
from xyrt.runtime.backends.base import limits_of
from xyrt.runtime.streams.decode_stream import DecodeStream, DecodeStreamOptions
from xyrt.runtime.streams.encode_stream import EncodeStream, EncodeStreamOptions
from xyrt.serve import params
from xyrt.serve.batching import Batcher, ModelThread
from xyrt.serve.options import ServeOptions
from xyrt.serve.requests import (
    decode_input,
    encode_input,
    error_json,
    read_body,
    status_of,
)
from xyrt.serve.streams import Close, Session, StreamHub, refusal

log = logging.getLogger("ray.serve")
app = FastAPI(title="xyrt", docs_url=None, redoc_url=None)


def error_response(exc: BaseException) -> JSONResponse:
    if status_of(exc) >= 500:
        log.exception("xyrt serve: request failed", exc_info=exc)
    return JSONResponse(error_json(exc), status_code=status_of(exc))


def wav_bytes(audio: np.ndarray, rate: int) -> bytes:
    """Float32 WAV, as ``xyrt decode`` writes it."""
    sf = require("soundfile", "audio", "writing audio")
    buf = io.BytesIO()
    sf.write(buf, np.asarray(audio, np.float32), rate, subtype="FLOAT", format="WAV")
    return buf.getvalue()


class Replica:
    """What one replica holds (a codec, its batcher, its streams) and does per request."""

    def __init__(self, options: ServeOptions) -> None:
        import xyrt.runtime

        self.options = options
        self.codec = xyrt.runtime.load(options.model, options.backend, options=options.load).load()
        run = ModelThread()
        self.batcher = Batcher(self.codec, run, options.max_batch, options.max_delay_ms)
        self.hub = StreamHub(self.codec, run, options.max_streams)

    def info(self) -> dict[str, Any]:
        o, codec = self.options, self.codec
        limits = limits_of(codec.backend)
        return {
            "xyrt": xyrt.__version__,
            "model": o.model,
            **o.identity,
            "device": limits.device,
            "input_sample_rate": INPUT_SAMPLE_RATE,
            "output_sample_rate": codec.output_sample_rate,
            "code_rate": CODE_RATE,
            "num_quantizers": codec.info.num_quantizers,
            "codebook_size": codec.info.codebook_size,
            "limits": {
                "max_batch": self.batcher.max_batch,
                "backend_max_batch": limits.max_batch,
                "max_delay_ms": o.max_delay_ms,
                "max_body_bytes": o.max_body_bytes,
                "max_streams": o.max_streams,
            },
            "replicas": o.replicas,
            "replica": {"pid": os.getpid(), "streams_open": len(self.hub.sessions)},
        }

    async def body(self, request: Request) -> bytes:
        length = request.headers.get("content-length")
        return await read_body(request.stream(), length, self.options.max_body_bytes)

    async def encode(self, request: Request) -> dict[str, Any]:
        body = await self.body(request)
        query = request.query_params.multi_items()
        ctype = request.headers.get("content-type")
        clip = await asyncio.to_thread(encode_input, body, ctype, query)
        codes, batch = await self.batcher.encode(clip)
        return {
            "codes": codes.tolist(),
            "frames": int(codes.shape[1]),
            "seconds": len(clip) / INPUT_SAMPLE_RATE,
            "code_rate": CODE_RATE,
            "batch": batch,
        }

    async def decode(self, request: Request) -> Response:
        fmt = params.query("POST /v1/decode", request.query_params.multi_items())["format"]
        body = await self.body(request)
        info = self.codec.info
        ctype = request.headers.get("content-type")
        codes = await asyncio.to_thread(
            decode_input, body, ctype, info.num_quantizers, info.codebook_size
        )
        audio, batch = await self.batcher.decode(codes)
        rate = self.codec.output_sample_rate
        headers = {"X-Sample-Rate": str(rate), "X-Batch": str(batch)}
        if fmt == "pcm":
            return Response(audio.astype("<f4").tobytes(), 200, headers, "audio/L32")
        return Response(wav_bytes(audio, rate), 200, headers, "audio/wav")

    def open_stream(self, kind: str, query: list[tuple[str, str]]) -> Session:
        """A session for ``/v1/stream/{kind}`` with the parameters in ``query`` (its pairs)."""
        q = params.query(f"WS /v1/stream/{kind}", query)
        if kind == "encode":
            options = EncodeStreamOptions(q["hop"], q["context"], q["lookahead"])
            return self.hub.open(kind, lambda: EncodeStream(options), q["rate"], q["format"])
        options = DecodeStreamOptions(
            q["hop"], q["context"], q["lookahead"], q["max_hop"], q["crossfade"]
        )
        info = self.codec.info
        return self.hub.open(kind, lambda: DecodeStream(options, info))

    async def stream(self, ws: WebSocket, kind: str) -> None:
        await ws.accept()
        try:
            session = self.open_stream(kind, ws.query_params.multi_items())
        except Exception as exc:  # noqa: BLE001 - refused: say why, close
            message, close = refusal(exc)
            await ws.send_text(message)
            await ws.close(close.code, close.reason)
            return
        await ws.send_text(json.dumps(session.hello()))
        sender = asyncio.create_task(_send(ws, session))
        try:
            while not session.closed:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return  # the client left: its stream is freed below
                try:
                    session.receive(message)
                except Exception as exc:  # noqa: BLE001 - this session only
                    session.fail(exc)
                self.hub.wake()
            await sender  # the rest of the output, then the close
        finally:
            self.hub.leave(session)
            sender.cancel()


async def _send(ws: WebSocket, session: Session) -> None:
    """Send the session's outbox until its `Close`; a client that left ends it quietly."""
    try:
        while True:
            item = await session.outbox.get()
            if isinstance(item, Close):
                await ws.close(item.code, item.reason)
                return
            if isinstance(item, bytes):
                await ws.send_bytes(item)
            else:
                await ws.send_text(item)
    except Exception:  # noqa: BLE001 - the socket is gone: nothing more to send
        return


@serve.deployment(name="Tokenizer")
@serve.ingress(app)
class Tokenizer:
    """The deployment: routes -> `Replica`, every failure -> an error response."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.replica = Replica(ServeOptions(**options))

    @app.get("/v1/health")
    async def health(self, request: Request) -> Any:
        try:
            params.query("GET /v1/health", request.query_params.multi_items())
        except Exception as exc:  # noqa: BLE001 - an unknown parameter: a 400, said why
            return error_response(exc)
        return {"status": "ok"}

    @app.get("/v1/info")
    async def info(self, request: Request) -> Any:
        try:
            params.query("GET /v1/info", request.query_params.multi_items())
        except Exception as exc:  # noqa: BLE001 - an unknown parameter: a 400, said why
            return error_response(exc)
        return self.replica.info()

    @app.post("/v1/encode")
    async def encode(self, request: Request) -> Any:
        try:
            return await self.replica.encode(request)
        except Exception as exc:  # noqa: BLE001 - one request fails, the replica serves on
            return error_response(exc)

    @app.post("/v1/decode")
    async def decode(self, request: Request) -> Any:
        try:
            return await self.replica.decode(request)
        except Exception as exc:  # noqa: BLE001 - one request fails, the replica serves on
            return error_response(exc)

    @app.websocket("/v1/stream/encode")
    async def stream_encode(self, ws: WebSocket) -> None:
        await self.replica.stream(ws, "encode")

    @app.websocket("/v1/stream/decode")
    async def stream_decode(self, ws: WebSocket) -> None:
        await self.replica.stream(ws, "decode")


def build(options: ServeOptions):
    """The Serve application of ``options`` (replicas, resources, limits, drain time)."""
    return Tokenizer.options(
        num_replicas=options.replicas,
        ray_actor_options={"num_cpus": options.cpus, "num_gpus": options.gpus},
        max_ongoing_requests=options.max_streams + 256,
        graceful_shutdown_timeout_s=options.drain_seconds,
        graceful_shutdown_wait_loop_s=0.2,
        health_check_period_s=2.0,
    ).bind(options.to_dict())
