"""xyrt: deployment toolkit for the XY-Tokenizer speech codec."""

from xyrt.errors import XyrtError

__version__ = "0.1.0"
__all__ = ["XyrtError", "__version__"]
