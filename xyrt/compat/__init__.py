"""Drop-ins for the published XY-Tokenizer interfaces, on any xyrt backend.

- `XY_Tokenizer`: the original class (MOSS-TTSD v0.5-v0.7 scripts), `xyrt.compat.xy_tokenizer`;
- `XYTokenizer` and `XYTokenizerFeatureExtractor`: the transformers-style API of the ``*_hf``
  folders (MOSS-TTSD v0.7's SGLang server), `xyrt.compat.hf_api`.

Inputs are torch tensors (any device, any float dtype) or numpy arrays; results come back in the
same kind. torch is only imported when a tensor is given or the PyTorch backend is used.
"""

from __future__ import annotations

from xyrt.compat.tensors import Outputs
from xyrt.compat.xy_tokenizer import BACKENDS, XY_Tokenizer, XYTokenizerCompat

__all__ = ["BACKENDS", "Outputs", "XYTokenizerCompat", "XY_Tokenizer"]
