"""CUDA graphs for the PyTorch backend: capture a window shape once, then replay it.

A batch-1 window of the full-size model is a few hundred small kernels, so on a GPU its eager
latency is launch-bound (about 3x slower than the same work replayed). `GraphRunner` keeps one
captured graph per input shape: the first ``warmup`` calls of a shape run eagerly (kernels
chosen, cuFFT plans made, lazy state settled), the next one warms up once more on a side
stream and captures; later calls copy their inputs into the graph's static buffers and replay.
All graphs of a runner share one memory pool, which is safe because the runner serialises
calls and every caller copies a graph's outputs out before the next call. A shape whose
capture fails runs eagerly from then on, and the reason is kept (`failures`).

Which GPU: capture and replay run under ``torch.cuda.device(dev)`` on the runner's own stream,
whatever device and stream the calling thread has current (a ``cuda:1`` backend called from a
thread whose current device is 0 would otherwise capture nothing: kernels land on another
device's stream). The caller's stream waits for the replay, so its copies see the outputs. A
capture that recorded no work (PyTorch only warns "The CUDA Graph is empty") is a failed
capture: that shape runs eagerly, never replays stale outputs.

Bounded: at most ``max_graphs`` captured shapes (least recently used dropped) and at most
``4 * max_graphs`` shapes remembered for their warm-up count. Capture uses ``CUDAGraph``
directly rather than the ``torch.cuda.graph`` context manager, which synchronises the device
and empties the allocator's cache on every capture (stalling a language model that shares the
GPU); the runner synchronises only its own stream.

torch is imported by this module; only `xyrt.runtime.backends.pytorch.backend` imports it, and
only when the PyTorch backend is chosen.
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from xyrt.errors import require

torch = require("torch", "export", "the PyTorch backend")

Fn = Callable[..., tuple[Any, ...]]


@dataclass
class _Graph:
    graph: Any
    inputs: tuple[Any, ...]
    outputs: tuple[Any, ...]


@dataclass
class GraphStats:
    """What a runner did: captures, replays, eager runs, and why a shape was left eager."""

    captures: int = 0
    replays: int = 0
    eager: int = 0
    capture_seconds: float = 0.0
    failures: dict[str, str] = field(default_factory=dict)


class GraphRunner:
    """Runs ``fn(*tensors) -> tuple of tensors`` through a CUDA graph per input shape.

    ``max_graphs`` bounds how many shapes stay captured (least recently used dropped first).
    ``enabled=False`` (or a CPU device) runs every call eagerly.
    """

    def __init__(
        self,
        fn: Fn,
        device: Any,
        enabled: bool = True,
        warmup: int = 1,
        max_graphs: int = 16,
    ) -> None:
        self.fn = fn
        self.device = torch.device(device)
        self.enabled = enabled and self.device.type == "cuda"
        self.warmup = warmup
        self.max_graphs = max_graphs
        self.seen: OrderedDict[tuple, int] = OrderedDict()
        self.graphs: OrderedDict[tuple, _Graph] = OrderedDict()
        self.stats = GraphStats()
        self.lock = threading.Lock()
        self.pool = None
        self.stream = None  # the runner's own CUDA stream, made on first use

    def _own_stream(self) -> Any:
        if self.stream is None:
            self.stream = torch.cuda.Stream(self.device)
        return self.stream

    @staticmethod
    def key(tensors: Sequence[Any]) -> tuple:
        return tuple((tuple(t.shape), t.dtype) for t in tensors)

    def __call__(self, *tensors: Any) -> tuple[Any, ...]:
        """Outputs of ``fn`` for these device tensors; a replayed graph's outputs are its static
        buffers, valid until the next call (copy them out before then)."""
        if not self.enabled:
            self.stats.eager += 1
            return self.fn(*tensors)
        key = self.key(tensors)
        with self.lock, torch.cuda.device(self.device):
            graph = self.graphs.get(key)
            if graph is None:
                count = self._count(key)
                if count < self.warmup or key in self.stats.failures:
                    self.stats.eager += 1
                    return self.fn(*tensors)
                graph = self._capture(key, tensors)
                if graph is None:
                    self.stats.eager += 1
                    return self.fn(*tensors)
            else:
                self.graphs.move_to_end(key)
            caller, own = torch.cuda.current_stream(self.device), self._own_stream()
            own.wait_stream(caller)  # the inputs were written on the caller's stream
            with torch.cuda.stream(own):
                for static, new in zip(graph.inputs, tensors, strict=True):
                    static.copy_(new, non_blocking=True)
                graph.graph.replay()
            caller.wait_stream(own)  # the caller's copies of the outputs come after the replay
            self.stats.replays += 1
            return graph.outputs

    def _count(self, key: tuple) -> int:
        """How often ``key`` was seen before this call (remembered shapes are bounded)."""
        count = self.seen.pop(key, 0)
        self.seen[key] = count + 1
        while len(self.seen) > 4 * self.max_graphs:
            self.seen.popitem(last=False)
        return count

    def _capture(self, key: tuple, tensors: Sequence[Any]) -> _Graph | None:
        import time

        t0 = time.perf_counter()
        caller, own = torch.cuda.current_stream(self.device), self._own_stream()
        try:
            inputs = tuple(t.clone() for t in tensors)
            own.wait_stream(caller)
            with torch.cuda.stream(own):
                self.fn(*inputs)  # warm-up on the capture stream, as capture requires
                if self.pool is None:
                    self.pool = torch.cuda.graph_pool_handle()
                graph = torch.cuda.CUDAGraph()
                with warnings.catch_warnings(record=True) as seen:
                    warnings.simplefilter("always")
                    graph.capture_begin(pool=self.pool)
                    try:
                        outputs = self.fn(*inputs)
                    finally:
                        graph.capture_end()
            caller.wait_stream(own)
            empty = [w for w in seen if "empty" in str(w.message).lower()]
            if empty:  # nothing was recorded: a replay would return the capture's outputs
                raise RuntimeError(f"the captured graph is empty ({empty[0].message})")
        except Exception as exc:  # noqa: BLE001 - any capture failure means: run this shape eagerly
            self.stats.failures[key] = f"{type(exc).__name__}: {exc}"[:300]
            own.synchronize()
            return None
        entry = _Graph(graph, inputs, tuple(outputs))
        self.graphs[key] = entry
        while len(self.graphs) > self.max_graphs:
            self.graphs.popitem(last=False)
        self.stats.captures += 1
        self.stats.capture_seconds += time.perf_counter() - t0
        return entry

    def clear(self) -> None:
        """Drop every captured graph and its memory."""
        with self.lock:
            self.graphs.clear()
            self.seen.clear()
            self.pool = None
