"""The local Ray that `xyrt tokenize` and `xyrt serve` start for a run, and the reaper that ends
it with xyrt.

Ray shares the fate of its head processes (GCS, raylet) with the driver, but the processes the
raylet starts (its agents, the workers) notice late, or not at all, when the driver is killed
with SIGKILL. So the local Ray gets a temporary root of its own (``xyrt-ray-*``: its sockets and
logs, so every one of its processes names it in its command line or holds a file open in it)
and a reaper: a small process in its own session that waits on a pipe from xyrt. When the pipe
closes (xyrt ended, however it ended), the reaper sends SIGTERM to every process of that root,
SIGKILL to those still there a grace period later, and removes the root. Linux (``/proc``);
elsewhere the reaper only removes the root.

Ray's driver installs a SIGTERM handler of its own while it starts (it drains the node for 30 s,
then exits); xyrt's handlers are put back as soon as `ray.init` returns, and the drain is off
for a local Ray, so a signal at any phase reaches xyrt and ends the run promptly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT_PREFIX = "xyrt-ray-"
GRACE_SECONDS = 2.0
SHUTDOWN_SECONDS = 10.0  # longest ray.shutdown() is waited for (a head already gone hangs it)
DRAIN_ENV = "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"  # Ray's own SIGTERM drain, 30 s by default
HEAD = (b"raylet", b"gcs_server")  # the processes a local Ray cannot run without
DAEMONS = (b"ray::RuntimeEnvAgent", b"ray::DashboardAgent", b"monitor.py", b"log_monitor.py")
EXIT_WAIT_SECONDS = 60.0  # how long the reaper waits for xyrt to exit before the last removal
_STARTED: list[LocalRay] = []  # this process's local Rays not yet stopped (`abandon_all`)


class LocalRay:
    """A local Ray for one run; `stop()` shuts it down (the reaper covers a killed xyrt)."""

    def __init__(self, num_cpus: int, object_store_memory: int) -> None:
        import ray

        os.environ.setdefault(DRAIN_ENV, "0")  # inherited by Ray: no 30 s drain on SIGTERM
        handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
        self.root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX))
        self._marked: set[int] = set()  # `mark`
        _STARTED.append(self)
        self.reaper = subprocess.Popen(
            [sys.executable, "-m", "xyrt.localray", str(self.root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
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
            self.mark()
        except Exception:
            self.stop()
            raise
        except BaseException:  # a stop signal (xyrt's `Stopped`, Ray's SystemExit), Ctrl-C
            self.stop(graceful=False)
            raise
        finally:
            for sig, handler in handlers.items():  # xyrt's, not the ones ray.init installed
                if handler is not None:
                    signal.signal(sig, handler)

    def _commands(self) -> dict[int, bytes]:
        """Command lines (NUL-separated) of this Ray's live processes, by pid."""
        out = {}
        for pid in processes_of(str(self.root)):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    out[pid] = f.read()
            except OSError:
                continue
        return out

    def _daemons(self) -> set[int]:
        """Pids of this Ray's head and its agents and monitors: processes that live as long as
        the Ray does (workers, replicas among them, come and go)."""
        return {
            pid
            for pid, command in self._commands().items()
            if command.split(b"\0")[0].endswith(HEAD) or any(d in command for d in DAEMONS)
        }

    def mark(self) -> None:
        """Note this Ray's daemons now (it has started): `lost` compares against them."""
        self._marked = self._daemons() if os.path.isdir("/proc") else set()

    def lost(self) -> bool:
        """Whether a daemon noted by `mark` has ended: a signal to xyrt's whole process group
        (or a cgroup's, as systemd sends) reached this Ray too, and nothing more can be asked of
        it. False where there is no /proc, or before `mark`."""
        return bool(self._marked) and not self._marked <= self._daemons()

    def stop(self, graceful: bool = True) -> None:
        """Shut Ray down (waited for at most `SHUTDOWN_SECONDS`; skipped when it is `lost`, or
        not ``graceful``: a stop signal, after which xyrt exits at once), then let the reaper
        end what is left and remove the root."""
        import ray

        with contextlib.suppress(ValueError):
            _STARTED.remove(self)
        if graceful and ray.is_initialized() and not self.lost():
            done = threading.Thread(target=ray.shutdown, name="xyrt-ray-shutdown", daemon=True)
            done.start()
            done.join(SHUTDOWN_SECONDS)
        if self.reaper.stdin is not None and not self.reaper.stdin.closed:
            self.reaper.stdin.close()  # the reaper ends what is left, and removes the root
        out = self.reaper.stdout
        if out is not None and not out.closed:  # wait for "reaped" (it finishes on its own)
            with contextlib.suppress(OSError, ValueError):
                if select.select([out], [], [], 3 * GRACE_SECONDS)[0]:
                    out.readline()
            out.close()


def abandon_all() -> None:
    """Hand every local Ray of this process to its reaper without asking Ray anything (for a
    process about to exit while its main thread is blocked inside Ray: `xyrt.serve.server`)."""
    for local in list(_STARTED):
        local.stop(graceful=False)


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


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, ended but not yet waited for, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def main(root: str) -> None:
    """The reaper: wait for EOF on stdin (xyrt ended, or stopped the run), reap ``root`` (never
    xyrt itself, when it is still there), say "reaped" on stdout, and once xyrt has exited
    remove ``root`` again (Ray's exit handlers in xyrt may have written to it since)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    xyrt = os.getppid()
    while sys.stdin.buffer.read(1 << 16):
        pass
    reap(root, frozenset({xyrt}))
    with contextlib.suppress(OSError):  # xyrt may be gone: nobody to tell
        os.write(sys.stdout.fileno(), b"reaped\n")
    deadline = time.monotonic() + EXIT_WAIT_SECONDS
    while os.path.isdir("/proc") and _alive(xyrt) and time.monotonic() < deadline:
        time.sleep(0.1)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1])
