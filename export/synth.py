"""Seeded synthetic checkpoints in the official layout (the real 2 GB weights are not at hand).

Every tensor is exercised: weights ~ N(0, 1/fan_in), random biases, LayerNorm affines around
(1, 0), weight-norm gains around 1, random ConvNeXt layer scales, and codebooks initialised as
k-means would start them: each stage's rows drawn from the residuals that the (random) encoder
produces on the bundled speech, plus noise. Numbers measured on such a model say nothing about
audio quality; they do measure speed, memory and numerical agreement between backends.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from xyrt.atomic import atomic_write, claim_file
from xyrt.config import XYConfig, builtin_config_path
from xyrt.errors import CheckpointError, ConfigError
from xyrt.runtime.network.checkpoint import save_checkpoint
from xyrt.runtime.network.model import XYTokenizer
from xyrt.runtime.network.quantizer import ResidualVQ, WeightNormConv1x1
from xyrt.runtime.network.vocos import ConvNeXtBlock

CODEBOOK_NOISE = 0.3  # noise added to sampled residuals, relative to their per-dim std


def _randomize(model: XYTokenizer, gen: torch.Generator) -> None:
    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen)

    for module in model.modules():
        if isinstance(module, nn.LayerNorm):
            module.weight.copy_(1 + 0.1 * randn(*module.weight.shape))
            module.bias.copy_(0.05 * randn(*module.bias.shape))
        elif isinstance(module, (nn.Linear, nn.Conv1d, nn.ConvTranspose1d)):
            w = module.weight
            if isinstance(module, nn.ConvTranspose1d):
                fan_in = w.shape[0] * w.shape[2] // module.stride[0]
            else:
                fan_in = w[0].numel()
            w.copy_(randn(*w.shape) / fan_in**0.5)
            if module.bias is not None:
                module.bias.copy_(0.02 * randn(*module.bias.shape))
        elif isinstance(module, WeightNormConv1x1):
            module.weight_v.copy_(randn(*module.weight_v.shape))
            module.weight_g.copy_(0.75 + 0.5 * torch.rand(module.weight_g.shape, generator=gen))
            module.bias.copy_(0.02 * randn(*module.bias.shape))
        if isinstance(module, ConvNeXtBlock):
            module.gamma.copy_(0.1 * randn(*module.gamma.shape))


def _residual_latents(model: XYTokenizer, speech: list[np.ndarray]) -> torch.Tensor:
    """Valid RVQ-input vectors (N, rvq_dim) of the bundled speech under the current weights."""
    rows = []
    for wav in speech:
        wav = wav[:480000]
        lengths = torch.tensor([len(wav)])
        x = model.prepare_window(torch.from_numpy(wav)[None], lengths)
        mel, mel_lengths = model.frontend(x, lengths)
        z, code_lengths = model.latents(mel, mel_lengths)
        rows.append(model.quantizer.input_proj(z)[0, : int(code_lengths[0])])
    return torch.cat(rows)


def _init_codebooks(rvq: ResidualVQ, residual: torch.Tensor, gen: torch.Generator) -> None:
    for stage in rvq.quantizers:
        size, dim = stage.codebook.shape
        pick = torch.randint(len(residual), (size,), generator=gen)
        std = residual.std(dim=0, keepdim=True).clamp(min=1e-6)
        book = residual[pick] + CODEBOOK_NOISE * std * torch.randn(size, dim, generator=gen)
        stage.codebook.copy_(book)
        stage.inited.fill_(True)
        counts = torch.bincount(pick, minlength=len(residual))[pick].float()
        stage.cluster_size.copy_(counts)
        stage.embed_avg.copy_(book * counts[:, None])
        nearest = torch.cdist(residual, book).argmin(dim=1)
        residual = residual - book[nearest]


@torch.no_grad()
def synth_model(
    cfg: XYConfig, seed: int = 0, speech: list[np.ndarray] | None = None
) -> XYTokenizer:
    """A full model with seeded random weights (see module docstring)."""
    gen = torch.Generator().manual_seed(seed)
    model = XYTokenizer.uninitialized(cfg).eval()
    _randomize(model, gen)
    if speech is None:
        from xyrt.data import bundled_speech
        from xyrt.runtime.formats.audio import load_audio

        speech = [load_audio(p) for p in bundled_speech().values()]
    _init_codebooks(model.quantizer, _residual_latents(model, speech), gen)
    return model


def synth_checkpoint(out: str | Path, config: str | Path | None = None, seed: int = 0) -> Path:
    """Write ``out`` ({'generator': state_dict}) and ``config.yaml`` beside it; return ``out``."""
    out = Path(out)
    config_path = Path(config) if config is not None else builtin_config_path()
    cfg = XYConfig.from_yaml(config_path)
    beside = out.parent / "config.yaml"
    text = config_path.read_text()
    if beside.exists() and beside.read_text() != text:
        raise ConfigError(
            f"{beside} exists and differs from {config_path}; the checkpoint's config.yaml "
            "must describe it: choose another output folder or remove that file"
        )
    claim_file(out, CheckpointError)  # before building the model, not after
    if not beside.exists():  # the same text already there (anyone's) is left as it is
        with atomic_write(beside, ConfigError) as tmp:
            tmp.write_text(text)
    save_checkpoint(synth_model(cfg, seed).state_dict(), out)
    return out
