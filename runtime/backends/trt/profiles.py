"""TensorRT optimization profiles and engine-cache keys (pure Python: no TensorRT, no CUDA).

A `Profile` gives the min/opt/max batch and window length an engine accepts. Windows are
whole codes (1280 samples at 16 kHz, see `xyrt.runtime.graph_io.padded_length`), at most one
30 s window, so the encoder takes (batch, samples) waveforms and the decoder (8, batch, frames)
codes. The same profile feeds `xyrt build` (TensorRT builder) and ONNX Runtime's TensorRT
provider (``trt_profile_*_shapes``).

An engine is valid only for the graph, precision, build mode and profile it was built from, on
the GPU model (name, compute capability) and TensorRT version that built it: `engine_key` hashes
exactly those facts, and `check_engine` refuses an engine whose facts differ, saying which.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Collection
from dataclasses import asdict, dataclass

from xyrt.config import CHUNK_SECONDS, INPUT_SAMPLE_RATE, SAMPLES_PER_CODE_IN
from xyrt.errors import XyrtError, received
from xyrt.runtime.graph_io import (
    CODES,
    DECODER,
    ENCODER,
    LENGTHS,
    MEL_REFERENCE,
    POSITIONS,
    WAVEFORM,
)

MAX_WINDOW_SECONDS = float(CHUNK_SECONDS)
ENGINES_FORMAT = "xyrt-trt-engines"
ENGINES_FORMAT_VERSION = 1


@dataclass(frozen=True)
class Profile:
    """Batch and window-length range (seconds of 16 kHz input audio) of an engine."""

    min_batch: int = 1
    opt_batch: int = 1
    max_batch: int = 4
    min_seconds: float = 0.08
    opt_seconds: float = 10.0
    max_seconds: float = MAX_WINDOW_SECONDS

    def __post_init__(self) -> None:
        if not 1 <= self.min_batch <= self.opt_batch <= self.max_batch:
            raise XyrtError(
                f"profile batch sizes must satisfy 1 <= min <= opt <= max, got "
                f"{self.min_batch}/{self.opt_batch}/{self.max_batch}"
            )
        if not 0 < self.min_seconds <= self.opt_seconds <= self.max_seconds <= MAX_WINDOW_SECONDS:
            raise XyrtError(
                f"profile lengths must satisfy 0 < min <= opt <= max <= {MAX_WINDOW_SECONDS:g} s, "
                f"got {self.min_seconds:g}/{self.opt_seconds:g}/{self.max_seconds:g}"
            )

    @classmethod
    def parse(cls, batch: str = "1,1,4", seconds: str = "0.08,10,30") -> Profile:
        """From CLI strings "min,opt,max" (batch sizes; seconds)."""
        try:
            b = [int(v) for v in batch.split(",")]
            s = [float(v) for v in seconds.split(",")]
        except ValueError as exc:
            raise XyrtError(f"profile values must be numbers: {exc}") from exc
        if len(b) != 3 or len(s) != 3:
            raise XyrtError(
                "a profile needs min,opt,max for batch and seconds, got "
                f"{received(batch)} and {received(seconds)}"
            )
        return cls(b[0], b[1], b[2], s[0], s[1], s[2])

    def frames(self, seconds: float) -> int:
        """Codes of a window of ``seconds`` (rounded up, at least one)."""
        return max(1, math.ceil(round(seconds * INPUT_SAMPLE_RATE) / SAMPLES_PER_CODE_IN))

    def shapes(self, graph: str, num_quantizers: int = 8) -> dict[str, tuple[tuple, ...]]:
        """Input name -> (min, opt, max) shapes for the encoder or decoder graph."""
        batches = (self.min_batch, self.opt_batch, self.max_batch)
        frames = tuple(
            self.frames(s) for s in (self.min_seconds, self.opt_seconds, self.max_seconds)
        )
        pairs = list(zip(batches, frames, strict=True))
        if graph == ENCODER:
            return {
                WAVEFORM: tuple((b, f * SAMPLES_PER_CODE_IN) for b, f in pairs),
                LENGTHS: tuple((b,) for b in batches),
                POSITIONS: tuple((b,) for b in batches),
                MEL_REFERENCE: tuple((b,) for b in batches),
            }
        if graph == DECODER:
            return {
                CODES: tuple((num_quantizers, b, f) for b, f in pairs),
                LENGTHS: tuple((b,) for b in batches),
                POSITIONS: tuple((b,) for b in batches),
            }
        raise XyrtError(f"unknown graph {graph!r} (encoder or decoder)")

    def check(self, graph: str, name: str, shape: tuple[int, ...], num_quantizers: int = 8):
        """`XyrtError` unless ``shape`` of input ``name`` lies within the profile."""
        lo, _, hi = self.shapes(graph, num_quantizers)[name]
        inside = len(shape) == len(lo) and all(
            a <= s <= b for a, s, b in zip(lo, shape, hi, strict=True)
        )
        if not inside:
            raise XyrtError(
                f"{graph} input {name!r} of shape {tuple(shape)} is outside the engine's "
                f"profile (min {lo}, max {hi}); rebuild with a wider --batch/--seconds profile"
            )

    def to_dict(self) -> dict:
        return asdict(self)


def ort_shape_options(
    profile: Profile, graph: str, num_quantizers: int = 8, inputs: Collection[str] | None = None
) -> dict[str, str]:
    """``trt_profile_{min,opt,max}_shapes`` for ONNX Runtime's TensorRT provider, for the
    ``inputs`` the graph has (default: the whole contract; older exports lack some)."""
    shapes = profile.shapes(graph, num_quantizers)
    if inputs is not None:
        shapes = {name: dims for name, dims in shapes.items() if name in inputs}
    out = {}
    for i, kind in enumerate(("min", "opt", "max")):
        out[f"trt_profile_{kind}_shapes"] = ",".join(
            f"{name}:{'x'.join(map(str, dims[i]))}" for name, dims in shapes.items()
        )
    return out


@dataclass(frozen=True)
class DeviceFacts:
    """What an engine is specific to besides its graph: GPU model and TensorRT version."""

    gpu_name: str
    compute_capability: str  # "8.7" (Jetson Orin), "8.9" (RTX 40), "9.0" (H100)
    tensorrt_version: str

    def describe(self) -> str:
        return (
            f"{self.gpu_name} (compute {self.compute_capability}), TensorRT {self.tensorrt_version}"
        )


def build_mode(tensorrt_version: str, graph_precision: str) -> str:
    """ "strongly-typed" (TensorRT 11+, or graphs that carry their own precision) or "flags"
    (TensorRT 10 builder precision flags over an FP32 or Q/DQ graph)."""
    major = int(tensorrt_version.split(".")[0])
    if major < 10:
        raise XyrtError(f"TensorRT {tensorrt_version} is too old; xyrt builds with TensorRT 10+")
    return "strongly-typed" if major >= 11 or graph_precision == "fp16" else "flags"


def engine_key(
    graph_sha256: str, precision: str, mode: str, profile: Profile, device: DeviceFacts
) -> str:
    """sha256 over every fact an engine depends on (see the module docstring)."""
    facts = {
        "graph_sha256": graph_sha256,
        "precision": precision,
        "mode": mode,
        "profile": profile.to_dict(),
        "device": asdict(device),
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def check_engine(entry: dict, device: DeviceFacts, graph_sha256: str | None = None) -> None:
    """`XyrtError` when the engine in ``entry`` (from engines.json) was built for another GPU,
    TensorRT version or graph: such an engine is never run."""
    built = DeviceFacts(**entry["device"])
    problems = []
    if (built.gpu_name, built.compute_capability) != (device.gpu_name, device.compute_capability):
        problems.append(f"built on {built.gpu_name} (compute {built.compute_capability})")
    if built.tensorrt_version != device.tensorrt_version:
        problems.append(f"built with TensorRT {built.tensorrt_version}")
    if graph_sha256 is not None and entry["graph_sha256"] != graph_sha256:
        problems.append("built from a different graph (the model directory changed since)")
    if problems:
        raise XyrtError(
            f"engine {entry['file']} is stale or foreign: {'; '.join(problems)}; this machine is "
            f"{device.describe()}. Rebuild it here with `xyrt build`."
        )
