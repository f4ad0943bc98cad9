"""Whisper-style log-mel in torch (docs/SPEC.md section 1), computing only the needed frames.

The published code pads every window to 30 s. Here the caller zero-pads the waveform only to
`xyrt.runtime.graph_io.padded_length`, and every frame returned equals the 30 s computation:
(a) frames are independent FFTs; (b) the right reflect-padding then reflects zeros, as in the
30 s window; (c) the per-item floor ``max - 8`` only depends on frames that touch the signal,
since a frame of pure padding has log10(1e-10) = -10, the smallest possible value.
"""

from __future__ import annotations

from xyrt.config import HOP_LENGTH, INPUT_SAMPLE_RATE, N_FFT, N_MELS, valid_frames
from xyrt.errors import require
from xyrt.runtime.features import mel_filters

torch = require("torch", "export", "the PyTorch network")
Tensor = torch.Tensor
nn = torch.nn


class LogMel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(N_FFT, periodic=True), persistent=False)
        filters = torch.from_numpy(mel_filters(INPUT_SAMPLE_RATE, N_FFT, N_MELS)).float()
        self.register_buffer("filters", filters, persistent=False)

    def forward(
        self, wav: Tensor, lengths: Tensor, mel_reference: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """wav (B, P), zero beyond lengths -> log-mel (B, 80, P / 160), valid frames ceil(n / 160).

        P comes from `xyrt.runtime.graph_io.padded_length`. ``mel_reference`` (B,): a maximum
        the floor is taken from when larger than the window's own (`log_mel_floor`).
        """
        with torch.autocast(device_type=wav.device.type, enabled=False):  # always float32
            spec = torch.stft(
                wav.float(),
                N_FFT,
                HOP_LENGTH,
                window=self.window,
                center=True,
                pad_mode="reflect",
                return_complex=True,
            )
            power = spec[..., :-1].abs() ** 2
            mel = torch.clamp(self.filters @ power, min=1e-10).log10()
            mel = normalise_log_mel(mel, mel_reference)
        return mel, valid_frames(lengths)


def normalise_log_mel(mel: Tensor, mel_reference: Tensor | None) -> Tensor:
    """log10-mel (B, 80, N) -> (max(mel, floor) + 4) / 4 with floor = max(window max, reference)
    - 8: the published floor when the reference is None or `graph_io.LOG_MEL_MIN`."""
    top = mel.amax(dim=(1, 2), keepdim=True)
    if mel_reference is not None:
        top = torch.maximum(top, mel_reference.to(mel.dtype)[:, None, None])
    return (torch.maximum(mel, top - 8.0) + 4.0) / 4.0
