"""Dynamic batching of a replica's encode and decode requests (``@serve.batch``).

Requests that arrive within ``max_delay_ms`` of each other, up to ``max_batch`` of them, run as
one `ChunkedCodec.encode`/``decode`` call on a list, which batches their windows within the
backend's limits (ragged windows are masked, so a clip's codes do not depend on its batch).
Every model call of a replica (these batches and the stream steps of `xyrt.serve.streams`) runs
on one `ModelThread`, one at a time, off the event loop. A batch that fails is rerun one request
at a time, so only the request at fault gets the error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import numpy as np
from ray import serve

from xyrt.runtime.backends.base import limits_of
from xyrt.runtime.codec import ChunkedCodec


class ModelThread:
    """Runs model calls on one thread, in order of submission."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="xyrt-model")

    async def __call__(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, partial(fn, *args))


def each(fn: Callable[[list], list], items: list) -> list:
    """``fn(items)``; if that fails, ``fn`` of each item alone, an item's exception as its
    result."""
    try:
        return list(fn(items))
    except Exception:  # noqa: BLE001 - find the request at fault, rerun the others
        out: list[Any] = []
        for item in items:
            try:
                out.append(fn([item])[0])
            except Exception as exc:  # noqa: BLE001 - returned to that request only
                out.append(exc)
        return out


def max_batch(codec: ChunkedCodec, requested: int | None) -> int:
    """Requests per batch: ``requested`` or the codec's windows per run, within the backend's
    ``max_batch``."""
    return limits_of(codec.backend).batch(requested or codec.batch_size)


class Batcher:
    """Encode/decode requests of one replica, batched dynamically."""

    def __init__(
        self, codec: ChunkedCodec, run: ModelThread, batch: int | None, max_delay_ms: float
    ) -> None:
        self.codec, self.run = codec, run
        self.max_batch = max_batch(codec, batch)
        for method in (self._encode_batch, self._decode_batch):
            method.set_max_batch_size(self.max_batch)
            method.set_batch_wait_timeout_s(max_delay_ms / 1e3)

    async def encode(self, clip: np.ndarray) -> tuple[np.ndarray, int]:
        """16 kHz samples -> (codes (8, T), how many requests shared the batch)."""
        return _raised(await self._encode_batch(clip))

    async def decode(self, codes: np.ndarray) -> tuple[np.ndarray, int]:
        """Codes (8, T) -> (audio at the output rate, how many requests shared the batch)."""
        return _raised(await self._decode_batch(codes))

    @serve.batch
    async def _encode_batch(self, clips: list[np.ndarray]) -> list:
        results = await self.run(each, self.codec.encode, clips)
        return [(r, len(clips)) for r in results]

    @serve.batch
    async def _decode_batch(self, codes: list[np.ndarray]) -> list:
        results = await self.run(each, self.codec.decode, codes)
        return [(r, len(codes)) for r in results]


def _raised(result: tuple[Any, int]) -> tuple[Any, int]:
    if isinstance(result[0], BaseException):
        raise result[0]
    return result
