"""``xyrt serve``'s lifecycle (issue 29, class 4): its local Ray (`xyrt.localray`, shared with
xyrt tokenize) ends with it however it ends: SIGKILL, SIGTERM to its whole process group (what
systemd and ``timeout`` send) once serving, and SIGTERM while it is still starting. Each run is
a server of one replica of the tiny model; afterwards no process of its Ray is left."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from serving import Server

from helpers import exported

pytest.importorskip("ray.serve", reason="xyrt[serve] (ray[serve]) is not installed")

from xyrt.localray import processes_of  # noqa: E402

GONE_SECONDS = 30  # the reaper's SIGTERM, then SIGKILL after 2 s; polled


def _serve(session: bool = False) -> Server:
    args = ["serve", "--model", str(exported("tiny_16k")), "--threads", "1"]
    return Server([*args, "--drain-seconds", "5"], session=session)


def _gone(root: str) -> None:
    deadline = time.monotonic() + GONE_SECONDS
    while processes_of(root) or Path(root).exists():
        left = {pid: Path(f"/proc/{pid}/cmdline").read_bytes()[:40] for pid in processes_of(root)}
        assert time.monotonic() < deadline, f"left running after {GONE_SECONDS} s: {left}"
        time.sleep(0.1)


def test_sigkill_leaves_no_ray_process():
    server = _serve()
    try:
        root = server.ray_root()
        server.wait_serving()
        assert any(b"raylet" in Path(f"/proc/{p}/cmdline").read_bytes() for p in processes_of(root))
        os.kill(server.proc.pid, signal.SIGKILL)
        assert server.proc.wait(30) == -signal.SIGKILL
        _gone(root)
    finally:
        server.stop()


def test_sigterm_to_the_process_group_ends_promptly_and_cleanly():
    server = _serve(session=True)
    try:
        root = server.ray_root()
        server.wait_serving()
        t0 = time.monotonic()
        os.killpg(server.proc.pid, signal.SIGTERM)
        assert server.proc.wait(30) == 0  # within the drain time (5 s) and the stop margins
        took = time.monotonic() - t0
        server.wait_for(r"xyrt serve: stopped", 5)
        assert not any("Traceback" in line for line in server.lines), server.lines[-20:]
        _gone(root)
        assert took < 25, took
    finally:
        if server.proc.poll() is None:
            os.killpg(server.proc.pid, signal.SIGKILL)
        server.stop()


def test_sigterm_while_starting_ends_cleanly():
    server = _serve()
    try:
        root = server.ray_root()  # the local Ray is starting
        deadline = time.monotonic() + 60
        while not processes_of(root) and time.monotonic() < deadline:
            time.sleep(0.05)
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(60) == 0  # not Ray's abort (-6), nor its exit status 1
        server.wait_for(r"xyrt serve: stopped", 5)
        assert not any("serving at" in line for line in server.lines)
        assert not any("Traceback" in line for line in server.lines), server.lines[-20:]
        _gone(root)
    finally:
        server.stop()


def test_gpus_per_replica_on_a_host_without_gpus_is_refused():
    """Issue 29, class 1: the local Ray is never told it has a GPU it does not have; asking for
    one is an error naming the option (Serve would wait for it forever)."""
    import shutil

    if shutil.which("nvidia-smi"):
        pytest.skip("this host has NVIDIA GPUs: the request could be met")
    args = ["serve", "--model", str(exported("tiny_16k")), "--gpus-per-replica", "1"]
    server = Server(args)
    try:
        root = server.ray_root()
        line = server.wait_for("error", 120)
        assert server.proc.wait(60) == 1
        assert "--gpus-per-replica 1 asks for 1 GPU(s) for 1 replica(s), but the local Ray" in line
        assert "has 0" in line
        _gone(root)
    finally:
        server.stop()
