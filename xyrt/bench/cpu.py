"""What this CPU is and which arithmetic it computes natively, for `xyrt bench`'s GEMM peaks.

The instruction sets come from CPUID as numpy's runtime dispatch reads it (what code running here
really gets, also under an emulator such as ``qemu-x86_64 -cpu Haswell``), completed by the
kernel's flags in /proc/cpuinfo for what numpy does not track (AMX on x86, BF16 on aarch64).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
# /proc/cpuinfo keys that name the CPU, in order of preference (x86, then aarch64 and others)
MODEL_KEYS = ("model name", "Model", "Hardware", "cpu model", "CPU part")
FLAG_KEYS = ("flags", "Features")  # x86, aarch64


@dataclass(frozen=True)
class CpuInfo:
    """The CPU's name, architecture and instruction-set features (upper case, numpy's names
    plus the kernel's flags)."""

    model: str
    arch: str
    features: frozenset[str]

    @property
    def x86(self) -> bool:
        return self.arch in ("x86_64", "AMD64", "i686", "i386")

    def bf16_missing(self) -> str | None:
        """None when the CPU multiplies bf16 natively, else why not (a bf16 GEMM would be
        emulated: 0.3 GFLOP/s on an AVX2 CPU, a quarter of float32 on AVX-512 without BF16)."""
        if self.x86:
            amx = "AMX_BF16" in self.features and "AVX512F" in self.features
            if "AVX512BF16" in self.features or amx:
                return None
            return "this CPU has no AVX512-BF16 or AMX: bf16 would be emulated, not measured"
        if self.arch in ("aarch64", "arm64"):
            if "BF16" in self.features:
                return None
            return "this Arm CPU has no BF16 extension: bf16 would be emulated, not measured"
        return f"bf16 is not measured on {self.arch} CPUs"


def _cpuinfo_fields() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
    try:
        text = CPUINFO.read_text()
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    return fields


def _numpy_features() -> set[str]:
    """CPU features numpy found by CPUID (or the platform's equivalent), {} if unknown."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:
        try:
            from numpy.core._multiarray_umath import __cpu_features__
        except ImportError:
            return set()
    return {name for name, present in __cpu_features__.items() if present}


def cpu_info() -> CpuInfo:
    """This machine's `CpuInfo`."""
    fields = _cpuinfo_fields()
    model = next((fields[k] for k in MODEL_KEYS if fields.get(k)), "")
    model = model or platform.processor() or platform.machine() or "unknown"
    flags = next((fields[k] for k in FLAG_KEYS if fields.get(k)), "")
    features = _numpy_features()
    if features:  # CPUID as numpy sees it; the kernel's flags only for what numpy lacks
        features |= {f.upper() for f in flags.split() if f.lower() in ("amx_bf16", "bf16")}
    else:
        features = {f.upper().replace("_", "") for f in flags.split()} | {
            f.upper() for f in flags.split()
        }
    return CpuInfo(model, platform.machine(), frozenset(features))
