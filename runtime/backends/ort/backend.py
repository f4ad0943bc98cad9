"""ONNX Runtime backend (no PyTorch): runs DIR/encoder.onnx and DIR/decoder.onnx.

CPU by default. CUDA and TensorRT execution providers are used when asked for and installed
(onnxruntime-gpu); ONNX Runtime silently falls back to CPU when a provider cannot load, so the
providers a session really uses are read back and a missing one is an error, not a surprise.

Sessions are created on first use (`SessionFromOnnx`), or by `OnnxRuntimeBackend.load()`, and
dropped by `close()`. `OrtStageProfiler` times stages with ONNX Runtime's own profiler.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from xyrt.errors import XyrtError, received, require
from xyrt.runtime.backends.base import (
    BackendLimits,
    GraphPairBackend,
    ModelInfo,
    StageProfiler,
    StageTimes,
)
from xyrt.runtime.backends.ort.cache import cached_session
from xyrt.runtime.graph_io import (
    CODES,
    DECODER,
    ENCODER,
    GRAPHS,
    WAVEFORM,
    decoder_feed,
    encoder_feed,
    stage_of,
)
from xyrt.runtime.modeldir.manifest import Manifest, read_manifest

CPU = "CPUExecutionProvider"
WARMUP_RUNS = 1  # stage profiling: uncounted runs of each job before its counted ones
PROVIDER_ALIASES = {
    "cpu": CPU,
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
}


def resolve_providers(providers: Sequence[str] | None) -> list[str]:
    """Provider names (aliases cpu/cuda/tensorrt accepted), CPU appended as the last resort."""
    ort = require("onnxruntime", "ort", "the ONNX Runtime backend")
    if isinstance(providers, (str, bytes)) or not all(isinstance(p, str) for p in providers or []):
        raise XyrtError(
            f"providers must be a list of names such as ['cpu'] or ['cuda', 'cpu'], "
            f"got {received(providers)}"
        )
    names = [PROVIDER_ALIASES.get(p.lower(), p) for p in (providers or ["cpu"])]
    available = ort.get_available_providers()
    missing = [p for p in names if p not in available]
    if missing:
        raise XyrtError(
            f"ONNX Runtime execution provider(s) {missing} are not available in this install "
            f"(available: {available}). CUDA/TensorRT need onnxruntime-gpu instead of onnxruntime."
        )
    return names if CPU in names else [*names, CPU]


def ort_limits(providers: Sequence[str] | None) -> BackendLimits:
    """What ONNX Runtime takes in one run with ``providers`` (aliases accepted): any batch on
    the CPU and CUDA providers; on the TensorRT provider at most its optimization profile's
    maximum (`trt_provider_options`: the default `Profile`). On the GPU with a GPU provider."""
    from xyrt.runtime.backends.trt.profiles import Profile

    names = [PROVIDER_ALIASES.get(p.lower(), p) for p in providers or ["cpu"]]
    trt = PROVIDER_ALIASES["tensorrt"] in names
    gpu = trt or PROVIDER_ALIASES["cuda"] in names
    return BackendLimits(
        max_batch=Profile().max_batch if trt else None, device="cuda" if gpu else "cpu"
    )


U8_TARGET = "onnxruntime-cpu-u8"  # cpu-dynamic's uint8 twin (xyrt.calib.schemes.u8_twin)


def cpu_int8_target(manifest: Manifest) -> str | None:
    """The uint8 twin of an INT8 directory where this CPU's u8 x s8 products would saturate
    (x86 without VNNI: `xyrt.runtime.hostcpu.int8_dot`), else None (the default graphs). An
    INT8 directory without a twin warns there: its codes lose agreement on this CPU."""
    from xyrt.runtime import hostcpu

    if manifest.data.get("precision") != "int8" or hostcpu.int8_dot() != "vpmaddubsw":
        return None
    if U8_TARGET in manifest.data.get("targets", {}):
        return U8_TARGET
    warnings.warn(
        f"{manifest.directory} has INT8 graphs with int8 weights only; on this CPU "
        f"({hostcpu.isa()}, no VNNI) their products saturate and codes lose much of their "
        "agreement: re-run `xyrt quantize` to add the uint8 twin it runs instead",
        RuntimeWarning,
        stacklevel=4,
    )
    return None


def graph_set(manifest: Manifest, target: str | None) -> dict[str, str]:
    """Graph keys for ``target`` (a key of the manifest's ``targets``: "onnxruntime-cpu",
    "tensorrt", "any"), or the directory's default encoder/decoder for None."""
    if target is None:
        return {g: g for g in GRAPHS}
    targets = manifest.data.get("targets", {})
    if target not in targets:
        raise XyrtError(
            f"{manifest.directory} has no graphs for target {target!r} "
            f"(has: {sorted(targets) or ['the default encoder/decoder only']})"
        )
    return {g: targets[target][g] for g in GRAPHS}


def trt_provider_options(
    manifest: Manifest,
    providers: list[str],
    cache_dir: str | Path | None,
    graph: str,
    inputs: Sequence[str] | None = None,
) -> list[dict] | None:
    """Per-provider options: for ONNX Runtime's TensorRT provider, precision from the graphs,
    engine and timing caches, and the optimization profile of
    `xyrt.runtime.backends.trt.profiles`."""
    if PROVIDER_ALIASES["tensorrt"] not in providers:
        return None
    from xyrt.runtime.backends.trt.profiles import Profile, ort_shape_options

    precision = manifest.data.get("precision", "fp32")
    cache = Path(cache_dir or manifest.directory / "trt-ep-cache")
    trt = {
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(cache),
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": str(cache),
        "trt_fp16_enable": str(precision == "fp16"),
        "trt_int8_enable": str(precision == "int8"),  # Q/DQ graph: no calibration table needed
        **ort_shape_options(Profile(), graph, manifest.num_quantizers, inputs),
    }
    return [trt if p == PROVIDER_ALIASES["tensorrt"] else {} for p in providers]


class SessionFromOnnx:
    """Lazy loader: builds the InferenceSession on first call, checks metadata and providers.

    On CPU alone, ORT's optimised graph is cached (`xyrt.runtime.backends.ort.cache`;
    ``cache=False`` optimises on every load); ``origin`` then says how the session was made."""

    def __init__(
        self,
        manifest: Manifest,
        graph: str,
        providers: list[str],
        threads: int | None = None,
        provider_options: list[dict] | None = None,
        cache: bool = True,
    ) -> None:
        self.manifest, self.graph = manifest, graph
        self.providers, self.threads = providers, threads
        self.provider_options = provider_options
        self.cache = cache and providers == [CPU]
        self.origin: str | None = None  # "cached", "built", "uncached" or "direct"
        self._session = None

    def __call__(self):
        if self._session is None:
            ort = require("onnxruntime", "ort", "the ONNX Runtime backend")
            try:
                path = self.manifest.check_graph(self.graph)
            except OSError as exc:
                raise XyrtError(f"cannot read the {self.graph} graph: {exc}") from exc

            def options():
                opts = ort.SessionOptions()
                if self.threads:
                    opts.intra_op_num_threads = self.threads
                return opts

            def create(model: str, opts):
                return ort.InferenceSession(
                    model, opts, providers=self.providers, provider_options=self.provider_options
                )

            try:
                if self.cache:
                    entry = self.manifest.data["graphs"][self.graph]
                    sha = entry["sha256"] + (entry.get("external_data_sha256") or "")
                    session, self.origin = cached_session(ort, path, sha, options, create)
                else:
                    session, self.origin = create(str(path), options()), "direct"
            except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
                raise XyrtError(f"ONNX Runtime cannot load {path}: {exc}") from exc
            self._check(session, path)
            self._session = session
        return self._session

    def _check(self, session, path: Path) -> None:
        meta = session.get_modelmeta().custom_metadata_map
        self.manifest.check_metadata(meta, self.graph, path)
        self.manifest.check_io(
            self.graph,
            path,
            [{n.name} for n in session.get_inputs()],
            [{n.name} for n in session.get_outputs()],
        )
        used = session.get_providers()
        lost = [p for p in self.providers if p != CPU and p not in used]
        if lost:
            raise XyrtError(
                f"ONNX Runtime could not use {lost} for {path.name} and fell back to {used}; "
                "check the CUDA/TensorRT libraries, or ask for providers=['cpu']"
            )

    @property
    def active_providers(self) -> list[str]:
        return self().get_providers()

    @property
    def loaded(self) -> bool:
        """Whether the session exists now."""
        return self._session is not None

    def close(self) -> None:
        """Drop the session (ONNX Runtime frees it); the next call creates a new one."""
        self._session = None


class OnnxRuntimeBackend(GraphPairBackend):
    """`Backend` over ONNX Runtime; sessions are created on first use (both at once by
    `load()`). ``cache``: keep ORT's optimised graphs in the xyrt cache (CPU only)."""

    name = "onnxruntime"

    def __init__(
        self,
        model_dir: str | Path,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        target: str | None = None,
        trt_cache: str | Path | None = None,
        cache: bool = True,
    ) -> None:
        self.manifest = read_manifest(model_dir)
        chosen = resolve_providers(providers)
        self.limits = ort_limits(chosen)
        if target is None and chosen[0] == PROVIDER_ALIASES["tensorrt"]:
            target = "tensorrt" if "tensorrt" in self.manifest.data.get("targets", {}) else None
        if target is None and chosen == [CPU]:
            target = cpu_int8_target(self.manifest)
        self.target = target
        graphs = graph_set(self.manifest, target)
        self.graph_inputs = {g: self.manifest.input_names(graphs[g]) for g in GRAPHS}
        self.encoder, self.decoder = (
            SessionFromOnnx(
                self.manifest,
                graphs[g],
                chosen,
                threads,
                trt_provider_options(self.manifest, chosen, trt_cache, g, self.graph_inputs[g]),
                cache,
            )
            for g in GRAPHS
        )
        m = self.manifest
        self.info = ModelInfo(
            m.output_sample_rate, m.samples_per_code_out, m.num_quantizers, m.codebook_size
        )

    @property
    def providers(self) -> dict[str, list[str]]:
        """Providers each session actually uses (creates the sessions)."""
        return {"encoder": self.encoder.active_providers, "decoder": self.decoder.active_providers}

    def stage_profiler(self) -> OrtStageProfiler:
        return OrtStageProfiler(self)

    def encode_window(self, wav, lengths, positions=None, mel_reference=None) -> np.ndarray:
        feed = self.fit(ENCODER, encoder_feed(wav, lengths, positions, mel_reference))
        return self.encoder().run([CODES], feed)[0]

    def decode_window(self, codes: np.ndarray, positions=None) -> np.ndarray:
        return self.decoder().run([WAVEFORM], self.fit(DECODER, decoder_feed(codes, positions)))[0]


class OrtStageProfiler(StageProfiler):
    """Stage times from ONNX Runtime's profiler: kernel time summed by the module scope of each
    node (`graph_io.stage_of`). Profiled runs cost a little more than unprofiled ones. Each
    job's first run is a warm-up, not counted: a fresh session's first run of a shape spent
    0.3-0.4 of its time outside kernels (tiny model, 1 s clip)."""

    method = "ONNX Runtime profiler, warm-up excluded; kernel time by module scope"
    backend: OnnxRuntimeBackend

    def profile(
        self, graph: str, jobs: Sequence[tuple[dict[str, np.ndarray], int]]
    ) -> list[list[StageTimes]]:
        """For each (feed, runs): per run, stage -> kernel ms and the run's total ms.

        One profiling session per graph serves all jobs; its trace file is deleted after use.
        """
        ort = require("onnxruntime", "ort", "ONNX Runtime stage profiling")
        loader = self.backend.encoder if graph == ENCODER else self.backend.decoder
        with tempfile.TemporaryDirectory() as folder:
            options = ort.SessionOptions()
            options.enable_profiling = True
            options.profile_file_prefix = str(Path(folder) / graph)
            if loader.threads:
                options.intra_op_num_threads = loader.threads
            session = ort.InferenceSession(
                str(self.backend.manifest.graph_path(loader.graph)),
                options,
                providers=loader.providers,
            )
            for feed, runs in jobs:
                for _ in range(WARMUP_RUNS + runs):  # a new shape's first run is not counted
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
            per_run.append(StageTimes(dict(stages), run["dur"] / 1e3))
        out, k = [], len(per_run) - sum(WARMUP_RUNS + runs for _, runs in jobs)
        for _, runs in jobs:  # skipping any earlier runs, and each job's warm-up
            k += WARMUP_RUNS
            out.append(per_run[k : k + runs])
            k += runs
        return out
