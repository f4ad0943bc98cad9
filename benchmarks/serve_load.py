"""Load test of ``xyrt serve`` on loopback: N concurrent HTTP clients and M concurrent real-time
WebSocket streams, bounded in requests and in time.

    python benchmarks/serve_load.py --model DIR [--backend openvino --precision int8]
        [--clients 1,4,16,64] [--streams 1,8,32] [--hop 0.32 --context 5 --lookahead 0.32]
        [--json out.json]
    python benchmarks/serve_load.py --quick          # smoke test: the tiny test model, seconds
    python benchmarks/serve_load.py --model DIR --direct 4 [--device cuda]   # no Ray, no HTTP

It starts ``xyrt serve`` (its own local Ray) unless ``--server URL`` names a running one, then:
- HTTP: for each N, N threads each send up to ``--requests`` encode requests of a
  ``--seconds`` clip (raw float32 PCM), one after another, until ``--case-seconds`` pass.
  Throughput = audio seconds encoded per wall second (x real time) and requests/s; latency
  p50/p99 per request; "batch" is the mean number of requests that shared a model run. The
  16-client throughput is also given as a multiple of the 1-client one.
- Streams: for each M, M threads each send ``--stream-seconds`` of speech in 80 ms chunks at
  real-time pace over ``/v1/stream/encode``. A frame's latency runs from sending the chunk that
  holds its last sample to receiving the frame (like ``xyrt stream``: it includes the
  lookahead). M streams are real time when the p99 frame latency stays under
  ``--max-latency`` seconds; the largest such M is reported.
Codes are checked against the first response for the same clip (a wrong code is an error).

``--direct N[,N...]`` measures what batching can give on this device without Ray or HTTP (for a
machine Ray cannot be carried to): the replica's model call (`xyrt.runtime.load` with the same
options, `ChunkedCodec.encode`/``decode`` on a list) for N requests of a ``--seconds`` clip as one
batch against N one after another, interleaved ``--runs`` times; the ratio is the most a batch of
N can lift throughput over one client.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from xyrt.client import Client, ServerError
from xyrt.data import speech_clip
from xyrt.errors import XyrtError

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "tests" / "fixtures" / "tiny_16k" / "model.ckpt"


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p99_ms": None}
    return {
        "p50_ms": round(float(np.percentile(values, 50)) * 1e3, 1),
        "p99_ms": round(float(np.percentile(values, 99)) * 1e3, 1),
    }


def start_server(args: argparse.Namespace, model: str) -> tuple[subprocess.Popen, str]:
    """``xyrt serve`` in a subprocess; returns it and its URL once it says it is serving."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "xyrt.cli", "serve", "--model", model, "--port", str(port)]
    streams = max(args.streams, default=0) + 1
    cmd += ["--replicas", str(args.replicas), "--max-streams", str(streams)]
    cmd += ["--max-delay-ms", str(args.max_delay_ms)]
    for option in ("backend", "precision", "device", "threads", "max_batch"):
        if getattr(args, option) is not None:
            cmd += ["--" + option.replace("_", "-"), str(getattr(args, option))]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    for line in proc.stderr:
        print(line.rstrip(), file=sys.stderr)
        if m := re.search(r"serving at (http://\S+)", line):
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return proc, m.group(1)
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise SystemExit("xyrt serve did not start (see its output above)")


def http_case(url: str, clients: int, args: argparse.Namespace) -> dict:
    clip = speech_clip(args.seconds)
    want = Client(url).encode(clip)
    latencies: list[float] = []
    batches: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + args.case_seconds
    body = clip.astype("<f4").tobytes()

    def worker(_: int) -> None:
        import urllib.request

        for _ in range(args.requests):
            if time.monotonic() > deadline:
                return
            req = urllib.request.Request(f"{url}/v1/encode?rate=16000", body, method="POST")
            t0 = time.perf_counter()
            try:
                with urllib.request.urlopen(req, timeout=120) as resp:
                    out = json.loads(resp.read())
            except Exception as exc:  # noqa: BLE001 - counted, reported
                with lock:
                    errors.append(repr(exc)[:200])
                continue
            dt = time.perf_counter() - t0
            ok = np.array_equal(np.asarray(out["codes"]), want)
            with lock:
                latencies.append(dt)
                batches.append(out["batch"])
                if not ok:
                    errors.append("wrong codes")

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, range(clients)))
    wall = time.perf_counter() - t0
    done = len(latencies)
    return {
        "clients": clients,
        "requests": done,
        "errors": len(errors),
        "first_errors": errors[:3],
        "wall_s": round(wall, 2),
        "x_realtime": round(done * args.seconds / wall, 2),
        "requests_per_s": round(done / wall, 2),
        **percentiles(latencies),
        "mean_batch": round(float(np.mean(batches)), 2) if batches else None,
    }


def direct_case(codec, n: int, args: argparse.Namespace) -> dict:
    """N requests as one batched call vs N single calls, interleaved (min over runs)."""
    clip = speech_clip(args.seconds)
    codes = codec.encode(clip)
    result: dict = {"requests": n}
    for name, item, call in (("encode", clip, codec.encode), ("decode", codes, codec.decode)):
        call(item), call([item] * n)  # warm-up (graph compilation, allocations)
        one, batched = [], []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            for _ in range(n):
                call(item)
            one.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            call([item] * n)
            batched.append(time.perf_counter() - t0)
        result[name] = {
            "singles_s": round(min(one), 6),
            "batched_s": round(min(batched), 6),
            "batch_gain": round(min(one) / min(batched), 2),
        }
    return result


def direct(args: argparse.Namespace, model: str) -> dict:
    import xyrt.runtime

    options = {k: getattr(args, k) for k in ("backend", "precision", "device", "threads")}
    codec = xyrt.runtime.load(model, **{k: v for k, v in options.items() if v is not None})
    cases = []
    for n in args.direct:
        cases.append(case := direct_case(codec, n, args))
        print(json.dumps(case), file=sys.stderr)
    from xyrt.runtime.backends.base import limits_of

    limits = limits_of(codec.backend)
    return {"backend": codec.backend.name, "device": limits.device, "cases": cases}


def stream_case(url: str, streams: int, args: argparse.Namespace) -> dict:
    audio = speech_clip(args.stream_seconds)
    chunk = 1280  # 80 ms
    latencies: list[float] = []
    lags: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        sent: list[tuple[int, float]] = []  # (samples sent, when)

        def chunks():
            start = time.monotonic() + 0.01 * k  # staggered starts
            for i in range(0, len(audio), chunk):
                due = start + i / 16000
                if due > time.monotonic():
                    time.sleep(due - time.monotonic())  # real-time pace
                sent.append((i + chunk, time.monotonic()))
                yield audio[i : i + chunk]

        mine: list[float] = []
        try:
            settings = {"hop": args.hop, "context": args.context, "lookahead": args.lookahead}
            for frame in Client(url, timeout=120).stream_encode(chunks(), 16000, **settings):
                now = time.monotonic()
                end = (frame.index + 1) * chunk
                at = next(t for n, t in sent if n >= end)
                mine.append(now - at)
        except (XyrtError, ServerError, StopIteration) as exc:
            with lock:
                errors.append(repr(exc)[:200])
            return
        with lock:
            latencies.extend(mine)
            lags.append(time.monotonic() - sent[-1][1])

    with ThreadPoolExecutor(streams) as pool:
        list(pool.map(worker, range(streams)))
    p = percentiles(latencies)
    realtime = not errors and p["p99_ms"] is not None and p["p99_ms"] <= args.max_latency * 1e3
    return {
        "streams": streams,
        "frames": len(latencies),
        "errors": len(errors),
        "first_errors": errors[:3],
        **p,
        "max_end_lag_s": round(max(lags), 3) if lags else None,
        "realtime": realtime,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="model directory or checkpoint (--quick: the tiny model)")
    ap.add_argument("--server", help="a running xyrt serve (default: start one)")
    ap.add_argument("--backend")
    ap.add_argument("--precision")
    ap.add_argument("--device")
    ap.add_argument("--threads", type=int, help="CPU threads per replica")
    ap.add_argument("--replicas", type=int, default=1)
    ap.add_argument("--max-batch", type=int)
    ap.add_argument("--max-delay-ms", type=float, default=10.0)
    ap.add_argument("--clients", default="1,4,16,64")
    ap.add_argument("--streams", default="1,8,32")
    ap.add_argument("--seconds", type=float, default=5.0, help="clip of each HTTP request")
    ap.add_argument("--requests", type=int, default=16, help="most requests per HTTP client")
    ap.add_argument("--case-seconds", type=float, default=60.0, help="time bound of each case")
    ap.add_argument("--stream-seconds", type=float, default=20.0, help="audio of each stream")
    ap.add_argument("--max-latency", type=float, default=1.0, help="p99 s for real time")
    ap.add_argument("--hop", type=float, default=0.32, help="stream step, s (xyrt stream's)")
    ap.add_argument("--context", type=float, default=5.0, help="stream context, s")
    ap.add_argument("--lookahead", type=float, default=0.32, help="stream lookahead, s")
    ap.add_argument("--direct", help="batch sizes N: batched model call vs N single ones, no Ray")
    ap.add_argument("--runs", type=int, default=3, help="--direct: interleaved repetitions")
    ap.add_argument("--quick", action="store_true", help="smoke test on the tiny test model")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()
    if args.quick:
        args.clients, args.streams, args.seconds, args.requests = "1,4", "1,2", 1.0, 4
        args.case_seconds, args.stream_seconds = 20.0, 2.0
    args.clients = [int(x) for x in args.clients.split(",") if x]
    args.streams = [int(x) for x in args.streams.split(",") if x]
    if args.direct is not None:
        args.direct = [int(x) for x in args.direct.split(",") if x]
        if args.model is None:
            raise SystemExit("--direct needs --model")
        report = {"config": {k: v for k, v in vars(args).items() if v is not None and k != "json"}}
        report["direct"] = direct(args, args.model)
        return write_report(report, args.json)
    proc = None
    with tempfile.TemporaryDirectory() as tmp:
        url = args.server
        model = args.model
        if url is None:
            if model is None:
                if not args.quick:
                    raise SystemExit("--model is needed (or --quick, or --server URL)")
                from xyrt.export.onnx_export import export_onnx

                model = str(export_onnx(TINY, Path(tmp) / "tiny"))
            proc, url = start_server(args, model)
        try:
            info = Client(url).info()
            report = {
                "config": {
                    k: v for k, v in vars(args).items() if k not in ("json",) and v is not None
                },
                "server": {k: info[k] for k in ("model", "backend", "precision", "device")}
                | {"limits": info["limits"], "replicas": info["replicas"]},
                "http": [],
                "streams": [],
            }
            for n in args.clients:
                report["http"].append(case := http_case(url, n, args))
                print(json.dumps(case), file=sys.stderr)
            by_n = {c["clients"]: c["x_realtime"] for c in report["http"]}
            if 1 in by_n and 16 in by_n and by_n[1]:
                report["http_16_vs_1"] = round(by_n[16] / by_n[1], 2)
            for m in args.streams:
                report["streams"].append(case := stream_case(url, m, args))
                print(json.dumps(case), file=sys.stderr)
            live = [c["streams"] for c in report["streams"] if c["realtime"]]
            report["largest_realtime_streams"] = max(live) if live else 0
        finally:
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(120)
    write_report(report, args.json)


def write_report(report: dict, path: Path | None) -> None:
    text = json.dumps(report, indent=2, default=str)
    print(text)
    if path:
        path.write_text(text + "\n")


if __name__ == "__main__":
    main()
