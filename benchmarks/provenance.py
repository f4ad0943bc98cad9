"""What every committed benchmark JSON records about its run: the commit and the host."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path


def commit() -> str:
    """The checked-out commit, ``+dirty`` when the tree has changes (XYRT_COMMIT when the tree
    is not a git checkout, as on a device machine given a copy)."""
    here = Path(__file__).parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=30
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return os.environ.get("XYRT_COMMIT", "unknown")
    if head.returncode != 0:
        return os.environ.get("XYRT_COMMIT", "unknown")
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def run_facts() -> dict:
    """Commit, date, and the CPU (its instruction-set level) of this run."""
    from xyrt.runtime import hostcpu

    return {
        "commit": commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu_isa": hostcpu.isa(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }
