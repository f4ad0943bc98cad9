"""What this host's CPU computes natively: one home for the instruction-set facts xyrt acts on.

The features come from numpy's run-time CPU dispatch table, which asks the processor itself
(CPUID on x86, the auxiliary vector on Arm). ``/proc/cpuinfo`` is not enough: under an emulator
(``qemu-x86_64 -cpu Haswell``) or in some containers it shows the host's flags, not the CPU the
code runs on; it is read only for what numpy does not report (AMX, AVX-VNNI).

- `isa()`: a short name of the level the kernels of ONNX Runtime/oneDNN pick, recorded where a
  figure depends on it (quantization agreement, bench JSON).
- `int8_dot()`: how an int8 dot product runs here, which decides whether u8 x s8 products can
  saturate (``"vpmaddubsw"``: pairs summed in int16, as on AVX2/AVX-512 without VNNI).
- `has_bf16()`: whether bf16 arithmetic is native (AVX512-BF16 or AMX on x86; Arm's BF16 is
  not used by the backends xyrt drives on the CPU).
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path


@functools.cache
def features() -> frozenset[str]:
    """The CPU features numpy's dispatcher found at run time, plus AMX/AVX-VNNI from the
    kernel's flags (upper case, numpy's names: ``AVX2``, ``AVX512VNNI``, ``ASIMDDP``...)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as found
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_features__ as found
    names = {name for name, on in found.items() if on}
    flags = set(_cpuinfo().get("flags", "").split() + _cpuinfo().get("Features", "").split())
    if "AVX2" in names:  # an x86 CPU: what numpy does not list, from the kernel's flags
        names |= {f.upper() for f in ("amx_bf16", "amx_int8", "avx_vnni") if f in flags}
    elif "ASIMD" in names and "bf16" in flags:  # Arm's BF16 extension
        names.add("BF16")
    return frozenset(names)


MODEL_KEYS = ("model name", "Model", "Hardware", "cpu model", "CPU part")  # x86 first, then Arm


@functools.cache
def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    return fields


def model() -> str:
    """The CPU's name as the kernel reports it (``Intel(R) Xeon(R) ...``; an Arm part number)."""
    fields = _cpuinfo()
    name = next((fields[k] for k in MODEL_KEYS if fields.get(k)), "")
    return name or platform.processor() or platform.machine() or "unknown"


def machine() -> str:
    """``x86_64``, ``aarch64``, ... (normalised: ``AMD64`` and ``arm64`` as Linux names them)."""
    name = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(name, name)


def isa(found: frozenset[str] | None = None, arch: str | None = None) -> str:
    """The instruction-set level, e.g. ``x86_64 AVX-512 VNNI``, ``x86_64 AVX2``,
    ``aarch64 NEON dotprod``."""
    f = features() if found is None else found
    arch = arch or machine()
    if arch == "x86_64":
        if "AVX512F" in f:
            level = "AVX-512" + (" VNNI" if "AVX512VNNI" in f else "")
        elif "AVX2" in f:
            level = "AVX2" + (" VNNI" if "AVX_VNNI" in f else "")
        else:
            level = "SSE4" if "SSE41" in f else "baseline"
        extras = [x for x, k in (("BF16", "AVX512BF16"), ("AMX", "AMX_BF16")) if k in f]
        return " ".join([arch, level, *extras])
    if arch == "aarch64":
        return " ".join([arch, "NEON", *(["dotprod"] if "ASIMDDP" in f else [])])
    return arch


def int8_dot(found: frozenset[str] | None = None, arch: str | None = None) -> str:
    """How u8 x s8 int8 dot products run here: ``"vnni"`` (int32 sums, VPDPBUSD),
    ``"vpmaddubsw"`` (pairs summed in int16 with saturation: x86 without VNNI), ``"dotprod"``
    (Arm SDOT/UDOT) or ``"widening"`` (anything else)."""
    f = features() if found is None else found
    arch = arch or machine()
    if arch == "x86_64":
        if "AVX512VNNI" in f or "AVX_VNNI" in f:
            return "vnni"
        return "vpmaddubsw" if "SSSE3" in f else "widening"
    if arch == "aarch64" and "ASIMDDP" in f:
        return "dotprod"
    return "widening"


def has_bf16(found: frozenset[str] | None = None) -> bool:
    """Whether the CPU computes bf16 natively (AVX512-BF16 or AMX-BF16)."""
    f = features() if found is None else found
    return bool({"AVX512BF16", "AMX_BF16"} & f)
