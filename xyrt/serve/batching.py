"""Dynamic batching of a replica's encode and decode requests.

Requests wait in a `BatchQueue`; when the model is free, every request waiting then (up to
``max_batch``) runs as one `ChunkedCodec.encode`/``decode`` call on a list, which batches their
windows within the backend's limits (ragged windows are masked, so a clip's codes do not depend
on its batch). A lone request waits at most ``max_delay_ms`` for others. Ray Serve's
``@serve.batch`` is not used: it closes the next batch while the current one runs, after its
timeout, with whatever arrived by then (2.4 of 4 requests on average with 16 clients on this
project's CPU), while the rest wait behind it. Every model call of a replica (these batches and
the stream steps of `xyrt.serve.streams`) runs on one `ModelThread`, one at a time, off the event
loop. A batch that fails is rerun one request at a time, so only the request at fault gets the
error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import numpy as np

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


class BatchQueue:
    """Items for ``fn`` (a list -> a list of results), run on ``run`` in batches of at most
    ``max_batch``: a batch is formed when the model is free, from the items waiting then; with
    fewer than ``max_batch`` waiting it waits up to ``max_delay_s`` for more."""

    def __init__(
        self, fn: Callable[[list], list], run: ModelThread, max_batch: int, max_delay_s: float
    ) -> None:
        self.fn, self.run, self.max_batch, self.max_delay_s = fn, run, max_batch, max_delay_s
        self._waiting: list[tuple[Any, asyncio.Future]] = []
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    async def submit(self, item: Any) -> tuple[Any, int]:
        """``fn``'s result for ``item`` (its exception raised) and the size of its batch."""
        loop = asyncio.get_running_loop()
        if self._task is None:  # created in the replica's event loop, on first use
            self._arrived = asyncio.Event()
            self._task = loop.create_task(self._serve())
        future = loop.create_future()
        self._waiting.append((item, future))
        self._arrived.set()
        result, size = await future
        if isinstance(result, BaseException):
            raise result
        return result, size

    async def _serve(self) -> None:
        assert self._arrived is not None
        while True:
            await self._arrived.wait()
            deadline = asyncio.get_running_loop().time() + self.max_delay_s
            while len(self._live()) < self.max_batch:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), left)
                except asyncio.TimeoutError:
                    break
            batch = self._live()[: self.max_batch]
            taken = {id(f) for _, f in batch}
            self._waiting = [w for w in self._live() if id(w[1]) not in taken]
            if self._waiting:
                self._arrived.set()  # the next batch starts as soon as this one is done
            else:
                self._arrived.clear()
            if not batch:
                continue
            try:
                results = await self.run(each, self.fn, [item for item, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"{len(results)} results for a batch of {len(batch)}")
            except Exception as exc:  # noqa: BLE001 - `each` returns errors; this is a last resort
                results = [exc] * len(batch)  # every request answered; the queue keeps serving
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():  # a client that went away cancelled its future
                    future.set_result((result, len(batch)))

    def _live(self) -> list[tuple[Any, asyncio.Future]]:
        return [w for w in self._waiting if not w[1].done()]


class Batcher:
    """Encode/decode requests of one replica, batched dynamically."""

    def __init__(
        self, codec: ChunkedCodec, run: ModelThread, batch: int | None, max_delay_ms: float
    ) -> None:
        self.codec = codec
        self.max_batch = max_batch(codec, batch)
        delay = max_delay_ms / 1e3
        self._encode = BatchQueue(codec.encode, run, self.max_batch, delay)
        self._decode = BatchQueue(codec.decode, run, self.max_batch, delay)

    async def encode(self, clip: np.ndarray) -> tuple[np.ndarray, int]:
        """16 kHz samples -> (codes (8, T), how many requests shared the batch)."""
        return await self._encode.submit(clip)

    async def decode(self, codes: np.ndarray) -> tuple[np.ndarray, int]:
        """Codes (8, T) -> (audio at the output rate, how many requests shared the batch)."""
        return await self._decode.submit(codes)
