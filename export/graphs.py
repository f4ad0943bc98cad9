"""Export-friendly wrappers that become encoder.onnx and decoder.onnx.

Only ops TensorRT's ONNX parser supports: the STFT is a convolution over a windowed DFT basis,
the iSTFT a transposed convolution over an inverse-DFT basis plus the window-envelope division,
weight norm is folded, and the residual VQ is fused:
- encode: per stage, a matmul nearest-neighbour search against precomputed codebook norms
  (the per-row ||r||^2 term is constant and dropped), argmax, gather, subtract;
- decode: codebooks, the RVQ output projection and the post-RVQ adapter's input projection are
  folded into one (8 x 1024, d_model) table, so decoding codes is one gather and a sum.
Every node sits under its stage's scope (``/frontend/``, ``/semantic_encoder/``, ...,
``/rvq/``, ``/post_rvq_adapter/``, ``/vocoder/``, ``/istft/``), so that precision passes can
find (and keep in float32) what they must, and profilers can attribute time to stages.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xyrt.config import (
    HOP_LENGTH,
    INPUT_SAMPLE_RATE,
    N_FFT,
    N_MELS,
    SAMPLES_PER_CODE_IN,
    valid_frames,
)
from xyrt.runtime.features import mel_filters
from xyrt.runtime.network.frontend import normalise_log_mel
from xyrt.runtime.network.model import XYTokenizer


def _hann(n: int) -> Tensor:
    return torch.hann_window(n, periodic=True, dtype=torch.float64)


class DFTLogMel(nn.Module):
    """The Whisper log-mel with the STFT as a strided Conv1d over [cos; -sin] x window."""

    def __init__(self) -> None:
        super().__init__()
        n = torch.arange(N_FFT, dtype=torch.float64)
        k = torch.arange(N_FFT // 2 + 1, dtype=torch.float64)
        angle = 2 * math.pi * k[:, None] * n[None, :] / N_FFT
        basis = torch.cat([torch.cos(angle), -torch.sin(angle)]) * _hann(N_FFT)[None, :]
        self.register_buffer("basis", basis[:, None, :].float())
        self.register_buffer(
            "filters", torch.from_numpy(mel_filters(INPUT_SAMPLE_RATE, N_FFT, N_MELS)).float()
        )

    def forward(
        self, wav: Tensor, lengths: Tensor, mel_reference: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """wav (B, P) -> log-mel (B, 80, P / 160) and valid frames ceil(n / 160)."""
        keep = torch.arange(wav.shape[1], device=wav.device)[None, :] < lengths[:, None]
        wav = wav * keep.to(wav.dtype)
        half = N_FFT // 2
        left = wav[:, 1 : half + 1].flip(-1)
        right = wav[:, -half - 1 : -1].flip(-1)
        x = torch.cat([left, wav, right], dim=1)[:, None, :]
        spec = F.conv1d(x, self.basis, stride=HOP_LENGTH)[:, :, :-1]
        bins = N_FFT // 2 + 1
        power = spec[:, :bins].square() + spec[:, bins:].square()
        mel = torch.clamp(torch.matmul(self.filters, power), min=1e-10).log10()
        return normalise_log_mel(mel, mel_reference), valid_frames(lengths)


class RVQStage(nn.Module):
    def __init__(self, codebook: Tensor) -> None:
        super().__init__()
        self.register_buffer("codebook", codebook.clone())
        self.register_buffer("half_norm", 0.5 * codebook.double().square().sum(-1).float())

    def forward(self, r: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        # argmin ||r - c||^2 = argmax (r.c - ||c||^2 / 2): the ||r||^2 term is constant per row
        code = (torch.matmul(r, self.codebook.t()) - self.half_norm).argmax(-1)
        return code, r - self.codebook[code] * mask


class FusedRVQEncode(nn.Module):
    """Folded input projection + 8 nearest-neighbour stages, float32; codes (8, B, T)."""

    def __init__(self, model: XYTokenizer) -> None:
        super().__init__()
        q = model.quantizer
        self.weight = nn.Parameter(q.input_proj.weight().detach().clone(), requires_grad=False)
        self.bias = nn.Parameter(q.input_proj.bias.detach().clone(), requires_grad=False)
        self.stages = nn.ModuleList(RVQStage(cb) for cb in q.codebooks())

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        mask = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]
        mask = mask.to(x.dtype)[:, :, None]
        r = F.linear(x, self.weight, self.bias) * mask
        codes = []
        for stage in self.stages:
            code, r = stage(r, mask)
            codes.append(code)
        return torch.stack(codes)


def fused_decode_table(model: XYTokenizer) -> tuple[Tensor, Tensor]:
    """(8 x 1024, d_model) table and (d_model,) bias: proj(output_proj(sum_i C_i[code_i]))."""
    q, proj = model.quantizer, model.post_rvq_adapter.proj
    w_out = q.output_proj.weight().double()  # (out, rvq_dim)
    w = proj.weight.double() @ w_out  # (d_model, rvq_dim)
    table = torch.cat([cb.double() @ w.t() for cb in q.codebooks()])
    bias = proj.weight.double() @ q.output_proj.bias.double() + proj.bias.double()
    return table.float(), bias.float()


class FusedRVQDecode(nn.Module):
    def __init__(self, model: XYTokenizer) -> None:
        super().__init__()
        table, bias = fused_decode_table(model)
        size = model.cfg.codebook_size
        self.register_buffer("table", table)
        self.register_buffer("bias", bias)
        offsets = torch.arange(model.cfg.num_quantizers) * size
        self.register_buffer("offsets", offsets[:, None, None])

    def forward(self, codes: Tensor) -> Tensor:
        """codes (8, B, T) -> post-RVQ adapter input after its projection (B, T, d_model)."""
        return self.table[codes + self.offsets].sum(0) + self.bias


class ConvISTFT(nn.Module):
    """iSTFT with "same" padding: transposed conv over an inverse-DFT x window basis."""

    def __init__(self, n_fft: int, hop: int) -> None:
        super().__init__()
        self.n_fft, self.hop, self.pad = n_fft, hop, (n_fft - hop) // 2
        n = torch.arange(n_fft, dtype=torch.float64)
        k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)
        angle = 2 * math.pi * k[:, None] * n[None, :] / n_fft
        scale = torch.full((len(k), 1), 2.0 / n_fft, dtype=torch.float64)
        scale[0] = scale[-1] = 1.0 / n_fft
        sin = torch.sin(angle)
        sin[0] = sin[-1] = 0.0  # irfft ignores the imaginary part of DC and Nyquist
        win = _hann(n_fft)[None, :]
        basis = torch.cat([scale * torch.cos(angle) * win, -scale * sin * win])
        self.register_buffer("basis", basis[:, None, :].float())
        self.register_buffer("window_sq", win.square()[None].float())

    def forward(self, real: Tensor, imag: Tensor) -> Tensor:
        """real, imag (B, n_fft/2+1, F) -> audio (B, F x hop)."""
        y = F.conv_transpose1d(torch.cat([real, imag], dim=1), self.basis, stride=self.hop)
        env = F.conv_transpose1d(torch.ones_like(real[:1, :1]), self.window_sq, stride=self.hop)
        end = y.shape[-1] - self.pad
        return y[:, 0, self.pad : end] / env[0, 0, self.pad : end]


class EncoderGraph(nn.Module):
    """waveform (B, P), lengths (B,), positions (B,), mel_reference (B,) -> codes
    (8, B, P / 1280) int64, code lengths (B,) (`xyrt.runtime.graph_io`)."""

    def __init__(self, model: XYTokenizer) -> None:
        super().__init__()
        self.frontend = DFTLogMel()
        self.model = model
        self.rvq = FusedRVQEncode(model)

    def forward(
        self, waveform: Tensor, lengths: Tensor, positions: Tensor, mel_reference: Tensor
    ) -> tuple[Tensor, Tensor]:
        mel, mel_lengths = self.frontend(waveform, lengths, mel_reference)
        x, code_frames = self.model.latents(mel, mel_lengths, positions)
        return self.rvq(x, code_frames), lengths // SAMPLES_PER_CODE_IN


class VocoderSpectrum(nn.Module):
    """Vocos backbone and head projection: mel -> (magnitude, phase), under one scope."""

    def __init__(self, vocos: nn.Module) -> None:
        super().__init__()
        self.backbone = vocos.backbone
        self.out = vocos.head.out

    def forward(self, mel: Tensor) -> tuple[Tensor, Tensor]:
        mag, phase = self.out(self.backbone(mel)).transpose(1, 2).chunk(2, dim=1)
        return torch.exp(mag).clamp(max=1e2), phase


class DecoderGraph(nn.Module):
    """codes (8, B, T) int64, lengths (B,), positions (B,) -> waveform (B, T x samples_per_code),
    lengths."""

    def __init__(self, model: XYTokenizer) -> None:
        super().__init__()
        self.model = model
        self.rvq = FusedRVQDecode(model)
        self.vocoder = VocoderSpectrum(model.vocoder)
        self.istft = ConvISTFT(model.cfg.vocos.n_fft, model.cfg.vocos.hop)
        self.samples_per_code = model.cfg.samples_per_code_out

    def forward(self, codes: Tensor, lengths: Tensor, positions: Tensor) -> tuple[Tensor, Tensor]:
        mel = self.model.decode_projected(self.rvq(codes), lengths, positions, False)
        mag, phase = self.vocoder(mel)
        audio = self.istft(mag * torch.cos(phase), mag * torch.sin(phase))
        return audio, lengths * self.samples_per_code
