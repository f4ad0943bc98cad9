"""``xyrt serve``: start (or join) Ray, run the deployment behind Serve's HTTP proxy, wait for
SIGTERM or Ctrl-C, then drain: the application is deleted gracefully (each replica finishes the
requests and streams it holds, up to ``drain_seconds``), and the Serve instance and local Ray
that this command started are stopped.

The local Ray is `xyrt.localray`'s, as for xyrt tokenize: its reaper ends every process of it
when xyrt ends, even by SIGKILL. xyrt's own handlers take SIGTERM and SIGINT from the first
moment (`Signals`): while starting, a signal stops what was started; once serving, it drains,
given up early when the signal reached the local Ray's head too (a signal to the process group,
as systemd and ``timeout`` send), so every signal at every phase ends promptly and cleanly."""

from __future__ import annotations

import errno
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from xyrt.errors import MissingDependencyError, XyrtError
from xyrt.serve.options import ServeOptions, check

if TYPE_CHECKING:
    from xyrt.localray import LocalRay

APP = "xyrt"
SERVE_HINT = "pip install 'xyrt[serve]'  (ray[serve])"

# Ray Serve kills an HTTP proxy that is not ready 5 s after it was created, and serve.start()
# then fails with ActorDiedError. On a busy 2-core machine a worker process alone can take
# longer to start, so a local Ray gets this deadline (a value in the environment wins), and
# serve.start() is retried while the controller restarts a proxy it killed.
PROXY_READY_ENV = "RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S"
PROXY_READY_SECONDS = 60
START_TRIES = 3
DRAIN_MARGIN_SECONDS = 5.0  # beyond --drain-seconds, for Serve to stop the replicas
SHUTDOWN_SECONDS = 10.0  # longest serve.shutdown() is waited for
STOP_SECONDS = 15.0  # longest a signal while starting waits for the start to unwind


def _ray_serve():
    try:
        import ray
        from ray import serve
    except ImportError as exc:
        raise MissingDependencyError(
            f"xyrt serve runs on Ray Serve, which is not installed ({exc}). Install it with: "
            f"{SERVE_HINT}"
        ) from exc
    return ray, serve


def check_port(host: str, port: int) -> None:
    """`XyrtError` now if ``host:port`` cannot be listened on (Serve's proxy would only log it)."""
    if not 0 < port < 65536:
        raise XyrtError(f"--port must be in 1..65535, got {port}")
    host_hint = (
        "expected an IP address or host name of this machine: 127.0.0.1 (this machine only), "
        "0.0.0.0 (every interface)"
    )
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:  # a name that resolves to no address
        reason = getattr(exc, "strerror", None) or exc
        raise XyrtError(f"--host {host!r} is not an address ({reason}); {host_hint}") from None
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        if exc.errno == errno.EADDRNOTAVAIL:
            raise XyrtError(
                f"--host {host!r} is not an address of this machine, so xyrt serve cannot listen "
                f"on it; {host_hint}"
            ) from exc
        raise XyrtError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another --port "
            "or stop what is using it"
        ) from exc


def connect(address: str | None, options: ServeOptions) -> tuple[bool, LocalRay | None]:
    """Join the Ray cluster at ``address``, or start a local Ray sized for the replicas (with
    the reaper of `xyrt.localray`: it ends with xyrt, even a killed one); (whether this call
    connected, the `LocalRay` it started or None)."""
    ray, _ = _ray_serve()
    if ray.is_initialized():
        return False, None
    if address is None:
        from xyrt.localray import LocalRay

        os.environ.setdefault(PROXY_READY_ENV, str(PROXY_READY_SECONDS))  # inherited by Ray
        local = LocalRay(max(1, math.ceil(options.replicas * options.cpus)), 256 << 20)
        try:
            check_gpus(options, ray.cluster_resources(), "the local Ray (this machine)")
        except BaseException:
            local.stop()
            raise
        return True, local
    try:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise XyrtError(
            f"cannot connect to the Ray cluster at {address!r}: {exc}. Start one with "
            "`ray start --head`, or leave out --address for a local Ray"
        ) from exc
    check_gpus(options, ray.cluster_resources(), f"the Ray cluster at {address!r}")
    return True, None


def check_gpus(options: ServeOptions, resources: dict[str, float], where: str) -> None:
    """`XyrtError` when the replicas ask for more GPUs than Ray has (a GPU-less local Ray is
    never told it has one): Serve would wait for them forever."""
    need, have = options.replicas * options.gpus, float(resources.get("GPU", 0))
    if need <= have:
        return
    why = (
        f"--gpus-per-replica {options.gpus_per_replica:g}"
        if options.gpus_per_replica is not None
        else "the backend's GPU (a GPU backend, --device cuda or a GPU provider)"
    )
    raise XyrtError(
        f"{why} asks for {need:g} GPU(s) for {options.replicas} replica(s), but {where} has "
        f"{have:g}; leave out --gpus-per-replica (0 for a CPU backend), or run where the GPUs are"
    )


def start_serve(host: str, port: int) -> None:
    """``serve.start`` on ``host:port``; a proxy that died or timed out while starting is waited
    for again (the controller restarts it), up to ``START_TRIES`` times."""
    ray, serve = _ray_serve()
    for attempt in range(1, START_TRIES + 1):
        try:
            serve.start(
                http_options={"host": host, "port": port}, logging_config={"log_level": "WARNING"}
            )
            return
        except (ray.exceptions.RayActorError, TimeoutError) as exc:
            if attempt == START_TRIES:
                first = next(iter(str(exc).splitlines()), "")
                raise XyrtError(
                    f"Ray Serve's HTTP proxy did not start ({START_TRIES} tries; last: "
                    f"{type(exc).__name__}: {first}); the machine may be too "
                    f"busy to start it in time: set {PROXY_READY_ENV} (seconds) higher, or free "
                    "some CPU"
                ) from exc


class Stopped(BaseException):
    """Raised in the main thread by SIGTERM or SIGINT while xyrt serve is still starting: what
    was started is stopped, and the command ends without a traceback."""


class Signals:
    """SIGTERM and SIGINT (Ctrl-C) handled by xyrt serve from its first moment to its last:
    while starting, a signal interrupts the start (`Stopped`); once serving, `wait` returns
    its name and the service drains. Further signals are noted, never fatal.

    Python runs a handler only between bytecodes of the main thread, and a start blocked in
    Ray's C++ (a cold Ray on a busy machine: a minute and more) would hold the signal that
    long. So a watcher thread reads the signal from the wakeup fd as it arrives, and if the
    start has not unwound `STOP_SECONDS` later, hands the local Ray to its reaper and exits."""

    def __init__(self, log: Callable[[str], None] = print) -> None:
        self.name: str | None = None
        self.starting = True
        self.finished = threading.Event()  # `run` has stopped what it started
        self._log = log
        self._event = threading.Event()
        self._previous: dict = {}
        self._wakeup: int | None = None  # the write end of the wakeup pipe
        self._previous_fd = -1

    def _handler(self, signum, frame) -> None:
        if self.name is None:
            self.name = signal.Signals(signum).name
            self._event.set()
            if self.starting:
                raise Stopped(self.name)

    def _unraisable(self, unraisable) -> None:
        """A stop raised where it cannot propagate (an at-fork hook of Ray's, as Ray's own SIGTERM
        handler does too) is no error to print: the signal is noted and `check` acts on it."""
        if isinstance(unraisable.exc_value, (Stopped, SystemExit)):
            return
        self._previous_hook(unraisable)

    def __enter__(self) -> Signals:
        self._previous_hook = sys.unraisablehook
        sys.unraisablehook = self._unraisable
        self._previous = {s: signal.signal(s, self._handler) for s in STOP_SIGNALS}
        read, write = os.pipe()
        os.set_blocking(write, False)
        self._wakeup = write
        self._previous_fd = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        threading.Thread(target=self._watch, args=(read,), name="xyrt-signals", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.finished.set()
        sys.unraisablehook = self._previous_hook
        signal.set_wakeup_fd(self._previous_fd)
        for s, h in self._previous.items():
            signal.signal(s, h)
        if self._wakeup is not None:
            os.close(self._wakeup)  # the watcher reads EOF and ends

    def _watch(self, read: int) -> None:
        stops = {int(s) for s in STOP_SIGNALS}
        try:
            while True:
                got = os.read(read, 64)
                if not got:
                    return
                if self.starting and stops & set(got):
                    if self.name is None:  # Ray's handler had it (ray.init installs its own)
                        self.name = signal.Signals(min(stops & set(got))).name
                        self._event.set()
                    break
            if self.finished.wait(STOP_SECONDS):
                return
            from xyrt.localray import abandon_all

            self._log(
                f"xyrt serve: still starting {STOP_SECONDS:g} s after the signal (blocked in "
                "Ray): stopping what was started"
            )
            abandon_all()
            self._log("xyrt serve: stopped")
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        finally:
            os.close(read)

    def check(self) -> None:
        """`Stopped` if a signal came while starting: its `Stopped` may have been raised inside
        Ray's code and swallowed there (a retry loop), and the start gone on regardless."""
        if self.name is not None:
            raise Stopped(self.name)

    def wait(self) -> str:
        """Block until a signal came (checked every 0.5 s: a handler runs between waits)."""
        self.starting = False
        while not self._event.wait(0.5):
            pass
        return self.name or "stop"


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def drain(local: LocalRay | None, seconds: float, log: Callable[[str], None]) -> bool:
    """Delete the application gracefully (each replica finishes what it holds, up to
    ``seconds``); given up at once when the signal reached the local Ray too (a signal to the
    process group: then nothing is left to finish). True when it did."""
    _, serve = _ray_serve()
    worker = threading.Thread(target=serve.delete, args=(APP,), name="xyrt-drain", daemon=True)
    worker.start()
    deadline = time.monotonic() + seconds + DRAIN_MARGIN_SECONDS
    while worker.is_alive() and time.monotonic() < deadline:
        if local is not None and local.lost():
            log("xyrt serve: the signal reached the local Ray too: nothing left to drain")
            return True
        worker.join(0.1)
    log("xyrt serve: drained" if not worker.is_alive() else "xyrt serve: drain time is up")
    return False


def run(
    options: ServeOptions,
    host: str = "127.0.0.1",
    port: int = 8000,
    address: str | None = None,
    log: Callable[[str], None] = print,
    until: Callable[[], str] | None = None,
) -> bool:
    """Serve ``options`` at http://host:port until ``until()`` returns (default: SIGTERM or
    Ctrl-C), then drain and stop; a signal while starting stops what was started. True when
    the local Ray was lost to the signal too, or stopped while starting (its exit handlers in
    this process would wait for it: the command exits at once, see
    `xyrt.commands.cmd_serve`)."""
    ray, serve = _ray_serve()
    from xyrt.serve.app import build

    started, local, lost = False, None, False
    with Signals(log) as signals:
        try:
            options = check(options, address)
            if address is None:
                check_port(host, port)
            try:
                started, local = connect(address, options)
            except SystemExit:  # Ray's own SIGTERM handler, in the moment ray.init installs it
                raise Stopped("SIGTERM") from None
            signals.check()
            start_serve(host, port)
            signals.check()
            serve.run(build(options), name=APP, route_prefix="/")
            signals.check()
            signals.starting = False  # serving: a signal from now on drains
            where = "a local Ray" if address is None else f"the Ray cluster at {address}"
            log(
                f"xyrt serve: {options.replicas} replica(s) of {options.model} "
                f"({options.identity.get('backend')}, {options.identity.get('precision')}) on "
                f"{where}, serving at http://{host}:{port} (Ctrl-C or SIGTERM stops)"
            )
            name = until() if until is not None else signals.wait()
            signals.starting = False
            log(
                f"xyrt serve: {name}: draining requests in flight (up to "
                f"{options.drain_seconds:g} s)"
            )
            lost = drain(local, options.drain_seconds, log)
        except Stopped as stop:
            signals.starting = False
            log(f"xyrt serve: {stop}: stopping while starting")
            # what was started is stopped below (or was, by LocalRay itself); Ray's exit handlers
            # would wait on a half-started Ray (over 60 s on a loaded machine): exit at once
            lost = address is None
        finally:
            signals.starting = False
            if local is not None:
                lost = lost or local.lost()
                if not lost:
                    _bounded(serve.shutdown, SHUTDOWN_SECONDS)
                local.stop(graceful=not lost)
            elif started:
                ray.shutdown()  # leave the cluster's Serve running for its other applications
    log("xyrt serve: stopped" + (" (local Ray shut down)" if local is not None else ""))
    return lost


def _bounded(fn: Callable[[], object], seconds: float) -> None:
    """``fn()`` in a thread, waited for at most ``seconds`` (Ray calls can hang on a dying Ray)."""
    worker = threading.Thread(target=fn, name="xyrt-stop", daemon=True)
    worker.start()
    worker.join(seconds)
