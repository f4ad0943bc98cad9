"""Quality figures on the trained proxy (issue 30) beside the same config with seeded random
weights, in one run: streaming against offline over the settings grid, INT8 (cpu-dynamic, trt-qdq
run by ONNX Runtime on the CPU, OpenVINO) and bf16/fp16 agreement, and attention locality per
layer.

    make proxy    # the trained proxy, cached in .cache/xyrt/proxy-16k-seed0
    python benchmarks/proxy_quality.py --trained .cache/xyrt/proxy-16k-seed0/model.ckpt \\
        [--work .cache/xyrt/proxy-quality] [--json FILE]

Audio: held-aside speech only (speech_4, speech_5 and the three held-out espeak-ng sentences,
never trained on, never in the calibration set, which is speech_0..3). Agreement is of codes
against the same model's float32 codes (ONNX Runtime), SNR of the decoded audio against the
float32 decode of the same codes. The random model is `xyrt synth` of the proxy's config (seed
0): the same architecture and size, so the two columns differ by training alone.

Attention locality: for every transformer layer, the share of attention mass (softmax weights,
averaged over heads and valid query frames) on keys within +-1, +-2 and +-5 s of the query, at
that stack's frame rate (50 Hz encoders and pre-RVQ adapter, 12.5 Hz post-RVQ adapter, 50 Hz
acoustic decoder), over the held-aside clips joined into one window (up to 28 s); "uniform" is
what evenly spread attention would give on the same window.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

import xyrt.runtime
from xyrt.data import bundled_speech, heldout_speech
from xyrt.runtime.compare import compare_codes, snr_db
from xyrt.runtime.formats.audio import load_audio
from xyrt.runtime.network.checkpoint import load_model

sys.path.insert(0, str(Path(__file__).parent))
from streaming import decode_flat, encode_flat  # noqa: E402

HOPS, CONTEXTS, LOOKAHEADS = (0.08, 0.16, 0.32), (1.0, 2.0, 5.0), (0.16, 0.32)
RADII = (1.0, 2.0, 5.0)  # seconds


def held_aside() -> dict[str, np.ndarray]:
    clips = {n: load_audio(p) for n, p in bundled_speech().items() if n in ("speech_4", "speech_5")}
    clips.update(heldout_speech())
    return clips


def xyrt_cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "xyrt.cli", *args], check=True)


def prepare(name: str, ckpt: Path, work: Path, calib: Path) -> dict[str, Path]:
    """Export, INT8 (three schemes) and fp16 graphs of one checkpoint; cached in ``work``."""
    folder = work / name
    onnx, int8, fp16 = folder / "onnx", folder / "int8", folder / "fp16"
    if not (onnx / "manifest.json").is_file():
        xyrt_cli("export", "--checkpoint", str(ckpt), "-o", str(onnx))
    if not (int8 / "manifest.json").is_file():
        schemes = "cpu-dynamic,trt-qdq,openvino"
        xyrt_cli("quantize", str(onnx), "--scheme", schemes, "--calib", str(calib), "-o", str(int8))
    if not (fp16 / "manifest.json").is_file():
        xyrt_cli("quantize", str(onnx), "--precision", "fp16", "-o", str(fp16))
    return {"ckpt": ckpt, "onnx": onnx, "int8": int8, "fp16": fp16}


def agreement(reference, codec, clips: dict[str, np.ndarray]) -> dict:
    """Codes of ``codec`` against ``reference``'s, pooled over the clips, and the SNR of its
    decode of the reference codes against the reference decode."""
    stage, identical, frames, snrs = None, 0.0, 0, []
    for wav in clips.values():
        ref = reference.encode(wav)
        got = compare_codes(ref, codec.encode(wav))
        n = ref.shape[-1]
        per = np.asarray(got.per_stage) * n
        stage = per if stage is None else stage + per
        identical += got.identical * n
        frames += n
        snrs.append(snr_db(reference.decode(ref), codec.decode(ref)))
    return {
        "stage0_pct": round(100 * stage[0] / frames, 1),
        "per_stage_pct": [round(100 * s / frames, 1) for s in stage],
        "all_stage_pct": round(100 * identical / frames, 1),
        "decode_snr_db": round(float(np.mean(snrs)), 2),
    }


def precisions(paths: dict[str, Path], clips: dict[str, np.ndarray]) -> dict:
    fp32 = xyrt.runtime.load(paths["onnx"])
    rows = {
        "int8 cpu-dynamic (ORT)": xyrt.runtime.load(paths["int8"]),
        "int8 trt-qdq (ORT CPU)": xyrt.runtime.load(paths["int8"], target="tensorrt"),
        "int8 OpenVINO (NNCF)": xyrt.runtime.load(
            paths["int8"], backend="openvino", precision="int8"
        ),
        "fp16 (ORT CPU)": xyrt.runtime.load(paths["fp16"]),
    }
    out = {name: agreement(fp32, codec, clips) for name, codec in rows.items()}
    torch32 = xyrt.runtime.load(paths["ckpt"], device="cpu", precision="fp32")
    bf16 = xyrt.runtime.load(paths["ckpt"], device="cpu", precision="bf16")
    out["bf16 (PyTorch CPU, vs PyTorch fp32)"] = agreement(torch32, bf16, clips)
    return out


def stream_grid(onnx: Path, wav: np.ndarray) -> list[dict]:
    codec = xyrt.runtime.load(onnx)
    offline = codec.encode(wav)
    audio = codec.decode(offline)
    rows = []
    for hop in HOPS:
        for ctx in CONTEXTS:
            for la in LOOKAHEADS:
                opts = dict(hop=hop, context=ctx, lookahead=la)
                got = compare_codes(offline, encode_flat(codec, wav, **opts))
                rows.append(
                    {
                        "hop": hop,
                        "context": ctx,
                        "lookahead": la,
                        "stage0_pct": round(100 * got.per_stage[0], 1),
                        "all_stage_pct": round(100 * got.identical, 1),
                        "decode_snr_db": round(
                            snr_db(audio, decode_flat(codec, offline, **opts)), 2
                        ),
                    }
                )
    return rows


def _snr(reference: np.ndarray, test: np.ndarray) -> float:
    return round(snr_db(reference, test), 2)


@torch.no_grad()
def locality(ckpt: Path, clips: dict[str, np.ndarray]) -> dict:
    """Share of attention mass within +-RADII seconds, per stack and layer (see the docstring)."""
    model = load_model(ckpt).float().eval()
    stacks = {
        "semantic_encoder": model.semantic_encoder,
        "semantic_encoder_adapter": model.semantic_encoder_adapter,
        "acoustic_encoder": model.acoustic_encoder,
        "pre_rvq_adapter": model.pre_rvq_adapter,
        "post_rvq_adapter": model.post_rvq_adapter,
        "acoustic_decoder": model.acoustic_decoder,
    }
    sums: dict[str, np.ndarray] = {}
    uniform: dict[str, np.ndarray] = {}
    seconds = {"now": 0.0}
    hooks = []

    def hook(key: str):
        def take(module, inputs):
            x, bias = inputs
            b, t, _ = x.shape
            heads, dim = module.heads, module.head_dim
            q = (module.q_proj(x) * module.scaling).view(b, t, heads, dim).transpose(1, 2)
            k = module.k_proj(x).view(b, t, heads, dim).transpose(1, 2)
            w = torch.softmax(q @ k.transpose(-1, -2) + bias, dim=-1)  # (b, h, t, t)
            valid = bias[0, 0, 0] == 0 if bias.ndim == 4 else torch.ones(t, dtype=torch.bool)
            n = int(valid.sum())
            rate = n / seconds["now"]
            dist = (torch.arange(t)[:, None] - torch.arange(t)[None, :]).abs()
            mass, even = [], []
            for r in RADII:
                near = dist <= r * rate
                mass.append(float((w[0] * near).sum(-1).mean(0)[:n].mean()))
                even.append(float(near[:n, :n].float().mean()))
            sums[key] = sums.get(key, 0) + np.array(mass)
            uniform[key] = uniform.get(key, 0) + np.array(even)

        return take

    for name, stack in stacks.items():
        for i, layer in enumerate(stack.layers):
            hooks.append(layer.self_attn.register_forward_pre_hook(hook(f"{name}.{i}")))
    try:
        for wav in clips.values():
            seconds["now"] = len(wav) / 16000
            lengths = torch.tensor([len(wav)])
            x = model.prepare_window(torch.from_numpy(wav)[None], lengths)
            mel, mel_lengths = model.frontend(x, lengths)
            codes, code_lengths = model.encode_mel(mel, mel_lengths)
            model.decode_codes(codes[:, :, : int(code_lengths[0])])
    finally:
        for h in hooks:
            h.remove()
    n = len(clips)
    return {
        key: {
            **{f"within_{r:g}s": round(float(v[j] / n), 3) for j, r in enumerate(RADII)},
            **{
                f"uniform_{r:g}s": round(float(uniform[key][j] / n), 3) for j, r in enumerate(RADII)
            },
        }
        for key, v in sums.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trained", type=Path, required=True, help="the proxy's model.ckpt")
    ap.add_argument("--work", type=Path, default=Path(".cache/xyrt/proxy-quality"))
    ap.add_argument("--seconds", type=float, default=10.0, help="stream grid clip length")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    from xyrt.export.synth import synth_checkpoint

    t0 = time.time()
    args.work.mkdir(parents=True, exist_ok=True)
    config = args.trained.parent / "config.yaml"
    random_ckpt = args.work / "random" / "model.ckpt"
    if not random_ckpt.is_file():
        synth_checkpoint(random_ckpt, config=config, seed=0)
    calib = args.work / "calib.npz"
    if not calib.is_file():
        train_clips = [str(p) for n, p in bundled_speech().items() if n <= "speech_3"]
        xyrt_cli("calib", *train_clips, "-o", str(calib))
    clips = held_aside()
    joined = np.concatenate(list(clips.values())).astype(np.float32)
    wav = np.resize(joined, int(args.seconds * 16000))
    out: dict = {"held_aside": list(clips), "stream_seconds": args.seconds, "models": {}}
    for name, ckpt in (("trained", args.trained), ("random", random_ckpt)):
        paths = prepare(name, ckpt, args.work, calib)
        print(f"{name}: precisions", flush=True)
        prec = precisions(paths, clips)
        print(f"{name}: stream grid", flush=True)
        grid = stream_grid(paths["onnx"], wav.astype(np.float32))
        print(f"{name}: attention locality", flush=True)
        out["models"][name] = {
            "checkpoint": str(ckpt),
            "precisions": prec,
            "stream": grid,
            "attention": locality(ckpt, {"held_aside": joined[: 28 * 16000]}),
        }
    out["openvino_bf16"] = _openvino_bf16_note()
    out["seconds_taken"] = round(time.time() - t0, 1)
    report(out)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


def _openvino_bf16_note() -> str:
    from xyrt.runtime.hostcpu import has_bf16

    return "measured" if has_bf16() else "not measured: this CPU has no AVX512-BF16/AMX"


def report(out: dict) -> None:
    tr, rnd = out["models"]["trained"], out["models"]["random"]
    print("\nprecision vs float32 (held-aside speech): stage-0 %, all-stage %, decode SNR dB")
    for name in tr["precisions"]:
        a, b = tr["precisions"][name], rnd["precisions"][name]
        print(
            f"  {name:<38} trained {a['stage0_pct']:5.1f} {a['all_stage_pct']:5.1f} "
            f"{a['decode_snr_db']:6.1f} | random {b['stage0_pct']:5.1f} {b['all_stage_pct']:5.1f} "
            f"{b['decode_snr_db']:6.1f}"
        )
    print("\nstream vs offline: hop ctx look | trained stage-0 %, SNR dB | random")
    for a, b in zip(tr["stream"], rnd["stream"], strict=True):
        print(
            f"  {a['hop']:.2f} {a['context']:g} {a['lookahead']:.2f} | {a['stage0_pct']:5.1f} "
            f"{a['decode_snr_db']:6.1f} | {b['stage0_pct']:5.1f} {b['decode_snr_db']:6.1f}"
        )
    print("\nattention mass within +-1/2/5 s (trained | random | uniform)")
    for key in tr["attention"]:
        a, b = tr["attention"][key], rnd["attention"][key]
        f = " ".join(f"{a[f'within_{r:g}s']:.2f}" for r in RADII)
        g = " ".join(f"{b[f'within_{r:g}s']:.2f}" for r in RADII)
        u = " ".join(f"{a[f'uniform_{r:g}s']:.2f}" for r in RADII)
        print(f"  {key:<28} {f} | {g} | {u}")


if __name__ == "__main__":
    main()
