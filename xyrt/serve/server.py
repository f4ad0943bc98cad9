"""``xyrt serve``: start (or join) Ray, run the deployment behind Serve's HTTP proxy, wait for
SIGTERM or Ctrl-C, then drain: the application is deleted gracefully (each replica finishes the
requests and streams it holds, up to ``drain_seconds``), and the Serve instance and local Ray
that this command started are stopped."""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import threading
from collections.abc import Callable

from xyrt.errors import MissingDependencyError, XyrtError
from xyrt.serve.options import ServeOptions, check

APP = "xyrt"
SERVE_HINT = "pip install 'xyrt[serve]'  (ray[serve])"

# Ray Serve kills an HTTP proxy that is not ready 5 s after it was created, and serve.start()
# then fails with ActorDiedError. On a busy 2-core machine a worker process alone can take
# longer to start, so a local Ray gets this deadline (a value in the environment wins), and
# serve.start() is retried while the controller restarts a proxy it killed.
PROXY_READY_ENV = "RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S"
PROXY_READY_SECONDS = 60
START_TRIES = 3


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
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise XyrtError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another --port "
            "or stop what is using it"
        ) from exc


def connect(address: str | None, options: ServeOptions) -> bool:
    """Join the Ray cluster at ``address``, or start a local Ray sized for the replicas; True
    when this call started Ray."""
    ray, _ = _ray_serve()
    if ray.is_initialized():
        return False
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
    if address is None:
        gpus = math.ceil(options.replicas * options.gpus)
        os.environ.setdefault(PROXY_READY_ENV, str(PROXY_READY_SECONDS))  # inherited by Ray
        ray.init(
            num_cpus=max(1, math.ceil(options.replicas * options.cpus)),
            num_gpus=gpus or None,
            include_dashboard=False,
            object_store_memory=256 << 20,
            **quiet,
        )
        return True
    try:
        ray.init(address=address, **quiet)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise XyrtError(
            f"cannot connect to the Ray cluster at {address!r}: {exc}. Start one with "
            "`ray start --head`, or leave out --address for a local Ray"
        ) from exc
    return True


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


def wait_for_signal() -> str:
    """Block until SIGTERM or SIGINT (Ctrl-C); returns its name."""
    got: list[str] = []
    done = threading.Event()

    def handler(signum, frame) -> None:
        got.append(signal.Signals(signum).name)
        done.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not done.wait(0.5):
            pass
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    return got[0]


def run(
    options: ServeOptions,
    host: str = "127.0.0.1",
    port: int = 8000,
    address: str | None = None,
    log: Callable[[str], None] = print,
    until: Callable[[], str] = wait_for_signal,
) -> None:
    """Serve ``options`` at http://host:port until ``until()`` returns, then drain and stop."""
    options = check(options, address)
    if address is None:
        check_port(host, port)
    ray, serve = _ray_serve()
    from xyrt.serve.app import build

    started = connect(address, options)
    local = started and address is None
    try:
        start_serve(host, port)
        serve.run(build(options), name=APP, route_prefix="/")
        where = "a local Ray" if address is None else f"the Ray cluster at {address}"
        log(
            f"xyrt serve: {options.replicas} replica(s) of {options.model} "
            f"({options.identity.get('backend')}, {options.identity.get('precision')}) on "
            f"{where}, serving at http://{host}:{port} (Ctrl-C or SIGTERM stops)"
        )
        name = until()
        log(f"xyrt serve: {name}: draining requests in flight (up to {options.drain_seconds:g} s)")
        serve.delete(APP)
        log("xyrt serve: drained")
    finally:
        if local:
            serve.shutdown()
            ray.shutdown()
        elif started:
            ray.shutdown()  # leave the cluster's Serve running for its other applications
    log("xyrt serve: stopped" + (" (local Ray shut down)" if local else ""))
