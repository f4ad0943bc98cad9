"""A differentiable training path through xyrt's `ResidualVQ`, leaving inference untouched.

Warm-up: for the first steps the latents pass unquantized (an autoencoder learns fast, where a
quantizer initialised on a random encoder collapses: every latent pulled onto a few entries); the
codebooks then start from k-means on the latents of the last warm-up batches. After it: the same
nearest-codebook search as `ResidualVQ.encode` (squared distance on the masked residual), the
straight-through estimator (the decoder sees the summed codebook vectors, the encoder gets their
gradient), a commitment loss per stage, and codebooks that follow the residuals by exponential
moving averages (the ``cluster_size`` / ``embed_avg`` buffers the checkpoints carry), with
entries unused for a while restarted from the batch's residuals. The output equals
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
    restart_after: int = 8  # restart the entries unused over this many x size vectors
    warmup: int = 0  # steps without quantization before k-means initialises the codebooks
    init_batches: int = 16  # warm-up batches whose latents k-means sees
    kmeans_iters: int = 10


def nearest(residual: Tensor, codebook: Tensor) -> Tensor:
    """The index of the nearest entry, computed as `ResidualVQ` computes it."""
    dist = (
        residual.pow(2).sum(-1, keepdim=True)
        - 2 * residual @ codebook.t()
        + codebook.pow(2).sum(-1)[None, :]
    )
    return (-dist).argmax(-1)


@torch.no_grad()
def kmeans(data: Tensor, size: int, iters: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Lloyd's k-means on data (N, dim): centroids (size, dim) and their counts (size,)."""
    pick = torch.randperm(len(data), generator=gen)[:size]
    if len(pick) < size:  # fewer points than entries: repeat some, a little apart
        pick = torch.cat([pick, torch.randint(len(data), (size - len(pick),), generator=gen)])
    std = data.std(0, keepdim=True)
    centroids = data[pick] + 0.01 * std * torch.randn(size, data.shape[1], generator=gen)
    for _ in range(iters):
        assign = nearest(data, centroids)
        counts = torch.bincount(assign, minlength=size).to(data.dtype)
        sums = torch.zeros_like(centroids).index_add_(0, assign, data)
        used = counts > 0
        centroids[used] = sums[used] / counts[used, None]
    counts = torch.bincount(nearest(data, centroids), minlength=size).to(data.dtype)
    return centroids, counts


@torch.no_grad()
def init_codebooks(rvq: ResidualVQ, z: Tensor, batches: int, opts: VQOptions, gen) -> None:
    """Each stage's entries by k-means on its residuals of ``z`` (N, dim), gathered over
    ``batches`` steps (so the EMA counts start at a per-step rate)."""
    residual = z
    for stage in rvq.quantizers:
        book, counts = kmeans(residual, stage.codebook.shape[0], opts.kmeans_iters, gen)
        stage.codebook.copy_(book)
        stage.cluster_size.copy_(counts / batches)
        stage.embed_avg.copy_(book * (counts / batches)[:, None])
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
def restart_unused(stage: Codebook, unused: Tensor, residual: Tensor, gen: torch.Generator) -> int:
    """Replace the ``unused`` entries (bool (size,)) by random residuals; how many."""
    dead = torch.nonzero(unused).flatten()
    if len(dead) == 0:
        return 0
    pick = torch.randint(len(residual), (len(dead),), generator=gen)
    fresh = residual[pick]
    stage.codebook[dead] = fresh
    count = stage.cluster_size.mean()
    stage.cluster_size[dead] = count
    stage.embed_avg[dead] = fresh * count
    return len(dead)


class TrainingRVQ:
    """The training forward of one `ResidualVQ`, with its warm-up, use counts and generator."""

    def __init__(self, rvq: ResidualVQ, opts: VQOptions, gen: torch.Generator) -> None:
        self.rvq, self.opts, self.gen = rvq, opts, gen
        size = rvq.quantizers[0].codebook.shape[0]
        self.usage = [torch.zeros(size) for _ in rvq.quantizers]
        self.seen: list[Tensor] = []  # latents of the last warm-up batches
        self.since_restart = 0  # vectors quantized since the last restart

    def __call__(self, x: Tensor, lengths: Tensor, step: int) -> tuple[Tensor, Tensor, int]:
        """x (B, T, input_dim) -> (output (B, T, output_dim), commitment loss, entries
        restarted). Updates the codebooks by EMA; once ``restart_after`` x size vectors have
        passed, restarts the entries none of them used, from this batch's residuals."""
        rvq, opts = self.rvq, self.opts
        z = rvq.input_proj(x)
        mask = (torch.arange(z.shape[1])[None, :] < lengths[:, None]).to(z.dtype)[:, :, None]
        z = z * mask
        valid = mask[..., 0].bool()
        if step < opts.warmup:
            self.seen = [*self.seen[1 - opts.init_batches :], z.detach()[valid]]
            return rvq.output_proj(z), z.new_zeros(()), 0
        if not bool(rvq.quantizers[0].inited):
            seen = self.seen or [z.detach()[valid]]
            init_codebooks(rvq, torch.cat(seen), len(seen), opts, self.gen)
            self.seen = []
        self.since_restart += int(valid.sum())
        restart = self.since_restart >= opts.restart_after * len(self.usage[0])
        if restart:
            self.since_restart = 0
        residual = z
        quantized = torch.zeros_like(z)
        commit = z.new_zeros(())
        restarted = 0
        for stage, used in zip(rvq.quantizers, self.usage, strict=True):
            with torch.no_grad():
                code = nearest(residual.detach(), stage.codebook)
            q = stage.codebook[code] * mask
            commit = commit + ((residual - q).pow(2).sum(-1) * mask[..., 0]).sum() / mask.sum()
            flat = residual.detach()[valid]
            ema_update(stage, flat, code[valid], opts.decay)
            used += torch.bincount(code[valid], minlength=len(used))
            if restart:
                restarted += restart_unused(stage, used == 0, flat, self.gen)
                used.zero_()
            residual = residual - q.detach()
            quantized = quantized + q.detach()
        out = z + (quantized - z).detach()  # straight through: the codes' value, z's gradient
        return rvq.output_proj(out), commit / len(rvq.quantizers), restarted
