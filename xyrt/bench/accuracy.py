"""Accuracy beside speed: every benchmarked backend against the FP32 reference on held-out speech.

The reference backend (the first FP32 one measured: ``REFERENCE_ORDER``) runs first and saves
its codes for the bundled held-out clips (`xyrt.data.heldout_speech`, which no
calibration set contains) and its decoding of them. Every other backend encodes the same clips
(codes compared per RVQ stage) and decodes the reference codes (SNR against the reference
audio). Workers exchange these through .npz files in a folder of the driver's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from xyrt.config import N_SAMPLES
from xyrt.runtime.chunking import num_codes
from xyrt.runtime.compare import compare_codes, snr_db

# FP32 backends that can serve as the reference, in order of preference
REFERENCE_ORDER = (
    "ort-fp32",
    "openvino-fp32",
    "pytorch",
    "pytorch-published",
    "pytorch-cuda",
    "pytorch-published-cuda",
)


def heldout_clips() -> dict[str, np.ndarray]:
    """The held-out clips, each cut to one window (30 s)."""
    from xyrt.data import heldout_speech

    return {name: wav[:N_SAMPLES] for name, wav in heldout_speech().items()}


def save_outputs(
    path: str | Path,
    encode: Callable[[np.ndarray, np.ndarray], np.ndarray],
    decode: Callable[[np.ndarray], np.ndarray],
    pack: Callable,
    reference: str | Path | None,
) -> None:
    """Encode every held-out clip; decode the reference codes (or, for the reference itself,
    its own codes); save codes and audio by clip name to ``path`` (.npz)."""
    ref = dict(np.load(reference)) if reference else {}
    out = {}
    for name, wav in heldout_clips().items():
        codes = encode(*pack([wav]))[:, 0, : num_codes(len(wav))]
        out[f"codes/{name}"] = np.asarray(codes, np.int64)
        source = ref.get(f"codes/{name}", out[f"codes/{name}"])
        out[f"audio/{name}"] = np.asarray(decode(np.ascontiguousarray(source[:, None, :]))[0])
    np.savez(path, **out)


def agreement(reference: str | Path, candidate: str | Path) -> dict:
    """Stage-0 and all-stage code agreement and decoder SNR (dB) of ``candidate`` vs
    ``reference`` (both from `save_outputs`), pooled over the held-out clips."""
    ref, got = dict(np.load(reference)), dict(np.load(candidate))
    names = sorted(k.split("/", 1)[1] for k in ref if k.startswith("codes/"))
    a = compare_codes(
        np.concatenate([ref[f"codes/{n}"] for n in names], axis=1),
        np.concatenate([got[f"codes/{n}"] for n in names], axis=1),
    )
    snr = snr_db(
        np.concatenate([ref[f"audio/{n}"].ravel() for n in names]),
        np.concatenate([got[f"audio/{n}"].ravel() for n in names]),
    )
    return {
        "stage0": a.per_stage[0],
        "all_stages": a.identical,
        "per_stage": list(a.per_stage),
        "frames": a.frames,
        "snr_db": None if np.isinf(snr) else float(snr),  # None: identical audio
        "clips": names,
    }


def pick(report: dict, min_stage0: float, min_snr_db: float) -> list[dict]:
    """Per measured case (op, seconds, batch): the fastest backend whose stage-0 agreement
    (encode) or decoder SNR (decode; identical audio counts as met) meets the threshold."""
    best: dict[tuple, dict] = {}
    for b in report["backends"]:
        acc = b.get("accuracy")
        if b["status"] != "ok" or acc is None:
            continue
        for c in b["cases"]:
            if c["op"] == "encode":
                ok = acc["stage0"] >= min_stage0
            else:
                ok = acc["snr_db"] is None or acc["snr_db"] >= min_snr_db
            key = (c["op"], c["seconds"], c["batch"])
            if ok and (key not in best or c["latency_ms"]["p50"] < best[key]["p50_ms"]):
                best[key] = {
                    "op": c["op"],
                    "seconds": c["seconds"],
                    "batch": c["batch"],
                    "backend": b["name"],
                    "p50_ms": c["latency_ms"]["p50"],
                    "speedup_vs_published": c.get("speedup_vs_published"),
                    "stage0": acc["stage0"],
                    "snr_db": acc["snr_db"],
                }
    return [best[k] for k in sorted(best)]
