"""Vocos vocoder with the ISTFT head (docs/SPEC.md section 7): mel (B, 80, F) -> audio (B, F x hop).

The inverse STFT is written out (irfft, window, overlap-add by ``fold``, "same" trim, division
by the window envelope) so the computation is explicit and matches the published one.
"""

from __future__ import annotations

from xyrt.config import VocosConfig
from xyrt.errors import require

torch = require("torch", "export", "the PyTorch network")
F = torch.nn.functional
Tensor = torch.Tensor
nn = torch.nn


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int, intermediate_dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        """x (B, dim, F) -> (B, dim, F)."""
        h = self.dwconv(x).transpose(1, 2)
        h = self.pwconv2(F.gelu(self.pwconv1(self.norm(h)))) * self.gamma
        return x + h.transpose(1, 2)


class Backbone(nn.Module):
    def __init__(self, cfg: VocosConfig) -> None:
        super().__init__()
        self.embed = nn.Conv1d(cfg.input_channels, cfg.dim, kernel_size=7, padding=3)
        self.norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.convnext = nn.ModuleList(
            ConvNeXtBlock(cfg.dim, cfg.intermediate_dim) for _ in range(cfg.num_layers)
        )
        self.final_layer_norm = nn.LayerNorm(cfg.dim, eps=1e-6)

    def forward(self, mel: Tensor) -> Tensor:
        """mel (B, 80, F) -> features (B, F, dim)."""
        x = self.norm(self.embed(mel).transpose(1, 2)).transpose(1, 2)
        for block in self.convnext:
            x = block(x)
        return self.final_layer_norm(x.transpose(1, 2))


class ISTFT(nn.Module):
    def __init__(self, n_fft: int, hop: int) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True))

    def forward(self, spec: Tensor) -> Tensor:
        """Complex spectrum (B, n_fft/2+1, F) -> audio (B, F x hop), "same" padding."""
        frames = spec.shape[-1]
        pad = (self.n_fft - self.hop) // 2
        y = torch.fft.irfft(spec, self.n_fft, dim=1, norm="backward") * self.window[None, :, None]
        size = (frames - 1) * self.hop + self.n_fft
        y = F.fold(y, (1, size), kernel_size=(1, self.n_fft), stride=(1, self.hop))[:, 0, 0]
        env = (self.window.square()[None, :, None]).expand(1, -1, frames)
        env = F.fold(env, (1, size), kernel_size=(1, self.n_fft), stride=(1, self.hop))[0, 0, 0]
        return y[:, pad : size - pad] / env[pad : size - pad]


class Head(nn.Module):
    def __init__(self, cfg: VocosConfig) -> None:
        super().__init__()
        self.out = nn.Linear(cfg.dim, cfg.n_fft + 2)
        self.istft = ISTFT(cfg.n_fft, cfg.hop)

    def forward(self, x: Tensor) -> Tensor:
        """features (B, F, dim) -> audio (B, F x hop)."""
        mag, phase = self.out(x).float().transpose(1, 2).chunk(2, dim=1)
        mag = torch.exp(mag).clamp(max=1e2)
        spec = torch.complex(mag * torch.cos(phase), mag * torch.sin(phase))
        return self.istft(spec)


class Vocos(nn.Module):
    def __init__(self, cfg: VocosConfig) -> None:
        super().__init__()
        self.backbone = Backbone(cfg)
        self.head = Head(cfg)

    def forward(self, mel: Tensor) -> Tensor:
        """mel (B, 80, F) at 100 Hz -> audio (B, F x hop) at the output rate."""
        return self.head(self.backbone(mel))
