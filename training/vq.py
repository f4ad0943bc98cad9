"""A differentiable training path through xyrt's `ResidualVQ`, leaving inference untouched.

Forward: the same nearest-codebook search as `ResidualVQ.encode` (squared distance on the
masked residual), the straight-through estimator (the decoder sees the summed codebook vectors,
the encoder gets their gradient), a commitment loss per stage, and codebooks that follow the
residuals by exponential moving averages (the ``cluster_size`` / ``embed_avg`` buffers the
checkpoints carry), with dead entries restarted from the batch's residuals. The output equals
``rvq.decode(codes)``, so what is trained is what inference runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from xyrt.runtime.network.quantizer import Codebook, ResidualVQ

EPS = 1e-5  # Laplace smoothing of the EMA counts


@dataclass(frozen=True)
class VQOptions:
    decay: float = 0.99  # EMA decay of counts and sums
    dead_count: float = 0.02  # an entry whose EMA count falls below this is restarted
    restart_every: int = 25  # steps between dead-entry restarts


def nearest(residual: Tensor, codebook: Tensor) -> Tensor:
    """The index of the nearest entry, computed as `ResidualVQ` computes it."""
    dist = (
        residual.pow(2).sum(-1, keepdim=True)
        - 2 * residual @ codebook.t()
        + codebook.pow(2).sum(-1)[None, :]
    )
    return (-dist).argmax(-1)


@torch.no_grad()
def init_codebooks(rvq: ResidualVQ, z: Tensor, gen: torch.Generator) -> None:
    """Each stage's entries drawn from its residuals of ``z`` (N, dim), plus a little noise."""
    residual = z.detach()
    for stage in rvq.quantizers:
        size, dim = stage.codebook.shape
        pick = torch.randint(len(residual), (size,), generator=gen)
        noise = 0.1 * residual.std(0, keepdim=True) * torch.randn(size, dim, generator=gen)
        book = residual[pick] + noise
        stage.codebook.copy_(book)
        stage.cluster_size.fill_(1.0)
        stage.embed_avg.copy_(book)
        stage.inited.fill_(True)
        residual = residual - book[nearest(residual, book)]


@torch.no_grad()
def ema_update(stage: Codebook, residual: Tensor, codes: Tensor, decay: float) -> None:
    """Move counts, sums and entries towards this batch's assignment (residual (N, dim))."""
    size = stage.codebook.shape[0]
    onehot = torch.zeros(len(codes), size, dtype=residual.dtype)
    onehot[torch.arange(len(codes)), codes] = 1
    stage.cluster_size.mul_(decay).add_(onehot.sum(0), alpha=1 - decay)
    stage.embed_avg.mul_(decay).add_(onehot.t() @ residual, alpha=1 - decay)
    n = stage.cluster_size.sum()
    smoothed = (stage.cluster_size + EPS) / (n + size * EPS) * n
    stage.codebook.copy_(stage.embed_avg / smoothed[:, None])


@torch.no_grad()
def restart_dead(stage: Codebook, residual: Tensor, threshold: float, gen: torch.Generator) -> int:
    """Replace entries whose EMA count is below ``threshold`` by random residuals; how many."""
    dead = torch.nonzero(stage.cluster_size < threshold).flatten()
    if len(dead) == 0:
        return 0
    pick = torch.randint(len(residual), (len(dead),), generator=gen)
    fresh = residual[pick]
    stage.codebook[dead] = fresh
    count = stage.cluster_size.mean().clamp(min=threshold * 2)
    stage.cluster_size[dead] = count
    stage.embed_avg[dead] = fresh * count
    return len(dead)


def quantize_train(
    rvq: ResidualVQ,
    x: Tensor,
    lengths: Tensor,
    opts: VQOptions,
    gen: torch.Generator,
    restart: bool,
) -> tuple[Tensor, Tensor, Tensor, int]:
    """x (B, T, input_dim) -> (output (B, T, output_dim), codes (stages, B, T), commitment loss,
    entries restarted); updates the codebooks when the module is in training mode."""
    z = rvq.input_proj(x)
    mask = (torch.arange(z.shape[1])[None, :] < lengths[:, None]).to(z.dtype)[:, :, None]
    z = z * mask
    valid = mask[..., 0].bool()
    if rvq.training and not bool(rvq.quantizers[0].inited):
        init_codebooks(rvq, z[valid], gen)
    residual = z
    quantized = torch.zeros_like(z)
    commit = z.new_zeros(())
    codes, restarted = [], 0
    for stage in rvq.quantizers:
        with torch.no_grad():
            code = nearest(residual.detach(), stage.codebook)
        q = stage.codebook[code] * mask
        commit = commit + ((residual - q).pow(2).sum(-1) * mask[..., 0]).sum() / mask.sum()
        if rvq.training:
            flat = residual.detach()[valid]
            ema_update(stage, flat, code[valid], opts.decay)
            if restart:
                restarted += restart_dead(stage, flat, opts.dead_count, gen)
        residual = residual - q.detach()
        quantized = quantized + q.detach()
        codes.append(code)
    out = z + (quantized - z).detach()  # straight through: the value of the codes, z's gradient
    return rvq.output_proj(out), torch.stack(codes), commit / len(rvq.quantizers), restarted
