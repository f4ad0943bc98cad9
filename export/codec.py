"""`XYCodec`: the PyTorch model with the published long-audio chunking, batching and checks.

codec = XYCodec.from_checkpoint("model.ckpt")
codes = codec.encode(wav)          # (8, T) int64, T = floor(n / 1280)
audio = codec.decode(codes)        # (T x samples_per_code,) float32 at the output rate
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from xyrt.config import XYConfig
from xyrt.errors import AudioError
from xyrt.export.checkpoint import load_model
from xyrt.export.model import XYTokenizer
from xyrt.runtime.audio import prepare_audio
from xyrt.runtime.chunking import decode_plan, encode_plan, num_codes, run_batched, stitch
from xyrt.runtime.codes import validate_codes


class XYCodec:
    """Offline encode/decode with the PyTorch model.

    ``pad_to_30s`` reproduces the published cost (every window run as 30 s); the codes are the
    same either way. ``batch_size`` windows run together (ragged; results do not depend on it).
    """

    def __init__(
        self,
        model: XYTokenizer,
        batch_size: int = 4,
        pad_to_30s: bool = False,
        progress: bool = False,
    ) -> None:
        self.model = model.eval()
        self.cfg: XYConfig = model.cfg
        self.batch_size = batch_size
        self.pad_to_30s = pad_to_30s
        self.progress = progress

    @classmethod
    def from_checkpoint(
        cls, checkpoint: str | Path, config: str | Path | None = None, **kwargs
    ) -> XYCodec:
        """Load an official-layout checkpoint (config: given, else config.yaml beside it)."""
        return cls(load_model(checkpoint, config), **kwargs)

    @property
    def output_sample_rate(self) -> int:
        return self.cfg.output_sample_rate

    def _bar(self, total: int, desc: str):
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit="win", disable=not self.progress or total < 2)

    @torch.inference_mode()
    def encode(
        self,
        audio: np.ndarray | Sequence[np.ndarray],
        sample_rate: int = 16000,
        overlap: float = 10.0,
    ) -> np.ndarray | list[np.ndarray]:
        """Audio (n,) or a list of clips -> codes (8, floor(n/1280)) int64 (a list for a list)."""
        single = isinstance(audio, np.ndarray) and audio.ndim == 1
        clips = [audio] if single else list(audio)
        clips = [prepare_audio(c, sample_rate) for c in clips]
        for c in clips:
            if num_codes(len(c)) == 0:
                raise AudioError(
                    f"audio of {len(c)} samples ({len(c) / 16:.1f} ms) is shorter than one code "
                    "(1280 samples, 80 ms at 16 kHz)"
                )
        plans = [encode_plan(len(c), overlap) for c in clips]
        jobs = [(i, w) for i, plan in enumerate(plans) for w in plan]
        pieces: list[np.ndarray | None] = [None] * len(jobs)
        with self._bar(len(jobs), "encode") as bar:

            def run(idx: list[int]) -> None:
                segs = [clips[jobs[j][0]][jobs[j][1].start : jobs[j][1].stop] for j in idx]
                lengths = torch.tensor([len(s) for s in segs])
                batch = torch.zeros(len(segs), int(lengths.max()))
                for row, s in enumerate(segs):
                    batch[row, : len(s)] = torch.from_numpy(s)
                codes, _ = self.model.encode_window(batch, lengths, self.pad_to_30s)
                for row, j in enumerate(idx):
                    pieces[j] = codes[:, row].numpy()
                bar.update(len(idx))

            run_batched(
                [(j, w.stop - w.start) for j, (_, w) in enumerate(jobs)], self.batch_size, run
            )
        out, k = [], 0
        for clip, plan in zip(clips, plans, strict=True):
            out.append(stitch(pieces[k : k + len(plan)], plan, num_codes(len(clip))))
            k += len(plan)
        return out[0] if single else out

    @torch.inference_mode()
    def decode(
        self, codes: np.ndarray | Sequence[np.ndarray], overlap: float = 10.0
    ) -> np.ndarray | list[np.ndarray]:
        """Codes (8, T) or a list -> audio (T x samples_per_code,) float32 at the output rate.

        Windows of equal length are batched; Vocos has no padding mask, so windows of different
        lengths are never batched together (that would change their edges).
        """
        single = isinstance(codes, np.ndarray) and codes.ndim == 2
        items = [codes] if single else list(codes)
        items = [validate_codes(c, self.cfg.num_quantizers, self.cfg.codebook_size) for c in items]
        plans = [decode_plan(c.shape[1], overlap) for c in items]
        jobs = [(i, w) for i, plan in enumerate(plans) for w in plan]
        pieces: list[np.ndarray | None] = [None] * len(jobs)
        spc = self.cfg.samples_per_code_out
        by_len: dict[int, list[int]] = {}
        for j, (_, w) in enumerate(jobs):
            by_len.setdefault(w.stop - w.start, []).append(j)
        with self._bar(len(jobs), "decode") as bar:
            for group in by_len.values():
                for b in range(0, len(group), self.batch_size):
                    idx = group[b : b + self.batch_size]
                    batch = np.stack(
                        [items[jobs[j][0]][:, jobs[j][1].start : jobs[j][1].stop] for j in idx],
                        axis=1,
                    )
                    wav = self.model.decode_codes(torch.from_numpy(batch))
                    for row, j in enumerate(idx):
                        pieces[j] = wav[row].numpy()
                    bar.update(len(idx))
        out, k = [], 0
        for item, plan in zip(items, plans, strict=True):
            out.append(stitch(pieces[k : k + len(plan)], plan, item.shape[1] * spc, unit=spc))
            k += len(plan)
        return out[0] if single else out
