"""Test helpers shared by the test modules: the golden tiny checkpoints, the published
implementation's outputs, models exported/quantized once per session, and device facts of real
GPUs for TensorRT cache keys. Fixtures live in conftest.py."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

import numpy as np

from xyrt.runtime.backends.trt.profiles import DeviceFacts, Profile
from xyrt.runtime.compare import CodeAgreement, ReferenceCodes, check_codes

FIXTURES = Path(__file__).parent / "fixtures"
GOLDEN_MODELS = ["tiny_16k", "tiny_moss_ttsd_24k"]
CLIPS = [
    "speech_0",
    "speech_1",
    "speech_2",
    "speech_3",
    "speech_4",
    "speech_5",
    "short_quarter_second",
    "exact_frames",
    "silence",
    "chirp_loud",
    "noise_quiet",
    "long_concat",
]
SPEECH = [f"speech_{i}" for i in range(6)]


@cache
def golden(name: str) -> dict[str, np.ndarray]:
    with np.load(FIXTURES / name / "golden.npz") as g:
        return {k: g[k] for k in g.files}


@cache
def codec(name: str):
    from xyrt.runtime.backends.pytorch.codec import XYCodec

    return XYCodec.from_checkpoint(FIXTURES / name / "model.ckpt")


@cache
def exported(name: str) -> Path:
    """The golden checkpoint exported to ONNX once per test session."""
    import tempfile

    from xyrt.export.onnx_export import export_onnx

    out = Path(tempfile.mkdtemp(prefix=f"xyrt-{name}-")) / "onnx"
    return export_onnx(FIXTURES / name / "model.ckpt", out)


# The ONNX Runtime intra-op threads of the golden tests (default: ORT's own choice); the second
# kernel-path run of `make test` sets it to 1 (see Makefile).
ORT_THREADS = int(os.environ.get("XYRT_TEST_ORT_THREADS", "0")) or None
TIES: list[str] = []  # float32 near-tie frames excused this session, listed in the summary


def ort_codec(model_dir: Path, **options):
    """`xyrt.runtime.load` with the session's ORT thread count."""
    import xyrt.runtime

    return xyrt.runtime.load(model_dir, threads=ORT_THREADS, **options)


@cache
def xyrt_reference(name: str, clip: str, overlap: int) -> ReferenceCodes:
    """The xyrt PyTorch model's codes of a golden clip, with their float32 tie margins."""
    return codec(name).encode_reference(golden(name)[f"{clip}/wav"], overlap=overlap)


def reference_margins(name: str, clip: str, overlap: int) -> np.ndarray:
    """Tie margins (8, T) of xyrt's PyTorch codes of a golden clip (see `golden_reference`)."""
    return xyrt_reference(name, clip, overlap).margins


def golden_reference(name: str, clip: str, overlap: int, batch: bool = False) -> ReferenceCodes:
    """The published implementation's codes of a golden clip (``batch``: from its ragged batch)
    with tie margins from xyrt's PyTorch model (golden.npz stores none). Where the codes first
    differ, both computed the same residual up to float32 rounding, so the margin is the same."""
    key = f"batch/{clip}/codes_ov10" if batch else f"{clip}/codes_ov{overlap}"
    return ReferenceCodes(golden(name)[key], xyrt_reference(name, clip, overlap).margins)


def expect_codes(reference: ReferenceCodes, got: np.ndarray, label: str) -> CodeAgreement:
    """`check_codes` (identical except reference float32 near-ties, else `CodesDiffer`);
    excused tie frames are listed at the end of the test session."""
    agreement = check_codes(reference, got)
    TIES.extend(
        f"{label}: frame {t.frame}, stage {t.stage}, margin {t.margin:.1e}" for t in agreement.ties
    )
    return agreement


@cache
def calib_set():
    """A small calibration set from the bundled default audio (1 s and 3 s windows)."""
    from xyrt.calib.dataset import CalibOptions, build

    return build(None, CalibOptions(window_seconds=(1.0, 3.0), max_windows=4))


@cache
def quantized(precision: str) -> Path:
    """tiny_16k quantized once per session: int8 (both schemes, sensitivity on, at most one
    group left float) or fp16 (no sensitivity pass)."""
    import tempfile

    from xyrt.calib.quantize import quantize
    from xyrt.calib.sensitivity import SensitivityOptions

    out = Path(tempfile.mkdtemp()) / precision
    if precision == "int8":
        options = SensitivityOptions(max_groups=1)
        quantized = quantize(
            exported("tiny_16k"), out, "int8", calib=calib_set(), sensitivity=options
        )
        return quantized.directory
    return quantize(
        exported("tiny_16k"), out, precision, sensitivity=SensitivityOptions(False)
    ).directory


ORIN = DeviceFacts("Orin", "8.7", "10.3.0")
H100 = DeviceFacts("NVIDIA H100 80GB HBM3", "9.0", "11.0.0")


def run_bench(args: list[str]) -> tuple[dict, str]:
    """`xyrt bench ARGS` in-process (``args`` must include ``--json PATH``): its JSON report and
    what it printed."""
    import contextlib
    import io
    import json

    from xyrt.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["bench", *args]) == 0
    return json.loads(Path(args[args.index("--json") + 1]).read_text()), buf.getvalue()


def moss_ttsd_v07(folder: Path) -> tuple[Path, Path]:
    """(weights, config) of a tiny MOSS-TTSD v0.7-layout codec under ``folder`` (the
    ``XY_Tokenizer`` folder): ``weights/MOSS_TTSD_tokenizer`` (no extension) and the flat
    ``config/MOSS_TTSD_tokenizer.yaml`` of a 32 kHz decoder. The tiny_moss_ttsd_24k fixture's
    encoder and quantizer (so its codes are the golden codes) under a seeded 32 kHz vocoder."""
    import yaml

    from xyrt.config import XYConfig
    from xyrt.export.synth import synth_model
    from xyrt.runtime.network.checkpoint import save_checkpoint
    from xyrt.runtime.network.state import read_state_dict

    name = "tiny_moss_ttsd_24k"
    raw = yaml.safe_load((FIXTURES / name / "config.yaml").read_text())
    gp = raw["generator_params"]
    gp["output_sample_rate"], gp["decoder_upsample_rate"] = 32000, 2560
    gp["vocos_kwargs"].update(n_fft=1280, hop_size=320)
    config = folder / "config" / "MOSS_TTSD_tokenizer.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(yaml.safe_dump({"generator_params": gp}, sort_keys=False))  # flat
    state = synth_model(XYConfig.from_yaml(config), seed=7).state_dict()
    for tensor_name, tensor in read_state_dict(FIXTURES / name / "model.ckpt").items():
        if not tensor_name.startswith("enhanced_vocos."):
            state[tensor_name] = tensor
    weights = folder / "weights" / "MOSS_TTSD_tokenizer"
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(state, weights)
    return weights, config


def stage_sum_misses(report: dict, low: float = 0.9, high: float = 1.1) -> list[str]:
    """The cases of a bench report whose stages (with the "unattributed" row) do not add up to
    ``low``-``high`` of the profiled run, or whose attributed stages alone exceed ``high`` of
    it (time counted twice)."""
    misses = []
    for b in report["backends"]:
        if b["status"] != "ok" or not b["cases"][0]["stages_ms"]:
            continue
        for c in b["cases"]:
            stages, run = c["stages_ms"], c["stages_total_ms"]
            attributed = sum(v for k, v in stages.items() if k != "unattributed")
            where = f"{b['name']} {c['op']} {c['seconds']:g} s x{c['batch']}"
            if not low * run <= sum(stages.values()) <= high * run:
                misses.append(f"{where}: stages sum to {sum(stages.values()):.2f} of {run:.2f} ms")
            if attributed > high * run:
                misses.append(f"{where}: attributed {attributed:.2f} ms of a {run:.2f} ms run")
    return misses


ENGINE_MODEL = {
    "output_sample_rate": 16000,
    "samples_per_code_out": 1280,
    "num_quantizers": 8,
    "codebook_size": 1024,
}


def fake_engines(folder: Path, max_batch: int = 2) -> Path:
    """An engine directory as `xyrt build` writes it (engines.json and two plan files), for a
    profile of ``max_batch``; the plans hold nothing (nothing here deserializes them)."""
    folder.mkdir(parents=True, exist_ok=True)
    profile = Profile(max_batch=max_batch).to_dict()
    engines = {}
    for graph in ("encoder", "decoder"):
        (folder / f"{graph}.plan").write_bytes(b"plan")
        engines[graph] = {
            "file": f"{graph}.plan",
            "graph": graph,
            "plan_sha256": "0" * 64,
            "graph_sha256": "1" * 64,
            "precision": "fp32",
            "profile": profile,
            "num_quantizers": 8,
            "device": {"gpu_name": ORIN.gpu_name, "compute_capability": ORIN.compute_capability},
        }
    doc = {
        "format": "xyrt-trt-engines",
        "format_version": 1,
        "model": ENGINE_MODEL,
        "engines": engines,
    }
    (folder / "engines.json").write_text(json.dumps(doc))
    return folder
