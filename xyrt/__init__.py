"""xyrt: deployment toolkit for the XY-Tokenizer speech codec."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from xyrt.errors import XyrtError

__version__ = "0.1.0"
__all__ = ["XyrtError", "__version__", "tokenize"]

if TYPE_CHECKING:
    from xyrt.corpus import tokenize


def __getattr__(name: str) -> Any:
    """``xyrt.tokenize`` (`xyrt.corpus.tokenize`), imported on first use."""
    if name == "tokenize":
        from xyrt.corpus import tokenize

        return tokenize
    raise AttributeError(f"module 'xyrt' has no attribute {name!r}")
