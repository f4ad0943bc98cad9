"""Multi-resolution log-mel L1 between waveforms: the training loss and the card's mel distance."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from xyrt.config import INPUT_SAMPLE_RATE
from xyrt.runtime.features import mel_filters

# (n_fft, hop, mels) at 16 kHz: 32, 64 and 128 ms windows
RESOLUTIONS = ((512, 128, 64), (1024, 256, 80), (2048, 512, 128))
LOG_FLOOR = 1e-5  # power floor before the log (about -100 dB)


class MultiResMel(nn.Module):
    def __init__(self, resolutions: tuple[tuple[int, int, int], ...] = RESOLUTIONS) -> None:
        super().__init__()
        self.resolutions = resolutions
        for i, (n_fft, _, mels) in enumerate(resolutions):
            filters = torch.from_numpy(mel_filters(INPUT_SAMPLE_RATE, n_fft, mels)).float()
            self.register_buffer(f"filters_{i}", filters, persistent=False)
            self.register_buffer(f"window_{i}", torch.hann_window(n_fft), persistent=False)

    def log_mels(self, wav: Tensor) -> list[Tensor]:
        """wav (B, S) -> one natural-log mel (B, mels, frames) per resolution."""
        out = []
        for i, (n_fft, hop, _) in enumerate(self.resolutions):
            spec = torch.stft(
                wav, n_fft, hop, window=getattr(self, f"window_{i}"), return_complex=True
            )
            mel = getattr(self, f"filters_{i}") @ spec.abs().pow(2)
            out.append(mel.clamp(min=LOG_FLOOR).log())
        return out

    def forward(self, got: Tensor, ref: Tensor) -> Tensor:
        """Mean over resolutions of the mean |log-mel difference| (natural log units)."""
        pairs = zip(self.log_mels(got), self.log_mels(ref), strict=True)
        return torch.stack([(a - b).abs().mean() for a, b in pairs]).mean()
