"""`XYCodec`: the PyTorch model as a `Backend` under the shared `ChunkedCodec`.

codec = XYCodec.from_checkpoint("model.ckpt")
codes = codec.encode(wav)          # (8, T) int64, T = floor(n / 1280)
audio = codec.decode(codes)        # (T x samples_per_code,) float32 at the output rate
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from xyrt.config import INPUT_SAMPLE_RATE, XYConfig
from xyrt.errors import AudioError, XyrtError
from xyrt.export.checkpoint import load_model
from xyrt.export.model import XYTokenizer
from xyrt.runtime.backend import Backend, ModelInfo, StageProfiler
from xyrt.runtime.codec import ChunkedCodec
from xyrt.runtime.compare import ReferenceCodes

DTYPES = ("fp32", "bf16")


def model_info(cfg: XYConfig) -> ModelInfo:
    """What the runtime needs to know about a model (rates, codebooks)."""
    return ModelInfo(
        output_sample_rate=cfg.output_sample_rate,
        samples_per_code_out=cfg.samples_per_code_out,
        num_quantizers=cfg.num_quantizers,
        codebook_size=cfg.codebook_size,
    )


class TorchBackend(Backend):
    """Runs windows through `XYTokenizer` in eager PyTorch (inference mode).

    ``device`` ("cpu", "cuda") moves the model there (default: where it is); ``dtype="bf16"``
    runs under autocast (the front end, RVQ and
    iSTFT stay float32). Outputs are numpy on the host: codes int64, audio float32.
    """

    name = "pytorch"

    def __init__(self, model: XYTokenizer, device: str | None = None, dtype: str = "fp32") -> None:
        if dtype not in DTYPES:
            raise XyrtError(f"dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
        self.model = model.eval() if device is None else model.eval().to(device)
        self.autocast = dtype == "bf16"
        self.info = model_info(model.cfg)

    @property
    def device(self) -> torch.device:
        """Where the model's weights are (windows run there; results come back as numpy)."""
        return next(self.model.parameters()).device

    def context(self) -> contextlib.ExitStack:
        """Inference mode, plus bf16 autocast when asked for."""
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        if self.autocast:
            stack.enter_context(torch.autocast(self.device.type, torch.bfloat16))
        return stack

    def tensor(self, array: np.ndarray) -> torch.Tensor:
        """A numpy input on this backend's device."""
        return torch.from_numpy(array).to(self.device)

    def encode_window(self, wav: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        with self.context():
            codes, _ = self.model.encode_mel(*self.finite_mel(wav, lengths))
        return codes.cpu().numpy()

    def finite_mel(self, wav: np.ndarray, lengths: np.ndarray) -> tuple[torch.Tensor, ...]:
        """The log-mel front end; never codes computed from inf/NaN features."""
        mel, mel_lengths = self.model.frontend(self.tensor(wav), self.tensor(lengths))
        if not bool(torch.isfinite(mel).all()):
            raise AudioError(
                "the log-mel features of this audio are not finite; scale it to [-1, 1]"
            )
        return mel, mel_lengths

    def encode_window_with_margins(
        self, wav: np.ndarray, lengths: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """`encode_window` plus each code's tie margin: codes (8, B, T) int64 and margins
        (8, B, T) float32 (see `xyrt.runtime.compare.ReferenceCodes`)."""
        with self.context():
            x, code_lengths = self.model.latents(*self.finite_mel(wav, lengths))
            codes, margins = self.model.quantizer.encode_with_margins(x, code_lengths)
        return codes.cpu().numpy(), margins.float().cpu().numpy()

    def decode_window(self, codes: np.ndarray) -> np.ndarray:
        with self.context():
            audio = self.model.decode_codes(self.tensor(codes))
        return audio.float().cpu().numpy()

    def stage_profiler(self) -> StageProfiler:
        from xyrt.export.stages import TorchStageProfiler

        return TorchStageProfiler(self)


class XYCodec(ChunkedCodec):
    """Offline encode/decode with the PyTorch model (see `ChunkedCodec` for the options)."""

    def __init__(self, model: XYTokenizer, **options: int | bool) -> None:
        """``options``: ``batch_size``, ``pad_to_30s``, ``progress`` of `ChunkedCodec`."""
        super().__init__(TorchBackend(model), **options)
        self.model = model
        self.cfg: XYConfig = model.cfg

    def encode_reference(
        self,
        audio: np.ndarray | Sequence[np.ndarray],
        sample_rate: int = INPUT_SAMPLE_RATE,
        overlap: float = 10.0,
    ) -> ReferenceCodes | list[ReferenceCodes]:
        """`encode` with each code's float32 tie margin: the reference against which other
        backends are judged (`xyrt.runtime.compare.compare_codes`); a list for a list."""
        window_fn = TorchBackend(self.model).encode_window_with_margins
        single, out = self.encode_with(window_fn, audio, sample_rate, overlap)
        refs = [ReferenceCodes(codes, margins) for codes, margins in out]
        return refs[0] if single else refs

    @classmethod
    def from_checkpoint(
        cls, checkpoint: str | Path, config: str | Path | None = None, **options: int | bool
    ) -> XYCodec:
        """Load an official-layout checkpoint (config: given, else config.yaml beside it)."""
        return cls(load_model(checkpoint, config), **options)
