"""Train a small XY-Tokenizer proxy on xyrt's own network, so quality figures can be measured on
trained weights (issue 30). Deterministic given --seed (same threads, same machine).

    python training/train_proxy.py --out .cache/xyrt/proxy-16k-seed0 --steps 5500

Writes, in --out: model.ckpt (fp16, the official {'generator': state_dict} layout), config.yaml
beside it (so `xyrt.runtime.load(model.ckpt)` opens it), card.json and card.md (config, data,
steps, time, final losses, quality on held-aside speech against the same config's random
weights). Losses: multi-resolution mel L1 on the audio, L1 between the decoder's mel and the
input's log-mel, RVQ commitment; codebooks by EMA with dead-entry restarts. No adversary.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from augment import batch
from corpus import build_corpus, eval_clips
from evaluate import quality
from losses import MultiResMel
from torch import nn
from vq import TrainingRVQ, VQOptions

from xyrt.atomic import atomic_write
from xyrt.config import SAMPLES_PER_CODE_IN, XYConfig
from xyrt.errors import ConfigError, XyrtError
from xyrt.runtime.network.checkpoint import load_model, save_checkpoint
from xyrt.runtime.network.model import XYTokenizer
from xyrt.runtime.network.quantizer import WeightNormConv1x1
from xyrt.runtime.network.vocos import ConvNeXtBlock

HERE = Path(__file__).resolve().parent
DEFAULT_CONFIG = HERE / "proxy_16k.yaml"
AUX_MEL_WEIGHT = 1.0  # decoder mel vs the input's normalised log-mel
COMMIT_WEIGHT = 0.25
WARMUP_STEPS = 100


def init_model(cfg: XYConfig) -> XYTokenizer:
    """PyTorch's default initialisation, plus what the runtime modules leave empty."""
    model = XYTokenizer(cfg)
    for module in model.modules():
        if isinstance(module, WeightNormConv1x1):
            nn.init.normal_(module.weight_v, std=module.weight_v.shape[1] ** -0.5)
            with torch.no_grad():
                module.weight_g.copy_(module.weight_v.norm(dim=(1, 2), keepdim=True))
        elif isinstance(module, ConvNeXtBlock):
            nn.init.constant_(module.gamma, 1.0 / cfg.vocos.num_layers)
    return model


def train_step(model, mel_loss, wav, quantizer, step) -> tuple[torch.Tensor, dict]:
    lengths = torch.full((wav.shape[0],), wav.shape[1], dtype=torch.long)
    mel, mel_lengths = model.frontend(wav, lengths)
    latents, code_lengths = model.latents(mel, mel_lengths)
    x, commit, restarted = quantizer(latents, code_lengths, step)
    mel_hat = model.decode_projected(x, code_lengths, None, project_input=True)
    audio = model.vocoder(mel_hat)
    loss_mel = mel_loss(audio, wav)
    loss_aux = (mel_hat - mel).abs().mean()
    loss = loss_mel + AUX_MEL_WEIGHT * loss_aux + COMMIT_WEIGHT * commit
    parts = {"mel": loss_mel.item(), "aux_mel": loss_aux.item(), "commit": commit.item()}
    return loss, parts | {"restarted": restarted}


def learning_rate(step: int, steps: int, peak: float) -> float:
    if step < WARMUP_STEPS:
        return peak * (step + 1) / WARMUP_STEPS
    done = (step - WARMUP_STEPS) / max(1, steps - WARMUP_STEPS)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(done, 1.0))))


def train(args: argparse.Namespace, cfg: XYConfig, stream: np.ndarray) -> tuple[XYTokenizer, dict]:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = init_model(cfg).train()
    model.frontend.requires_grad_(False)
    mel_loss = MultiResMel()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.8, 0.99), weight_decay=0.01)
    warmup = round(args.vq_warmup * args.steps)
    quantizer = TrainingRVQ(model.quantizer, VQOptions(warmup=warmup), gen)
    samples = args.codes * SAMPLES_PER_CODE_IN
    history, logged, times, cpu = [], [], [], []
    for step in range(args.steps):
        start, start_cpu = time.perf_counter(), time.process_time()
        wav = torch.from_numpy(batch(stream, args.batch, samples, rng))
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, args.steps, args.lr)
        loss, parts = train_step(model, mel_loss, wav, quantizer, step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad = float(nn.utils.clip_grad_norm_(params, 1.0))
        opt.step()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        if not math.isfinite(loss.item()):
            raise XyrtError(
                f"training diverged at step {step}: loss {loss.item()}; try a lower --lr"
            )
        row = {"step": step, "loss": loss.item(), "grad": grad} | parts
        history.append({k: round(v, 4) for k, v in row.items()})
        if step % args.log_every == 0 or step == args.steps - 1:
            pace = round(float(np.mean(times[-args.log_every :])), 3)
            logged.append(history[-1] | {"s_per_step": pace})
            print(json.dumps(logged[-1]), flush=True)
    steady = times[min(5, len(times) - 1) :]
    timing = {"steps": args.steps, "seconds": round(sum(times), 1)}
    timing["s_per_step"] = round(float(np.mean(steady)), 4)
    timing["cpu_s_per_step"] = round(float(np.mean(cpu[len(cpu) - len(steady) :])), 4)
    return model.eval(), {"log": logged, "timing": timing, "final": summarise(history)}


def summarise(history: list[dict], last: int = 50) -> dict:
    tail = history[-last:]
    keys = ("loss", "mel", "aux_mel", "commit")
    return {k: round(float(np.mean([h[k] for h in tail])), 4) for k in keys} | {
        "over_steps": len(tail)
    }


def write_checkpoint(out: Path, cfg_path: Path, model: XYTokenizer, fp16: bool) -> Path:
    """model.ckpt (fp16 unless told) and the config.yaml beside it."""
    ckpt = out / "model.ckpt"
    cast = torch.float16 if fp16 else torch.float32
    state = {k: v.to(cast) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    save_checkpoint(state, ckpt)
    with atomic_write(out / "config.yaml", ConfigError) as tmp:
        shutil.copyfile(cfg_path, tmp)
    return ckpt


def write_card(out: Path, report: dict) -> None:
    with atomic_write(out / "card.json", XyrtError) as tmp:
        tmp.write_text(json.dumps(report, indent=1) + "\n")
    with atomic_write(out / "card.md", XyrtError) as tmp:
        tmp.write_text(card_markdown(report))


def card_markdown(r: dict) -> str:
    t, q, rnd = r["training"], r["quality"]["trained"], r["quality"]["random"]
    ck, data, fl = r["checkpoint"], r["data"], r["final_losses"]
    rows = "\n".join(
        f"| {i} | {a['distinct']} | {a['perplexity']} | {b['distinct']} | {b['perplexity']} |"
        for i, (a, b) in enumerate(zip(q["codebook_usage"], rnd["codebook_usage"], strict=True))
    )
    return f"""# XY-Tokenizer proxy ({r["config"]})

Trained by `{r["command"]}` in {t["timing"]["seconds"]} s ({t["timing"]["steps"]} steps,
{t["timing"]["s_per_step"]} s a step, {r["threads"]} threads); seed {r["seed"]}.
Parameters: {r["parameters"]}; checkpoint {ck["bytes"]} bytes ({ck["dtype"]}).

Data: {data["utterances"]} espeak-ng utterances ({len(data["voices"])} voice + variant pairs,
{data["espeak"]}), plus bundled {", ".join(data["bundled"])}; {data["seconds"]} s in all;
gain, noise and reverb augmentation. Batches of {r["batch"]} x {r["codes"]} codes
({r["codes"] * 0.08:.2f} s).

Final losses (mean of the last {fl["over_steps"]} steps): total {fl["loss"]},
multi-resolution mel L1 {fl["mel"]}, decoder mel L1 {fl["aux_mel"]}, commitment {fl["commit"]}.

## Held-aside speech ({", ".join(q["clips"])}; {q["codes"]} codes)

| weights | mel distance | SNR (dB) |
| --- | --- | --- |
| trained (this checkpoint) | {q["mel_distance"]} | {q["snr_db"]} |
| random (`xyrt synth`, same config) | {rnd["mel_distance"]} | {rnd["snr_db"]} |

Mel distance: mean |natural-log mel difference| at 512/1024/2048-point FFTs (training/losses.py).

Entries used per stage over the {q["codes"]} codes (at most {q["codes"]}), and their perplexity:

| stage | trained: entries used | perplexity | random: entries used | perplexity |
| --- | --- | --- | --- | --- |
{rows}
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default=str(DEFAULT_CONFIG))
    p.add_argument("--out", required=True, help="folder for model.ckpt, config.yaml and the card")
    p.add_argument("--steps", type=int, default=5500, help="about 60 min at 0.6 s a step")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--codes", type=int, default=32, help="codes per training cut (80 ms each)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument(
        "--vq-warmup", type=float, default=0.1, help="fraction of steps before quantizing"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--utterances", type=int, default=800, help="espeak-ng utterances (0: none)")
    p.add_argument("--cache", default=".cache/xyrt", help="folder for the generated corpus")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1: on a shared 2-core machine, 2 "
        "threads measured 7x slower a step than 1 under load)",
    )
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--eval-clips", help="comma-separated held-aside clips (default: all)")
    p.add_argument("--fp32", dest="fp16", action="store_false", help="write float32 weights")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        torch.use_deterministic_algorithms(True)
        cfg_path = Path(args.config)
        cfg = XYConfig.from_yaml(cfg_path)
        stream, data = build_corpus(args.utterances, args.seed, Path(args.cache))
        model, trained = train(args, cfg, stream)
        report = {
            "command": "python "
            + " ".join([Path(sys.argv[0]).as_posix(), *(argv or sys.argv[1:])]),
            "config": cfg_path.name,
            "seed": args.seed,
            "threads": args.threads,
            "batch": args.batch,
            "codes": args.codes,
            "lr": args.lr,
            "parameters": sum(p.numel() for p in model.parameters()),
            "data": data | {"seconds": round(len(stream) / 16000, 1)},
            "training": trained,
            "final_losses": trained.pop("final"),
        }
        out = Path(args.out)
        ckpt = write_checkpoint(out, cfg_path, model, args.fp16)
        dtype = "float16" if args.fp16 else "float32"
        report["checkpoint"] = {"file": ckpt.name, "bytes": ckpt.stat().st_size, "dtype": dtype}
        from xyrt.export.synth import synth_model  # noqa: PLC0415 - only for the baseline

        clips = eval_clips()
        if args.eval_clips:
            names = args.eval_clips.split(",")
            unknown = sorted(set(names) - set(clips))
            if unknown:
                raise XyrtError(
                    f"--eval-clips: unknown clips {unknown}; expected some of {sorted(clips)}"
                )
            clips = {name: clips[name] for name in names}
        report["quality"] = {
            "trained": quality(load_model(ckpt), clips),
            "random": quality(synth_model(cfg, args.seed), clips),
        }
        write_card(out, report)
    except XyrtError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    q = report["quality"]
    print(
        json.dumps(
            {
                "timing": report["training"]["timing"],
                "final_losses": report["final_losses"],
                "mel_distance": {k: v["mel_distance"] for k, v in q.items()},
                "snr_db": {k: v["snr_db"] for k, v in q.items()},
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
