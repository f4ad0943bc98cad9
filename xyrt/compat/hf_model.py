"""`XYTokenizer`: the transformers-style API of the ``*_hf`` folders, on any xyrt backend.

Written from the public description of that API (transformers PR #40286's model doc and the
calls MOSS-TTSD v0.7's SGLang server makes), not from its code:

    from xyrt.compat import XYTokenizer, XYTokenizerFeatureExtractor
    fe = XYTokenizerFeatureExtractor.from_pretrained("XY_Tokenizer_TTSD_V0_hf")
    codec = XYTokenizer.from_pretrained("XY_Tokenizer_TTSD_V0_hf").eval()   # PyTorch
    codec = XYTokenizer.from_pretrained("xy_onnx")                          # an export: ORT
    enc = codec.encode(fe(wav, sampling_rate=16000))  # audio_codes (nq, B, T), codes_lengths
    out = codec.decode(enc, overlap_seconds=10)       # audio_values (B, 1, T x upsample)
    out = codec.decode(enc.audio_codes, prompt=prompt_codes)   # MOSS-TTSD's prompted decode

Results are `ModelOutput`s (key and attribute access), torch tensors when torch tensors came in.
``.to()``, ``.half()``, ``.bfloat16()``, ``.float()``, ``.eval()`` behave as on
`xyrt.compat.XY_Tokenizer` (the same codec underneath).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from xyrt.compat.dtypes import precision_of_dtype
from xyrt.compat.hf_features import FeatureChunks, XYTokenizerFeatureExtractor
from xyrt.compat.tensors import ModelOutput, _array, _lengths, _Like
from xyrt.compat.xy_tokenizer import XY_Tokenizer
from xyrt.config import SAMPLES_PER_CODE_IN
from xyrt.errors import CodesError, XyrtError
from xyrt.runtime.chunking import OVERLAP_SECONDS
from xyrt.runtime.codec import ChunkedCodec


class XYTokenizer:
    """The transformers-style codec (see the module docstring)."""

    def __init__(self, codec: ChunkedCodec) -> None:
        self._xy = XY_Tokenizer(codec)
        self.config = _Config(self._xy)

    @classmethod
    def from_pretrained(
        cls, path: str | Path, backend: str = "auto", **options: Any
    ) -> XYTokenizer:
        """A Hugging Face-layout folder (config.json + safetensors; PyTorch), an original
        checkpoint, or an xyrt export/engine directory; ``options`` as
        `xyrt.compat.XY_Tokenizer.from_pretrained` (``device``, ``precision``, ``threads``,
        ...). transformers' own keywords (``trust_remote_code``, ``device_map``,
        ``torch_dtype``) are accepted: ``device_map`` a device, ``torch_dtype`` a precision."""
        options.pop("trust_remote_code", None)
        device_map, dtype = options.pop("device_map", None), options.pop("torch_dtype", None)
        if isinstance(device_map, str) and device_map != "auto":
            options.setdefault("device", device_map)
        spt = cls(XY_Tokenizer.from_pretrained(path, backend=backend, **options).codec)
        if dtype not in (None, "auto"):
            spt._xy._set_precision(precision_of_dtype(dtype), f"torch_dtype={dtype}")
        return spt

    # -- nn.Module-style calls ------------------------------------------------------------------
    @property
    def codec(self) -> ChunkedCodec:
        return self._xy.codec

    @property
    def dtype(self) -> Any:
        return self._xy.dtype

    def to(self, *args: Any, **kwargs: Any) -> XYTokenizer:
        self._xy.to(*args, **kwargs)
        return self

    def half(self) -> XYTokenizer:
        self._xy.half()
        return self

    def bfloat16(self) -> XYTokenizer:
        self._xy.bfloat16()
        return self

    def float(self) -> XYTokenizer:
        self._xy.float()
        return self

    def cuda(self, device: Any = None) -> XYTokenizer:
        self._xy.cuda(device)
        return self

    def cpu(self) -> XYTokenizer:
        self._xy.cpu()
        return self

    def eval(self) -> XYTokenizer:
        return self

    # -- encode ---------------------------------------------------------------------------------
    def encode(
        self,
        features: FeatureChunks | Any,
        n_quantizers: int | None = None,
        return_dict: bool = True,
        **unused: Any,
    ) -> ModelOutput | tuple:
        """The feature extractor's chunks -> ``audio_codes`` (nq, B, T) int64 (zero past each
        clip's length), ``codes_lengths`` (B,) = floor(samples / 1280), and
        ``quantized_representation`` (B, code_dim, T) float32 (PyTorch backend only: exported
        graphs fold it into the decoder). ``n_quantizers``: the first n codebooks. A raw
        waveform is cut into chunks with the folders' default (overlap 10 s, side "both")."""
        if not isinstance(features, FeatureChunks):
            features = XYTokenizerFeatureExtractor()(features)
        nq = self._nq(n_quantizers)
        lengths = features.lengths
        codes = np.zeros((self._xy.nq, len(lengths), int(lengths.max())), np.int64)
        for chunk in features:
            got = self._window_codes(chunk["input_values"][:, 0], chunk["input_lengths"])
            for row, (item, (lo, hi)) in enumerate(
                zip(chunk["item_index"], chunk["keep"], strict=True)
            ):
                start = self._code_start(features, int(item), int(chunk["chunk_seq_no"]))
                codes[:, item, start + lo : start + hi] = got[:, row, lo:hi]
        like = _Like(features.like)
        return self._encoded(codes, nq, lengths, like, return_dict)

    def _encode(
        self, input_features: Any, n_quantizers: int | None = None, return_dict: bool = True
    ) -> ModelOutput | tuple:
        """One window, no chunking: a chunk of the feature extractor (or a dict with
        ``input_values`` (B, 1, samples <= 30 s) and ``input_lengths`` (B,)) -> as `encode`."""
        values = input_features["input_values"]
        arr = _array(values, "input_values")
        if arr.ndim != 3 or arr.shape[1] != 1:
            raise XyrtError(f"input_values has shape {arr.shape}; expected (B, 1, samples)")
        out = self._xy.inference_tokenize(arr, input_features["input_lengths"])
        nq = self._nq(n_quantizers)
        like = _Like(values)
        lengths = np.asarray(out["codes_lengths"], np.int64)
        codes = np.array(out["codes"])
        for b, n in enumerate(lengths):
            codes[:, b, n:] = 0
        return self._encoded(codes, nq, lengths, like, return_dict)

    # -- decode ---------------------------------------------------------------------------------
    def decode(
        self,
        audio_codes: Any,
        overlap_seconds: float = OVERLAP_SECONDS,
        codes_lengths: Any = None,
        prompt: Any = None,
        return_dict: bool = True,
        **unused: Any,
    ) -> ModelOutput | tuple:
        """``audio_codes`` (nq, B, T) or (nq, T), or `encode`'s output -> ``audio_values``
        (B, 1, T x decoder_upsample_rate) float32 at ``output_sample_rate`` (zero past each
        clip's end) and ``output_length`` (B,), long codes in 375-code windows keeping
        (30 - overlap_seconds) s of each. ``codes_lengths`` (B,): each clip's codes (default:
        all T; an encode output brings its own). ``prompt``: reference codes (nq, P) to decode
        as context before every clip, cut from the audio (`xyrt.runtime.prompted`: the 10 s
        windows of MOSS-TTSD v0.7's server)."""
        if isinstance(audio_codes, dict):
            codes_lengths = audio_codes.get("codes_lengths", codes_lengths)
            audio_codes = audio_codes["audio_codes"]
        like = _Like(audio_codes)
        arr = _array(audio_codes, "audio_codes")
        arr = arr[:, None] if arr.ndim == 2 else arr
        if arr.ndim != 3 or arr.shape[1] == 0:
            raise CodesError(f"audio_codes have shape {arr.shape}; expected (nq, B, T) or (nq, T)")
        batch, frames = arr.shape[1], arr.shape[2]
        lengths = (
            np.full(batch, frames, np.int64)
            if codes_lengths is None
            else _lengths(codes_lengths, "codes_lengths", batch)
        )
        if lengths.min() < 0 or lengths.max() > frames:
            raise CodesError(
                f"codes_lengths range over [{lengths.min()}, {lengths.max()}]; expected 0..{frames}"
            )
        items = [arr[:, b, : lengths[b]] for b in range(batch)]
        audio = self._xy.decode(items, overlap_seconds, prompt=prompt)["syn_wav_list"]
        spc = self._xy.decoder_upsample_rate
        values = np.zeros((batch, 1, frames * spc), np.float32)
        for b, a in enumerate(audio):
            values[b, 0, : len(a)] = a
        out = {"audio_values": like(values), "output_length": like(lengths * spc)}
        return ModelOutput(out) if return_dict else tuple(out.values())

    def _decode(self, audio_codes: Any, codes_lengths: Any, return_dict: bool = True) -> Any:
        """One window, no chunking: codes (nq, B, T <= 375), lengths (B,) -> ``audio_values``
        (B, 1, T x decoder_upsample_rate), zero past each length, and ``output_length``."""
        out = self._xy.inference_detokenize(audio_codes, codes_lengths)
        result = {"audio_values": out["y"], "output_length": out["output_length"]}
        return ModelOutput(result) if return_dict else tuple(result.values())

    # -- helpers --------------------------------------------------------------------------------
    def _nq(self, n_quantizers: int | None) -> int:
        if n_quantizers is None:
            return self._xy.nq
        if isinstance(n_quantizers, bool) or not 1 <= int(n_quantizers) <= self._xy.nq:
            raise XyrtError(f"n_quantizers={n_quantizers!r}; expected 1..{self._xy.nq} or None")
        return int(n_quantizers)

    def _window_codes(self, wav: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        return self._xy.codec.encode_windows(wav, lengths)

    @staticmethod
    def _code_start(features: FeatureChunks, item: int, k: int) -> int:
        return features.plans[item][k].start // SAMPLES_PER_CODE_IN

    def _encoded(
        self, codes: np.ndarray, nq: int, lengths: np.ndarray, like: _Like, return_dict: bool
    ) -> ModelOutput | tuple:
        """The outputs of all ``nq`` codebooks' ``codes``; the quantized representation is that
        of all of them (n_quantizers selects the codes given back)."""
        out = {"audio_codes": like(codes[:nq]), "codes_lengths": like(lengths)}
        unavailable: dict[str, str] = {}
        if self._xy.model is None:
            name = "'quantized_representation'"
            unavailable["quantized_representation"] = self._xy._no_zq().replace("'zq'", name)
            out["quantized_representation"] = None
        else:
            out["quantized_representation"] = like(self._xy._zq(codes, lengths))
        if not return_dict:
            return tuple(out.values())
        return ModelOutput({k: v for k, v in out.items() if v is not None}, unavailable)


class _Config:
    """The rates a transformers config holds (``codec.config.sampling_rate``, ...)."""

    def __init__(self, xy: XY_Tokenizer) -> None:
        self.input_sampling_rate = xy.input_sample_rate
        self.sampling_rate = xy.output_sample_rate
        self.output_sample_rate = xy.output_sample_rate
        self.encoder_downsample_rate = xy.encoder_downsample_rate
        self.decoder_upsample_rate = xy.decoder_upsample_rate
        self.code_dim = xy.code_dim
        self.nq = xy.nq


__all__ = ["XYTokenizer"]
