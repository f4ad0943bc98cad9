"""The backend interface every runtime implements: load, run windows, close.

A backend runs one batch of windows (at most 30 s each) through the network, with the graph I/O
contract of `xyrt.runtime.graph_io`:

    encode_window(wav (B, P) float32, lengths (B,) int64[, positions (B,) int64,
                  mel_reference (B,) float32]) -> codes (8, B, P / 1280) int64
    decode_window(codes (8, B, T) int64[, positions (B,) int64])
        -> audio (B, T x samples_per_code) float32

``positions`` and ``mel_reference`` default to the offline window's (0 and `LOG_MEL_MIN`); streams
pass their windows' place in the offline plan. A backend over an export older than these inputs
drops them (`graph_inputs` lists what each graph takes; `graph_io.has_window_inputs`).

Lifecycle: heavy objects (sessions, engines, device memory) are created lazily by the first run
or explicitly by `load()`, and released by `close()`; a closed backend loads again when run.
Backends are context managers (``with backend: ...`` loads on entry and closes on exit).
`xyrt.runtime.codec.ChunkedCodec` builds the user-facing codec on top of one.

A backend may also time its stages for ``xyrt bench`` (`stage_profiler`); most return None.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from xyrt.runtime.graph_io import DECODER, ENCODER, GRAPHS, fit_feed


@dataclass(frozen=True)
class ModelInfo:
    """What a runtime needs to know about the model behind a backend."""

    output_sample_rate: int
    samples_per_code_out: int
    num_quantizers: int = 8
    codebook_size: int = 1024


@dataclass(frozen=True)
class BackendLimits:
    """What a backend can take in one run, and where it runs.

    ``max_batch``: windows per run at most (None: no limit; a TensorRT profile's maximum, say);
    ``preferred_batch``: windows per run when the caller does not say (more on a GPU);
    ``device``: "cpu", "cuda:0", ...
    ``max_graphs``: captured CUDA graphs kept per graph (None: the backend captures none);
    ``max_pinned_bytes``: page-locked host memory its transfer buffers may hold (None: none or
    no cap).
    """

    max_batch: int | None = None
    device: str = "cpu"
    preferred_batch: int = 4
    max_graphs: int | None = None
    max_pinned_bytes: int | None = None

    def batch(self, requested: int | None) -> int:
        """Windows per run: ``requested`` (or the preferred number), capped by ``max_batch``."""
        n = self.preferred_batch if requested is None else requested
        return n if self.max_batch is None else min(n, self.max_batch)


# The stage row of a run's time that no stage accounts for (time outside every node or kernel
# the profiler sees): reported as a row of its own, never spread over the stages.
UNATTRIBUTED = "unattributed"


@dataclass(frozen=True)
class StageTimes:
    """One profiled run: milliseconds per stage (names from `graph_io.STAGE_SCOPES`) and of
    the whole run."""

    stages_ms: dict[str, float]
    total_ms: float


class Pending(ABC):
    """A batch submitted to a backend; `result()` waits for it (once) and returns its output."""

    @abstractmethod
    def result(self) -> Any: ...


class Done(Pending):
    """A result that is already there (backends that run synchronously)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def result(self) -> Any:
        return self.value


class Backend(ABC):
    """Runs one batch of windows; see the module docstring for shapes and lifecycle."""

    name: str = ""
    info: ModelInfo
    limits: BackendLimits = BackendLimits()

    def load(self, graphs: Collection[str] = GRAPHS) -> Backend:
        """Create the sessions/engines of ``graphs`` (default both) now rather than inside the
        first run; returns self. A backend that loads its graphs together loads both."""
        return self

    def close(self) -> None:  # noqa: B027 - backends without resources need nothing here
        """Release sessions, engines and device memory (safe to call twice)."""

    # graph -> the inputs its graph takes (from the manifest); None: the whole contract
    graph_inputs: dict[str, Sequence[str]] | None = None

    @abstractmethod
    def encode_window(
        self,
        wav: np.ndarray,
        lengths: np.ndarray,
        positions: np.ndarray | None = None,
        mel_reference: np.ndarray | None = None,
    ) -> np.ndarray:
        """waveform (B, P) float32, lengths (B,) int64 -> codes (8, B, P / 1280) int64."""

    @abstractmethod
    def decode_window(self, codes: np.ndarray, positions: np.ndarray | None = None) -> np.ndarray:
        """codes (8, B, T) int64 -> audio (B, T x samples_per_code_out) float32."""

    def submit_encode(
        self,
        wav: np.ndarray,
        lengths: np.ndarray,
        positions: np.ndarray | None = None,
        mel_reference: np.ndarray | None = None,
    ) -> Pending:
        """`encode_window` started; the codes come from ``.result()``. Backends that can run a
        batch while the caller prepares the next override this; the default runs it now."""
        return Done(self.encode_window(wav, lengths, positions, mel_reference))

    def submit_decode(self, codes: np.ndarray, positions: np.ndarray | None = None) -> Pending:
        """`decode_window` started (see `submit_encode`)."""
        return Done(self.decode_window(codes, positions))

    def fit(self, graph: str, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``feed`` without the inputs this backend's ``graph`` lacks (`graph_io.fit_feed`)."""
        return feed if self.graph_inputs is None else fit_feed(feed, self.graph_inputs[graph])

    def window_samples(self, samples: int) -> int:
        """Samples an encoder window of ``samples`` is run as (a shape bucket of the backend;
        the default: as it is). Padding never changes codes: padded samples are masked."""
        return samples

    def stage_profiler(self) -> StageProfiler | None:
        """Per-stage timing for ``xyrt bench``, where this backend can give it; else None."""
        return None

    def __enter__(self) -> Backend:
        return self.load()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def limits_of(backend: object) -> BackendLimits:
    """A backend's limits (defaults for an object that declares none)."""
    limits = getattr(backend, "limits", None)
    return limits if isinstance(limits, BackendLimits) else BackendLimits()


class LazyGraph(Protocol):
    """A lazy loader of one graph: calling it builds the session (once) and returns it;
    `close()` drops it."""

    def __call__(self) -> Any: ...

    def close(self) -> None: ...


class GraphPairBackend(Backend):
    """A `Backend` whose encoder and decoder are `LazyGraph` loaders (ONNX Runtime, OpenVINO)."""

    encoder: LazyGraph
    decoder: LazyGraph

    def load(self, graphs: Collection[str] = GRAPHS) -> GraphPairBackend:
        """Create the graphs named (default both) now, side by side (ONNX Runtime and OpenVINO
        release the GIL while they load and compile): cold start is the slower graph, not the
        sum."""
        from concurrent.futures import ThreadPoolExecutor

        loaders = {ENCODER: self.encoder, DECODER: self.decoder}
        with ThreadPoolExecutor(2) as pool:
            for future in [pool.submit(loaders[g]) for g in graphs]:
                future.result()
        return self

    def close(self) -> None:
        self.encoder.close()
        self.decoder.close()


class StageProfiler(ABC):
    """Per-stage timing of a backend, for ``xyrt bench`` (`Backend.stage_profiler`)."""

    method: str = ""  # how the stage times are measured, as the report states it

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @abstractmethod
    def profile(
        self, graph: str, jobs: Sequence[tuple[dict[str, np.ndarray], int]]
    ) -> list[list[StageTimes]]:
        """For each (feed of ``graph``, runs) job: the times of each of its runs."""
