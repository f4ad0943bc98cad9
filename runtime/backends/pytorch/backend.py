"""The PyTorch backend: the XY-Tokenizer network in PyTorch, on a CPU or a CUDA GPU.

    codec = xyrt.runtime.load("model.ckpt", backend="torch", device="cuda", precision="bf16")

Precisions:
- ``fp32``: IEEE float32 everywhere. On CUDA, TF32 is switched off for matmuls and convolutions
  for the duration of each call (and restored after), so codes match the CPU reference except
  float32 near-ties; PyTorch's default (TF32 convolutions) changes codes.
- ``auto`` (the default): fp32 on a CPU; on a GPU bf16 from compute capability 8.0 (Ampere) on,
  fp16 before it (`xyrt.runtime.backends.pytorch.device`).
- ``bf16`` (CPU or an Ampere-or-later GPU) and ``fp16`` (CUDA only): autocast, with the Linear
  and convolution weights of the network stored in that dtype once (what autocast would cast
  them to on every call). The log-mel front end, the residual VQ and the iSTFT stay float32.
  In fp16 every Linear/convolution output is clamped to +-(65504 - 1000), the float16 overflow
  guard of Whisper-style encoders, so a large activation cannot become inf.

On CUDA, inputs are staged through pinned host buffers, each batch costs one synchronisation, and
every window shape runs through a captured CUDA graph after its first call
(`xyrt.runtime.backends.pytorch.graphs`; ``cuda_graphs=False`` turns this off). Encoder windows are
padded up to shape buckets (`window_bucket`, batch rows up to a power of two) so that few shapes are
captured; padding never changes codes (padded keys are masked). Batches are submitted without
waiting (`submit_encode`/`submit_decode`, `xyrt.runtime.backends.pytorch.staging`), so the caller
prepares the next batch while this one runs. Decode windows are not padded (the vocoder has no
padding mask). ``compile=True`` runs the network through `torch.compile` (slow first call per shape;
the time is in `compile_seconds`). ``autocast=False`` (bf16/fp16) runs the transformer stacks,
adapters and vocoder wholly in that dtype (residual streams and LayerNorms too) instead of
autocast's float32 residuals: less memory traffic, a little less agreement with float32.

torch is imported only when this module is (when the PyTorch backend is chosen).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xyrt.config import N_SAMPLES, SAMPLES_PER_CODE_IN
from xyrt.errors import AudioError, XyrtError, require
from xyrt.runtime.backends.base import Backend, BackendLimits, ModelInfo, Pending, StageProfiler
from xyrt.runtime.graph_io import (
    CODES,
    ENCODER_IO,
    POSITIONS,
    WAVEFORM,
    decoder_feed,
    encoder_feed,
)

if TYPE_CHECKING:
    from xyrt.runtime.backends.registry import Options

torch = require("torch", "export", "the PyTorch backend")

from xyrt.runtime.backends.pytorch.device import (  # noqa: E402 - needs torch, imported above
    check_device,  # noqa: F401 - re-exported: the registry (resolve) asks here
    ieee_fp32,
    parse_device,
    resolve_precision,
)
from xyrt.runtime.backends.pytorch.graphs import GraphRunner  # noqa: E402
from xyrt.runtime.backends.pytorch.staging import HostStaging  # noqa: E402

ENCODER_INPUTS = tuple(ENCODER_IO["inputs"])  # the order `_encode_fn` takes them in

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
FP16_CLAMP = 65504.0 - 1000.0  # float16 max minus the margin Whisper-style encoders keep
MAX_GRAPHS = 64  # captured shapes kept per graph (least recently used dropped)
MAX_PINNED_BYTES = 1 << 30  # pinned staging memory at most (beyond: pageable buffers)
CUDA_BATCH = 32  # default windows per batch on a GPU (a CPU keeps ChunkedCodec's 4)


def window_bucket(samples: int) -> int:
    """Samples an encoder window of ``samples`` is padded to: a whole number of codes rounded
    up to a multiple of 2^(floor(log2(codes)) - 3) codes (exact below 16 codes; at most 12.5%
    more work; 8 buckets per octave), at most 30 s."""
    codes = max(1, -(-samples // SAMPLES_PER_CODE_IN))
    unit = 1 << max(0, codes.bit_length() - 4)
    return min(N_SAMPLES, -(-codes // unit) * unit * SAMPLES_PER_CODE_IN)


def batch_bucket(rows: int) -> int:
    """Batch rows padded up to a power of two."""
    return 1 << max(0, rows - 1).bit_length()


def _lower_precision_modules(model: Any) -> list[Any]:
    """The Linear/convolution layers autocast runs in bf16/fp16: all but the float32 islands
    (front end, residual VQ; the iSTFT has no weights)."""
    nn = torch.nn
    kinds = (nn.Linear, nn.Conv1d, nn.ConvTranspose1d)
    skip = {id(m) for part in (model.frontend, model.quantizer) for m in part.modules()}
    return [m for m in model.modules() if isinstance(m, kinds) and id(m) not in skip]


def torch_limits(device: str, max_batch: int | None, cuda_graphs: bool) -> BackendLimits:
    """The PyTorch backend's limits on ``device``: ``max_batch`` as asked, a larger preferred
    batch, captured graphs and pinned staging memory on a GPU."""
    cuda = device.split(":")[0] == "cuda"
    return BackendLimits(
        max_batch=max_batch,
        device=device,
        preferred_batch=CUDA_BATCH if cuda else 4,
        max_graphs=MAX_GRAPHS if cuda_graphs and cuda else None,
        max_pinned_bytes=MAX_PINNED_BYTES if cuda else None,
    )


class TorchBackend(Backend):
    """Runs windows through `xyrt.runtime.network.model.XYTokenizer` on a CPU or CUDA device.

    ``model`` is moved to ``device`` (default: where it is) and, for bf16/fp16, its Linear and
    convolution weights are cast to that dtype in place. Outputs are numpy on the host.
    """

    name = "torch"

    def __init__(
        self,
        model: Any,
        device: str | Any | None = None,
        precision: str = "fp32",
        cuda_graphs: bool = True,
        compile: bool = False,
        max_batch: int | None = None,
        source: str | None = None,
        ieee: bool = True,
        autocast: bool = True,
    ) -> None:
        dev = next(model.parameters()).device if device is None else parse_device(device)
        precision = resolve_precision(precision, dev)
        if max_batch is not None and max_batch < 1:
            raise XyrtError(f"max_batch must be at least 1, got {max_batch}")
        self.model = model.eval()
        self.precision = precision
        self.source = source
        self.info = ModelInfo(
            output_sample_rate=model.cfg.output_sample_rate,
            samples_per_code_out=model.cfg.samples_per_code_out,
            num_quantizers=model.cfg.num_quantizers,
            codebook_size=model.cfg.codebook_size,
        )
        self._hooks: list[Any] = []
        self.autocast = autocast or precision == "fp32"
        if precision != "fp32":
            dtype = DTYPES[precision]
            for m in _lower_precision_modules(self.model):
                m.to(dtype)
                if precision == "fp16":
                    self._hooks.append(m.register_forward_hook(_clamp_fp16))
            if not self.autocast:
                self._hooks.extend(_whole_stacks(self.model, dtype))
        self.compile = compile
        self.compile_seconds = 0.0
        self.cuda_graphs = cuda_graphs
        self.max_batch = max_batch
        self.ieee = ieee  # False: PyTorch's own TF32 flags (the published cost, for benchmarks)
        self._lock = threading.RLock()
        self.to(dev)

    def to(self, device: str | Any) -> TorchBackend:
        """Move the model to ``device``; captured graphs and staging buffers start afresh."""
        dev = parse_device(device)
        resolve_precision(self.precision, dev)  # bf16 moved to a pre-Ampere GPU: refused
        with self._lock:
            if getattr(self, "_encode", None) is not None:
                self.close()
            self.model.to(dev)
            graphed = self.cuda_graphs and dev.type == "cuda"
            self.limits = torch_limits(str(dev), self.max_batch, self.cuda_graphs)
            encode, decode = self._encode_fn, self._decode_fn
            if self.compile:
                # automatic dynamic shapes: one static compile, then one dynamic one, instead
                # of a compile per stream window or bucket
                encode, decode = (torch.compile(f) for f in (encode, decode))
            self._encode = GraphRunner(encode, dev, enabled=graphed, max_graphs=MAX_GRAPHS)
            self._decode = GraphRunner(decode, dev, enabled=graphed, max_graphs=MAX_GRAPHS)
            self._staging = HostStaging(dev, self.limits.max_pinned_bytes)
        return self

    @property
    def device(self) -> Any:
        """Where the model's weights are (windows run there; results come back as numpy)."""
        return next(self.model.parameters()).device

    def identity(self) -> dict[str, Any]:
        """What makes this backend's outputs what they are (for resume checks and reports)."""
        return {
            "backend": self.name,
            "precision": self.precision,
            "device": str(self.device),
            "source": self.source,
            "torch": torch.__version__,
        }

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        self._staging.clear()
        self._encode.clear()
        self._decode.clear()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    @contextlib.contextmanager
    def context(self) -> Iterator[None]:
        """Inference mode, IEEE float32 on CUDA, and autocast for bf16/fp16."""
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.inference_mode())
            if self.ieee:
                stack.enter_context(ieee_fp32(self.device))
            if self.precision in DTYPES and self.autocast:
                stack.enter_context(
                    torch.autocast(self.device.type, DTYPES[self.precision], cache_enabled=False)
                )
            yield

    # -- host <-> device (xyrt.runtime.backends.pytorch.staging) ------------------------------
    def tensor(self, array: np.ndarray) -> Any:
        """A numpy input on this backend's device (through a pinned buffer on CUDA)."""
        return self._staging.to_device(array, self._staging.begin(), "in")

    def host(self, *tensors: Any) -> list[np.ndarray]:
        """Device tensors -> numpy copies, with one synchronisation for all of them."""
        return self._staging.to_host(tensors, self._staging.begin(), lambda *a: list(a)).result()

    # -- the network --------------------------------------------------------------------------
    def _encode_fn(self, wav: Any, lengths: Any, positions: Any, reference: Any) -> tuple[Any, Any]:
        mel, mel_lengths = self.model.frontend(wav, lengths, reference)
        finite = torch.isfinite(mel).all()
        codes, _ = self.model.encode_mel(mel, mel_lengths, positions)
        return codes, finite

    def _decode_fn(self, codes: Any, positions: Any) -> tuple[Any]:
        return (self.model.decode_codes(codes, None, positions).float(),)

    def window_samples(self, samples: int) -> int:
        """Encoder windows run in shape buckets when CUDA graphs are on (`window_bucket`)."""
        return window_bucket(samples) if self._encode.enabled else samples

    def _pad_rows(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Pad an encoder batch to its shape bucket (graphs only): columns to `window_bucket`
        (callers that pack with `window_samples` already did), rows to a power of two (copies
        of row 0, dropped again after)."""
        wav = feed[WAVEFORM]
        b, p = wav.shape
        rows, cols = batch_bucket(b), window_bucket(p)
        if self.max_batch is not None:
            rows = max(b, min(rows, self.max_batch))
        if (rows, cols) == (b, p):
            return feed
        out = np.zeros((rows, cols), np.float32)
        out[:b, :p] = wav
        padded = {WAVEFORM: out}
        for name, values in feed.items():
            if name != WAVEFORM:
                padded[name] = np.concatenate([values, np.repeat(values[:1], rows - b)])
        padded[WAVEFORM][b:] = out[0]
        return padded

    def submit_encode(
        self,
        wav: np.ndarray,
        lengths: np.ndarray,
        positions: np.ndarray | None = None,
        mel_reference: np.ndarray | None = None,
    ) -> Pending:
        """Start one encoder batch on the device; ``.result()`` gives its codes."""
        b, p = wav.shape
        feed = encoder_feed(wav, lengths, positions, mel_reference)
        if self._encode.enabled:
            feed = self._pad_rows(feed)

        def finish(codes: np.ndarray, finite: np.ndarray) -> np.ndarray:
            check_finite(finite)
            return codes[:, :b, : p // SAMPLES_PER_CODE_IN]

        with self._lock, self.context():
            slot = self._staging.begin()
            inputs = [self._staging.to_device(feed[n], slot, n) for n in ENCODER_INPUTS]
            return self._staging.to_host(self._timed(self._encode, *inputs), slot, finish)

    def submit_decode(self, codes: np.ndarray, positions: np.ndarray | None = None) -> Pending:
        """Start one decoder batch on the device; ``.result()`` gives its audio."""
        feed = decoder_feed(codes, positions)
        with self._lock, self.context():
            slot = self._staging.begin()
            inputs = [self._staging.to_device(feed[n], slot, n) for n in (CODES, POSITIONS)]
            out = self._timed(self._decode, *inputs)
            return self._staging.to_host(out, slot, lambda audio: audio)

    def encode_window(self, wav, lengths, positions=None, mel_reference=None) -> np.ndarray:
        return self.submit_encode(wav, lengths, positions, mel_reference).result()

    def decode_window(self, codes: np.ndarray, positions=None) -> np.ndarray:
        return self.submit_decode(codes, positions).result()

    def _timed(self, runner: GraphRunner, *args: Any) -> tuple[Any, ...]:
        if not self.compile:
            return runner(*args)
        t0 = time.perf_counter()
        key = runner.key(args)
        first = key not in runner.seen
        out = runner(*args)
        if first:
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.compile_seconds += time.perf_counter() - t0
        return out

    def encode_window_with_margins(
        self, wav: np.ndarray, lengths: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """`encode_window` plus each code's tie margin: codes (8, B, T) int64 and margins
        (8, B, T) float32 (see `xyrt.runtime.compare.ReferenceCodes`); eager."""
        with self._lock, self.context():
            mel, mel_lengths = self.model.frontend(self.tensor(wav), self.tensor(lengths))
            check_finite(torch.isfinite(mel).all())
            x, code_lengths = self.model.latents(mel, mel_lengths)
            codes, margins = self.model.quantizer.encode_with_margins(x, code_lengths)
            return self.host(codes, margins.float())

    def graph_stats(self) -> dict[str, Any]:
        """Captures, replays and eager runs per graph (encoder, decoder)."""
        return {"encoder": self._encode.stats, "decoder": self._decode.stats}

    def memory(self) -> dict[str, Any]:
        """What the backend's caches hold now, against their limits (bench reports it)."""
        return {
            "graphs": {"encoder": len(self._encode.graphs), "decoder": len(self._decode.graphs)},
            "max_graphs": self.limits.max_graphs,
            "pinned_bytes": self._staging.pinned_bytes,
            "max_pinned_bytes": self.limits.max_pinned_bytes,
        }

    def stage_profiler(self) -> StageProfiler:
        from xyrt.runtime.backends.pytorch.stages import TorchStageProfiler

        return TorchStageProfiler(self)


def _whole_stacks(model: Any, dtype: Any) -> list[Any]:
    """``autocast=False``: every module but the float32 islands (front end, residual VQ, the
    vocoder head's iSTFT, which gets float32 from the head) holds ``dtype`` parameters and
    buffers, so residual streams, LayerNorms and attention run in ``dtype`` too; inputs are
    cast where float32 enters (the encoders' mel, the decoder's RVQ output). Returns the
    input-casting hooks."""
    parts = (model.frontend, model.quantizer, model.vocoder.head.istft)
    islands = {id(m) for part in parts for m in part.modules()}
    for m in model.modules():
        if id(m) in islands:
            continue
        for tensor in [*m.parameters(recurse=False), *m.buffers(recurse=False)]:
            if tensor.is_floating_point():
                tensor.data = tensor.data.to(dtype)

    def cast(module: Any, args: tuple) -> tuple:
        return tuple(a.to(dtype) if torch.is_floating_point(a) else a for a in args)

    entries = (model.semantic_encoder, model.acoustic_encoder, model.post_rvq_adapter)
    return [m.register_forward_pre_hook(cast) for m in entries]


def check_finite(finite: Any) -> None:
    """`AudioError` unless the log-mel features were all finite (``finite``: a flag the network
    computed): codes are never computed from inf/NaN features."""
    if not bool(finite):
        raise AudioError("the log-mel features of this audio are not finite; scale it to [-1, 1]")


def _clamp_fp16(module: Any, args: Any, output: Any) -> Any:
    if isinstance(output, torch.Tensor) and output.dtype == torch.float16:
        return output.clamp(-FP16_CLAMP, FP16_CLAMP)
    return output


def open_torch(source: str | Path, o: Options) -> TorchBackend:
    """A `TorchBackend` over a checkpoint: an original .ckpt (``o.config`` given, else
    config.yaml beside it) or a Hugging Face-layout folder, with the options ``o``."""
    from xyrt.runtime.network.checkpoint import load_model

    dev = parse_device(o.device)  # a bad device fails before the checkpoint is read
    if o.threads:
        torch.set_num_threads(o.threads)
    model = load_model(source, o.config)
    return TorchBackend(
        model,
        dev,
        o.precision,  # None: auto (fp32 on a CPU, bf16/fp16 on a GPU by its generation)
        cuda_graphs=o.cuda_graphs,
        compile=o.compile,
        autocast=o.autocast,
        max_batch=o.max_batch,
        source=str(source),
    )
