"""xyrt.runtime.hostcpu: the instruction-set facts xyrt acts on, for CPUs other than this one."""

from __future__ import annotations

import pytest

from xyrt.runtime import hostcpu

HASWELL = frozenset({"SSE41", "SSSE3", "AVX", "AVX2", "FMA3"})
SKYLAKE_SP = HASWELL | {"AVX512F", "AVX512BW"}
ICELAKE = SKYLAKE_SP | {"AVX512VNNI"}
SAPPHIRE = ICELAKE | {"AVX512BF16", "AMX_BF16"}
ALDERLAKE = HASWELL | {"AVX_VNNI"}
ORIN = frozenset({"ASIMD", "ASIMDDP", "ASIMDHP"})
PI4 = frozenset({"ASIMD"})


@pytest.mark.parametrize(
    ("features", "arch", "isa", "dot", "bf16"),
    [
        (HASWELL, "x86_64", "x86_64 AVX2", "vpmaddubsw", False),
        (SKYLAKE_SP, "x86_64", "x86_64 AVX-512", "vpmaddubsw", False),
        (ICELAKE, "x86_64", "x86_64 AVX-512 VNNI", "vnni", False),
        (SAPPHIRE, "x86_64", "x86_64 AVX-512 VNNI BF16 AMX", "vnni", True),
        (ALDERLAKE, "x86_64", "x86_64 AVX2 VNNI", "vnni", False),
        (ORIN, "aarch64", "aarch64 NEON dotprod", "dotprod", False),
        (PI4, "aarch64", "aarch64 NEON", "widening", False),
    ],
)
def test_cpus(features, arch, isa, dot, bf16) -> None:
    assert hostcpu.isa(features, arch) == isa
    assert hostcpu.int8_dot(features, arch) == dot
    assert hostcpu.has_bf16(features) is bf16


def test_this_cpu_reports_itself() -> None:
    assert hostcpu.machine() in hostcpu.isa()
    assert hostcpu.model() and hostcpu.features()
