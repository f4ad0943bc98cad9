"""xyrt: deployment toolkit for the XY-Tokenizer speech codec."""

__version__ = "0.1.0"

from xyrt.corpus import tokenize  # noqa: E402
from xyrt.errors import XyrtError  # noqa: E402

__all__ = ["XyrtError", "__version__", "tokenize"]
