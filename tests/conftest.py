"""Shared fixtures (the helpers every test module imports are in tests/helpers.py)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from helpers import GOLDEN_MODELS, TIES

# xyrt's own cache (hash stamps, ORT's optimised graphs): a fresh folder for each test session
os.environ["XYRT_CACHE"] = tempfile.mkdtemp(prefix="xyrt-cache-")


@pytest.fixture(params=GOLDEN_MODELS)
def golden_name(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def fullsize_checkpoint(tmp_path_factory) -> Path:
    """A full-size (~520 M parameter, 2 GB) synthetic checkpoint, made once per session."""
    from xyrt.export.synth import synth_checkpoint

    return synth_checkpoint(tmp_path_factory.mktemp("fullsize") / "model.ckpt", seed=0)


def pytest_terminal_summary(terminalreporter) -> None:
    if TIES:
        terminalreporter.write_sep("-", f"float32 near-tie frames excused: {len(TIES)}")
        for line in TIES:
            terminalreporter.write_line(line)
