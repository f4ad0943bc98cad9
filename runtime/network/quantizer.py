"""Residual VQ of XY-Tokenizer (docs/SPEC.md section 6), float32 throughout.

Parameter names follow the checkpoints: weight-normed 1x1 projections (``weight_g``,
``weight_v``) and one ``codebook`` per stage, plus the training buffers (``inited``,
``cluster_size``, ``embed_avg``) that the files carry and inference ignores.
"""

from __future__ import annotations

from xyrt.config import QuantizerConfig
from xyrt.errors import require

torch = require("torch", "export", "the PyTorch network")
Tensor = torch.Tensor
nn = torch.nn


class WeightNormConv1x1(nn.Module):
    """A 1x1 Conv1d with weight = g * v / ||v|| (norm per output channel), as torch weight_norm."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.weight_g = nn.Parameter(torch.ones(out_dim, 1, 1))
        self.weight_v = nn.Parameter(torch.empty(out_dim, in_dim, 1))
        self.bias = nn.Parameter(torch.zeros(out_dim))

    def weight(self) -> Tensor:
        """The effective (out, in) matrix."""
        return torch._weight_norm(self.weight_v, self.weight_g, 0)[:, :, 0]

    def forward(self, x: Tensor) -> Tensor:
        """x (B, T, in) -> (B, T, out)."""
        return torch.nn.functional.linear(x, self.weight(), self.bias)


class Codebook(nn.Module):
    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("codebook", torch.zeros(size, dim))
        self.register_buffer("inited", torch.zeros(1, dtype=torch.bool))
        self.register_buffer("cluster_size", torch.zeros(size))
        self.register_buffer("embed_avg", torch.zeros(size, dim))


class ResidualVQ(nn.Module):
    def __init__(self, cfg: QuantizerConfig) -> None:
        super().__init__()
        self.input_proj = WeightNormConv1x1(cfg.input_dim, cfg.rvq_dim)
        self.output_proj = WeightNormConv1x1(cfg.rvq_dim, cfg.output_dim)
        self.quantizers = nn.ModuleList(
            Codebook(cfg.codebook_size, cfg.rvq_dim) for _ in range(cfg.num_quantizers)
        )

    def codebooks(self) -> list[Tensor]:
        return [q.codebook for q in self.quantizers]

    def encode(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x (B, T, input_dim) -> codes (num_quantizers, B, T) int64.

        Codes at positions >= lengths are computed from a zero residual and are not meaningful.
        """
        return self.encode_with_margins(x, lengths)[0]

    def encode_with_margins(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Codes and, per code, the gap between the best and second-best distance / 2.

        A tiny gap is a float32 tie: another correct implementation may pick the other entry.
        """
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self._encode_float32(x.float(), lengths)

    def _encode_float32(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        r = self.input_proj(x)
        steps = torch.arange(r.shape[1], device=r.device)
        mask = (steps[None, :] < lengths[:, None]).to(r.dtype)[:, :, None]
        codes, margins = [], []
        for cb in self.codebooks():
            rm = r * mask
            dist = (
                rm.pow(2).sum(-1, keepdim=True) - 2 * rm @ cb.t() + cb.pow(2).sum(-1)[None, None, :]
            )
            code = (-dist).argmax(-1)
            best2 = (-dist).topk(2, dim=-1).values
            codes.append(code)
            margins.append((best2[..., 0] - best2[..., 1]) / 2)
            r = r - cb[code] * mask
        return torch.stack(codes), torch.stack(margins)

    def embed(self, codes: Tensor) -> Tensor:
        """codes (num_quantizers, B, T) -> summed codebook vectors (B, T, rvq_dim)."""
        out = self.codebooks()[0][codes[0]]
        for cb, code in zip(self.codebooks()[1:], codes[1:], strict=True):
            out = out + cb[code]
        return out

    def decode(self, codes: Tensor) -> Tensor:
        """codes (num_quantizers, B, T) -> (B, T, output_dim)."""
        return self.output_proj(self.embed(codes))
