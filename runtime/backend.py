"""The backend interface every runtime implements.

A backend runs one batch of windows (at most 30 s each) through the network, with the graph I/O
contract of `xyrt.runtime.graph_io`:

    encode_window(wav (B, P) float32, lengths (B,) int64) -> codes (8, B, P / 1280) int64
    decode_window(codes (8, B, T) int64) -> audio (B, T x samples_per_code) float32

`xyrt.runtime.codec.ChunkedCodec` builds the user-facing codec on top of one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class ModelInfo:
    """What a runtime needs to know about the model behind a backend."""

    output_sample_rate: int
    samples_per_code_out: int
    num_quantizers: int = 8
    codebook_size: int = 1024


class Backend(Protocol):
    """Runs one batch of windows; see the module docstring for shapes."""

    info: ModelInfo
    name: str

    def encode_window(self, wav: np.ndarray, lengths: np.ndarray) -> np.ndarray: ...

    def decode_window(self, codes: np.ndarray) -> np.ndarray: ...
