"""Transformer stacks of XY-Tokenizer: encoders, adapters, down/upsampling and the mel decoder.

Module and parameter names follow the official checkpoints (docs/SPEC.md sections 2-5 and 7), so a
state dict loads without renaming. Every stack takes explicit ``lengths`` and masks padded keys;
padded positions are zeroed at the end of each stack exactly as the published implementation does,
so trimming the padding away (instead of running 30 s windows) leaves valid outputs unchanged.
"""

from __future__ import annotations

import math

from xyrt.config import TransformerConfig
from xyrt.errors import require

torch = require("torch", "export", "the PyTorch network")
F = torch.nn.functional
Tensor = torch.Tensor
nn = torch.nn


def sinusoids(length: int, channels: int) -> Tensor:
    """Sinusoidal positional embedding (length, channels): concat(sin, cos) (docs/SPEC.md 2)."""
    increment = math.log(10000) / (channels // 2 - 1)
    inv = torch.exp(-increment * torch.arange(channels // 2, dtype=torch.float32))
    angle = torch.arange(length, dtype=torch.float32)[:, None] * inv[None, :]
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)


def valid_mask(lengths: Tensor, size: int) -> Tensor:
    """(B, size) bool: True where the position is < the item's length."""
    return torch.arange(size, device=lengths.device)[None, :] < lengths[:, None]


def key_padding_bias(lengths: Tensor, size: int, dtype: torch.dtype) -> Tensor:
    """(B, 1, 1, size) additive attention bias: 0 for valid keys, the dtype's minimum elsewhere."""
    mask = valid_mask(lengths, size)[:, None, None, :]
    zero = torch.zeros((), dtype=dtype, device=lengths.device)
    return torch.where(mask, zero, torch.finfo(dtype).min)


class Attention(nn.Module):
    """Multi-head self-attention; q is scaled by head_dim^-0.5 after its bias, k has no bias."""

    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = d_model // heads
        self.scaling = self.head_dim**-0.5
        self.k_proj = nn.Linear(d_model, d_model, bias=False)
        self.v_proj = nn.Linear(d_model, d_model)
        self.q_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        b, t, d = x.shape
        q = (self.q_proj(x) * self.scaling).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=1.0)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, d))


class TransformerLayer(nn.Module):
    """Pre-LayerNorm block: x + Attn(LN1(x)), then x + fc2(gelu(fc1(LN2(x))))."""

    def __init__(self, d_model: int, heads: int, ffn_dim: int) -> None:
        super().__init__()
        self.self_attn = Attention(d_model, heads)
        self.self_attn_layer_norm = nn.LayerNorm(d_model)
        self.fc1 = nn.Linear(d_model, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, d_model)
        self.final_layer_norm = nn.LayerNorm(d_model)

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        x = x + self.self_attn(self.self_attn_layer_norm(x), bias)
        return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))


class TransformerStack(nn.Module):
    """Positional embedding + N layers + final LayerNorm + zero the padded positions."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.register_buffer("positional_embedding", sinusoids(cfg.max_positions, cfg.d_model))
        self.layers = nn.ModuleList(
            TransformerLayer(cfg.d_model, cfg.heads, cfg.ffn_dim) for _ in range(cfg.layers)
        )
        self.layer_norm = nn.LayerNorm(cfg.d_model)

    def run_stack(self, x: Tensor, lengths: Tensor, positions: Tensor | None = None) -> Tensor:
        """x (B, T, d) -> (B, T, d), positions >= lengths set to 0. ``positions`` (B,): where
        each row's first frame sits in this stack's 30 s window (None: 0, as offline)."""
        t = x.shape[1]
        if positions is None:
            x = x + self.positional_embedding[:t].to(x.dtype)
        else:
            index = positions[:, None] + torch.arange(t, device=x.device)[None, :]
            last = self.positional_embedding.shape[0] - 1  # padding past it is masked anyway
            x = x + self.positional_embedding[index.clamp(max=last)].to(x.dtype)
        bias = key_padding_bias(lengths, t, x.dtype)
        for layer in self.layers:
            x = layer(x, bias)
        x = self.layer_norm(x)
        return x * valid_mask(lengths, t)[:, :, None].to(x.dtype)


class Encoder(TransformerStack):
    """Whisper-style encoder: two convolutions (100 Hz -> 50 Hz), then the stack."""

    def __init__(self, cfg: TransformerConfig, n_mels: int = 80) -> None:
        super().__init__(cfg)
        self.conv1 = nn.Conv1d(n_mels, cfg.d_model, kernel_size=3, padding=1)
        self.conv2 = nn.Conv1d(cfg.d_model, cfg.d_model, kernel_size=3, stride=2, padding=1)

    def forward(
        self, mel: Tensor, mel_lengths: Tensor, positions: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """mel (B, 80, N) -> (B, ceil(N/2), d) at 50 Hz, lengths // 2 (positions: 50 Hz)."""
        x = F.gelu(self.conv2(F.gelu(self.conv1(mel)))).transpose(1, 2)
        lengths = mel_lengths // 2
        return self.run_stack(x, lengths, positions), lengths


class Adapter(TransformerStack):
    """Optional input Linear, the stack, optional output Linear (applied after the zeroing)."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__(cfg)
        self.proj = nn.Linear(cfg.input_dim, cfg.d_model) if cfg.input_dim != cfg.d_model else None
        self.out_proj = (
            nn.Linear(cfg.d_model, cfg.output_dim) if cfg.output_dim != cfg.d_model else None
        )

    def forward(
        self,
        x: Tensor,
        lengths: Tensor,
        project_input: bool = True,
        positions: Tensor | None = None,
    ) -> Tensor:
        """x (B, T, input_dim) -> (B, T, output_dim); ``project_input=False``: x is already
        projected to d_model (the fused decode table includes the projection)."""
        if self.proj is not None and project_input:
            x = self.proj(x)
        x = self.run_stack(x, lengths, positions)
        return self.out_proj(x) if self.out_proj is not None else x


class Downsample(nn.Module):
    """50 Hz -> 12.5 Hz: LayerNorm(down_proj(silu(gate) * up) + four frames side by side)."""

    def __init__(self, d_model: int, factor: int = 4) -> None:
        super().__init__()
        self.factor = factor
        wide = d_model * factor
        self.gate_proj = nn.Conv1d(d_model, wide, factor, stride=factor, bias=False)
        self.up_proj = nn.Conv1d(d_model, wide, factor, stride=factor, bias=False)
        self.down_proj = nn.Linear(wide, wide, bias=False)
        self.layer_norm = nn.LayerNorm(wide)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, T50, d) -> (B, ceil(T50/4), 4d), lengths // 4."""
        b, t, d = x.shape
        pad = (-t) % self.factor
        if pad:
            x = F.pad(x, (0, 0, 0, pad))
        xc = x.transpose(1, 2)
        h = F.silu(self.gate_proj(xc)) * self.up_proj(xc)
        residual = x.reshape(b, (t + pad) // self.factor, d * self.factor)
        out = self.layer_norm(self.down_proj(h.transpose(1, 2)) + residual)
        return out, lengths // self.factor


class Upsample(nn.Module):
    """12.5 Hz -> 50 Hz: ConvTranspose1d(4d -> d, kernel 4, stride 4, no bias)."""

    def __init__(self, d_model: int, stride: int = 4) -> None:
        super().__init__()
        self.stride = stride
        self.up_conv = nn.ConvTranspose1d(d_model * stride, d_model, stride, stride, bias=False)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, T, 4d) -> (B, 4T, d), lengths x 4."""
        return self.up_conv(x.transpose(1, 2)).transpose(1, 2), lengths * self.stride


class AcousticDecoder(TransformerStack):
    """The stack, then two transposed convolutions: 50 Hz -> 100 Hz mel (B, 80, 2T)."""

    def __init__(self, cfg: TransformerConfig, n_mels: int = 80) -> None:
        super().__init__(cfg)
        self.deconv1 = nn.ConvTranspose1d(cfg.d_model, cfg.d_model, 3, stride=2)
        self.deconv2 = nn.ConvTranspose1d(cfg.d_model, n_mels, 3, stride=1)

    def forward(
        self, x: Tensor, lengths: Tensor, positions: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """x (B, T, d) -> mel (B, 80, 2T), lengths x 2 (positions: 50 Hz)."""
        t = x.shape[1]
        x = self.run_stack(x, lengths, positions).transpose(1, 2)
        mel = F.gelu(self.deconv2(F.gelu(self.deconv1(x))))
        return mel[:, :, : 2 * t], lengths * 2
