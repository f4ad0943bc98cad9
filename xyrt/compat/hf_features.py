"""`XYTokenizerFeatureExtractor`: the transformers-style front of the ``*_hf`` folders.

Its call returns the audio as 30 s chunks (one batch per window position, over the items long
enough to need it) that `xyrt.compat.XYTokenizer.encode` consumes. xyrt's backends compute the
log-mel themselves (the exported graphs hold the front end), so a chunk carries the waveform
window (``input_values``, ``input_lengths``) and the frame ``attention_mask``, not the mel.

The long-audio rule (`hf_plan`) differs from the original ``XY_Tokenizer``'s: windows still
start every (30 - overlap) s, but ``overlap_side`` says where in each window the overlap lies:
- ``"right"``: the kept codes are the first (30 - overlap) s of each window: the original rule,
  the same codes as `xyrt.compat.XY_Tokenizer` at every length;
- ``"both"`` (the folders' default): every window after the first keeps
  [overlap / 2, 30 - overlap / 2) s ([5, 25) s for overlap 10: 62 codes = 4.96 s of left
  context), the first keeps [0, 30 - overlap / 2) s;
- ``"left"``: every window after the first keeps its last (30 - overlap) s, the first all of it.
A window is run only when it keeps at least one code, so a clip up to (30 - overlap / 2) s
("both") is one window, where the original runs a second window from 20 s on: codes differ from
``XY_Tokenizer``'s from (30 - overlap) s on (README, "MOSS-TTSD").
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xyrt.compat.tensors import ModelOutput, _array, _is_tensor, _waveform
from xyrt.config import (
    CODES_PER_CHUNK,
    INPUT_SAMPLE_RATE,
    N_SAMPLES,
    SAMPLES_PER_CODE_IN,
    valid_frames,
)
from xyrt.errors import AudioError, ConfigError, XyrtError, received
from xyrt.runtime.chunking import OVERLAP_SECONDS, codes_per_step, num_codes
from xyrt.runtime.formats.audio import prepare_audio
from xyrt.runtime.graph_io import pack_windows

OVERLAP_SIDES = ("both", "left", "right")
PREPROCESSOR_CONFIG = "preprocessor_config.json"
MEL_FRAMES = N_SAMPLES // 160  # 3000 log-mel frames in a 30 s window


@dataclass(frozen=True)
class HFWindow:
    """A window of one clip: samples [start, stop); its codes [lo, hi) (window-relative) kept."""

    start: int
    stop: int
    lo: int
    hi: int


def hf_plan(
    n_samples: int, overlap_seconds: float = OVERLAP_SECONDS, overlap_side: str = "both"
) -> list:
    """The windows of a 16 kHz clip of ``n_samples`` (see the module docstring)."""
    if overlap_side not in OVERLAP_SIDES:
        raise XyrtError(
            f"overlap_side={received(overlap_side)}; expected one of {', '.join(OVERLAP_SIDES)}"
        )
    step = codes_per_step(overlap_seconds)  # codes between window starts (250 for 10 s)
    overlap = CODES_PER_CHUNK - step
    lead = {"right": 0, "both": overlap // 2, "left": overlap}[overlap_side]
    total = num_codes(n_samples)
    windows: list[HFWindow] = []
    k = 0
    while True:
        start = k * step
        lo = 0 if k == 0 else lead
        if k and start + lo >= total:
            break
        hi = min(lead + step, total - start)
        stop = min(start * SAMPLES_PER_CODE_IN + N_SAMPLES, n_samples)
        windows.append(HFWindow(start * SAMPLES_PER_CODE_IN, stop, lo, hi))
        if start + hi >= total:
            break
        k += 1
    return windows


class FeatureChunks:
    """The chunks of a batch of clips, iterable any number of times: the k-th chunk holds the
    k-th window of every clip that has one (a `ModelOutput`: ``input_values`` (b, 1, samples)
    float32, ``input_lengths`` (b,), ``attention_mask`` (b, 3000) over log-mel frames,
    ``item_index`` (b,) (which clips), ``keep`` (b, 2) (the codes each keeps),
    ``chunk_seq_no``)."""

    def __init__(
        self, clips: list[np.ndarray], overlap_seconds: float, overlap_side: str, like: Any
    ) -> None:
        self.clips = clips
        self.overlap_seconds = overlap_seconds
        self.overlap_side = overlap_side
        self.like = like  # a tensor or None: how results come back
        self.plans = [hf_plan(len(c), overlap_seconds, overlap_side) for c in clips]
        self.lengths = np.array([num_codes(len(c)) for c in clips], np.int64)

    def __len__(self) -> int:
        return max(len(p) for p in self.plans)

    def __iter__(self) -> Iterator[ModelOutput]:
        for k in range(len(self)):
            yield self.chunk(k)

    def chunk(self, k: int) -> ModelOutput:
        items = [i for i, p in enumerate(self.plans) if len(p) > k]
        windows = [self.plans[i][k] for i in items]
        wav, lengths = pack_windows(
            [self.clips[i][w.start : w.stop] for i, w in zip(items, windows, strict=True)]
        )
        frames = valid_frames(lengths)
        mask = (np.arange(MEL_FRAMES)[None, :] < frames[:, None]).astype(np.int64)
        return ModelOutput(
            {
                "input_values": wav[:, None, :],
                "input_lengths": lengths,
                "attention_mask": mask,
                "item_index": np.array(items, np.int64),
                "keep": np.array([(w.lo, w.hi) for w in windows], np.int64).reshape(-1, 2),
                "chunk_seq_no": k,
            },
            {"input_features": _NO_MEL},
        )


_NO_MEL = (
    "'input_features' (the log-mel) is computed inside xyrt's models (the exported graphs hold the "
    "front end): a chunk carries the waveform window as 'input_values' and 'input_lengths'"
)


class XYTokenizerFeatureExtractor:
    """The ``*_hf`` folders' feature extractor, for `xyrt.compat.XYTokenizer`."""

    def __init__(
        self,
        sampling_rate: int = INPUT_SAMPLE_RATE,
        chunk_length: int = 30,
        overlap_side: str = "both",
        **unused: Any,
    ) -> None:
        if sampling_rate != INPUT_SAMPLE_RATE or chunk_length != 30:
            raise ConfigError(
                f"sampling_rate {sampling_rate} and chunk_length {chunk_length}: XY-Tokenizer "
                f"takes {INPUT_SAMPLE_RATE} Hz audio in 30 s windows"
            )
        hf_plan(0, 10, overlap_side)  # checks the side
        self.sampling_rate = sampling_rate
        self.chunk_length = chunk_length
        self.overlap_side = overlap_side

    @classmethod
    def from_pretrained(cls, path: str | Path, **overrides: Any) -> XYTokenizerFeatureExtractor:
        """Settings from ``path/preprocessor_config.json`` (defaults where it has none)."""
        file = Path(path) / PREPROCESSOR_CONFIG
        settings: dict[str, Any] = {}
        if file.is_file():
            try:
                settings = json.loads(file.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ConfigError(f"cannot read {file}: {exc}") from exc
            if not isinstance(settings, dict):
                raise ConfigError(f"{file}: expected a JSON object")
        keep = ("sampling_rate", "chunk_length", "overlap_side")
        return cls(**{k: v for k, v in {**settings, **overrides}.items() if k in keep})

    def __call__(
        self,
        raw_speech: Any,
        sampling_rate: int | None = None,
        overlap_seconds: float = OVERLAP_SECONDS,
        overlap_side: str | None = None,
        **unused: Any,
    ) -> FeatureChunks:
        """One clip (samples,) or a batch: a list of clips, or (B, samples) -> `FeatureChunks`
        (``return_tensors``, ``return_attention_mask``, ... are accepted; results come back as
        the input's kind). ``sampling_rate`` other than 16 kHz is resampled."""
        side = self.overlap_side if overlap_side is None else overlap_side
        hf_plan(0, overlap_seconds, side)  # checks side and overlap
        rate = self.sampling_rate if sampling_rate is None else sampling_rate
        if isinstance(raw_speech, (list, tuple)):
            items: Sequence[Any] = list(raw_speech)
        else:
            arr = _array(raw_speech, "raw_speech")
            items = [arr] if arr.ndim == 1 else list(arr) if arr.ndim == 2 else [arr]
        if not items:
            raise AudioError("raw_speech is an empty batch; expected at least one clip")
        clips = []
        for i, item in enumerate(items):
            arr = _waveform(item, f"raw_speech[{i}]")
            clip = prepare_audio(arr, rate, what=f"raw_speech[{i}]")
            if num_codes(len(clip)) == 0:
                raise AudioError(
                    f"raw_speech[{i}] has {len(clip)} samples at 16 kHz, shorter than one code "
                    f"({SAMPLES_PER_CODE_IN} samples, 80 ms)"
                )
            clips.append(clip)
        first = items[0] if _is_tensor(items[0]) else raw_speech
        return FeatureChunks(clips, overlap_seconds, side, first if _is_tensor(first) else None)


__all__ = ["OVERLAP_SIDES", "FeatureChunks", "HFWindow", "XYTokenizerFeatureExtractor", "hf_plan"]
