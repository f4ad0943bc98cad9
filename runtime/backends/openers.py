"""How the registry (`xyrt.runtime.backends.registry`) opens each backend, what each decides
from a source and its options before loading (``check_*``: a precision a directory lacks, a
provider this install lacks, a device not here), and the limits each declares before opening
(``limits_*``). Backend modules are imported on use: none of their packages is needed to import
this one."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from xyrt.errors import XyrtError
from xyrt.runtime.backends.base import Backend, BackendLimits

if TYPE_CHECKING:
    from xyrt.runtime.backends.registry import Options

# ONNX Runtime execution providers that run on a GPU (aliases and full names)
GPU_PROVIDERS = ("cuda", "tensorrt", "trt", "CUDAExecutionProvider", "TensorrtExecutionProvider")


def is_cuda(device: str | None) -> bool:
    """Whether ``device`` is "cuda" or "cuda:N"."""
    return isinstance(device, str) and device.split(":")[0] == "cuda"


def ort_providers(o: Options) -> Sequence[str] | None:
    """ONNX Runtime's providers: as given, else from the device (cuda -> the CUDA provider)."""
    if o.providers is None and o.device is not None:
        return ["cuda"] if is_cuda(o.device) else ["cpu"]
    return o.providers


def open_onnxruntime(source: Path, o: Options) -> Backend:
    from xyrt.runtime.backends.ort.backend import OnnxRuntimeBackend

    return OnnxRuntimeBackend(source, ort_providers(o), o.threads, o.target)


def check_onnxruntime(source: Path, o: Options, here: bool) -> None:
    from xyrt.runtime.backends.ort.backend import graph_set, resolve_providers
    from xyrt.runtime.modeldir.manifest import read_manifest

    if here:  # a provider this install lacks (no GPU build); a cluster's nodes may have it
        resolve_providers(ort_providers(o))
    graph_set(read_manifest(source), o.target)


def check_openvino(source: Path, o: Options, here: bool) -> None:
    from xyrt.runtime.backends.openvino.backend import graph_plan
    from xyrt.runtime.modeldir.manifest import read_manifest

    graph_plan(read_manifest(source), o.precision)


def check_torch(source: Path, o: Options, here: bool) -> None:
    if o.precision == "fp16" and not is_cuda(o.device):
        raise XyrtError(
            f"precision 'fp16' needs a CUDA device (device='cuda'); on {o.device or 'cpu'} use "
            "fp32 or bf16"
        )
    if here:  # the device must be on this machine (on a Ray cluster: on its GPU nodes)
        from xyrt.runtime.backends.pytorch.backend import check_device

        check_device(o.device, o.precision)


def limits_onnxruntime(source: Path, o: Options, device: str) -> BackendLimits:
    from xyrt.runtime.backends.ort.backend import ort_limits

    return ort_limits(ort_providers(o))


def limits_openvino(source: Path, o: Options, device: str) -> BackendLimits:
    from xyrt.runtime.backends.openvino.backend import OpenVinoBackend

    return OpenVinoBackend.limits


def limits_tensorrt(source: Path, o: Options, device: str) -> BackendLimits:
    from xyrt.runtime.backends.trt.backend import engine_limits, read_engines

    return engine_limits(read_engines(source))


def limits_torch(source: Path, o: Options, device: str) -> BackendLimits:
    from xyrt.runtime.backends.pytorch.backend import torch_limits

    return torch_limits(device, o.max_batch, o.cuda_graphs)


def open_openvino(source: Path, o: Options) -> Backend:
    from xyrt.runtime.backends.openvino.backend import OpenVinoBackend

    return OpenVinoBackend(source, o.precision, o.threads)


def open_tensorrt(source: Path, o: Options) -> Backend:
    from xyrt.runtime.backends.trt.backend import TensorRTBackend

    return TensorRTBackend(source)


def open_torch(source: Path, o: Options) -> Backend:
    from xyrt.runtime.backends.pytorch.backend import open_torch

    return open_torch(source, o)
