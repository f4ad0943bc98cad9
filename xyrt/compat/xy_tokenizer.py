"""A drop-in for the published ``XY_Tokenizer`` class, on any xyrt backend.

MOSS-TTSD (v0.5-v0.7) and other projects change one import line:

    from xyrt.compat import XY_Tokenizer    # was: from XY_Tokenizer.xy_tokenizer.model import ...
    spt = XY_Tokenizer.load_from_checkpoint(config_path, ckpt_path)     # PyTorch, as before
    spt = XY_Tokenizer.from_pretrained("xy_onnx")                       # ONNX Runtime, TensorRT
    codes = spt.encode([wav.squeeze().to(device)])["codes_list"][0]    # (8, T) int64
    audio = spt.decode([codes], overlap_seconds=10)["syn_wav_list"][0]  # (T x 1920,) at 24 kHz

Inputs are torch tensors (any device, any float dtype) or numpy arrays; results come back in the
same kind: tensors on the input's device (or ``device=`` when given), or numpy arrays. torch is
only imported when a tensor is given or the PyTorch backend is used.

Where this class differs from the published one (by design, each documented in README):
- a list's results never depend on what else is in the list: the published decode batches
  ragged items, and its vocoder (which has no padding mask) then changes the end of shorter ones;
- ``inference_tokenize`` returns codes up to the longest item's valid frames, not the whole
  375-frame window the published code pads every input to; ``inference_detokenize`` returns
  zeros past each item's ``output_length``;
- ``zq`` (the quantized latent: the RVQ output projection of the sum of the chosen codebook
  vectors, zero vectors past each length, (B, code_dim, T); docs/SPEC.md section 6) needs the
  PyTorch model: exported graphs fold that projection into the decoder, so with them reading
  ``result["zq"]`` raises `XyrtError`;
- ``.half()``, ``.bfloat16()``, ``.float()``, ``.to(dtype)`` choose the precision the backend
  runs (`xyrt.compat.dtypes`), after which encode and decode work; the published class casts
  its weights and then fails on a dtype mismatch;
- ``decode(..., prompt=codes)`` decodes after reference codes, as MOSS-TTSD's server does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from xyrt.compat.dtypes import backend_precision, precision_of_dtype, split_to_args, with_precision
from xyrt.compat.tensors import Outputs, _array, _lengths, _Like, _waveform
from xyrt.config import (
    CODES_PER_CHUNK,
    INPUT_SAMPLE_RATE,
    MEL_PER_CODE,
    N_SAMPLES,
    SAMPLES_PER_CODE_IN,
    valid_frames,
)
from xyrt.errors import AudioError, CodesError, XyrtError, require
from xyrt.runtime.chunking import OVERLAP_SECONDS, codes_per_step, num_codes
from xyrt.runtime.codec import ChunkedCodec
from xyrt.runtime.formats.audio import prepare_audio
from xyrt.runtime.formats.codes import check_code_dtype, validate_codes
from xyrt.runtime.graph_io import pack_windows


class XY_Tokenizer:  # noqa: N801 - the published class name, so that only the import changes
    """The published interface over an xyrt `ChunkedCodec` (see the module docstring)."""

    def __init__(self, codec: ChunkedCodec) -> None:
        self.codec = codec
        info = codec.info
        self.input_sample_rate = INPUT_SAMPLE_RATE
        self.output_sample_rate = info.output_sample_rate
        self.sample_rate = info.output_sample_rate
        self.encoder_downsample_rate = SAMPLES_PER_CODE_IN
        self.decoder_upsample_rate = info.samples_per_code_out
        self.nq = info.num_quantizers
        self.code_dim = self._code_dim()

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def load_from_checkpoint(cls, config_path: str | Path | None, ckpt_path: str | Path):
        """The PyTorch model from an original .ckpt and its YAML (or a Hugging Face-layout
        folder as ``ckpt_path``, with ``config_path`` None): the published signature."""
        config = None if Path(ckpt_path).is_dir() else config_path  # a folder has config.json
        return cls.from_pretrained(ckpt_path, backend="torch", config=config)

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        backend: str = "auto",
        config: str | Path | None = None,
        threads: int | None = None,
        batch_size: int | None = 4,
        **runtime_options: Any,
    ) -> XY_Tokenizer:
        """A model source run by ``backend`` (`xyrt.runtime.backends.registry`): an export directory
        (`xyrt export`/`quantize`/`build`; "auto": ONNX Runtime or TensorRT by what it holds)
        or a checkpoint (.ckpt + YAML, or a Hugging Face-layout folder; "auto": PyTorch).
        ``runtime_options`` go to `xyrt.runtime.load`: ``device`` ("cuda"), ``precision``
        ("fp32", "bf16", "fp16" for PyTorch), ``providers``, ``target``, ..."""
        import xyrt.runtime
        from xyrt.runtime.backends.registry import entry_for, source_kind

        kind = source_kind(path)
        entry = entry_for(kind, backend)
        if kind == "checkpoint" and kind not in entry.sources:
            raise XyrtError(
                f"{path} is not an export directory (no manifest.json); backend={backend!r} "
                "runs exported graphs: make them with `xyrt export --model CKPT -o DIR`, or "
                "use backend='torch' for the checkpoint itself"
            )
        if kind != "checkpoint" and "checkpoint" in entry.sources:
            raise XyrtError(
                f"{path} is an exported model; backend={backend!r} (PyTorch) needs the "
                "checkpoint it was exported from (.ckpt + YAML or a Hugging Face-layout folder)"
            )
        if "auto" in entry.precisions:  # the published class runs float32 on every device,
            runtime_options.setdefault("precision", "fp32")  # so does its drop-in
        codec = xyrt.runtime.load(
            path,
            entry.name,
            threads=threads,
            batch_size=batch_size,
            **({"config": config} if config is not None else {}),
            **runtime_options,
        )
        return cls(codec)

    # -- nn.Module-style calls the published class inherits -------------------------------------
    @property
    def model(self):
        """The PyTorch model (`xyrt.runtime.network.model.XYTokenizer`), or None for exported
        graphs."""
        return getattr(self.codec.backend, "model", None)

    def to(self, *args: Any, **kwargs: Any) -> XY_Tokenizer:
        """``nn.Module.to``: ``to(device)``, ``to(dtype)``, ``to(device, dtype)``, ``to(tensor)``.
        A device moves the PyTorch model (its float32 calls stay IEEE float32 there: no TF32);
        exported graphs stay where their backend runs them (results still come back on the
        input's device). A dtype selects the precision (`xyrt.compat.dtypes`): torch.float32,
        float16 (CUDA) or bfloat16 on the PyTorch backend; another backend that does not run it
        raises `XyrtError`. Returns self."""
        device, dtype = split_to_args(args, dict(kwargs))
        if self.model is not None and device is not None:
            self.codec.backend.to(device)  # the backend reads it (torch_device.parse_device)
        if dtype is not None:
            self._set_precision(precision_of_dtype(dtype), f"to({dtype})")
        return self

    def half(self) -> XY_Tokenizer:
        """Run in float16 (PyTorch backend on a CUDA device); see `to`."""
        return self._set_precision("fp16", "half()")

    def bfloat16(self) -> XY_Tokenizer:
        """Run in bfloat16 (PyTorch backend); see `to`."""
        return self._set_precision("bf16", "bfloat16()")

    def float(self) -> XY_Tokenizer:
        """Run in float32 (the PyTorch backend reads the exact float32 weights again)."""
        return self._set_precision("fp32", "float()")

    @property
    def dtype(self) -> Any:
        """The torch dtype this codec runs in (autocast's for fp16/bf16); needs torch."""
        torch = require("torch", "export", "XY_Tokenizer.dtype")
        names = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
        return names.get(backend_precision(self.codec), torch.float32)

    def _set_precision(self, precision: str, call: str) -> XY_Tokenizer:
        self.codec = with_precision(self.codec, precision, f"XY_Tokenizer.{call}")
        return self

    def cuda(self, device: Any = None) -> XY_Tokenizer:
        return self.to("cuda" if device is None else f"cuda:{device}")

    def cpu(self) -> XY_Tokenizer:
        return self.to("cpu")

    def eval(self) -> XY_Tokenizer:
        return self

    def train(self, mode: bool = True) -> XY_Tokenizer:
        if mode:
            raise XyrtError("xyrt runs XY-Tokenizer for inference only; train() is not supported")
        return self

    def requires_grad_(self, requires_grad: bool = True) -> XY_Tokenizer:
        return self

    # -- the published API -----------------------------------------------------------------------
    def encode(
        self, wav_list: Sequence[Any], overlap_seconds: float = OVERLAP_SECONDS, device: Any = None
    ) -> Outputs:
        """1-D waveforms at 16 kHz -> {"codes_list": [(nq, floor(n / 1280)) int64 per item]},
        long audio in 30 s windows keeping (30 - overlap_seconds) s of each. Each waveform goes
        through the runtime's audio checks (`xyrt.runtime.formats.audio.prepare_audio`: integer PCM
        scaled to [-1, 1), NaN refused, ...), as ``codec.encode`` does."""
        wavs = self._items(wav_list, "wav_list")
        codes_per_step(overlap_seconds)  # checked even when no item is long enough to encode
        like = _Like(wavs[0], device)
        arrays = []
        for i, wav in enumerate(wavs):
            arr = _waveform(wav, f"wav_list[{i}]", " at 16 kHz (e.g. wav.squeeze())")
            arrays.append(prepare_audio(arr, INPUT_SAMPLE_RATE, what=f"wav_list[{i}]"))
        codes: list[np.ndarray] = [np.zeros((self.nq, 0), np.int64)] * len(arrays)
        todo = [i for i, a in enumerate(arrays) if num_codes(len(a))]  # < 80 ms: no codes
        if todo:
            done = self.codec.encode([arrays[i] for i in todo], INPUT_SAMPLE_RATE, overlap_seconds)
            for i, c in zip(todo, done, strict=True):
                codes[i] = c
        return Outputs({"codes_list": [like(c) for c in codes]})

    def decode(
        self,
        codes_list: Sequence[Any],
        overlap_seconds: float = OVERLAP_SECONDS,
        device: Any = None,
        prompt: Any = None,
    ) -> Outputs:
        """Codes (nq, T) per item -> {"syn_wav_list": [(T x decoder_upsample_rate,) float32]} at
        ``output_sample_rate``, in 375-code windows keeping (30 - overlap_seconds) s of each.
        Codes go through the runtime's checks (`validate_codes`: integer dtype, values in the
        codebook); (nq, 0), what the published encode gives under 80 ms, decodes to no audio.
        ``prompt``: reference codes (nq, P) decoded before every item and cut from its audio,
        as MOSS-TTSD v0.7's server decodes (`xyrt.runtime.prompted`: 10 s windows)."""
        items = self._items(codes_list, "codes_list")
        codes_per_step(overlap_seconds)
        like = _Like(items[0], device)
        arrays = [self._codes(c, f"codes_list[{i}]") for i, c in enumerate(items)]
        context = None if prompt is None else _array(prompt, "prompt")
        audio: list[np.ndarray] = [np.zeros(0, np.float32)] * len(arrays)
        todo = [i for i, a in enumerate(arrays) if a.shape[1]]
        if todo:
            done = self.codec.decode([arrays[i] for i in todo], overlap_seconds, prompt=context)
            for i, a in zip(todo, done, strict=True):
                audio[i] = a
        return Outputs({"syn_wav_list": [like(a) for a in audio]})

    def inference_tokenize(self, x: Any, input_lengths: Any) -> Outputs:
        """One window: x (B, 1, n <= 480000) at 16 kHz, valid lengths (B,) -> {"codes": (nq, B, T)
        int64, "codes_lengths": (B,) = ceil(len / 160) // 8, "zq": (B, code_dim, T) float32}.
        Each item's valid samples go through the runtime's audio checks, as in `encode`."""
        raw = _array(x, "x")
        wav = raw[:, 0] if raw.ndim == 3 and raw.shape[1] == 1 else raw
        if wav.ndim != 2 or wav.shape[0] == 0:
            raise AudioError(
                f"x has shape {raw.shape}; expected (B, 1, samples) with B >= 1 and "
                "input_lengths (B,)"
            )
        lengths = _lengths(input_lengths, "input_lengths", wav.shape[0])
        if lengths.min() < 1 or lengths.max() > min(wav.shape[1], N_SAMPLES):
            raise AudioError(
                f"input_lengths range over [{lengths.min()}, {lengths.max()}]; expected 1.."
                f"{min(wav.shape[1], N_SAMPLES)} (one window holds at most 30 s: use encode())"
            )
        items = [
            prepare_audio(wav[i, :n], INPUT_SAMPLE_RATE, what=f"x[{i}]")
            for i, n in enumerate(lengths)
        ]
        batch, lengths = pack_windows(items)
        code_lengths = valid_frames(lengths) // MEL_PER_CODE
        codes = self.codec.encode_windows(batch, lengths)[:, :, : int(code_lengths.max())]
        like = _Like(x)
        out = {"codes": like(codes), "codes_lengths": like(code_lengths)}
        if self.model is None:
            return Outputs(out, {"zq": self._no_zq()})
        return Outputs({**out, "zq": like(self._zq(codes, code_lengths))})

    def inference_detokenize(self, codes: Any, codes_lengths: Any) -> Outputs:
        """One window: codes (nq, B, T <= 375), lengths (B,) -> {"y": (B, 1, T x
        decoder_upsample_rate) float32, zero past each item's end; "output_length": (B,)}.
        Codes go through the runtime's checks (integer dtype; values in the codebook)."""
        arr = _array(codes, "codes")
        if arr.ndim != 3 or arr.shape[0] != self.nq or arr.shape[1] == 0:
            raise CodesError(
                f"codes have shape {arr.shape}; expected ({self.nq}, B, T) with B >= 1 and "
                "codes_lengths (B,)"
            )
        check_code_dtype(arr)
        lengths = _lengths(codes_lengths, "codes_lengths", arr.shape[1])
        if arr.shape[2] > CODES_PER_CHUNK or lengths.min() < 0 or lengths.max() > arr.shape[2]:
            raise CodesError(
                f"codes have {arr.shape[2]} frames and codes_lengths range over [{lengths.min()}, "
                f"{lengths.max()}]; one window holds at most {CODES_PER_CHUNK} codes (use decode())"
            )
        spc = self.decoder_upsample_rate
        y = self.codec.decode_windows(arr.astype(np.int64, copy=False), lengths)[:, None, :]
        like = _Like(codes)
        return Outputs({"y": like(y), "output_length": like(lengths * spc)})

    # -- helpers -------------------------------------------------------------------------------
    @staticmethod
    def _items(items: Any, what: str) -> list[Any]:
        if not isinstance(items, (list, tuple)) or not items:
            raise XyrtError(f"{what} must be a non-empty list, got {type(items).__name__}")
        return list(items)

    def _codes(self, codes: Any, what: str) -> np.ndarray:
        try:
            return validate_codes(
                _array(codes, what), self.nq, self.codec.info.codebook_size, allow_empty=True
            )
        except CodesError as exc:
            raise CodesError(f"{what}: {exc}") from exc

    def _code_dim(self) -> int | None:
        if self.model is not None:
            return self.model.cfg.quantizer.input_dim
        manifest = getattr(self.codec.backend, "manifest", None)
        config = manifest.data.get("config", {}) if manifest is not None else {}
        return config.get("quantizer", {}).get("input_dim")

    def _no_zq(self) -> str:
        return (
            f"'zq' (the quantized latent) needs the PyTorch model; this {self.codec.backend.name} "
            "backend runs exported graphs, which fold the RVQ output projection into the decoder "
            "and never compute it. Load the checkpoint with "
            "XY_Tokenizer.from_pretrained(checkpoint, backend='pytorch') to get it."
        )

    def _zq(self, codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        import torch

        q, device = self.model.quantizer, self.codec.backend.device
        with torch.inference_mode():
            emb = q.embed(torch.from_numpy(codes).to(device))  # (B, T, rvq_dim)
            keep = (
                torch.arange(emb.shape[1], device=device)[None, :]
                < torch.from_numpy(lengths).to(device)[:, None]
            )
            zq = q.output_proj(emb * keep[:, :, None].to(emb.dtype))
        return zq.transpose(1, 2).float().cpu().numpy()


__all__ = ["Outputs", "XY_Tokenizer"]
