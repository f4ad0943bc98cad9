"""``xyrt verify``: an exported model against the PyTorch model, on speech and edge cases.

Every clip is encoded by both (codes compared per RVQ stage; a differing frame is excused only
when its first differing stage is a float32 tie in the reference) and the reference codes are
decoded by both (max error relative to the peak, SNR). All failures are collected and reported
together; the caller exits non-zero when any clip fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xyrt.config import INPUT_SAMPLE_RATE
from xyrt.errors import XyrtError
from xyrt.runtime.backends.pytorch.codec import XYCodec
from xyrt.runtime.backends.registry import entry_for, source_kind
from xyrt.runtime.codec import ChunkedCodec
from xyrt.runtime.compare import (
    TIE_TOLERANCE,
    CodeAgreement,
    compare_codes,
    max_error_ratio,
    snr_db,
)
from xyrt.runtime.graph_io import DECODER, ENCODER, has_window_inputs
from xyrt.runtime.modeldir.manifest import read_manifest
from xyrt.runtime.network.checkpoint import checkpoint_sha256, load_model
from xyrt.runtime.network.model import XYTokenizer

AUDIO_TOLERANCE = 1e-3  # max |error| / peak for float32 graphs


def verification_clips(seconds_long: float = 45.0, heldout: bool = False) -> dict[str, np.ndarray]:
    """The bundled speech plus edge cases: very short, exact frames, silence, loud, quiet, long.

    ``heldout``: the speech is the bundled held-out sentences instead, which no calibration set
    contains (for quantized models)."""
    from xyrt.data import bundled_speech, heldout_speech, speech_clip
    from xyrt.runtime.formats.audio import load_audio

    if heldout:
        speech = heldout_speech()
    else:
        speech = {name: load_audio(path) for name, path in bundled_speech().items()}
    joined = np.concatenate(list(speech.values()))
    rng = np.random.default_rng(0)
    t = np.arange(3 * INPUT_SAMPLE_RATE) / INPUT_SAMPLE_RATE
    clips = dict(speech)
    clips["short_quarter_second"] = joined[:4000]
    clips["exact_frames"] = joined[:51200]
    clips["silence"] = np.zeros(32000, np.float32)
    clips["chirp_loud"] = (0.99 * np.sin(2 * np.pi * (100 + 2500 * t) * t)).astype(np.float32)
    clips["noise_quiet"] = (1e-3 * rng.standard_normal(32000)).astype(np.float32)
    clips["long"] = (
        np.resize(joined, int(seconds_long * INPUT_SAMPLE_RATE))
        if heldout
        else speech_clip(seconds_long)
    )
    return clips


@dataclass(frozen=True)
class ClipResult:
    name: str
    seconds: float
    codes: CodeAgreement
    audio_error: float  # max |error| / peak
    audio_snr_db: float
    failures: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.failures


def verify_codec(
    reference_model: XYTokenizer,
    candidate: ChunkedCodec,
    clips: dict[str, np.ndarray],
    tie_tolerance: float = TIE_TOLERANCE,
    audio_tolerance: float = AUDIO_TOLERANCE,
    progress: Callable[[str], None] | None = None,
    min_stage0: float | None = None,
) -> list[ClipResult]:
    """Compare ``candidate`` against the PyTorch ``reference_model`` on every clip.

    Float32 candidates (``min_stage0`` None) must match except float32 ties, audio within
    ``audio_tolerance`` x peak. Quantized ones must reach ``min_stage0`` identical first-stage
    codes; their audio error and SNR are reported, not judged.
    """
    ref_codec = XYCodec(reference_model)
    results = []
    for name, wav in clips.items():
        if progress:
            progress(name)
        reference = ref_codec.encode_reference(wav)
        ref_codes = reference.codes
        got = candidate.encode(wav)
        agreement = compare_codes(reference, got, tie_tolerance=tie_tolerance)
        ref_audio = ref_codec.decode(ref_codes)
        got_audio = candidate.decode(ref_codes)
        failures = []
        if min_stage0 is None and not agreement.ok:
            failures.append(f"codes differ beyond float32 near-ties: {agreement.describe(3)}")
        if min_stage0 is not None and agreement.per_stage[0] < min_stage0:
            failures.append(
                f"stage-0 codes {100 * agreement.per_stage[0]:.1f}% identical < "
                f"{100 * min_stage0:.0f}%"
            )
        err = max_error_ratio(ref_audio, got_audio) if got_audio.shape == ref_audio.shape else 1.0
        if not np.isfinite(got_audio).all():
            failures.append("audio has NaN/Inf")
        elif min_stage0 is None and err > audio_tolerance:
            failures.append(f"audio error {err:.2e} x peak > {audio_tolerance:.0e}")
        snr = snr_db(ref_audio, got_audio) if got_audio.shape == ref_audio.shape else -np.inf
        results.append(
            ClipResult(name, len(wav) / INPUT_SAMPLE_RATE, agreement, err, snr, tuple(failures))
        )
    return results


def model_facts(model_dir: str | Path) -> tuple[dict, str, list[str | None]]:
    """(manifest data, precision, graph targets to verify) of a model or engine directory."""
    if source_kind(model_dir) == "engines":
        from xyrt.runtime.backends.trt.backend import read_engines

        engines = read_engines(model_dir)
        return engines["model"], "tensorrt-" + engines["engines"]["encoder"]["precision"], [None]
    data = read_manifest(model_dir).data
    targets = [None] + [
        t for t in data.get("targets", {}) if data["targets"][t]["encoder"] != "encoder"
    ]
    return data, data.get("precision", "fp32"), targets


def window_inputs_note(model_dir: str | Path) -> str | None:
    """A note for an export whose graphs predate the window inputs (``positions``,
    ``mel_reference``), else None: offline codes are unaffected, streams behave as before."""
    if source_kind(model_dir) != "export":
        return None
    manifest = read_manifest(model_dir)
    old = [
        name
        for name in manifest.data["graphs"]
        if not has_window_inputs(manifest.input_names(name), graph_kind(name))
    ]
    if not old:
        return None
    return (
        f"note: {', '.join(old)} predate the window inputs (positions, mel_reference): offline "
        "codes are unaffected, but streams restart positions at 0 in every window and take the "
        "log-mel floor from the window alone; re-export (xyrt export) for streams that follow "
        "the offline codes"
    )


def graph_kind(name: str) -> str:
    """ "encoder" or "decoder" for a manifest graph name ("encoder", "encoder_int8", ...)."""
    return DECODER if name.startswith(DECODER) else ENCODER


def verify_dir(
    model_dir: str | Path,
    checkpoint: str | Path | None = None,
    config: str | Path | None = None,
    clips: dict[str, np.ndarray] | None = None,
    progress: Callable[[str], None] | None = None,
    min_stage0: float = 0.98,
    target: str | None = None,
    backend: str = "auto",
    precision: str | None = None,
) -> list[ClipResult]:
    """Verify a model directory (ONNX Runtime, CPU; ``target`` picks a graph set) or an engine
    directory (TensorRT) against the source checkpoint: fp32 ONNX exactly (up to float32 ties),
    every other precision and TensorRT by ``min_stage0`` first-stage agreement on held-out
    speech, with per-stage agreement and SNR reported. ``backend``/``precision`` pick the
    runtime (OpenVINO: fp32 is judged exactly, bf16 and int8 by first-stage agreement). Every
    graph file is hashed in full (loads trust a file whose stat is unchanged since it last
    matched)."""
    import xyrt.runtime

    data, stored, _ = model_facts(model_dir)
    source = data["source_checkpoint"]
    checkpoint = Path(checkpoint or source.get("path", ""))
    if not checkpoint.exists():
        raise XyrtError(
            f"the source checkpoint {checkpoint} is not there; pass it with --checkpoint"
        )
    if checkpoint_sha256(checkpoint) != source["sha256"]:
        raise XyrtError(
            f"{checkpoint} is not the checkpoint {model_dir} was exported from (sha256 differs)"
        )
    if source_kind(model_dir) == "export":  # every graph re-hashed, stamps or not
        manifest = read_manifest(model_dir)
        for graph in manifest.data["graphs"]:
            manifest.check_graph(graph, rehash=True)
    reference = load_model(checkpoint, config)
    entry = entry_for(source_kind(model_dir), backend)
    options: dict[str, Any] = {"precision": precision} if precision is not None else {}
    if entry.takes("target"):
        options["target"] = target
    candidate = xyrt.runtime.load(model_dir, backend=entry.name, **options)
    # a backend that picks its precision (OpenVINO's bf16 over fp32 graphs) runs its own
    exact = (getattr(candidate.backend, "precision", None) or stored) == "fp32"
    return verify_codec(
        reference,
        candidate,
        clips or verification_clips(heldout=not exact),
        progress=progress,
        min_stage0=None if exact else min_stage0,
    )


def verify_torch(
    checkpoint: str | Path,
    config: str | Path | None = None,
    device: str | None = None,
    precision: str | None = None,
    clips: dict[str, np.ndarray] | None = None,
    progress: Callable[[str], None] | None = None,
    min_stage0: float = 0.98,
) -> list[ClipResult]:
    """Verify the PyTorch backend on ``device`` (a GPU, say) at ``precision`` against the same
    checkpoint in float32 on the CPU: float32 exactly (up to float32 ties, audio within
    tolerance), bf16/fp16 by ``min_stage0`` first-stage agreement on held-out speech."""
    import xyrt.runtime

    options = {"config": config} if config is not None else {}
    candidate = xyrt.runtime.load(
        checkpoint, backend="torch", device=device, precision=precision, **options
    )
    exact = candidate.backend.precision == "fp32"
    try:
        return verify_codec(
            load_model(checkpoint, config),
            candidate,
            clips or verification_clips(heldout=not exact),
            progress=progress,
            min_stage0=None if exact else min_stage0,
        )
    finally:
        candidate.close()


def format_report(results: list[ClipResult]) -> str:
    """A table: per clip, codes identical % per RVQ stage, tie frames, audio error and SNR."""
    stages = len(results[0].codes.per_stage) if results else 0
    head = f"{'clip':<22}{'sec':>6} " + "".join(f"{'s' + str(i):>7}" for i in range(stages))
    head += f"{'ties':>6}{'other':>6}{'audio err':>11}{'SNR dB':>8}  status"
    lines = [head, "-" * len(head)]
    for r in results:
        row = f"{r.name:<22}{r.seconds:>6.1f} "
        row += "".join(f"{100 * s:>6.1f}%" for s in r.codes.per_stage)
        row += f"{r.codes.frames_tied:>6}{r.codes.unexplained:>6}"
        row += f"{r.audio_error:>11.1e}{r.audio_snr_db:>8.1f}  "
        row += "ok" if r.ok else "FAIL: " + "; ".join(r.failures)
        lines.append(row)
    failed = sum(not r.ok for r in results)
    lines.append(f"{len(results) - failed}/{len(results)} clips passed")
    return "\n".join(lines)
