"""Reconstruction quality of a model on held-aside speech: multi-resolution mel distance and SNR
against the input, and how many codebook entries each RVQ stage uses."""

from __future__ import annotations

import math

import numpy as np
import torch
from losses import MultiResMel

from xyrt.runtime.compare import snr_db
from xyrt.runtime.network.model import XYTokenizer


@torch.no_grad()
def reconstruct(model: XYTokenizer, wav: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One clip (< 30 s) through the inference path: codes (stages, T) and audio (len(wav),)."""
    lengths = torch.tensor([len(wav)])
    x = model.prepare_window(torch.from_numpy(wav)[None], lengths)
    mel, mel_lengths = model.frontend(x, lengths)
    codes, code_lengths = model.encode_mel(mel, mel_lengths)
    t = int(code_lengths[0])
    audio = model.decode_codes(codes[:, :, :t])[0].numpy()
    out = np.zeros_like(wav)
    n = min(len(wav), len(audio))
    out[:n] = audio[:n]
    return codes[:, 0, :t].numpy(), out


@torch.no_grad()
def quality(model: XYTokenizer, clips: dict[str, np.ndarray]) -> dict:
    """Per clip mel distance and SNR, their means, and per-stage codebook usage over all clips."""
    model = model.eval()
    mel = MultiResMel()
    per_clip, all_codes = {}, []
    for name, wav in clips.items():
        codes, audio = reconstruct(model, wav)
        dist = float(mel(torch.from_numpy(audio)[None], torch.from_numpy(wav)[None]))
        per_clip[name] = {"mel_distance": round(dist, 4), "snr_db": round(snr_db(wav, audio), 2)}
        all_codes.append(codes)
    codes = np.concatenate(all_codes, axis=1)
    usage = []
    for stage in codes:
        counts = np.bincount(stage, minlength=model.cfg.codebook_size)
        p = counts[counts > 0] / counts.sum()
        usage.append(
            {
                "distinct": int((counts > 0).sum()),
                "perplexity": round(math.exp(-(p * np.log(p)).sum()), 1),
            }
        )
    return {
        "mel_distance": round(float(np.mean([c["mel_distance"] for c in per_clip.values()])), 4),
        "snr_db": round(float(np.mean([c["snr_db"] for c in per_clip.values()])), 2),
        "codes": int(codes.shape[1]),
        "codebook_usage": usage,
        "clips": per_clip,
    }
