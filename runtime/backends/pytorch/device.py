"""Which GPU, which precision, which float32 mode: the PyTorch backend's device rules.

- `parse_device`: ``"cuda"`` is the *current* CUDA device (``torch.cuda.current_device()``,
  what ``torch.cuda.set_device`` / ``LOCAL_RANK`` launchers select), never GPU 0 by assumption;
  ``"cuda:N"`` is checked against the devices present.
- `resolve_precision`: bf16 only where the GPU computes it natively (compute capability 8.0 and
  later: Ampere, Ada, Hopper, Blackwell; ``torch.cuda.is_bf16_supported()`` also counts
  emulation, which is slow on a T4/V100); ``"auto"`` picks bf16 there, fp16 on older GPUs and
  fp32 on a CPU.
- `fp32_mode`: CUDA float32 matmuls/convolutions as IEEE float32 (TF32 off) or TF32 inside a
  block. PyTorch's flags are process-wide, so the mode is reference-counted across threads:
  the first block in sets it, the last one out restores the caller's setting, and a block that
  asks for the other mode waits until the running ones are done (two threads sharing a backend,
  or `xyrt serve`'s model thread beside a caller, never see each other's restore half-way).
  PyTorch 2.9 and later are set through ``fp32_precision``; older ones (JetPack's) through the
  legacy ``allow_tf32`` flags.

torch is imported by this module; only the PyTorch backend's modules import it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from xyrt.errors import XyrtError, received, require

torch = require("torch", "export", "the PyTorch backend")

BF16_CAPABILITY = (8, 0)  # native bf16 tensor-core math from Ampere on
PRECISIONS = ("fp32", "bf16", "fp16")


def parse_device(device: str | Any | None) -> Any:
    """``"cpu"``, ``"cuda"`` (the current CUDA device), ``"cuda:N"`` (or a torch.device) ->
    torch.device with its index, checked: the one reading of a torch device (the backend's,
    and `xyrt.compat`'s results and ``.to()``)."""
    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise XyrtError(
            f"device {received(device)} is not a torch device; expected 'cpu', 'cuda' or "
            "'cuda:N' (or a torch.device)"
        ) from exc
    if dev.type not in ("cpu", "cuda"):
        raise XyrtError(f"device {device!r}: xyrt's PyTorch code runs on 'cpu' or 'cuda[:N]'")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise XyrtError(
                f"device {device!r}: PyTorch sees no CUDA GPU here (torch {torch.__version__}, "
                f"built with CUDA {torch.version.cuda}); use device='cpu'"
            )
        count = torch.cuda.device_count()
        index = torch.cuda.current_device() if dev.index is None else dev.index
        if index >= count:
            raise XyrtError(f"device {device!r}: this machine has {count} CUDA device(s)")
        dev = torch.device("cuda", index)
    return dev


def check_device(device: str | Any | None, precision: str | None) -> Any:
    """``device`` (`parse_device`) when it can run ``precision`` (`resolve_precision`)."""
    dev = parse_device(device)
    resolve_precision(precision, dev)
    return dev


def native_bf16(dev: Any) -> bool:
    """Whether ``dev`` computes bf16 natively (CPU: True, PyTorch's own kernels; CUDA: compute
    capability 8.0 or later)."""
    if dev.type != "cuda":
        return True
    return tuple(torch.cuda.get_device_capability(dev)) >= BF16_CAPABILITY


def resolve_precision(precision: str | None, dev: Any) -> str:
    """The precision a backend on ``dev`` runs: ``None`` and ``"auto"`` pick bf16 on a GPU
    with native bf16, fp16 on an older GPU and fp32 on a CPU; an explicit one is checked."""
    if precision in (None, "auto"):
        if dev.type != "cuda":
            return "fp32"
        return "bf16" if native_bf16(dev) else "fp16"
    if precision not in PRECISIONS:
        raise XyrtError(
            f"precision {precision!r}: the PyTorch backend takes auto, {', '.join(PRECISIONS)}"
        )
    if precision == "fp16" and dev.type != "cuda":
        raise XyrtError("precision 'fp16' needs a CUDA device (on a CPU use fp32 or bf16)")
    if precision == "bf16" and not native_bf16(dev):
        name = torch.cuda.get_device_name(dev)
        major, minor = torch.cuda.get_device_capability(dev)
        raise XyrtError(
            f"precision 'bf16' needs a GPU of compute capability 8.0 or later (Ampere and newer); "
            f"{name} ({dev}) is {major}.{minor}, where bf16 is emulated: use fp16 (or auto, "
            "which picks it) or fp32"
        )
    return precision


class _Fp32Mode:
    """The reference-counted process-wide float32 mode (see the module docstring)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.mode: str | None = None
        self.users = 0
        self.saved: tuple[Any, ...] = ()
        self.local = threading.local()  # this thread's open blocks (a nested other mode fails)

    @contextlib.contextmanager
    def __call__(self, mode: str) -> Iterator[None]:
        held = getattr(self.local, "held", 0)
        with self.cond:
            if held and self.mode != mode:  # waiting would wait on this thread itself
                raise XyrtError(
                    f"float32 mode {mode!r} asked for inside a {self.mode!r} block of the same "
                    "thread; PyTorch's TF32 flags are process-wide"
                )
            self.cond.wait_for(lambda: self.users == 0 or self.mode == mode)
            if self.users == 0:
                self.saved = _read_flags()
                _write_flags(mode)
                self.mode = mode
            self.users += 1
        self.local.held = held + 1
        try:
            yield
        finally:
            self.local.held = held
            with self.cond:
                self.users -= 1
                if self.users == 0:
                    _write_flags(None, self.saved)
                    self.mode = None
                    self.cond.notify_all()


def _new_api() -> bool:
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    return hasattr(matmul, "fp32_precision") and hasattr(cudnn, "conv")


def _read_flags() -> tuple[Any, ...]:
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    if _new_api():
        return (matmul.fp32_precision, cudnn.conv.fp32_precision)
    return (matmul.allow_tf32, cudnn.allow_tf32)  # PyTorch before 2.9 (JetPack)


def _write_flags(mode: str | None, values: tuple[Any, ...] = ()) -> None:
    """Set ``mode`` ("ieee"/"tf32"), or restore ``values`` read by `_read_flags`."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    if _new_api():  # mixing the new API with the legacy flags is an error in PyTorch 2.9+
        values = values or (mode, mode)
        matmul.fp32_precision, cudnn.conv.fp32_precision = values
    else:
        values = values or (mode == "tf32", mode == "tf32")
        matmul.allow_tf32, cudnn.allow_tf32 = values


_MODE = _Fp32Mode()


def fp32_mode(device: Any, mode: str = "ieee") -> contextlib.AbstractContextManager[None]:
    """CUDA float32 matmuls and convolutions as ``mode`` ("ieee": TF32 off; "tf32") inside the
    block; the caller's setting is restored when the last block of any thread ends."""
    if torch.device(device).type != "cuda":
        return contextlib.nullcontext()
    return _MODE(mode)


def ieee_fp32(device: Any) -> contextlib.AbstractContextManager[None]:
    """`fp32_mode` "ieee": TF32 off inside the block, the caller's settings restored after."""
    return fp32_mode(device, "ieee")
