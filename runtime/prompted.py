"""Prompted decode, as MOSS-TTSD v0.7's server decodes generated speech.

The generated codes are decoded with the reference (prompt) codes prepended, so the decoder
sees the speaker's own audio as left context, and the prompt's audio is then cut off. The
sequence prompt + codes is decoded in short windows (from the public description of the OpenMOSS
sglang fork's ``moss_ttsd_with_codec.py``):
- windows of `WINDOW_CODES` codes (10 s) starting every `STRIDE_CODES` codes;
- each window after the first drops its first `CONTEXT_CODES` codes (left context only);
- where one window's audio hands over to the next, `CROSSFADE_SECONDS` of linear crossfade.
Window k's audio is used from code ``k x 85 + 20`` (the first from 0); over the first 0.1 s
there it fades in over window k - 1's audio, which reaches 20 codes further. Windows whose
audio would lie wholly inside the prompt are not decoded. Output: ``codes.shape[1] x
samples_per_code`` samples, the audio of the generated codes only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from xyrt.errors import CodesError
from xyrt.runtime.formats.codes import validate_codes

if TYPE_CHECKING:
    from xyrt.runtime.codec import ChunkedCodec

WINDOW_CODES = 125  # 10 s of codes per decoder window
STRIDE_CODES = 85  # codes between window starts (6.8 s)
CONTEXT_CODES = 20  # left-context codes a window decodes but does not keep (1.6 s)
CROSSFADE_SECONDS = 0.1  # linear crossfade where one window hands over to the next


def prompt_windows(total: int, skip_before: int = 0) -> list[tuple[int, int, int]]:
    """(start, stop, first kept code) of each window over ``total`` codes, leaving out those
    whose audio ends (with its crossfade tail) at or before code ``skip_before``."""
    windows = []
    start = 0
    while True:
        stop = min(start + WINDOW_CODES, total)
        windows.append((start, stop, start + CONTEXT_CODES if start else 0))
        if stop >= total:
            break
        start += STRIDE_CODES
    keep = [i for i, w in enumerate(windows) if i + 1 == len(windows) or w[1] > skip_before]
    return [windows[i] for i in keep]


def crossfade_samples(samples_per_code: int) -> int:
    """`CROSSFADE_SECONDS` in output samples (12.5 codes a second)."""
    return round(CROSSFADE_SECONDS * 12.5 * samples_per_code)


def assemble(
    pieces: Sequence[np.ndarray], windows: Sequence[tuple[int, int, int]], spc: int
) -> tuple[np.ndarray, int]:
    """The windows' audio joined as the module docstring says; returns (audio, its first code)."""
    fade = crossfade_samples(spc)
    first_code = windows[0][2]
    out = np.zeros((windows[-1][1] - first_code) * spc, np.float32)
    ramp = ((np.arange(fade) + 0.5) / fade).astype(np.float32)  # linear, 0 -> 1
    for k, (piece, (start, _stop, keep)) in enumerate(zip(pieces, windows, strict=True)):
        at = (keep - first_code) * spc
        own = piece[(keep - start) * spc :]
        if k == 0:
            out[at : at + len(own)] = own
            continue
        n = min(fade, len(own))
        out[at : at + n] = out[at : at + n] * (1 - ramp[:n]) + own[:n] * ramp[:n]
        out[at + n : at + len(own)] = own[n:]
    return out, first_code


def decode_prompted(
    codec: ChunkedCodec, items: Sequence[np.ndarray], prompts: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """Each item's audio decoded after its prompt (see the module docstring); codes (nq, T) int
    and prompts (nq, P) already checked. Windows of equal length run as one batch."""
    spc = codec.info.samples_per_code_out
    jobs = []
    for item, prompt in zip(items, prompts, strict=True):
        full = np.concatenate([prompt, item], axis=1)
        p = prompt.shape[1]
        windows = prompt_windows(full.shape[1], p)
        jobs.append((full, p, windows))
    rows = [(j, w) for j, (_, _, windows) in enumerate(jobs) for w in range(len(windows))]
    pieces: dict[tuple[int, int], np.ndarray] = {}
    by_len: dict[int, list[tuple[int, int]]] = {}
    for j, w in rows:
        start, stop, _ = jobs[j][2][w]
        by_len.setdefault(stop - start, []).append((j, w))
    for width, group in by_len.items():
        codes = np.stack([jobs[j][0][:, s:e] for j, w in group for s, e, _ in [jobs[j][2][w]]], 1)
        audio = codec.decode_windows(codes, np.full(len(group), width, np.int64))
        for row, key in enumerate(group):
            pieces[key] = audio[row]
    out = []
    for j, (full, p, windows) in enumerate(jobs):
        audio, first = assemble([pieces[(j, w)] for w in range(len(windows))], windows, spc)
        out.append(audio[(p - first) * spc : (full.shape[1] - first) * spc])
    return out


def check_prompt(prompt: np.ndarray, num_quantizers: int, codebook_size: int) -> np.ndarray:
    """A prompt's codes (nq, P) as int64 (P may be 0), or `CodesError` saying it is the prompt."""
    try:
        return validate_codes(prompt, num_quantizers, codebook_size, allow_empty=True)
    except CodesError as exc:
        raise CodesError(f"prompt: {exc}") from exc
