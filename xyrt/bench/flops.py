"""Analytic FLOP counts (multiply-adds x 2) of each stage for one window, from the config.

Counts the matrix work (linear layers, convolutions, attention products, DFT bases), which is
what bounds these stages; element-wise work is left out. Units: FLOP for the whole batch.
"""

from __future__ import annotations

from xyrt.config import HOP_LENGTH, N_FFT, N_MELS, TransformerConfig, XYConfig

ENCODE_STAGES = (
    "frontend",
    "semantic_encoder",
    "semantic_adapter",
    "acoustic_encoder",
    "pre_rvq_adapter",
    "downsample",
    "rvq",
)
DECODE_STAGES = ("rvq_decode", "post_rvq_adapter", "upsample", "acoustic_decoder", "vocoder")


def _stack(cfg: TransformerConfig, tokens: int) -> float:
    d = cfg.d_model
    per_layer = 2 * tokens * (4 * d * d + 2 * d * cfg.ffn_dim) + 4 * tokens * tokens * d
    flops = cfg.layers * per_layer
    if cfg.input_dim is not None and cfg.input_dim != d:
        flops += 2 * tokens * cfg.input_dim * d
    if cfg.output_dim is not None and cfg.output_dim != d:
        flops += 2 * tokens * d * cfg.output_dim
    return float(flops)


def encode_flops(cfg: XYConfig, samples: int, batch: int = 1) -> dict[str, float]:
    """FLOP per encode stage for ``batch`` windows of ``samples`` samples each."""
    frames = samples // HOP_LENGTH
    t50, t12 = frames // 2, frames // 8
    d = cfg.acoustic_encoder.d_model
    bins = N_FFT // 2 + 1
    conv = 2 * d * N_MELS * 3 * frames + 2 * d * d * 3 * t50
    wide = d * cfg.downsample_factor
    q = cfg.quantizer
    out = {
        "frontend": 2.0 * (2 * bins) * N_FFT * frames + 2.0 * N_MELS * bins * frames,
        "semantic_encoder": conv + _stack(cfg.semantic_encoder, t50),
        "semantic_adapter": _stack(cfg.semantic_adapter, t50),
        "acoustic_encoder": conv + _stack(cfg.acoustic_encoder, t50),
        "pre_rvq_adapter": _stack(cfg.pre_rvq_adapter, t50),
        "downsample": 2.0 * 2 * t12 * wide * wide + 2.0 * t12 * wide * wide,
        "rvq": 2.0 * t12 * q.input_dim * q.rvq_dim
        + q.num_quantizers * 2.0 * t12 * q.codebook_size * q.rvq_dim,
    }
    return {k: v * batch for k, v in out.items()}


def decode_flops(cfg: XYConfig, codes: int, batch: int = 1) -> dict[str, float]:
    """FLOP per decode stage for ``batch`` windows of ``codes`` code frames each."""
    d = cfg.acoustic_decoder.d_model
    t50, frames = 4 * codes, 8 * codes
    v = cfg.vocos
    block = 2 * v.dim * 7 + 2 * 2 * v.dim * v.intermediate_dim
    out = {
        "rvq_decode": 0.0,  # a gather and a sum over the fused table
        "post_rvq_adapter": _stack(cfg.post_rvq_adapter, codes),
        "upsample": 2.0 * cfg.post_rvq_adapter.output_dim * d * 4 * codes,
        "acoustic_decoder": _stack(cfg.acoustic_decoder, t50)
        + 2.0 * d * d * 3 * t50
        + 2.0 * d * N_MELS * 3 * frames,
        "vocoder": frames
        * (
            2.0 * N_MELS * v.dim * 7
            + v.num_layers * block
            + 2.0 * v.dim * (v.n_fft + 2)
            + 2.0 * (v.n_fft + 2) * v.n_fft
        ),
    }
    return {k: x * batch for k, x in out.items()}
