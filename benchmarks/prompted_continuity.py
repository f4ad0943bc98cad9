"""Audio continuity at the cut of a prompted decode (MOSS-TTSD's server decode, issue 28).

    python benchmarks/prompted_continuity.py --model MODEL [--prompt-seconds 4,6,8] [--seconds 12]

One stretch of bundled speech is encoded; for each prompt length, its first ``--prompt-seconds``
of codes are the prompt (the reference speaker's codes), the next ``--seconds`` the "generated"
codes. The reference is
the whole sequence decoded in one piece (`codec.decode`, 30 s windows) with the prompt's audio
cut off: the audio the generated codes have when they continue the prompt. Against it, SNR (dB)
of the generated audio decoded with the prompt (`codec.decode(codes, prompt=...)`) and without
(`codec.decode(codes)`), over the first 0.1 s and 1 s after the cut and over all of it; the
median over the prompt lengths is printed as JSON.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

import xyrt.runtime
from xyrt.config import SAMPLES_PER_CODE_IN
from xyrt.data import speech_clip


def snr_db(reference: np.ndarray, x: np.ndarray) -> float:
    noise = float(np.sum((reference - x) ** 2))
    return float("inf") if noise == 0 else float(10 * np.log10(np.sum(reference**2) / noise))


def measure(codec, codes: np.ndarray, p: int) -> dict[str, dict[str, float]]:
    """SNRs (dB) of the generated part codes[:, p:] decoded with and without codes[:, :p]."""
    spc = codec.info.samples_per_code_out
    prompt, generated = codes[:, :p], codes[:, p:]
    reference = codec.decode(codes)[p * spc :]
    decoded = {
        "prompted": codec.decode(generated, prompt=prompt),
        "unprompted": codec.decode(generated),
    }
    spans = {"first_0.1s": 0.1, "first_1s": 1.0, "all": None}
    out = {}
    for name, seconds in spans.items():
        n = len(reference) if seconds is None else round(codec.output_sample_rate * seconds)
        out[name] = {k: snr_db(reference[:n], v[:n]) for k, v in decoded.items()}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="export directory or checkpoint")
    ap.add_argument(
        "--prompt-seconds", default="4,6,8,10,12", help="prompt lengths to cut at, comma-separated"
    )
    ap.add_argument("--seconds", type=float, default=12.0, help="generated codes, seconds")
    args = ap.parse_args()

    codec = xyrt.runtime.load(args.model)
    cuts = [float(x) for x in args.prompt_seconds.split(",") if x.strip()]
    codes = codec.encode(speech_clip(max(cuts) + args.seconds), 16000)
    runs = []
    for seconds in cuts:
        p = int(seconds * 16000) // SAMPLES_PER_CODE_IN
        n = p + int(args.seconds * 16000) // SAMPLES_PER_CODE_IN
        runs.append(measure(codec, codes[:, :n], p))
    median = {
        span: {k: round(float(np.median([r[span][k] for r in runs])), 2) for k in runs[0][span]}
        for span in runs[0]
    }
    result = {
        "model": str(args.model),
        "backend": codec.backend.name,
        "prompt_seconds": cuts,
        "generated_seconds": args.seconds,
        "median_snr_db": median,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
