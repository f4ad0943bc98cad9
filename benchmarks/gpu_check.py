"""The prepared GPU check: every GPU number of the torch backend, in one run of a few minutes.

    python benchmarks/gpu_check.py --out DIR [--checkpoint CKPT] [--budget 400]

Without --checkpoint it builds the full-size 16 kHz model with SEEDED SYNTHETIC WEIGHTS
(`xyrt synth`, seed 0): timings are real, audio is not speech, and codes are far more fragile
under precision changes than a trained model's. Sections run in priority order; each is
timed, any failure is recorded (not fatal), and sections that would overrun ``--budget``
seconds are skipped with that reason. DIR/gpu_check.json is rewritten after every section.

Sections: exactness (fp32 vs the CPU reference, near-tie rule; load() and XY_Tokenizer.cuda();
PyTorch's default TF32 for contrast), latency (batch-1 10 s encode/decode, eager vs graphs),
streaming steps, corpus throughput (bf16/fp32/fp16 encode of 10 s clips, bf16 decode), the
published cost on the same GPU, one 60 min file, the tokenize stages (read on the CPU cores,
the encode actor vs the bare codec), `xyrt bench`, torch.compile.

`--device cpu --checkpoint tests/fixtures/tiny_16k/model.ckpt --quick` dry-runs the script on a
CPU with the tiny model (what CI-class machines can check).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import provenance

SR = 16000


class Check:
    """Runs sections under a time budget and keeps the JSON report current."""

    def __init__(
        self, out: Path, budget: float, only: str | None = None, name: str = "gpu_check"
    ) -> None:
        self.out, self.budget, self.t0 = out, budget, time.perf_counter()
        self.name = name
        self.only = None if only is None else {"peaks", "model", *only.split(",")}
        self.report: dict = {"schema": "xyrt-gpu-check/1", "sections": {}}
        out.mkdir(parents=True, exist_ok=True)
        self.log_file = open(out / f"{name}.log", "a")  # noqa: SIM115 - closed at exit

    def log(self, msg: str) -> None:
        line = f"[{time.perf_counter() - self.t0:7.1f}s] {msg}"
        print(line, flush=True)
        self.log_file.write(line + "\n")
        self.log_file.flush()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def section(self, name: str, fn: Callable[[], dict], need: float) -> None:
        if self.only is not None and name not in self.only:
            return
        if self.elapsed() + need > self.budget:
            why = f"skipped: {self.elapsed():.0f} s used, needs ~{need:.0f} of {self.budget:.0f}"
            self.report["sections"][name] = {"status": why}
            self.log(f"{name}: {why}")
            return
        self.log(f"{name} ...")
        t = time.perf_counter()
        try:
            result = {"status": "ok", **fn()}
        except Exception as exc:  # noqa: BLE001 - a failed section is a result, not the end
            result = {"status": f"failed: {type(exc).__name__}: {exc}"[:500]}
            self.log(traceback.format_exc())
        result["seconds"] = round(time.perf_counter() - t, 2)
        self.report["sections"][name] = result
        self.log(f"{name}: {json.dumps(result)[:1500]}")
        self.save()

    def save(self) -> None:
        path = self.out / f"{self.name}.json"
        path.write_text(json.dumps(self.report, indent=1, default=float) + "\n")


def pct(values: list[float]) -> dict:
    a = np.asarray(values)
    return {k: round(float(np.percentile(a, q)), 3) for k, q in (("p50", 50), ("p90", 90))} | {
        "min": round(float(a.min()), 3),
        "runs": len(values),
    }


REPEATS = 3  # passes per throughput figure: the median is reported, with the spread


def driver_version() -> str | None:
    """The NVIDIA driver's version (nvidia-smi), None where it cannot be read."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.splitlines()[0].strip() if out.returncode == 0 and out.stdout else None


def passes(fn: Callable[[], object], amount: float, repeats: int = REPEATS) -> dict:
    """``amount`` (seconds of audio) per second of ``fn``: the median of ``repeats`` passes, with
    the slowest and fastest (one pass varied by 10% between runs on the same GPU)."""
    seconds = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - t)
    rates = sorted(amount / s for s in seconds)
    median = float(np.median(rates))
    return {
        "x_realtime": round(median, 1),
        "x_realtime_min": round(rates[0], 1),
        "x_realtime_max": round(rates[-1], 1),
        "spread_pct": round(100 * (rates[-1] - rates[0]) / median, 1),
        "seconds": round(float(np.median(seconds)), 3),
        "passes": repeats,
    }


def timed_ms(fn: Callable[[], object], runs: int, warmup: int = 3) -> dict:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
    return pct(out)


def clips_10s(n: int, seconds: float = 10.0) -> list[np.ndarray]:
    """``n`` distinct clips of speech: windows of the bundled speech at different offsets."""
    from xyrt.data import speech_clip

    long = speech_clip(120.0)
    size = int(seconds * SR)
    hop = max(1, (len(long) - size) // max(1, n))
    return [np.ascontiguousarray(long[(i * hop) % (len(long) - size) :][:size]) for i in range(n)]


def encode_steps(codec, audio: np.ndarray, hop: float, context: float, lookahead: float) -> list:
    """Milliseconds of each encode-stream step, audio arriving one hop at a time (a mic)."""
    s = codec.create_stream(hop=hop, context=context, lookahead=lookahead)
    chunk, times = int(hop * SR), []
    for start in range(0, len(audio), chunk):
        s.accept_waveform(SR, audio[start : start + chunk])
        while codec.is_ready(s):
            t = time.perf_counter()
            codec.encode_streams([s])
            times.append((time.perf_counter() - t) * 1e3)
    return times


def decode_steps(codec, codes: np.ndarray, hop: float, context: float, lookahead: float) -> list:
    """Milliseconds of each decode-stream step, codes arriving one hop at a time (a TTS LM)."""
    d = codec.create_decode_stream(hop=hop, context=context, lookahead=lookahead)
    step, times = round(hop / 0.08), []
    for start in range(0, codes.shape[1], step):
        d.accept_codes(codes[:, start : start + step])
        while codec.is_ready(d):
            t = time.perf_counter()
            codec.decode_streams([d])
            times.append((time.perf_counter() - t) * 1e3)
    return times


def common_args(ap: argparse.ArgumentParser, budget: float) -> None:
    """Options both GPU scripts take."""
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--checkpoint", type=Path)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--budget", type=float, default=budget)
    ap.add_argument("--quick", action="store_true", help="small counts (dry run on a CPU)")
    ap.add_argument("--sections", help="comma-separated subset of the sections (default: all)")


def agreement(ref: list[np.ndarray], got: list[np.ndarray]) -> dict:
    r, g = np.concatenate(ref, axis=1), np.concatenate(got, axis=1)
    same = r == g
    return {
        "stage0_identical": round(float(same[0].mean()), 4),
        "all_stages_identical": round(float(same.mean()), 4),
        "frames_all_identical": round(float(same.all(axis=0).mean()), 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_args(ap, 400.0)
    args = ap.parse_args()
    args.out = args.out.resolve()
    if args.checkpoint is not None:
        args.checkpoint = args.checkpoint.resolve()

    import torch

    import xyrt.runtime
    from xyrt.runtime.compare import compare_codes, max_error_ratio

    ck = Check(args.out, args.budget, args.sections)
    dev = args.device
    cuda = dev.startswith("cuda")
    q = args.quick
    index = torch.device(dev).index if cuda else None
    index = torch.cuda.current_device() if cuda and index is None else index
    ck.report["run"] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": provenance.commit(),
        "device": dev,
        "gpu": torch.cuda.get_device_name(index) if cuda else None,
        "capability": ".".join(map(str, torch.cuda.get_device_capability(index))) if cuda else None,
        "gpus": torch.cuda.device_count() if cuda else 0,
        "driver": driver_version() if cuda else None,
        "repeats": REPEATS,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "weights": "given checkpoint" if args.checkpoint else "SYNTHETIC (xyrt synth seed 0)",
    }
    ck.save()
    state: dict = {}

    def peaks() -> dict:
        from xyrt.bench.peak import gpu_gemm_peak

        return gpu_gemm_peak(size=4096 if q else 8192) if cuda else {}

    def model() -> dict:
        ckpt = args.checkpoint
        if ckpt is None:
            from xyrt.export.synth import synth_checkpoint

            ckpt = Path(tempfile.mkdtemp(prefix="xyrt-gpu-")) / "synth" / "model.ckpt"
            synth_checkpoint(ckpt, seed=0)
        state["ckpt"] = ckpt
        from xyrt.config import XYConfig  # noqa: F401

        return {"checkpoint": str(ckpt), "bytes": ckpt.stat().st_size}

    ck.section("peaks", peaks, 30)
    ck.section("model", model, 90)
    if "ckpt" not in state:
        ck.log("no model: stopping")
        return
    ckpt = state["ckpt"]

    def exactness() -> dict:
        from xyrt.compat import XY_Tokenizer
        from xyrt.data import heldout_speech, speech_clip
        from xyrt.runtime.backends.pytorch.codec import XYCodec

        speech = speech_clip(60.0)
        clips = {
            "10s_a": speech[: 10 * SR],
            "10s_b": speech[17 * SR : 27 * SR],
            "30s": speech[20 * SR : 50 * SR],
            "45s_two_windows": speech[: 45 * SR],
            **{k: v for k, v in list(heldout_speech().items())[:2]},
        }
        if q:
            clips = {k: v[: 3 * SR] for k, v in list(clips.items())[:2]}
        cpu = XYCodec.from_checkpoint(ckpt)  # float32 reference on the host CPU
        refs = {k: cpu.encode_reference(v) for k, v in clips.items()}
        ref_audio = {k: cpu.decode(r.codes) for k, r in refs.items()}
        del cpu
        out: dict = {"clips": {k: round(len(v) / SR, 2) for k, v in clips.items()}}

        def judge(codec, label: str, repeats: int = 3) -> dict:
            res = {"mismatch_frames": 0, "tie_frames": 0, "frames": 0, "stage_min": 1.0}
            for _ in range(repeats):  # eager, capture, replay
                for k, clip in clips.items():
                    a = compare_codes(refs[k], codec.encode(clip))
                    res["mismatch_frames"] += len(a.mismatches)
                    res["tie_frames"] += len(a.ties)
                    res["frames"] += a.frames
                    res["stage_min"] = min(res["stage_min"], min(a.per_stage))
            errs = [max_error_ratio(ref_audio[k], codec.decode(refs[k].codes)) for k in clips]
            errs += [max_error_ratio(ref_audio[k], codec.decode(refs[k].codes)) for k in clips]
            res["audio_max_error_x_peak"] = float(max(errs))
            ck.log(f"  {label}: {res}")
            return res

        codec = xyrt.runtime.load(ckpt, device=dev, precision="fp32")
        out["load_fp32"] = judge(codec, "load fp32")
        out["load_fp32"]["graphs"] = {k: v.__dict__ for k, v in codec.backend.graph_stats().items()}
        codec.close()
        spt = XY_Tokenizer.load_from_checkpoint(None, ckpt)
        spt = spt.cuda() if cuda else spt

        class _Compat:  # XY_Tokenizer's encode/decode seen as a codec
            def encode(self, clip):
                t = torch.from_numpy(clip).to(dev)
                return spt.encode([t])["codes_list"][0].cpu().numpy()

            def decode(self, codes):
                t = torch.from_numpy(codes).to(dev)
                return spt.decode([t])["syn_wav_list"][0].cpu().numpy()

        out["compat_cuda_fp32"] = judge(_Compat(), "XY_Tokenizer(...).cuda()", repeats=2)
        spt.codec.close()
        from xyrt.runtime.backends.pytorch.backend import TorchBackend
        from xyrt.runtime.codec import ChunkedCodec
        from xyrt.runtime.network.checkpoint import load_model

        if cuda:  # what PyTorch's defaults give (TF32 convolutions): for contrast
            tf32 = ChunkedCodec(
                TorchBackend(load_model(ckpt), dev, cuda_graphs=False, ieee=False), batch_size=4
            )
            out["pytorch_default_tf32"] = judge(tf32, "PyTorch default flags", repeats=1)
            tf32.close()
        return out

    ck.section("exactness", exactness, 120)

    codecs: dict = {}

    def get(precision: str, **kw):
        key = (precision, tuple(sorted(kw.items())))
        if key not in codecs:
            codecs[key] = xyrt.runtime.load(ckpt, device=dev, precision=precision, **kw)
        return codecs[key]

    def latency() -> dict:
        clip = clips_10s(1)[0]
        out = {}
        runs = 5 if q else 30
        for precision in ("fp32", "bf16") if cuda else ("fp32",):
            for graphs in (True, False):
                codec = get(precision, cuda_graphs=graphs)
                codes = codec.encode(clip)
                label = f"{precision}_{'graphs' if graphs else 'eager'}"
                out[f"encode_10s_{label}_ms"] = timed_ms(lambda c=codec: c.encode(clip), runs)
                out[f"decode_10s_{label}_ms"] = timed_ms(lambda c=codec, k=codes: c.decode(k), runs)
        return out

    ck.section("latency_batch1", latency, 60)

    def streaming() -> dict:
        out = {}
        long = clips_10s(1, 20.0)[0]
        for precision in ("fp32", "bf16") if cuda else ("fp32",):
            codec = get(precision)
            for hop in (0.16, 0.32):
                steps = encode_steps(codec, long, hop, 2.0, 0.32)
                out[f"encode_step_{precision}_hop{hop}_ctx2_la0.32_ms"] = pct(
                    steps[len(steps) // 3 :]
                )
            codes = codec.encode(long)
            for hop in (0.16, 0.32):
                steps = decode_steps(codec, codes, hop, 2.0, 0.16)
                out[f"decode_step_{precision}_hop{hop}_ctx2_la0.16_ms"] = pct(
                    steps[len(steps) // 3 :]
                )
            # 32 encode streams stepped together (one batched window per step)
            streams = [
                codec.create_stream(hop=0.32, context=2.0, lookahead=0.32) for _ in range(32)
            ]
            for s in streams:
                s.accept_waveform(SR, long)
            times = []
            for _ in range(20):
                t = time.perf_counter()
                n = codec.encode_streams(streams)
                times.append((time.perf_counter() - t) * 1e3)
                if n == 0:
                    break
            out[f"encode_step_32_streams_{precision}_ms"] = pct(times[5:] or times)
        return out

    ck.section("streaming", streaming, 60)

    def throughput() -> dict:
        n = 16 if q else 512
        clips = clips_10s(n)
        audio_s = n * 10.0
        out: dict = {"clips": n, "clip_seconds": 10.0}
        codes = {}
        plan = [("bf16", 32), ("bf16", 64), ("bf16", 128), ("fp32", 32), ("fp16", 64)]
        if not cuda:
            plan = [("fp32", 4)]
        for precision, batch in plan:
            codec = get(precision)
            codec.batch_size = batch
            codec.encode(clips[: 2 * batch])  # shapes seen, graphs captured
            codec.encode(clips[: 2 * batch])
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            key = (precision, batch)

            def run(c=codec, k=key) -> None:
                codes[k] = c.encode(clips)

            row = passes(run, audio_s)
            if cuda:
                row["gpu_peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
                row["memory"] = codec.backend.memory()
            out[f"encode_{precision}_batch{batch}"] = row
            ck.log(f"  encode {precision} batch {batch}: {row}")
        if cuda:
            codec = get("bf16", cuda_graphs=False)
            codec.batch_size = 64
            codec.encode(clips[:64])
            out["encode_bf16_batch64_eager"] = passes(lambda: codec.encode(clips), audio_s)
            ref = codes[("fp32", 32)]
            for precision, batch in (("bf16", 64), ("fp16", 64)):
                out[f"agreement_{precision}_vs_fp32"] = agreement(ref, codes[(precision, batch)])
        state["codes"] = codes[plan[0]]
        return out

    ck.section("throughput_encode", throughput, 120)

    def decode_throughput() -> dict:
        codes = state.get("codes") or get("fp32").encode(clips_10s(8))
        out = {"items": len(codes), "codes_per_item": int(codes[0].shape[1])}
        audio_s = len(codes) * codes[0].shape[1] * 0.08
        for precision, batch in (
            (("bf16", 32), ("bf16", 64), ("bf16", 128), ("fp32", 32)) if cuda else (("fp32", 4),)
        ):
            codec = get(precision)
            codec.batch_size = batch
            codec.decode(codes[: 2 * batch])
            codec.decode(codes[: 2 * batch])
            row = passes(lambda c=codec: c.decode(codes), audio_s)
            out[f"decode_{precision}_batch{batch}"] = row
        return out

    ck.section("throughput_decode", decode_throughput, 60)

    def published() -> dict:
        from xyrt.runtime.backends.pytorch.backend import TorchBackend
        from xyrt.runtime.codec import ChunkedCodec
        from xyrt.runtime.network.checkpoint import load_model

        clips = clips_10s(4 if q else 32)
        backend = TorchBackend(load_model(ckpt), dev, cuda_graphs=False, ieee=False)
        out = {"what": "windows padded to 30 s, eager, PyTorch default flags (TF32 convolutions)"}
        for batch in (1, 8):
            codec = ChunkedCodec(backend, batch_size=batch, pad_to_30s=True)
            codec.encode(clips[:batch])
            t = time.perf_counter()
            codec.encode(clips)
            dt = time.perf_counter() - t
            out[f"encode_batch{batch}"] = {
                "x_realtime": round(len(clips) * 10 / dt, 1),
                "ms_per_clip": round(dt / len(clips) * 1e3, 2),
            }
        backend.close()
        return out

    ck.section("published_cost", published, 40)

    def long_file() -> dict:
        from xyrt.data import speech_clip

        minutes = 2 if q else 60
        audio = speech_clip(minutes * 60.0)
        codec = get("bf16")
        out = {"minutes": minutes}
        for batch in (32, 64):
            codec.batch_size = batch
            codec.encode(audio[: 120 * SR])
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            t = time.perf_counter()
            codes = codec.encode(audio)
            dt = time.perf_counter() - t
            row = {"x_realtime": round(len(audio) / SR / dt, 1), "frames": int(codes.shape[1])}
            if cuda:
                row["gpu_peak_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
            out[f"encode_bf16_batch{batch}"] = row
        return out

    ck.section("long_file", long_file, 40)

    def tokenize_stages() -> dict:
        return tokenize_check(ckpt, dev, q, ck)

    ck.section("tokenize_stages", tokenize_stages, 90)

    for c in codecs.values():
        c.close()
    codecs.clear()

    def bench() -> dict:
        js = args.out / "bench_gpu.json"
        names = "pytorch-published-cuda,pytorch-cuda,pytorch-cuda-bf16" if cuda else "pytorch"
        cmd = [
            sys.executable,
            "-m",
            "xyrt.cli",
            "bench",
            "--checkpoint",
            str(ckpt),
            "--backends",
            names,
            "--seconds",
            "10" if not q else "1",
            "--batch",
            "1,8",
            "--runs",
            "10" if not q else "2",
            "--json",
            str(js),
        ]
        env = {**os.environ, "XYRT_CACHE": tempfile.mkdtemp(prefix="xyrt-cache-")}
        proc = subprocess.run(  # outside the source tree, which would shadow the package
            cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tempfile.mkdtemp()
        )
        (args.out / "bench_gpu.txt").write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr.strip().splitlines()[-1:])
        report = json.loads(js.read_text())
        rows = {}
        for b in report["backends"]:
            for c in b.get("cases", []):
                rows[f"{b['name']} {c['op']} {c['seconds']}s b{c['batch']}"] = {
                    "p50_ms": round(c["latency_ms"]["p50"], 2),
                    "peak_pct": round(100 * c["peak_fraction"], 2),
                    "vs_published": round(c.get("speedup_vs_published", float("nan")), 2),
                    "gpu_mib": b.get("gpu_peak_mib"),
                }
        return {"rows": rows, "gemm_peak": report["gemm_peak"], "table": proc.stdout[-4000:]}

    ck.section("xyrt_bench", bench, 150)

    def compiled() -> dict:
        clips = clips_10s(16 if q else 256)
        codec = xyrt.runtime.load(
            ckpt, device=dev, precision="bf16" if cuda else "fp32", compile=True
        )
        batch = 4 if q else 64
        codec.batch_size = batch
        t = time.perf_counter()
        codec.encode(clips[:batch])
        first = time.perf_counter() - t
        codec.encode(clips[:batch])
        codec.encode(clips[:batch])
        t = time.perf_counter()
        codec.encode(clips)
        dt = time.perf_counter() - t
        codec.close()
        return {
            "first_call_seconds": round(first, 1),
            "compile_seconds": round(codec.backend.compile_seconds, 1),
            f"encode_batch{batch}_x_realtime": round(len(clips) * 10 / dt, 1),
        }

    ck.section("torch_compile", compiled, 150)
    ck.report["total_seconds"] = round(ck.elapsed(), 1)
    ck.save()
    ck.log("done")


def tokenize_check(ckpt: Path, dev: str, quick: bool, ck: Check) -> dict:
    """The tokenize stages driven directly (no Ray): the read stage's rate on this machine's
    CPU cores, and the encode actor (`xyrt.corpus.stages.Encoder`) against the bare codec."""
    import multiprocessing as mp

    import pyarrow as pa
    import soundfile as sf

    from xyrt.corpus.inputs import Item
    from xyrt.corpus.stages import Encoder, items_to_json, read_stage

    folder = Path(tempfile.mkdtemp(prefix="xyrt-corpus-"))
    n = 16 if quick else 192
    clips = clips_10s(n)
    items = []
    for i, clip in enumerate(clips):
        path = folder / f"clip_{i:04d}.flac"
        sf.write(path, clip, SR)
        items.append(Item(f"clip_{i}", str(path), None, None))
    audio_s = n * 10.0
    block = 16
    blocks = [items[i : i + block] for i in range(0, n, block)]
    tables = [pa.table({"shard": [k], "items": [items_to_json(b)]}) for k, b in enumerate(blocks)]
    t = time.perf_counter()
    read_stage(tables[0], 640.0, 10.0)
    one = time.perf_counter() - t
    workers = os.cpu_count() or 1
    with mp.get_context("spawn").Pool(workers) as pool:
        pool.starmap(read_stage, [(tables[0], 640.0, 10.0)] * workers)  # workers up
        t = time.perf_counter()
        packs = pool.starmap(read_stage, [(tb, 640.0, 10.0) for tb in tables])
        dt = time.perf_counter() - t
    out = {
        "items": n,
        "read_one_process_x_realtime": round(block * 10.0 / one, 1),
        f"read_{workers}_processes_x_realtime": round(audio_s / dt, 1),
    }
    precision = "bf16" if dev.startswith("cuda") else None
    actor = Encoder(
        str(ckpt), "torch", None, None, None, 640.0, 10.0, device=dev, precision=precision
    )
    actor(packs[0])  # warm-up: shapes captured
    actor(packs[0])
    t = time.perf_counter()
    for p in packs:
        actor(p)
    actor_dt = time.perf_counter() - t
    codec = actor.codec
    decoded = [np.frombuffer(r["audio"], np.float32) for p in packs for r in p.to_pylist()]
    lengths = [r["lengths"] for p in packs for r in p.to_pylist()]
    pack_clips = [np.split(a, np.cumsum(ln)[:-1]) for a, ln in zip(decoded, lengths, strict=True)]
    t = time.perf_counter()
    for group in pack_clips:
        codec.encode(group)
    bare_dt = time.perf_counter() - t
    out["actor_x_realtime"] = round(audio_s / actor_dt, 1)
    out["bare_codec_x_realtime"] = round(audio_s / bare_dt, 1)
    out["actor_vs_bare"] = round(bare_dt / actor_dt, 3)
    out["batch_size_used"] = codec.batch_size
    read_rate = out[f"read_{workers}_processes_x_realtime"]
    out["bound_by"] = "reading" if read_rate < out["actor_x_realtime"] else "encoding"
    codec.close()
    return out


if __name__ == "__main__":
    main()
