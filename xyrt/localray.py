"""The local Ray that `xyrt tokenize` starts for a run, and the reaper that ends it with xyrt.

Ray shares the fate of its head processes (GCS, raylet) with the driver, but the processes the
raylet starts (its agents, the workers) notice late, or not at all, when the driver is killed
with SIGKILL. So the local Ray gets a temporary root of its own (``xyrt-ray-*``: its sockets and
logs, so every one of its processes names it in its command line or holds a file open in it)
and a reaper: a small process in its own session that waits on a pipe from xyrt. When the pipe
closes (xyrt ended, however it ended), the reaper sends SIGTERM to every process of that root,
SIGKILL to those still there a grace period later, and removes the root. Linux (``/proc``);
elsewhere the reaper only removes the root.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT_PREFIX = "xyrt-ray-"
GRACE_SECONDS = 2.0


class LocalRay:
    """A local Ray for one run; `stop()` shuts it down (the reaper covers a killed xyrt)."""

    def __init__(self, num_cpus: int, object_store_memory: int) -> None:
        import ray

        self.root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX))
        self.reaper = subprocess.Popen(
            [sys.executable, "-m", "xyrt.corpus.localray", str(self.root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C to xyrt's process group does not stop it
        )
        try:
            ray.init(  # GPUs: the ones Ray finds here (never a count it would take on trust)
                num_cpus=num_cpus,
                include_dashboard=False,
                object_store_memory=object_store_memory,
                logging_level=logging.ERROR,
                log_to_driver=False,
                _temp_dir=str(self.root),
            )
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        if self.reaper.stdin is not None and not self.reaper.stdin.closed:
            self.reaper.stdin.close()  # the reaper ends what is left, and removes the root
        with contextlib.suppress(subprocess.TimeoutExpired):  # it finishes on its own
            self.reaper.wait(timeout=3 * GRACE_SECONDS)


def _uses(pid: str, root: str) -> bool:
    """Whether process ``pid`` names ``root`` in its command line or has a file open in it
    (Ray's processes rename themselves, ray::..., but keep their log files open)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if root.encode() in f.read():
                return True
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(root + "/"):
                return True
        except OSError:
            continue
    return False


def processes_of(root: str, spare: frozenset[int] = frozenset()) -> list[int]:
    """Pids of the live processes of the Ray under ``root`` (not this one, nor ``spare``)."""
    pids = []
    spare = spare | {os.getpid()}
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) not in spare and _uses(name, root):
            pids.append(int(name))
    return pids


def reap(root: str, spare: frozenset[int] = frozenset()) -> None:
    """SIGTERM every process of ``root`` (`processes_of`), SIGKILL the ones left after
    `GRACE_SECONDS`; remove ``root``."""
    if os.path.isdir("/proc"):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in processes_of(root, spare):
                with contextlib.suppress(OSError):  # gone meanwhile
                    os.kill(pid, sig)
            deadline = time.monotonic() + GRACE_SECONDS
            while processes_of(root, spare) and time.monotonic() < deadline:
                time.sleep(0.05)
    shutil.rmtree(root, ignore_errors=True)


def main(root: str) -> None:
    """The reaper: wait for EOF on stdin (xyrt ended), then reap ``root`` (never xyrt itself,
    when it ended the run and is still there)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    xyrt = os.getppid()
    while sys.stdin.buffer.read(1 << 16):
        pass
    reap(root, frozenset({xyrt}))


if __name__ == "__main__":
    main(sys.argv[1])
