"""``xyrt serve`` in a subprocess, for the tests that need a running server
(tests/serve/test_serve.py, tests/test_doc_examples.py)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

START_SECONDS = 300  # deadline for the server to report it is serving (a cold Ray on a
# busy 2-core machine took 120 s)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``xyrt ARGS --port P`` (ARGS starting with ``serve``) in a subprocess, run in ``cwd``;
    its stderr lines are collected as they come."""

    def __init__(self, args: list[str], cwd: Path | None = None, session: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "xyrt.cli", *args, "--port", str(self.port)]
        self.proc = subprocess.Popen(  # session: a process group of its own, to signal as one
            cmd, stderr=subprocess.PIPE, text=True, cwd=cwd, start_new_session=session
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line.rstrip())
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float) -> str:
        """The first stderr line matching ``pattern``; fails if the process ends or time runs
        out first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                hit = next((x for x in self.lines if re.search(pattern, x)), None)
                if hit is not None:
                    return hit
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._more()):
                    tail = "\n".join(self.lines[-20:])
                    pytest.fail(f"xyrt serve never printed {pattern!r}; its stderr:\n{tail}")
                self._changed.wait(min(left, 1.0))

    def wait_serving(self) -> Server:
        self.wait_for("serving at http://", START_SECONDS)
        return self

    def ray_root(self, timeout: float = START_SECONDS) -> str:
        """The temporary root of the local Ray this server started (its reaper names it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                    parent = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
                except (OSError, IndexError):
                    continue
                if b"xyrt.localray" in args and int(parent) == self.proc.pid:
                    return args[args.index(b"xyrt.localray") + 1].decode()
            time.sleep(0.05)
        pytest.fail("xyrt serve started no local Ray reaper")

    def _more(self) -> bool:
        return not self.proc.stderr.closed and self.proc.poll() is None

    def stop(self) -> int | None:
        """SIGTERM, then its exit status (killed, and None, if it has not ended in 60 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode
