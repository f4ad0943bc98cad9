"""The backend registry: which backends exist, what each takes, and how to open one.

Every caller that turns a model source plus options into a `Backend` (``xyrt.runtime.load``,
the CLI, ``xyrt.compat``, ``xyrt bench``, ``xyrt tokenize``, ``xyrt serve``, ``xyrt verify``) asks
here, and asks here, not by a backend's name, what it takes and where it runs: `resolve` gives
one `Resolved` value (the entry, the source kind, the options, the device, whether it needs a
GPU, its limits and identity). Adding a backend means writing its module, its hooks in
`xyrt.runtime.backends.openers`, and one `BackendEntry` in `REGISTRY`.

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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from xyrt.errors import MissingDependencyError, XyrtError, received
from xyrt.runtime.backends import identity, openers
from xyrt.runtime.backends.base import Backend, BackendLimits
from xyrt.runtime.backends.openers import GPU_PROVIDERS, is_cuda
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
BOOL_OPTIONS = ("cuda_graphs", "compile", "autocast")


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

    def __post_init__(self) -> None:
        """Types checked once, here: a bool option is a bool (not 'yes'), ``max_batch`` an
        int >= 1, ``device`` a str (a torch.device is taken as its str)."""
        device = self.device
        if device is not None and not isinstance(device, str):
            if type(device).__module__ == "torch" and type(device).__name__ == "device":
                object.__setattr__(self, "device", str(device))
            else:
                raise XyrtError(
                    f"device must be 'cpu', 'cuda' or 'cuda:N' (a str or a torch.device), got "
                    f"{received(device)}"
                )
        for name in BOOL_OPTIONS:
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise XyrtError(
                    f"{name} must be True or False, got {received(value)} ({type(value).__name__})"
                )
        batch = self.max_batch
        if batch is not None and (
            isinstance(batch, bool) or not isinstance(batch, int) or batch < 1
        ):
            raise XyrtError(f"max_batch must be an integer >= 1 or None, got {received(batch)}")

    def given(self) -> dict[str, Any]:
        """The options set to something other than their default."""
        defaults = Options()
        return {
            k: v
            for k, v in self.__dict__.items()
            if v != getattr(defaults, k) and k not in ("threads",)
        }

    @classmethod
    def of(cls, base: Options | None = None, **fields: Any) -> Options:
        """``base`` (default: all defaults) with ``fields`` set; an unknown name is an
        `XyrtError` naming the options there are. The one way callers build the value, so a new
        field reaches every caller (load, tokenize, serve, bench, the CLI) untouched."""
        unknown = sorted(set(fields) - set(cls.__dataclass_fields__))
        if unknown:
            raise XyrtError(
                f"unknown backend option(s) {unknown}; the options are "
                f"{', '.join(cls.__dataclass_fields__)}"
            )
        return replace(base if base is not None else cls(), **fields)


@dataclass(frozen=True)
class Variant:
    """One way to run a backend that ``xyrt bench`` measures under its own ``label``: the model
    it runs (``stored``: "checkpoint", "engines", or the precision an export directory holds)
    and the `Options` fields it is opened with. ``published``: the published implementation's
    cost (windows padded to 30 s, eager, PyTorch's own TF32 flags); ``default``: measured when
    no --backends is given."""

    label: str
    stored: str
    precision: str | None = None
    device: str | None = None
    providers: tuple[str, ...] | None = None
    published: bool = False
    default: bool = True

    def options(self) -> dict[str, Any]:
        """The `Options` fields it sets (eager on a GPU for the published cost)."""
        given = {"precision": self.precision, "device": self.device, "providers": self.providers}
        out: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
        if self.published and is_cuda(self.device):
            out["cuda_graphs"] = False
        return out


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
    # what the backend decides from the source and options before loading (None: nothing)
    preflight: Callable[[Path, Options, bool], None] | None = None
    # (source, options, device) -> what the backend takes in one run, declared before it opens
    limits: Callable[[Path, Options, str], BackendLimits] | None = None
    # (source, options, device) -> the model's identity (`xyrt.runtime.backends.identity`)
    identity: Callable[[Path, Options, str], dict[str, Any]] | None = None
    # `ChunkedCodec` options that mean something over this backend ("pad_to_30s": windows run
    # as 30 s like the published PyTorch code, the published cost)
    codec_options: tuple[str, ...] = ()
    bench: tuple[Variant, ...] = ()  # what `xyrt bench` measures of it

    def takes(self, option: str) -> bool:
        """Whether ``option`` (an `Options` field or a `ChunkedCodec` option) applies here."""
        return option in ("device", "precision", "threads", *self.options, *self.codec_options)

    def device(self, o: Options) -> str:
        """Where it runs with ``o``: the device asked for, else the GPU for a GPU provider,
        else its first device type (the CPU where it runs there, "cuda" for TensorRT)."""
        if o.device is not None:
            return o.device
        if "providers" in self.options and any(p in GPU_PROVIDERS for p in o.providers or ()):
            return "cuda"
        return self.devices[0]

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
        openers.open_onnxruntime,
        openers.check_onnxruntime,
        openers.limits_onnxruntime,
        identity.onnxruntime_identity,
        bench=(
            *(Variant(f"ort-{p}", p, providers=("cpu",)) for p in ("fp32", "int8", "fp16")),
            Variant("ort-cuda", "fp32", providers=("cuda",)),
            Variant("ort-tensorrt", "fp32", providers=("tensorrt",)),
        ),
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
        openers.open_openvino,
        openers.check_openvino,
        openers.limits_openvino,
        identity.openvino_identity,
        bench=tuple(  # bf16 runs the float32 export
            Variant(f"openvino-{p}", "int8" if p == "int8" else "fp32", p)
            for p in ("fp32", "bf16", "int8")
        ),
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
        openers.open_tensorrt,
        None,
        openers.limits_tensorrt,
        identity.tensorrt_identity,
        bench=(Variant("tensorrt", "engines"),),
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
        openers.open_torch,
        openers.check_torch,
        openers.limits_torch,
        identity.torch_identity,
        codec_options=("pad_to_30s",),
        # PyTorch's bf16 autocast on CPU measured ~9x slower than float32 on an AVX-512 BF16
        # machine (full-size synthetic model, 10 s clip): measured on request only
        bench=(
            Variant("pytorch-published", "checkpoint", "fp32", "cpu", published=True),
            Variant("pytorch", "checkpoint", "fp32", "cpu"),
            Variant("pytorch-bf16", "checkpoint", "bf16", "cpu", default=False),
            Variant("pytorch-published-cuda", "checkpoint", "fp32", "cuda", published=True),
            Variant("pytorch-cuda", "checkpoint", "fp32", "cuda"),
            Variant("pytorch-cuda-bf16", "checkpoint", "bf16", "cuda"),
            Variant("pytorch-cuda-fp16", "checkpoint", "fp16", "cuda"),
        ),
    ),
)
BY_NAME = {n: e for e in REGISTRY for n in (e.name, *e.aliases)}
AUTO = {"engines": "tensorrt", "export": "onnxruntime", "checkpoint": "torch"}
BACKEND_NAMES = tuple(e.name for e in REGISTRY)  # canonical names, what help texts list


def entry_for(kind: str, backend: str = "auto") -> BackendEntry:
    """The entry of ``backend`` (name or alias) for a source of ``kind``; "auto": the one that
    runs such a source (engines -> tensorrt, export -> onnxruntime, checkpoint -> torch)."""
    return backend_entry(AUTO[kind] if backend == "auto" else backend)


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
        check_checkpoint_file(path)
        return "checkpoint"
    if path.suffix in (".ckpt", ".pt", ".pth", ".bin", ".safetensors"):
        raise XyrtError(f"checkpoint not found: {path}")
    raise XyrtError(f"model not found: {path} (expected a model directory or a checkpoint)")


CHECKPOINT_MAGIC = (b"PK\x03\x04", b"\x80")  # torch.save: a zip archive, or a legacy pickle


def check_checkpoint_file(path: Path) -> None:
    """`XyrtError` unless the file ``path`` starts like a checkpoint (a torch.save zip or
    pickle, or a .safetensors file): a text file or an audio file given as the model is named
    as such, before anything asks for its config."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise XyrtError(f"cannot read the model {path}: {exc.strerror or exc}") from None
    safetensors = len(head) > 9 and head[8:9] == b"{"  # 8-byte header size, then JSON
    if head.startswith(CHECKPOINT_MAGIC) or safetensors:
        return
    raise XyrtError(
        f"model {path} is a {path.stat().st_size}-byte file that is not a checkpoint (it starts "
        f"with {head[:8]!r}); expected a PyTorch .ckpt (a zip or pickle file from torch.save), a "
        ".safetensors file, or a model directory"
    )


def open_backend(
    source: str | Path, backend: str = "auto", options: Options | None = None, **fields: Any
) -> Backend:
    """A `Backend` (not yet loaded) for ``source``, by ``backend`` name or alias ("auto": by
    what the source is), with ``options`` (and ``fields`` of `Options` over them); one the
    backend cannot take is an error naming it (`resolve`)."""
    return resolve(source, backend, options=options, **fields).open()


def check_options(entry: BackendEntry, kind: str, opts: Options) -> None:
    """`XyrtError` for a source or option this backend cannot take, naming what it takes."""
    if kind not in entry.sources:
        what = {
            "export": "an xyrt export directory",
            "engines": "a TensorRT engine directory",
            "checkpoint": "a checkpoint",
        }
        wants = " or ".join(what[k] for k in entry.sources)
        hint = (
            "; export one with `xyrt export --model CKPT -o DIR`, or pass the checkpoint it "
            "came from"
            if kind == "checkpoint"
            else ""
        )
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
    given = opts.given()
    for name, value in given.items():
        if name in ("device", "precision") or name in entry.options:
            continue
        takers = [e.name for e in REGISTRY if name in e.options]
        raise XyrtError(
            f"option {name}={received(value)} does not apply to the {entry.name} backend (it "
            f"applies to the {' and '.join(takers)} backend{'s' if len(takers) > 1 else ''}): "
            "it would have no effect"
        )
    for name, when, test in APPLIES_WHEN:
        if name in given and not test(opts):
            raise XyrtError(
                f"option {name}={received(given[name])} applies only {when}; it would have no "
                "effect here"
            )
    if "providers" in entry.options and opts.device is not None and opts.providers is not None:
        gpu = any(p in GPU_PROVIDERS for p in opts.providers)
        if is_cuda(opts.device) != gpu:
            raise XyrtError(
                f"device {opts.device!r} and providers {list(opts.providers)} disagree: ONNX "
                "Runtime runs where its providers are (cuda, tensorrt: the GPU; cpu: the CPU); "
                "give one of the two"
            )


APPLIES_WHEN = (  # (option, when it applies, test): given otherwise, it is refused
    ("cuda_graphs", "on a CUDA device (device='cuda')", lambda o: is_cuda(o.device)),
    (
        "autocast",
        "with precision 'bf16' or 'fp16', or auto on a CUDA device (fp32 runs no autocast)",
        lambda o: (
            o.precision in ("bf16", "fp16") or (o.precision in (None, "auto") and is_cuda(o.device))
        ),
    ),
)


@dataclass(frozen=True)
class Resolved:
    """Everything the registry decides about a model source before it is loaded: the backend
    (``entry``), the source's ``kind``, the canonical ``options``, and the ``device`` it runs on
    ("cpu", "cuda", "cuda:N"); `gpu` is what a Ray actor or replica must be given."""

    source: Path
    entry: BackendEntry
    kind: str
    options: Options
    device: str

    @property
    def gpu(self) -> bool:
        """Whether it runs on a GPU."""
        return is_cuda(self.device)

    def limits(self) -> BackendLimits:
        """What the backend takes in one run, as it declares before opening (a TensorRT
        engine: its profile's maximum batch)."""
        if self.entry.limits is None:
            return BackendLimits(device=self.device)
        return self.entry.limits(self.source, self.options, self.device)

    def identity(self) -> dict[str, Any]:
        """The model's identity: sha256 of the model and of the encoder, precision, backend."""
        if self.entry.identity is None:
            return {"backend": self.entry.name}
        return self.entry.identity(self.source, self.options, self.device)

    def open(self) -> Backend:
        """The `Backend` (not yet loaded)."""
        return self.entry.opener(self.source, self.options)


def resolve(
    source: str | Path,
    backend: str = "auto",
    here: bool = True,
    options: Options | None = None,
    **fields: Any,
) -> Resolved:
    """Everything the registry can decide before a model is loaded (or a Ray actor or a replica
    is started to load it): the source, the backend ("auto": by what the source is), its
    options, its package, the device, and what the backend decides from the source alone
    (precisions a directory holds, providers installed). ``here``: the model runs on this
    machine, so the package and the GPU it asks for must be here too (False: on a Ray cluster,
    whose nodes may have what this machine lacks)."""
    kind = source_kind(source)
    entry = entry_for(kind, backend)
    opts = Options.of(options, **fields)
    precision = canonical_precision(opts.precision)
    if precision == "auto" and "auto" not in entry.precisions:
        precision = None  # a directory's own precision is what auto means there
    opts = Options(**{**opts.__dict__, "precision": precision})
    check_options(entry, kind, opts)
    reason = entry.available() if here else None
    if reason is not None:
        raise MissingDependencyError(reason)
    if entry.preflight is not None:
        entry.preflight(Path(source), opts, here)
    return Resolved(Path(source), entry, kind, opts, entry.device(opts))
