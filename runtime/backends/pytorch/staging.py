"""Host <-> GPU transfers of the PyTorch backend: pinned buffers, asynchronous results.

A batch's inputs are copied into a pinned host buffer and sent to the GPU without waiting; its
outputs come back into pinned buffers, also without waiting, and a CUDA event marks when they
are there. The caller gets a `Pending` and reads it later (`Pending.result()`: one
synchronisation per batch), so it can prepare the next batch on the CPU while the GPU runs this
one (`xyrt.runtime.codec.ChunkedCodec` keeps two batches in flight).

Buffers come in ``SLOTS`` sets, used in turn. Before a set is reused, the batch that used it
last is finished and its result copied out (so nothing is overwritten while the GPU still reads
it, and no uncollected result is lost, however many batches a caller leaves in flight).

Bounded: one buffer per (tag, slot, dtype), grown to the largest batch seen (capacity rounded
up to a power of two elements) rather than one per batch size, so a long-running server's pinned
memory stops growing once it has seen its largest batch; past ``max_pinned_bytes`` a buffer is
ordinary pageable memory (correct, only its copy is synchronous). `pinned_bytes` says how much
is pinned (bench reports it).

On a CPU device everything is synchronous and no buffer is pinned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from xyrt.errors import require
from xyrt.runtime.backends.base import Done, Pending

torch = require("torch", "export", "the PyTorch backend")

SLOTS = 2


class TorchPending(Pending):
    """Outputs on their way to pinned host memory; `result()` waits for them once, copies them
    out and applies ``finish`` (checks, trimming)."""

    def __init__(self, event: Any, staged: list[Any], finish: Callable[..., Any]) -> None:
        self.event, self.staged, self.finish = event, staged, finish
        self.arrays: list[np.ndarray] | None = None

    def settle(self) -> None:
        """Wait and copy out (errors of ``finish`` wait for `result`): the buffers are free."""
        if self.arrays is None:
            self.event.synchronize()
            self.arrays = [s.numpy().copy() for s in self.staged]
            self.staged = []

    def result(self) -> Any:
        self.settle()
        return self.finish(*self.arrays)


class HostStaging:
    """Pinned buffers in `SLOTS` sets for one device (see the module docstring)."""

    def __init__(self, device: Any, max_pinned_bytes: int | None = None) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self.max_pinned_bytes = max_pinned_bytes
        self.buffers: dict[tuple, Any] = {}
        self.slot = 0
        self.inflight: list[TorchPending | None] = [None] * SLOTS

    def begin(self) -> int:
        """The buffer set for the next batch, free of any earlier batch."""
        self.slot = (self.slot + 1) % SLOTS
        previous = self.inflight[self.slot]
        if previous is not None:
            previous.settle()
            self.inflight[self.slot] = None
        return self.slot

    @property
    def pinned_bytes(self) -> int:
        """Bytes of page-locked host memory the buffers hold."""
        return sum(b.numel() * b.element_size() for b in self.buffers.values() if b.is_pinned())

    def _buffer(self, tag: str, slot: int, like: Any) -> Any:
        key = (tag, slot, like.dtype)
        buf = self.buffers.get(key)
        n = like.numel()
        if buf is None or buf.numel() < n:
            # the slot's earlier batch was settled by `begin`: the old buffer is free
            self.buffers.pop(key, None)
            size = 1 << max(0, n - 1).bit_length()
            buf = torch.empty(size, dtype=like.dtype)
            cap = self.max_pinned_bytes
            if cap is None or self.pinned_bytes + size * buf.element_size() <= cap:
                buf = buf.pin_memory()
            self.buffers[key] = buf
        return buf[:n].view(like.shape)

    def to_device(self, array: np.ndarray, slot: int, tag: str) -> Any:
        """A numpy input on the device (through this slot's pinned buffer on CUDA)."""
        host = torch.from_numpy(np.ascontiguousarray(array))
        if not self.cuda:
            return host
        staged = self._buffer(tag, slot, host)
        staged.copy_(host)
        return staged.to(self.device, non_blocking=True)

    def to_host(self, tensors: tuple[Any, ...], slot: int, finish: Callable[..., Any]) -> Pending:
        """Device outputs on their way to the host; the `Pending` gives ``finish(*arrays)``."""
        if not self.cuda:
            return Done(finish(*[t.numpy().copy() for t in tensors]))
        staged = []
        for i, t in enumerate(tensors):
            buf = self._buffer(f"out{i}", slot, t)
            buf.copy_(t, non_blocking=True)
            staged.append(buf)
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(self.device))
        pending = TorchPending(event, staged, finish)
        self.inflight[slot] = pending
        return pending

    def clear(self) -> None:
        for p in self.inflight:
            if p is not None:
                p.settle()
        self.inflight = [None] * SLOTS
        self.buffers.clear()
