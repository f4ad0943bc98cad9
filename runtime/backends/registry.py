"""The backend registry: which backends exist, what each takes, and how to open one.

Every caller that turns a model source plus options into a `Backend` (``xyrt.runtime.load``,
the CLI, ``xyrt.compat``, ``xyrt bench``, ``xyrt tokenize``, ``xyrt verify``) asks here. Adding a
backend means writing its module and one `BackendEntry` in `REGISTRY`.

A model source is one of (`source_kind`):
- ``export``: a directory with manifest.json (`xyrt export` / `xyrt quantize`);
- ``engines``: a directory with engines.json (`xyrt build`);
- ``checkpoint``: an original .ckpt file (config.yaml beside it, or ``config=``) or a Hugging
  Face-layout folder (config.json + safetensors).

Names: backends ``onnxruntime`` (alias ``ort``), ``openvino``, ``tensorrt`` (alias ``trt``),
``torch`` (alias ``pytorch``); precisions ``auto`` (the backend picks for the device: torch bf16
on an Ampere-or-later GPU, fp16 on an older one, fp32 on a CPU; elsewhere the directory's own),
``fp32`` (alias ``f32``, ``float32``), ``bf16``, ``fp16``, ``int8``; devices ``cpu``, ``cuda``,
``cuda:N``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xyrt.errors import MissingDependencyError, XyrtError, received
from xyrt.runtime.backends.base import Backend
from xyrt.runtime.modeldir.dirs import ENGINE_DIR, EXPORT_DIR

PRECISION_ALIASES = {
    "f32": "fp32",
    "float32": "fp32",
    "bfloat16": "bf16",
    "float16": "fp16",
    "half": "fp16",
}
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")  # auto: the backend's choice for the device
SOURCE_KINDS = ("export", "engines", "checkpoint")


@dataclass(frozen=True)
class Options:
    """Everything a caller may ask of a backend; each entry says which of these it takes."""

    device: str | None = None
    precision: str | None = None
    providers: Sequence[str] | None = None
    threads: int | None = None
    target: str | None = None
    config: str | Path | None = None
    cuda_graphs: bool = True
    compile: bool = False
    autocast: bool = True
    max_batch: int | None = None

    def given(self) -> dict[str, Any]:
        """The options set to something other than their default."""
        defaults = Options()
        return {
            k: v
            for k, v in self.__dict__.items()
            if v != getattr(defaults, k) and k not in ("threads",)
        }


@dataclass(frozen=True)
class BackendEntry:
    """One backend: its names, what it runs, what it takes, and how to open it."""

    name: str
    aliases: tuple[str, ...]
    sources: tuple[str, ...]  # source kinds it opens
    precisions: tuple[str, ...]  # precisions it takes (None = the source's own)
    devices: tuple[str, ...]  # device types: "cpu", "cuda"
    options: tuple[str, ...]  # Options fields it takes besides device/precision/threads
    packages: tuple[str, ...]  # Python packages it needs (availability)
    extra: str  # pip extra that installs them
    opener: Callable[[Path, Options], Backend]

    def available(self) -> str | None:
        """None when it can run here, else why not."""
        for pkg in self.packages:
            try:
                found = importlib.util.find_spec(pkg) is not None
            except (ImportError, ValueError):  # ValueError: sys.modules[pkg] is None
                found = False
            if not found:
                return (
                    f"the {self.name} backend needs the Python package '{pkg}', which is not "
                    f"installed. Install it with: pip install 'xyrt[{self.extra}]'"
                )
        return None


def _open_onnxruntime(source: Path, o: Options) -> Backend:
    from xyrt.runtime.backends.onnxrt import OnnxRuntimeBackend

    providers = o.providers
    if providers is None and o.device is not None:
        providers = ["cuda"] if o.device.startswith("cuda") else ["cpu"]
    return OnnxRuntimeBackend(source, providers, o.threads, o.target)


def _open_openvino(source: Path, o: Options) -> Backend:
    from xyrt.runtime.backends.openvino import OpenVinoBackend

    return OpenVinoBackend(source, o.precision, o.threads)


def _open_tensorrt(source: Path, o: Options) -> Backend:
    from xyrt.runtime.backends.tensorrt import TensorRTBackend

    return TensorRTBackend(source)


def _open_torch(source: Path, o: Options) -> Backend:
    from xyrt.runtime.backends.torch_backend import open_torch

    return open_torch(
        source,
        device=o.device,
        precision=o.precision,
        config=o.config,
        threads=o.threads,
        cuda_graphs=o.cuda_graphs,
        compile=o.compile,
        autocast=o.autocast,
        max_batch=o.max_batch,
    )


REGISTRY: tuple[BackendEntry, ...] = (
    BackendEntry(
        "onnxruntime",
        ("ort",),
        ("export",),
        (),
        ("cpu", "cuda"),
        ("providers", "target"),
        ("onnxruntime",),
        "ort",
        _open_onnxruntime,
    ),
    BackendEntry(
        "openvino",
        (),
        ("export",),
        ("fp32", "bf16", "int8"),
        ("cpu",),
        (),
        ("openvino",),
        "openvino",
        _open_openvino,
    ),
    BackendEntry(
        "tensorrt",
        ("trt",),
        ("engines",),
        (),
        ("cuda",),
        (),
        ("tensorrt",),
        "gpu",
        _open_tensorrt,
    ),
    BackendEntry(
        "torch",
        ("pytorch",),
        ("checkpoint",),
        ("auto", "fp32", "bf16", "fp16"),
        ("cpu", "cuda"),
        ("config", "cuda_graphs", "compile", "autocast", "max_batch"),
        ("torch",),
        "export",
        _open_torch,
    ),
)
BY_NAME = {n: e for e in REGISTRY for n in (e.name, *e.aliases)}
AUTO = {"engines": "tensorrt", "export": "onnxruntime", "checkpoint": "torch"}
BACKEND_NAMES = tuple(e.name for e in REGISTRY)  # canonical names, what help texts list


def backend_entry(name: str) -> BackendEntry:
    """The entry for a backend name or alias; `XyrtError` naming the choices otherwise."""
    entry = BY_NAME.get(name) if isinstance(name, str) else None
    if entry is None:
        choices = ", ".join(
            f"{e.name} ({'/'.join(e.aliases)})" if e.aliases else e.name for e in REGISTRY
        )
        raise XyrtError(f"unknown backend {name!r}; available: auto, {choices}")
    return entry


def canonical_precision(precision: str | None) -> str | None:
    """``precision`` under its one name (f32 -> fp32, ...); `XyrtError` if unknown."""
    if precision is None:
        return None
    name = PRECISION_ALIASES.get(precision, precision) if isinstance(precision, str) else None
    if name not in PRECISIONS:
        raise XyrtError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return name


def source_kind(source: str | Path) -> str:
    """What a model source is: "export", "engines" or "checkpoint" (see the module docstring)."""
    if not isinstance(source, (str, Path)):
        raise XyrtError(
            "model must be a path (str or Path) to a model directory or checkpoint, got "
            f"{source!r}"[:200]
        )
    path = Path(source)
    if path.is_dir():
        if (path / ENGINE_DIR.marker).is_file():
            return "engines"
        if (path / EXPORT_DIR.marker).is_file():
            return "export"
        if (path / "config.json").is_file():
            return "checkpoint"
        raise XyrtError(
            f"{path} is not an xyrt model directory: expected an export (manifest.json), an "
            "engine directory (engines.json) or a Hugging Face-layout checkpoint folder "
            "(config.json)"
        )
    if path.is_file():
        return "checkpoint"
    if path.suffix in (".ckpt", ".pt", ".pth", ".bin", ".safetensors"):
        raise XyrtError(f"checkpoint not found: {path}")
    raise XyrtError(f"model not found: {path} (expected a model directory or a checkpoint)")


def open_backend(source: str | Path, backend: str = "auto", **options: Any) -> Backend:
    """A `Backend` (not yet loaded) for ``source``, by ``backend`` name or alias ("auto": by
    what the source is). ``options`` are `Options` fields; one the backend cannot take is an
    error naming it."""
    kind = source_kind(source)
    entry = backend_entry(AUTO[kind] if backend == "auto" else backend)
    unknown = sorted(set(options) - set(Options.__dataclass_fields__))
    if unknown:
        raise XyrtError(f"unknown backend option(s) {unknown}")
    opts = Options(**options)
    precision = canonical_precision(opts.precision)
    if precision == "auto" and "auto" not in entry.precisions:
        precision = None  # a directory's own precision is what auto means there
    opts = Options(**{**opts.__dict__, "precision": precision})
    check_options(entry, kind, opts)
    reason = entry.available()
    if reason is not None:
        raise MissingDependencyError(reason)
    return entry.opener(Path(source), opts)


def check_options(entry: BackendEntry, kind: str, opts: Options) -> None:
    """`XyrtError` for a source or option this backend cannot take, naming what it takes."""
    if kind not in entry.sources:
        what = {
            "export": "an xyrt export directory",
            "engines": "a TensorRT engine directory",
            "checkpoint": "a checkpoint",
        }
        wants = " or ".join(what[k] for k in entry.sources)
        hint = {
            "torch": "; export one with `xyrt export --checkpoint CKPT -o DIR`, or pass the "
            "checkpoint it came from",
        }.get(AUTO[kind], "")
        raise XyrtError(f"the {entry.name} backend runs {wants}; got {what[kind]}{hint}")
    if opts.precision is not None and opts.precision not in entry.precisions:
        takes = ", ".join(entry.precisions) or "only the precision of the directory itself"
        raise XyrtError(
            f"precision {opts.precision!r} does not apply to the {entry.name} backend (it takes "
            f"{takes})"
        )
    if opts.device is not None:
        dtype = opts.device.split(":")[0] if isinstance(opts.device, str) else None
        if dtype not in entry.devices:
            raise XyrtError(
                f"device {opts.device!r} does not apply to the {entry.name} backend (it runs on "
                f"{', '.join(entry.devices)})"
            )
    for name, value in opts.given().items():
        if name in ("device", "precision") or name in entry.options:
            continue
        takers = [e.name for e in REGISTRY if name in e.options]
        raise XyrtError(
            f"option {name}={received(value)} does not apply to the {entry.name} backend (it "
            f"applies to the {' and '.join(takers)} backend{'s' if len(takers) > 1 else ''}): "
            "it would have no effect"
        )
