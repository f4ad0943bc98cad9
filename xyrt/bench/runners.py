"""What each backend runs when benchmarked: end-to-end windows and per-stage timings.

Per-stage times come from where each backend can give them honestly:
- PyTorch: the stages run one after another, each timed (CPU execution is synchronous);
- ONNX Runtime: its profiler, kernel times summed by the module scope in each node's name
  (``/semantic_encoder/...``); stage times are from profiled runs, which cost a little
  more than the unprofiled runs behind the latency percentiles.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from xyrt.runtime.graph_io import pack_windows, stage_of


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


class TorchRunner:
    """PyTorch eager; ``pad_to_30s`` reproduces the published implementation's cost.

    ``dtype="bf16"`` runs under autocast on CPU or CUDA (the front end, RVQ and iSTFT stay
    float32); on CUDA every timed region ends with a device synchronisation.
    """

    def __init__(
        self,
        checkpoint: str,
        pad_to_30s: bool,
        threads: int | None,
        device: str = "cpu",
        dtype: str = "fp32",
    ) -> None:
        import torch

        from xyrt.export.checkpoint import load_model

        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.device = torch.device(device)
        self.model = load_model(checkpoint).to(self.device)
        self.autocast = dtype == "bf16"
        self.pad_to_30s = pad_to_30s
        self.cfg = self.model.cfg

    def _context(self):
        import contextlib

        stack = contextlib.ExitStack()
        stack.enter_context(self.torch.inference_mode())
        stack.enter_context(
            self.torch.autocast(self.device.type, self.torch.bfloat16, enabled=self.autocast)
        )
        return stack

    def _in(self, array: np.ndarray):
        return self.torch.from_numpy(array).to(self.device)

    def _lap(self, t: float) -> float:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()
        return _ms(t)

    def pack(self, segments: list[np.ndarray]):
        return pack_windows(segments, self.pad_to_30s)

    def encode(self, wav: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        with self._context():
            codes, _ = self.model.encode_mel(*self.model.frontend(self._in(wav), self._in(lengths)))
        return codes.cpu().numpy()

    def decode(self, codes: np.ndarray) -> np.ndarray:
        with self._context():
            audio = self.model.decode_codes(self._in(codes))
        return audio.float().cpu().numpy()

    def _stage_timer(self, stages: dict[str, float]):
        """``with lap(name): ...`` records the block's wall time (synchronised) in ms."""
        import contextlib

        @contextlib.contextmanager
        def lap(name: str):
            t = time.perf_counter()
            yield
            stages[name] = self._lap(t)

        return lap

    def encode_stages(self, wav: np.ndarray, lengths: np.ndarray) -> tuple[dict, float]:
        torch, m = self.torch, self.model
        st: dict[str, float] = {}
        lap = self._stage_timer(st)
        with self._context():
            start = time.perf_counter()
            with lap("frontend"):
                mel, ml = m.frontend(self._in(wav), self._in(lengths))
            with lap("semantic_encoder"):
                sem, l50 = m.semantic_encoder(mel, ml)
            with lap("semantic_adapter"):
                sem = m.semantic_encoder_adapter(sem, l50)
            with lap("acoustic_encoder"):
                aco, _ = m.acoustic_encoder(mel, ml)
            with lap("pre_rvq_adapter"):
                x = m.pre_rvq_adapter(torch.cat([sem, aco], dim=-1), l50)
            with lap("downsample"):
                x, l12 = m.downsample(x, l50)
            with lap("rvq"):
                m.quantizer.encode(x, l12)
            return st, self._lap(start)

    def decode_stages(self, codes: np.ndarray) -> tuple[dict, float]:
        torch, m = self.torch, self.model
        st: dict[str, float] = {}
        lap = self._stage_timer(st)
        with self._context():
            start = time.perf_counter()
            c = self._in(codes)
            lengths = torch.full((c.shape[1],), c.shape[2], dtype=torch.long, device=c.device)
            with lap("rvq_decode"):
                x = m.quantizer.decode(c)
            with lap("post_rvq_adapter"):
                x = m.post_rvq_adapter(x, lengths)
            with lap("upsample"):
                x, l50 = m.upsample(x, lengths)
            with lap("acoustic_decoder"):
                mel, _ = m.acoustic_decoder(x, l50)
            with lap("vocoder"):
                m.vocoder(mel)
            return st, self._lap(start)


class _WindowRunner:
    """Runs windows through a runtime `Backend` held in ``self.backend``."""

    backend: object

    def pack(self, segments: list[np.ndarray]):
        return pack_windows(segments)

    def encode(self, wav: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        return self.backend.encode_window(wav, lengths)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return self.backend.decode_window(codes)


class OrtRunner(_WindowRunner):
    """ONNX Runtime over an exported directory (any precision the directory holds)."""

    def __init__(self, model_dir: str, providers: list[str] | None, threads: int | None) -> None:
        from xyrt.runtime.manifest import read_manifest
        from xyrt.runtime.onnxrt import OnnxRuntimeBackend

        self.model_dir = model_dir
        self.threads = threads
        self.backend = OnnxRuntimeBackend(model_dir, providers, threads)
        self.providers = self.backend.encoder.providers
        self.backend.encoder(), self.backend.decoder()  # load now, not inside a timed run
        self.manifest = read_manifest(model_dir)

    def profile(self, graph: str, jobs: list[tuple[dict, int]]) -> list[list[tuple[dict, float]]]:
        """For each (feed, runs): per run, stage -> kernel ms and the run's total ms.

        One profiling session per graph serves all jobs; its trace file is deleted after use.
        """
        import onnxruntime as ort

        with tempfile.TemporaryDirectory() as folder:
            options = ort.SessionOptions()
            options.enable_profiling = True
            options.profile_file_prefix = str(Path(folder) / graph)
            if self.threads:
                options.intra_op_num_threads = self.threads
            session = ort.InferenceSession(
                str(self.manifest.graph_path(graph)), options, providers=self.providers
            )
            for feed, runs in jobs:
                for _ in range(runs):
                    session.run(None, feed)
            events = json.loads(Path(session.end_profiling()).read_text())
        runs_ev = [e for e in events if e.get("cat") == "Session" and e["name"] == "model_run"]
        kernels = [
            e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")
        ]
        per_run = []
        for run in runs_ev:
            lo, hi = run["ts"], run["ts"] + run["dur"]
            stages: dict[str, float] = defaultdict(float)
            for e in kernels:
                if lo <= e["ts"] <= hi:
                    stages[stage_of(e["name"][: -len("_kernel_time")], graph)] += e["dur"] / 1e3
            per_run.append((dict(stages), run["dur"] / 1e3))
        out, k = [], len(per_run) - sum(runs for _, runs in jobs)  # skip any earlier runs
        for _, runs in jobs:
            out.append(per_run[k : k + runs])
            k += runs
        return out


class TrtRunner(_WindowRunner):
    """TensorRT engines from `xyrt build` (end-to-end only: no per-stage breakdown)."""

    no_stages = True

    def __init__(self, engine_dir: str) -> None:
        from xyrt.runtime.tensorrt import TensorRTBackend

        self.backend = TensorRTBackend(engine_dir)


class OpenVinoRunner(_WindowRunner):
    """OpenVINO on the CPU at f32, bf16 or int8; stage times from OpenVINO's per-node
    performance counters (``PERF_COUNT``, a second compiled model), summed by module scope."""

    def __init__(self, model_dir: str, precision: str, threads: int | None) -> None:
        from xyrt.runtime.openvino import OpenVinoBackend

        self.backend = OpenVinoBackend(model_dir, precision, threads)
        self.backend.encoder(), self.backend.decoder()  # compile now, not inside a timed run

    def profile(self, graph: str, jobs: list[tuple[dict, int]]) -> list[list[tuple[dict, float]]]:
        """For each (feed, runs): per run, stage -> node ms (real time) and the run's ms."""
        import openvino as ov

        from xyrt.runtime.openvino import ov_feed

        compiled = self.backend.encoder if graph == "encoder" else self.backend.decoder
        config = {k: v for k, v in compiled.config.items() if k != "CACHE_DIR"}
        core = ov.Core()
        model = core.read_model(str(self.backend.manifest.graph_path(compiled.graph)))
        request = core.compile_model(model, "CPU", {**config, "PERF_COUNT": True})
        request = request.create_infer_request()
        out = []
        for feed, runs in jobs:
            per_run = []
            for _ in range(runs):
                t0 = time.perf_counter()
                request.infer(ov_feed(feed))
                total = _ms(t0)
                stages: dict[str, float] = defaultdict(float)
                for node in request.get_profiling_info():
                    ms = node.real_time.total_seconds() * 1e3
                    stages[stage_of(node.node_name, graph)] += ms
                per_run.append((dict(stages), total))
            out.append(per_run)
        return out
