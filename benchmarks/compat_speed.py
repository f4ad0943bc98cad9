"""What a MOSS-TTSD user gains from `xyrt.compat`: the published XY_Tokenizer calls, timed.

    python benchmarks/compat_speed.py --checkpoint CKPT --model ONNX_FP32 --model ONNX_INT8 \
        [--model ONNX_FP32@openvino] [--seconds 10] [--runs 3] [--threads N]

Times ``spt.encode([wav])`` and ``spt.decode([codes])`` (torch tensors in and out, as MOSS-TTSD
calls them) on one clip of bundled speech, interleaved in one process after a warm-up:
- published: the published class's cost, stood in for by xyrt's PyTorch path with every window
  padded to 30 s as the published code does (same codes; `xyrt bench` uses the same stand-in);
- compat pytorch: the same model with trimmed windows;
- compat on each export directory given, DIR@BACKEND picking the backend (default "auto":
  ONNX Runtime CPU, or TensorRT for an engine directory; "openvino" runs it with OpenVINO).
Prints one table: median seconds, speed-up against published measured in the same run, and
codes identical to the published path. With `xyrt synth` checkpoints the weights are synthetic.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from xyrt.compat import XY_Tokenizer
from xyrt.data import speech_clip
from xyrt.runtime.backends.pytorch.codec import XYCodec
from xyrt.runtime.modeldir.manifest import read_manifest
from xyrt.runtime.network.checkpoint import load_model


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, help=".ckpt or Hugging Face-layout folder")
    ap.add_argument(
        "--model", action="append", default=[], help="export directory[@backend] (repeat)"
    )
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, help="torch and ONNX Runtime threads (default: all)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model = load_model(args.checkpoint)
    tokenizers = {
        "published (PyTorch, 30 s windows)": XY_Tokenizer(XYCodec(model, pad_to_30s=True)),
        "compat pytorch": XY_Tokenizer(XYCodec(model)),
    }
    for spec in args.model:
        d, _, backend = spec.partition("@")
        spt = XY_Tokenizer.from_pretrained(d, backend or "auto", threads=args.threads)
        precision = read_manifest(d).data.get("precision", "fp32")
        tokenizers[f"compat {spt.codec.backend.name} {precision} ({Path(d).name})"] = spt
    wav = torch.from_numpy(speech_clip(args.seconds))

    def encode(spt: XY_Tokenizer) -> torch.Tensor:
        return spt.encode([wav.squeeze()])["codes_list"][0]

    def decode(spt: XY_Tokenizer, codes: torch.Tensor) -> torch.Tensor:
        return spt.decode([codes], overlap_seconds=10)["syn_wav_list"][0]

    published = next(iter(tokenizers.values()))
    ref = encode(published)
    for spt in tokenizers.values():  # warm-up
        decode(spt, encode(spt))
    enc = {k: [] for k in tokenizers}
    dec = {k: [] for k in tokenizers}
    same = {}
    for _ in range(args.runs):
        for name, spt in tokenizers.items():
            t, codes = _timed(encode, spt)
            enc[name].append(t)
            same[name] = float((codes == ref).float().mean())
            t, _ = _timed(decode, spt, ref)
            dec[name].append(t)

    e0, d0 = statistics.median(enc[next(iter(enc))]), statistics.median(dec[next(iter(dec))])
    threads = torch.get_num_threads()
    print(f"{args.seconds:g} s clip, {args.runs} runs (median), torch threads {threads}")
    head = f"{'backend':<40}{'encode s':>10}{'x pub':>8}{'decode s':>10}{'x pub':>8}"
    head += f"{'codes = pub':>13}"
    print(head)
    print("-" * len(head))
    for name in tokenizers:
        e, d = statistics.median(enc[name]), statistics.median(dec[name])
        row = f"{name:<40}{e:>10.2f}{e0 / e:>7.2f}x{d:>10.2f}{d0 / d:>7.2f}x"
        print(row + f"{100 * same[name]:>12.1f}%")
    print(f"codes: {tuple(ref.shape)}, identical fraction over all 8 stages vs published")


if __name__ == "__main__":
    main()
