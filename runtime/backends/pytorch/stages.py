"""Stage times of the PyTorch model for ``xyrt bench``: the stages of `XYTokenizer` run one
after another, each timed (CPU execution is synchronous; on CUDA every lap synchronises)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from xyrt.errors import require
from xyrt.runtime.backends.base import StageProfiler, StageTimes
from xyrt.runtime.graph_io import CODES, ENCODER, LENGTHS, WAVEFORM

if TYPE_CHECKING:  # the backend imports this module when asked for its profiler
    from xyrt.runtime.backends.pytorch.backend import TorchBackend

torch = require("torch", "export", "the PyTorch network")


class TorchStageProfiler(StageProfiler):
    """`StageProfiler` of a `TorchBackend`: sequential stage timing (synchronised)."""

    method = "sequential stage timing (PyTorch, synchronised)"
    backend: TorchBackend

    def profile(
        self, graph: str, jobs: Sequence[tuple[dict[str, np.ndarray], int]]
    ) -> list[list[StageTimes]]:
        run = self.encode if graph == ENCODER else self.decode
        return [[run(feed) for _ in range(runs)] for feed, runs in jobs]

    def _ms_since(self, t: float) -> float:
        if self.backend.device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - t) * 1e3

    @contextlib.contextmanager
    def _lap(self, stages: dict[str, float], name: str) -> Iterator[None]:
        t = time.perf_counter()
        yield
        stages[name] = self._ms_since(t)

    def encode(self, feed: dict[str, np.ndarray]) -> StageTimes:
        b, m = self.backend, self.backend.model
        st: dict[str, float] = {}
        with b.context():
            start = time.perf_counter()
            with self._lap(st, "frontend"):
                mel, ml = m.frontend(b.tensor(feed[WAVEFORM]), b.tensor(feed[LENGTHS]))
            with self._lap(st, "semantic_encoder"):
                sem, l50 = m.semantic_encoder(mel, ml)
            with self._lap(st, "semantic_adapter"):
                sem = m.semantic_encoder_adapter(sem, l50)
            with self._lap(st, "acoustic_encoder"):
                aco, _ = m.acoustic_encoder(mel, ml)
            with self._lap(st, "pre_rvq_adapter"):
                x = m.pre_rvq_adapter(torch.cat([sem, aco], dim=-1), l50)
            with self._lap(st, "downsample"):
                x, l12 = m.downsample(x, l50)
            with self._lap(st, "rvq"):
                m.quantizer.encode(x, l12)
            return StageTimes(st, self._ms_since(start))

    def decode(self, feed: dict[str, np.ndarray]) -> StageTimes:
        b, m = self.backend, self.backend.model
        st: dict[str, float] = {}
        with b.context():
            start = time.perf_counter()
            c, lengths = b.tensor(feed[CODES]), b.tensor(feed[LENGTHS])
            with self._lap(st, "rvq_decode"):
                x = m.quantizer.decode(c)
            with self._lap(st, "post_rvq_adapter"):
                x = m.post_rvq_adapter(x, lengths)
            with self._lap(st, "upsample"):
                x, l50 = m.upsample(x, lengths)
            with self._lap(st, "acoustic_decoder"):
                mel, _ = m.acoustic_decoder(x, l50)
            with self._lap(st, "vocoder"):
                m.vocoder(mel)
            return StageTimes(st, self._ms_since(start))
