"""One exception family for everything a user can get wrong."""

from __future__ import annotations

from types import ModuleType


class XyrtError(Exception):
    """Base class: the message says what was received, what was expected and how to fix it."""


class AudioError(XyrtError):
    """Audio that cannot be read or is not usable (empty, NaN, wrong shape...)."""


class CheckpointError(XyrtError):
    """A checkpoint that is unreadable or does not match the configuration."""


class ConfigError(XyrtError):
    """A configuration file that is missing, unreadable or inconsistent."""


class CodesError(XyrtError):
    """Codes with the wrong shape, dtype or values outside the codebook."""


class MissingDependencyError(XyrtError):
    """An optional dependency is needed for this feature but is not installed."""


def one_line(message: str) -> str:
    """A multi-line message (a list of problems) as one line: "head: item; item"."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[0] + (" " + "; ".join(lines[1:]) if len(lines) > 1 else "") if lines else "?"


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import an optional dependency or raise `MissingDependencyError` naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except (ImportError, OSError) as exc:
        raise MissingDependencyError(
            f"{feature} needs the Python package '{module}', which is not installed "
            f"({exc}). Install it with: pip install 'xyrt[{extra}]'"
        ) from exc
