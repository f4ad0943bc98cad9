"""training/train_proxy.py in a few steps on the tiny config: the loss falls, and the checkpoint
it writes (fp16, official layout, config.yaml beside it) opens through `xyrt.runtime.load`."""

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
TRAINING = ROOT / "training"
TINY = ROOT / "tests" / "fixtures" / "tiny_16k" / "config.yaml"


def import_training(name: str):
    """A module of training/ (a folder of scripts that import each other by name)."""
    sys.path.insert(0, str(TRAINING))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(TRAINING))


def run_training(out: Path, cache: Path, steps: int) -> dict:
    """The script's card after ``steps`` steps on the tiny config (bundled clips only)."""
    cmd = [sys.executable, str(TRAINING / "train_proxy.py"), "--config", str(TINY)]
    cmd += ["--out", str(out), "--cache", str(cache), "--steps", str(steps), "--batch", "2"]
    cmd += ["--codes", "8", "--utterances", "0", "--lr", "3e-3", "--threads", "1"]
    cmd += ["--log-every", "1", "--eval-clips", "heldout_0,speech_5"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "card.json").read_text())


def test_a_few_steps_lower_the_loss_and_write_a_loadable_checkpoint(tmp_path):
    import xyrt.runtime
    from xyrt.data import heldout_speech

    out = tmp_path / "proxy"
    card = run_training(out, tmp_path / "cache", steps=40)
    losses = [row["loss"] for row in card["training"]["log"]]
    assert len(losses) == 40
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.3, losses
    assert card["checkpoint"]["dtype"] == "float16"
    assert (out / "config.yaml").read_text() == TINY.read_text()
    assert "mel distance" in (out / "card.md").read_text()
    q = card["quality"]
    assert len(q["trained"]["codebook_usage"]) == 8
    assert q["trained"]["mel_distance"] > 0 and q["random"]["mel_distance"] > 0

    codec = xyrt.runtime.load(out / "model.ckpt", threads=1)
    wav = next(iter(heldout_speech().values()))
    codes = codec.encode(wav, 16000)
    assert codes.shape[0] == 8 and codes.shape[1] == pytest.approx(len(wav) / 1280, abs=2)
    assert int(codes.max()) < 1024 and int(codes.min()) >= 0


def test_same_seed_same_losses():
    import torch

    from xyrt.config import XYConfig
    from xyrt.data import heldout_speech

    train_proxy = import_training("train_proxy")
    cfg = XYConfig.from_yaml(TINY)
    stream = np.concatenate(list(heldout_speech().values()))
    args = train_proxy.parser().parse_args(["--out", "unused", "--steps", "3", "--batch", "2"])
    args.codes, args.log_every, args.threads = 8, 1, 1
    drop = ("s_per_step",)
    threads = torch.get_num_threads()
    try:
        runs = [train_proxy.train(args, cfg, stream)[1]["log"] for _ in range(2)]
    finally:
        torch.set_num_threads(threads)
    a, b = ([{k: v for k, v in row.items() if k not in drop} for row in log] for log in runs)
    assert a == b and len(a) == 3


def test_espeak_corpus_is_generated_and_cached(tmp_path):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    corpus = import_training("corpus")
    bundled_training_clips, build_corpus = corpus.bundled_training_clips, corpus.build_corpus
    audio, info = build_corpus(3, 0, tmp_path)
    bundled = sum(len(c) + 3200 for c in bundled_training_clips())
    assert len(audio) > bundled + 3 * 16000  # three utterances of at least a second each
    assert len(info["voices"]) >= 1 and info["espeak"].startswith("eSpeak NG")
    again, _ = build_corpus(3, 0, tmp_path)
    assert np.array_equal(audio, again)
    assert len(list(tmp_path.glob("proxy-corpus-*.npz"))) == 1


def test_training_quantizer_forward_is_what_inference_decodes():
    """The straight-through output equals `ResidualVQ.decode(encode(x))` under the codebooks the
    step started from, so training optimises the inference path."""
    import copy

    import torch

    from xyrt.config import XYConfig
    from xyrt.runtime.network.quantizer import ResidualVQ

    vq = import_training("vq")
    cfg = XYConfig.from_yaml(TINY).quantizer
    torch.manual_seed(0)
    rvq = ResidualVQ(cfg)
    torch.nn.init.normal_(rvq.input_proj.weight_v)
    torch.nn.init.normal_(rvq.output_proj.weight_v)
    x = torch.randn(2, 12, cfg.input_dim, requires_grad=True)
    lengths = torch.tensor([12, 9])
    train = vq.TrainingRVQ(rvq, vq.VQOptions(warmup=1), torch.Generator().manual_seed(0))
    out, commit, _ = train(x, lengths, step=0)  # warm-up: unquantized
    assert commit.item() == 0
    train(x, lengths, step=1)  # k-means codebooks from the warm-up latents
    before = copy.deepcopy(rvq)
    out, commit, _ = train(x, lengths, step=2)
    expected = before.decode(before.encode(x, lengths))
    torch.testing.assert_close(out[0], expected[0])
    torch.testing.assert_close(out[1, :9], expected[1, :9])
    assert commit.item() > 0
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # the encoder gets a gradient
    assert not torch.equal(before.quantizers[0].codebook, rvq.quantizers[0].codebook)  # EMA
