"""`XYCodec`: the PyTorch model as a `Backend` under the shared `ChunkedCodec`.

codec = XYCodec.from_checkpoint("model.ckpt")
codes = codec.encode(wav)          # (8, T) int64, T = floor(n / 1280)
audio = codec.decode(codes)        # (T x samples_per_code,) float32 at the output rate
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from xyrt.config import XYConfig
from xyrt.errors import AudioError
from xyrt.export.checkpoint import load_model
from xyrt.export.model import XYTokenizer
from xyrt.runtime.backend import ModelInfo
from xyrt.runtime.codec import ChunkedCodec


def model_info(cfg: XYConfig) -> ModelInfo:
    """What the runtime needs to know about a model (rates, codebooks)."""
    return ModelInfo(
        output_sample_rate=cfg.output_sample_rate,
        samples_per_code_out=cfg.samples_per_code_out,
        num_quantizers=cfg.num_quantizers,
        codebook_size=cfg.codebook_size,
    )


class TorchBackend:
    """Runs windows through `XYTokenizer` in eager PyTorch (float32, inference mode)."""

    name = "pytorch"

    def __init__(self, model: XYTokenizer) -> None:
        self.model = model.eval()
        self.info = model_info(model.cfg)

    @property
    def device(self) -> torch.device:
        """Where the model's weights are (windows run there; results come back as numpy)."""
        return next(self.model.parameters()).device

    @torch.inference_mode()
    def encode_window(self, wav: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        on = self.device
        mel, mel_lengths = self.model.frontend(
            torch.from_numpy(wav).to(on), torch.from_numpy(lengths).to(on)
        )
        if not bool(torch.isfinite(mel).all()):  # never codes computed from inf/NaN
            raise AudioError(
                "the log-mel features of this audio are not finite; scale it to [-1, 1]"
            )
        codes, _ = self.model.encode_mel(mel, mel_lengths)
        return codes.cpu().numpy()

    @torch.inference_mode()
    def decode_window(self, codes: np.ndarray) -> np.ndarray:
        return self.model.decode_codes(torch.from_numpy(codes).to(self.device)).cpu().numpy()


class XYCodec(ChunkedCodec):
    """Offline encode/decode with the PyTorch model (see `ChunkedCodec` for the options)."""

    def __init__(
        self,
        model: XYTokenizer,
        batch_size: int = 4,
        pad_to_30s: bool = False,
        progress: bool = False,
    ) -> None:
        super().__init__(TorchBackend(model), batch_size, pad_to_30s, progress)
        self.model = model
        self.cfg: XYConfig = model.cfg

    @classmethod
    def from_checkpoint(
        cls, checkpoint: str | Path, config: str | Path | None = None, **options: int | bool
    ) -> XYCodec:
        """Load an official-layout checkpoint (config: given, else config.yaml beside it)."""
        return cls(load_model(checkpoint, config), **options)
