"""`XYCodec`: the PyTorch model under the shared `ChunkedCodec`, on the runtime's
`xyrt.runtime.backends.pytorch.backend.TorchBackend`.

codec = XYCodec.from_checkpoint("model.ckpt")
codes = codec.encode(wav)          # (8, T) int64, T = floor(n / 1280)
audio = codec.decode(codes)        # (T x samples_per_code,) float32 at the output rate
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xyrt.config import INPUT_SAMPLE_RATE, XYConfig
from xyrt.runtime.backends.pytorch.backend import TorchBackend
from xyrt.runtime.chunking import OVERLAP_SECONDS
from xyrt.runtime.codec import ChunkedCodec
from xyrt.runtime.compare import ReferenceCodes
from xyrt.runtime.network.checkpoint import load_model
from xyrt.runtime.network.model import XYTokenizer


class XYCodec(ChunkedCodec):
    """Offline encode/decode with the PyTorch model (see `ChunkedCodec` for the options).

    ``device``/``precision`` go to `TorchBackend` (default: where the model is, float32)."""

    def __init__(
        self,
        model: XYTokenizer,
        device: Any = None,
        precision: str = "fp32",
        cuda_graphs: bool = True,
        **options: Any,
    ) -> None:
        """``options``: ``batch_size``, ``pad_to_30s``, ``progress`` of `ChunkedCodec`."""
        super().__init__(TorchBackend(model, device, precision, cuda_graphs=cuda_graphs), **options)
        self.model = model
        self.cfg: XYConfig = model.cfg

    def encode_reference(
        self,
        audio: np.ndarray | Sequence[np.ndarray],
        sample_rate: int = INPUT_SAMPLE_RATE,
        overlap: float = OVERLAP_SECONDS,
    ) -> ReferenceCodes | list[ReferenceCodes]:
        """`encode` with each code's float32 tie margin: the reference against which other
        backends are judged (`xyrt.runtime.compare.compare_codes`); a list for a list."""
        window_fn = self.backend.encode_window_with_margins
        single, out = self.encode_with(window_fn, audio, sample_rate, overlap)
        refs = [ReferenceCodes(codes, margins) for codes, margins in out]
        return refs[0] if single else refs

    @classmethod
    def from_checkpoint(
        cls, checkpoint: str | Path, config: str | Path | None = None, **options: Any
    ) -> XYCodec:
        """Load an official-layout checkpoint (config: given, else config.yaml beside it)."""
        return cls(load_model(checkpoint, config), **options)
