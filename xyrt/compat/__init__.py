"""Drop-ins for the published XY-Tokenizer interfaces, on any xyrt backend.

- `XY_Tokenizer`: the original class (MOSS-TTSD v0.5-v0.7 scripts), `xyrt.compat.xy_tokenizer`;
- `XYTokenizer` and `XYTokenizerFeatureExtractor`: the transformers-style API of the ``*_hf``
  folders (MOSS-TTSD v0.7's SGLang server), `xyrt.compat.hf_model`, `xyrt.compat.hf_features`.

Inputs are torch tensors (any device, any float dtype) or numpy arrays; results come back in the
same kind. torch is only imported when a tensor is given or the PyTorch backend is used.
"""

from __future__ import annotations

from xyrt.compat.hf_features import XYTokenizerFeatureExtractor
from xyrt.compat.hf_model import XYTokenizer
from xyrt.compat.tensors import ModelOutput, Outputs
from xyrt.compat.xy_tokenizer import XY_Tokenizer

__all__ = [
    "ModelOutput",
    "Outputs",
    "XYTokenizer",
    "XYTokenizerFeatureExtractor",
    "XY_Tokenizer",
]
