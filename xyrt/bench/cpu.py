"""What this CPU is and which arithmetic it computes natively, for `xyrt bench`'s GEMM peaks.

The instruction sets are `xyrt.runtime.hostcpu`'s: CPUID as numpy's runtime dispatch reads it
(what code running here really gets, also under an emulator such as ``qemu-x86_64 -cpu
Haswell``), completed by the kernel's flags for what numpy does not track (AMX, Arm's BF16).
"""

from __future__ import annotations

from dataclasses import dataclass


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


def cpu_info() -> CpuInfo:
    """This machine's `CpuInfo` (from `xyrt.runtime.hostcpu`, the one home of CPU facts)."""
    from xyrt.runtime import hostcpu

    return CpuInfo(hostcpu.model(), hostcpu.machine(), hostcpu.features())
