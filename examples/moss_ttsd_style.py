"""XY-Tokenizer the way MOSS-TTSD calls it, through xyrt: only the import line changes.

    python examples/moss_ttsd_style.py --config tests/fixtures/tiny_moss_ttsd_24k/config.yaml \
        --ckpt tests/fixtures/tiny_moss_ttsd_24k/model.ckpt [--model xy_onnx]

Encodes each speech clip of a golden file (the published implementation's outputs) as
MOSS-TTSD's process_inputs does, decodes the tokens back as its generation code does, and
checks both against the golden codes and audio. With --model the same calls run the exported
graphs (ONNX Runtime) instead of PyTorch. Exit status 0 when every clip's codes are identical.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from xyrt.compat import XY_Tokenizer  # was: from XY_Tokenizer.xy_tokenizer.model import ...
from xyrt.runtime.backends.pytorch.codec import XYCodec
from xyrt.runtime.compare import compare_codes

GOLDEN = Path(__file__).resolve().parents[1] / "tests/fixtures/tiny_moss_ttsd_24k/golden.npz"


def load_tokenizer(spt_config_path: str, spt_checkpoint_path: str, model_dir: str | None):
    if model_dir:  # an `xyrt export` directory: ONNX Runtime runs the same calls
        spt = XY_Tokenizer.from_pretrained(model_dir)
    else:
        spt = XY_Tokenizer.load_from_checkpoint(
            config_path=spt_config_path, ckpt_path=spt_checkpoint_path
        )
    spt.eval()
    return spt


def margins(reference: XYCodec, clip: str, golden) -> np.ndarray:
    """Float32 tie margins of the reference codes (golden.npz stores none): a frame may differ
    only where its first differing stage is a near-tie (docs/SPEC.md, runtime/compare.py)."""
    return reference.encode_reference(golden[f"{clip}/wav"]).margins


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="XY-Tokenizer YAML config")
    parser.add_argument("--ckpt", required=True, help="XY-Tokenizer checkpoint")
    parser.add_argument("--model", help="xyrt export directory (ONNX Runtime instead of PyTorch)")
    parser.add_argument("--golden", default=str(GOLDEN), help="golden.npz to check against")
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    spt = load_tokenizer(args.config, args.ckpt, args.model).to(device)
    golden = np.load(args.golden)
    clips = sorted(k[: -len("/wav")] for k in golden.files if k.endswith("/wav"))
    clips = [c for c in clips if c.startswith("speech_")]
    reference = XYCodec.from_checkpoint(args.ckpt, args.config)  # judges float32 near-ties
    identical, ties, worst = 0, 0, 0.0
    for clip in clips:
        wav = torch.from_numpy(golden[f"{clip}/wav"])[None]  # (1, samples), as torchaudio.load
        with torch.no_grad():
            encode_result = spt.encode([wav.squeeze().to(device)])
            audio_token = encode_result["codes_list"][0].permute(1, 0).cpu().numpy()  # (T, 8)
        ref_codes = golden[f"{clip}/codes_ov10"]
        agreement = compare_codes(ref_codes, audio_token.T, margins(reference, clip, golden))
        ok = ref_codes.shape == audio_token.T.shape and agreement.unexplained == 0
        identical += ok
        ties += agreement.frames_tied
        codes = torch.from_numpy(audio_token).to(device)  # what the LM would have generated
        with torch.no_grad():
            decode_result = spt.decode([codes.permute(1, 0)], overlap_seconds=10)
        syn = decode_result["syn_wav_list"][0].cpu().numpy()
        ref = golden[f"{clip}/recon_ov10"]
        error = float(np.abs(syn - ref).max() / np.abs(ref).max())
        worst = max(worst, error)
        status = "identical" if ok else "DIFFERENT"
        status += (
            f" ({agreement.frames_tied} float32 near-tie frames)" if agreement.frames_tied else ""
        )
        print(
            f"{clip}: {audio_token.shape[0]} frames, codes {status}, audio error {error:.1e} x peak"
        )
    print(
        f"golden codes reproduced: {identical}/{len(clips)} clips (identical except {ties} "
        f"float32 near-tie frames); audio within "
        f"{worst:.1e} x peak at {spt.output_sample_rate} Hz"
    )
    return 0 if identical == len(clips) else 1


if __name__ == "__main__":
    sys.exit(main())
