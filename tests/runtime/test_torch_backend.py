"""The PyTorch runtime backend: registry entry, golden parity on CPU (and CUDA where present),
precisions, shape buckets, limits, and the runtime staying torch-free unless it is chosen."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from helpers import FIXTURES, GOLDEN_MODELS, SPEECH, expect_codes, golden, golden_reference
from xyrt.errors import XyrtError
from xyrt.runtime.backends.base import Backend
from xyrt.runtime.compare import max_error_ratio

torch = pytest.importorskip("torch", reason="the PyTorch backend tests need torch")

import xyrt.runtime  # noqa: E402
from xyrt.runtime.backends.pytorch.backend import (  # noqa: E402
    TorchBackend,
    batch_bucket,
    window_bucket,
)
from xyrt.runtime.backends.pytorch.device import ieee_fp32  # noqa: E402

CKPT = FIXTURES / "tiny_16k" / "model.ckpt"
CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(
    not CUDA, reason="no CUDA GPU on this machine (CI has none); run on the GPU with gpu_check"
)


def _codec(name: str, **options):
    return xyrt.runtime.load(FIXTURES / name / "model.ckpt", **options)


def test_auto_picks_torch_for_a_checkpoint() -> None:
    codec = xyrt.runtime.load(CKPT)
    assert isinstance(codec.backend, TorchBackend)
    assert codec.backend.identity()["precision"] == "fp32"
    assert codec.backend.limits.device == "cpu" and codec.batch_size == 4
    assert xyrt.runtime.load(CKPT, backend="pytorch").backend.name == "torch"  # old spelling


@pytest.mark.golden
@pytest.mark.parametrize("name", GOLDEN_MODELS)
def test_golden_codes_and_audio_cpu(name: str) -> None:
    codec = _codec(name, backend="torch", device="cpu")
    g = golden(name)
    for clip in SPEECH:
        expect_codes(golden_reference(name, clip, 10), codec.encode(g[f"{clip}/wav"]), clip)
        audio = codec.decode(g[f"{clip}/codes_ov10"])
        assert max_error_ratio(g[f"{clip}/recon_ov10"], audio) < 1e-4


def test_options_that_do_not_apply_are_refused() -> None:
    with pytest.raises(XyrtError, match="precision 'int8' does not apply to the torch backend"):
        xyrt.runtime.load(CKPT, precision="int8")
    with pytest.raises(XyrtError, match="option providers=.* does not apply to the torch"):
        xyrt.runtime.load(CKPT, providers=["cpu"])
    with pytest.raises(XyrtError, match="unknown precision 'fp8'"):
        xyrt.runtime.load(CKPT, precision="fp8")
    with pytest.raises(XyrtError, match="'fp16' needs a CUDA device"):
        xyrt.runtime.load(CKPT, precision="fp16", device="cpu")
    with pytest.raises(XyrtError, match="device 'tpu'"):
        xyrt.runtime.load(CKPT, device="tpu")
    with pytest.raises(XyrtError, match="unknown backend 'jax'"):
        xyrt.runtime.load(CKPT, backend="jax")
    with pytest.raises(XyrtError, match="the onnxruntime backend runs an xyrt export directory"):
        xyrt.runtime.load(CKPT, backend="onnxruntime")
    if not CUDA:
        with pytest.raises(XyrtError, match="PyTorch sees no CUDA GPU here"):
            xyrt.runtime.load(CKPT, device="cuda")


def test_bf16_weights_cast_once_equal_autocast() -> None:
    """bf16 stores the Linear/convolution weights in bf16 once; autocast would cast them to
    the same values on every call, so the codes are the same as plain autocast's."""
    from xyrt.runtime.graph_io import pack_windows
    from xyrt.runtime.network.checkpoint import load_model

    wav, lengths = pack_windows([golden("tiny_16k")[f"{c}/wav"][:48000] for c in SPEECH[:3]])
    backend = TorchBackend(load_model(CKPT), "cpu", "bf16")
    assert backend.model.semantic_encoder.layers[0].fc1.weight.dtype == torch.bfloat16
    assert backend.model.quantizer.input_proj.weight_v.dtype == torch.float32  # float island
    model = load_model(CKPT)
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16):
        mel, ml = model.frontend(torch.from_numpy(wav), torch.from_numpy(lengths))
        plain, _ = model.encode_mel(mel, ml)
    np.testing.assert_array_equal(backend.encode_window(wav, lengths), plain.numpy())


def test_bucket_padding_never_changes_codes() -> None:
    """Shape buckets pad encoder windows (columns to 16 codes, rows to a power of two)."""
    backend = xyrt.runtime.load(CKPT).backend
    g = golden("tiny_16k")
    from xyrt.runtime.graph_io import pack_windows

    wav, lengths = pack_windows(
        [g["speech_0/wav"][:70000], g["speech_1/wav"][:50000], g["speech_2/wav"][:64000]]
    )
    from xyrt.runtime.graph_io import LENGTHS, POSITIONS, WAVEFORM, encoder_feed

    feed = encoder_feed(wav, lengths, np.array([0, 40, 7]))
    padded = backend._pad_rows(feed)
    p = wav.shape[1]
    assert padded[WAVEFORM].shape == (4, window_bucket(p)) and p < padded[WAVEFORM].shape[1]
    assert padded[WAVEFORM].shape[1] <= 1.125 * p
    assert list(padded[POSITIONS]) == [0, 40, 7, 0]  # padded rows copy row 0
    plain = backend.encode_window(wav, lengths, feed[POSITIONS])
    bucketed = backend.encode_window(padded[WAVEFORM], padded[LENGTHS], padded[POSITIONS])
    np.testing.assert_array_equal(plain, bucketed[:, :3, : plain.shape[2]])
    assert [batch_bucket(n) for n in (1, 2, 3, 5, 32, 33)] == [1, 2, 4, 8, 32, 64]
    assert window_bucket(480000) == 480000 and window_bucket(1280) == 1280
    # at most 12.5% more work for any window, and few shapes: 8 buckets per octave
    for codes in range(1, 376):
        got = window_bucket(codes * 1280)
        assert got % 1280 == 0 and codes * 1280 <= got <= codes * 1.125 * 1280
    assert len({window_bucket(c * 1280) for c in range(1, 376)}) <= 60


class _Counting(Backend):
    """Wraps a backend, recording the batch of every call."""

    def __init__(self, inner) -> None:
        self.inner, self.info, self.limits, self.calls = inner, inner.info, inner.limits, []

    def encode_window(self, wav, lengths, *window):
        self.calls.append(wav.shape[0])
        return self.inner.encode_window(wav, lengths, *window)

    def decode_window(self, codes, positions=None):
        self.calls.append(codes.shape[1])
        return self.inner.decode_window(codes, positions)


def test_max_batch_caps_codec_and_streams() -> None:
    from xyrt.runtime.codec import ChunkedCodec

    inner = xyrt.runtime.load(CKPT, max_batch=2).backend
    assert inner.limits.max_batch == 2
    counting = _Counting(inner)
    codec = ChunkedCodec(counting, batch_size=8)
    assert codec.batch_size == 2  # capped
    clips = [golden("tiny_16k")[f"{c}/wav"][:32000] for c in SPEECH[:5]]
    codec.encode(clips)
    streams = [codec.create_stream(hop=0.32, context=1.0, lookahead=0.32) for _ in range(5)]
    for s, clip in zip(streams, clips, strict=True):
        s.accept_waveform(16000, clip)
    codec.encode_streams(streams)
    decode = [codec.create_decode_stream(hop=0.32, context=0.32, lookahead=0) for _ in range(3)]
    for d in decode:
        d.accept_codes(np.zeros((8, 20), np.int64))
    codec.decode_streams(decode)
    # the window-level calls (what xyrt.compat's inference_tokenize/detokenize use)
    from xyrt.runtime.graph_io import pack_windows

    wav, lengths = pack_windows(clips)
    whole = inner.encode_window(wav, lengths)
    np.testing.assert_array_equal(codec.encode_windows(wav, lengths), whole)
    audio = codec.decode_windows(whole, np.array([25, 25, 10, 25, 0]))
    assert audio.shape == (5, whole.shape[2] * 1280) and not audio[4].any()
    assert not audio[2, 10 * 1280 :].any() and audio[2, : 10 * 1280].any()
    assert counting.calls and max(counting.calls) <= 2


def test_runtime_stays_torch_free_unless_torch_is_chosen(tmp_path) -> None:
    """With torch unimportable, an ONNX export still loads and runs; the torch backend says
    what to install."""
    from helpers import exported

    model_dir = exported("tiny_16k")
    code = f"""
import sys
sys.modules["torch"] = None  # import torch now fails
import numpy as np, xyrt.runtime
from xyrt.errors import MissingDependencyError
codes = xyrt.runtime.load({str(model_dir)!r}).encode(np.zeros(16000, np.float32))
assert codes.shape == (8, 12), codes.shape
assert "torch" not in [m for m in sys.modules if sys.modules[m] is not None]
try:
    xyrt.runtime.load({str(CKPT)!r})
except MissingDependencyError as exc:
    assert "pip install 'xyrt[export]'" in str(exc), exc
    print("refused:", exc)
else:
    raise SystemExit("loaded a checkpoint without torch")
"""
    # run outside the source tree, which must not shadow an installed xyrt
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "refused: the torch backend needs the Python package 'torch'" in out.stdout


# -- CUDA (skipped without a GPU) -------------------------------------------------------------
@needs_cuda
@pytest.mark.golden
@pytest.mark.parametrize("name", GOLDEN_MODELS)
def test_cuda_fp32_golden_codes_and_audio(name: str) -> None:
    codec = _codec(name, device="cuda", precision="fp32")
    g = golden(name)
    for _ in range(3):  # eager, capture, replay
        for clip in SPEECH:
            expect_codes(golden_reference(name, clip, 10), codec.encode(g[f"{clip}/wav"]), clip)
    stats = codec.backend.graph_stats()["encoder"]
    assert stats.captures > 0 and stats.replays > 0 and not stats.failures
    for _ in range(3):
        for clip in SPEECH:
            audio = codec.decode(g[f"{clip}/codes_ov10"])
            assert max_error_ratio(g[f"{clip}/recon_ov10"], audio) < 1e-4


@needs_cuda
@pytest.mark.golden
@pytest.mark.parametrize("name", GOLDEN_MODELS)
def test_cuda_compat_keeps_ieee_fp32_and_the_callers_flags(name: str) -> None:
    from xyrt.compat import XY_Tokenizer

    g = golden(name)
    spt = XY_Tokenizer.load_from_checkpoint(None, FIXTURES / name / "model.ckpt").cuda()
    m, c = torch.backends.cuda.matmul, torch.backends.cudnn
    new_api = hasattr(m, "fp32_precision")
    saved = (m.fp32_precision, c.conv.fp32_precision) if new_api else (m.allow_tf32, c.allow_tf32)
    if new_api:  # the caller asks for TF32 everywhere
        m.fp32_precision = c.conv.fp32_precision = "tf32"
    else:
        m.allow_tf32 = c.allow_tf32 = True
    try:
        for clip in SPEECH:
            wav = torch.from_numpy(g[f"{clip}/wav"]).cuda()
            codes = spt.encode([wav])["codes_list"][0]
            assert codes.device.type == "cuda"
            expect_codes(golden_reference(name, clip, 10), codes.cpu().numpy(), clip)
        # the caller's TF32 settings are theirs again after xyrt's calls
        now = (m.fp32_precision, c.conv.fp32_precision) if new_api else (m.allow_tf32, c.allow_tf32)
        assert now == (("tf32", "tf32") if new_api else (True, True))
    finally:
        if new_api:
            m.fp32_precision, c.conv.fp32_precision = saved
        else:
            m.allow_tf32, c.allow_tf32 = saved


@needs_cuda
@pytest.mark.golden
def test_cuda_fp32_batches_of_32_to_64_match_the_reference() -> None:
    g = golden("tiny_16k")
    clips = [g[f"{clip}/wav"] for clip in SPEECH]
    batch = (clips * 64)[:48]  # 48 windows of mixed lengths in one encode call
    codec = _codec("tiny_16k", device="cuda", precision="fp32")
    codec.batch_size = 64
    for _ in range(3):  # eager, capture, replay
        got = codec.encode(batch)
        for i, codes in enumerate(got):
            clip = SPEECH[i % len(SPEECH)]
            expect_codes(golden_reference("tiny_16k", clip, 10), codes, clip)
    assert codec.backend.graph_stats()["encoder"].replays > 0


@needs_cuda
def test_a_second_gpu_is_used_where_present() -> None:
    if torch.cuda.device_count() < 2:
        pytest.skip(f"this machine has {torch.cuda.device_count()} CUDA device(s); cuda:1 needs 2")
    g = golden("tiny_16k")
    with torch.cuda.device(1):  # "cuda" is the current device, as torchrun sets it
        codec = _codec("tiny_16k", device="cuda", precision="fp32")
    assert codec.backend.device == torch.device("cuda", 1)
    for _ in range(3):  # eager, capture, replay: called from a thread whose device is 0
        for clip in SPEECH:
            expect_codes(
                golden_reference("tiny_16k", clip, 10), codec.encode(g[f"{clip}/wav"]), clip
            )
    stats = codec.backend.graph_stats()["encoder"]
    assert stats.replays > 0 and not stats.failures


@needs_cuda
def test_auto_precision_follows_the_gpu() -> None:
    codec = _codec("tiny_16k", device="cuda")
    major, _ = torch.cuda.get_device_capability()
    assert codec.backend.precision == ("bf16" if major >= 8 else "fp16")


@needs_cuda
def test_ieee_context_restores_flags() -> None:
    m, c = torch.backends.cuda.matmul, torch.backends.cudnn
    if not hasattr(m, "fp32_precision"):
        pytest.skip(f"torch {torch.__version__} predates the fp32_precision API")
    before = m.fp32_precision, c.conv.fp32_precision
    with ieee_fp32("cuda"):
        assert (m.fp32_precision, c.conv.fp32_precision) == ("ieee", "ieee")
    assert (m.fp32_precision, c.conv.fp32_precision) == before
    m.fp32_precision = c.conv.fp32_precision = "tf32"  # a caller that wants TF32 keeps it
    try:
        with ieee_fp32("cuda"):
            pass
        assert (m.fp32_precision, c.conv.fp32_precision) == ("tf32", "tf32")
    finally:
        m.fp32_precision, c.conv.fp32_precision = before


@needs_cuda
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_cuda_lower_precisions_run_and_agree_mostly(precision: str) -> None:
    g = golden("tiny_16k")
    fp32 = _codec("tiny_16k", device="cuda", precision="fp32")
    low = _codec("tiny_16k", device="cuda", precision=precision)
    for clip in SPEECH[:3]:
        ref = fp32.encode(g[f"{clip}/wav"])
        got = low.encode(g[f"{clip}/wav"])
        assert got.shape == ref.shape and (got[0] == ref[0]).mean() > 0.5
        audio = low.decode(ref)
        assert np.isfinite(audio).all()


@needs_cuda
def test_cuda_streams_step_through_graphs() -> None:
    codec = _codec("tiny_16k", device="cuda")
    wav = golden("tiny_16k")["speech_0/wav"]
    for _ in range(2):
        stream = codec.create_stream(hop=0.32, context=1.0, lookahead=0.32)
        stream.accept_waveform(16000, wav)
        stream.input_finished()
        while codec.is_ready(stream):
            codec.encode_stream(stream)
        frames = stream.pop_codes()
        assert len(frames) == len(wav) // 1280
    assert codec.backend.graph_stats()["encoder"].replays > 0
