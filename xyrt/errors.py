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


ECHO_LIMIT = 120  # characters of a received value an error message repeats
MESSAGE_LIMIT = 2000  # characters of an error line; what it echoes is capped before (received)


def received(value: object, limit: int = ECHO_LIMIT) -> str:
    """``repr(value)`` for an error message, cut to ``limit`` characters: a message echoes what
    it received, never a megabyte of it."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 30]}... ({len(text)} characters)"


def one_line(message: str) -> str:
    """A multi-line message (a list of problems) as one line: "head: item; item", at most
    `MESSAGE_LIMIT` characters."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    text = lines[0] + (" " + "; ".join(lines[1:]) if len(lines) > 1 else "") if lines else "?"
    if len(text) > MESSAGE_LIMIT:
        text = f"{text[: MESSAGE_LIMIT - 40]}... ({len(text)} characters in all)"
    return text


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
