"""Run the torch-free tests (`test_golden_torchfree.py`) on an emulated CPU, from any x86 host.

    python tests/torchfree/emulate.py avx2      # x86-64 without AVX-512/VNNI (qemu -cpu Haswell)
    python tests/torchfree/emulate.py aarch64   # Arm (Jetson, Raspberry Pi): qemu-aarch64

ONNX Runtime and OpenVINO choose their kernels from the CPU's own identification (CPUID), so no
environment variable makes an AVX-512 machine run its AVX2 kernels: an emulated CPU does. Both
use Debian's ``qemu-user`` (installed with apt-get when missing), run as root.

- ``avx2``: this project's venv under ``qemu-x86_64 -cpu Haswell`` (AVX2 and FMA, no AVX-512).
- ``aarch64``: a Debian arm64 root (``mmdebstrap``, cached) with the project's aarch64 wheels
  (onnxruntime and openvino at the host's versions, from PyPI, cached) and xyrt's own wheel,
  under ``qemu-aarch64 -cpu neoverse-n1``. qemu 7.2 shows the host's x86 ``/proc/cpuinfo`` to
  the guest, on which ONNX Runtime 1.28 and later crash at import; an Arm cpuinfo is bind-mounted
  over it in a private mount namespace (``unshare -m``) for the run.

The bundle (exports and reference margins, `bundle.py`) is made natively first: only the
runtime's kernels run emulated (40-130x slower than native on Arm, several times on x86).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("XYRT_EMULATION_CACHE", ROOT / ".cache" / "emulated"))
TESTS = ["tests/torchfree/test_golden_torchfree.py"]
# qemu's Haswell model without what TCG cannot emulate (each would print a warning per process)
HASWELL = "Haswell,-pcid,-x2apic,-tsc-deadline,-hle,-invpcid,-rtm"
ARM_CPU = "neoverse-n1"  # Armv8.2 with dotprod, the class of Jetson Orin's Cortex-A78AE
# the clips an emulated run checks: two speech clips and every synthetic kind (all 12 natively)
# (":"-separated: qemu's -E reads commas as separate variables)
CLIPS = "speech_0:speech_3:short_quarter_second:exact_frames:silence:chirp_loud:noise_quiet"
ISA = {"avx2": "x86_64 AVX2", "aarch64": "aarch64 NEON dotprod"}
ARM_PACKAGES = "python3,python3-venv,libsndfile1,libgomp1,libstdc++6,libgcc-s1"
PLATFORMS = [  # Debian bookworm has glibc 2.36: wheels up to manylinux_2_36 run in the root
    f"manylinux_2_{v}_aarch64" for v in (36, 35, 34, 31, 28, 17)
] + ["manylinux2014_aarch64"]
WHEELS = [  # the torch-free runtime, OpenVINO and pytest, for aarch64
    f"onnxruntime=={version('onnxruntime')}",
    f"openvino=={version('openvino')}",
    "openvino-telemetry",
    "numpy",
    "pyyaml",
    "tqdm",
    "typing_extensions",
    "flatbuffers",
    "packaging",
    "protobuf",
    "sympy",
    "mpmath",
    "coloredlogs",
    "humanfriendly",
    "pytest",
    "iniconfig",
    "pluggy",
    "pygments",
]


def say(msg: str) -> None:
    print(f"[emulate] {msg}", flush=True)


def need(*tools: str) -> None:
    """Debian's packages for ``tools`` (qemu-user, mmdebstrap), installed when missing."""
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        packages = {"qemu-x86_64": "qemu-user", "qemu-aarch64": "qemu-user"}
        names = sorted({packages.get(t, t) for t in missing})
        say(f"installing {' '.join(names)} (Debian)")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *names], check=True)


def arm_root() -> Path:
    root = CACHE / "arm64root"
    if not (root / "usr" / "bin" / "python3.11").exists():
        need("mmdebstrap")
        tmp = CACHE / "arm64root.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        say("making a Debian arm64 root (mmdebstrap, about 100 MB)")
        subprocess.run(
            ["mmdebstrap", "--variant=extract", "--arch=arm64", f"--include={ARM_PACKAGES}",
             "bookworm", str(tmp)],
            check=True,
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)
        tmp.rename(root)
    return root


def arm_site() -> Path:
    """The aarch64 packages, cached per requirement list; xyrt's own wheel added every run."""
    key = "-".join(w.split("==")[1] for w in WHEELS[:2])  # onnxruntime and openvino versions
    site = CACHE / f"arm64site-{key}"
    if not (site / ".complete").exists():
        shutil.rmtree(site, ignore_errors=True)
        say("downloading the aarch64 wheels (onnxruntime, openvino, numpy, pytest, ...)")
        plats = [a for p in PLATFORMS for a in ("--platform", p)]
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--only-binary=:all:",
             "--python-version", "3.11", "--implementation", "cp", *plats, "--target", str(site),
             *WHEELS],
            check=True,
        )  # fmt: skip
        (site / ".complete").touch()
    return site


def xyrt_site(into: Path) -> Path:
    """xyrt as installed (its package layout), pure Python: the same wheel on any CPU."""
    wheels = into / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
        check=True,
    )
    site = into / "xyrt-site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
         *map(str, wheels.glob("xyrt-*.whl"))],
        check=True,
    )  # fmt: skip
    return site


def fake_cpuinfo(path: Path, cores: int) -> Path:
    """An Arm Neoverse-N1 /proc/cpuinfo (what ONNX Runtime's CPU detection reads)."""
    core = (
        "processor\t: {n}\nBogoMIPS\t: 50.00\n"
        "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid "
        "asimdrdm lrcpc dcpop asimddp ssbs\nCPU implementer\t: 0x41\nCPU architecture: 8\n"
        "CPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n\n"
    )
    path.write_text("".join(core.format(n=n) for n in range(cores)))
    return path


def command(target: str, work: Path, pytest_args: list[str]) -> tuple[list[str], dict]:
    env = {
        **os.environ,
        "XYRT_TEST_BUNDLE": str(work / "bundle"),
        "XYRT_EXPECT_ISA": ISA[target],
        "XYRT_TEST_CLIPS": CLIPS,
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    pytest = ["-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS, *pytest_args]
    if target == "avx2":
        need("qemu-x86_64")
        return ["qemu-x86_64", "-cpu", HASWELL, sys.executable, *pytest], env
    need("qemu-aarch64")
    root, site = arm_root(), arm_site()
    path = f"{xyrt_site(work)}:{site}"
    cpuinfo = fake_cpuinfo(work / "cpuinfo", os.cpu_count() or 2)
    qemu = (
        f"qemu-aarch64 -cpu {ARM_CPU} -L {root} -E PYTHONPATH={path} -E XYRT_TEST_BUNDLE="
        f"{env['XYRT_TEST_BUNDLE']} -E XYRT_EXPECT_ISA='{ISA[target]}' -E XYRT_TEST_CLIPS={CLIPS} "
        f"-E PYTHONDONTWRITEBYTECODE=1 {root}/usr/bin/python3.11 -P " + " ".join(pytest)
    )
    script = f"mount --bind {cpuinfo} /proc/cpuinfo && {qemu}"
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script], env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", choices=sorted(ISA))
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments (after --)")
    args = parser.parse_args()
    if os.geteuid() != 0 and args.target == "aarch64":
        print("emulate.py aarch64 needs root (mmdebstrap, unshare -m)", file=sys.stderr)
        return 1
    sys.path.insert(0, str(Path(__file__).parent))
    from bundle import make

    with tempfile.TemporaryDirectory(prefix=f"xyrt-{args.target}-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        say("making the bundle natively (exports, reference margins, INT8)")
        make(work / "bundle")
        cmd, env = command(args.target, work, args.pytest_args)
        say(f"running {TESTS} as {ISA[args.target]} ({time.perf_counter() - t0:.0f} s so far)")
        rc = subprocess.run(cmd, env=env, cwd=ROOT).returncode
        say(f"{args.target}: exit {rc} after {time.perf_counter() - t0:.0f} s")
        return rc


if __name__ == "__main__":
    sys.exit(main())
