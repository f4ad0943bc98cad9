"""The graph I/O contract: what encoder.onnx and decoder.onnx take and give, in one place.

The exporter writes graphs with these names, shapes and scopes; every backend (ONNX Runtime,
TensorRT, the PyTorch reference), the quantizer and the benchmark feed them through the
builders below. Rates and frame sizes come from `xyrt.config` (docs/SPEC.md, "Shapes and
rates"):

    encoder: waveform (B, P) float32, lengths (B,) int64, positions (B,) int64,
             mel_reference (B,) float32 -> codes (8, B, P / 1280) int64, code_lengths (B,) int64
    decoder: codes (8, B, T) int64, lengths (B,) int64 = T for every row, positions (B,) int64
             -> waveform (B, T x samples_per_code_out) float32, waveform_lengths (B,) int64

A window P holds at most 30 s and is a whole number of codes (`padded_length`).

``positions``: where each row's first code sits in the published 30 s window (in codes; every
stack adds the positional embeddings from there). ``mel_reference``: a log10-mel maximum the
log-mel floor may not go below (floor = max(window maximum, reference) - 8). Offline windows
pass 0 and `LOG_MEL_MIN` (the smallest log-mel there is), which is the published computation
exactly; streams pass what the offline window would have (`xyrt.runtime.streams`). Exports made
before these inputs existed lack them (`OPTIONAL_INPUTS`): backends then drop them (`fit_feed`),
which is the old behaviour, positions restarting at 0 in every window.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import numpy as np

from xyrt.config import CODES_PER_CHUNK, N_FFT, N_SAMPLES, SAMPLES_PER_CODE_IN
from xyrt.errors import XyrtError

ENCODER, DECODER = "encoder", "decoder"
GRAPHS = (ENCODER, DECODER)

WAVEFORM = "waveform"  # encoder input, decoder output: (B, samples) float32
LENGTHS = "lengths"  # both inputs: valid samples (encoder) or codes (decoder) per row, int64
CODES = "codes"  # encoder output, decoder input: (num_quantizers, B, frames) int64
CODE_LENGTHS = "code_lengths"  # encoder output: valid codes per row
WAVEFORM_LENGTHS = "waveform_lengths"  # decoder output: valid output samples per row
POSITIONS = "positions"  # both inputs: (B,) int64, the row's first code in the 30 s window
MEL_REFERENCE = "mel_reference"  # encoder input: (B,) float32, the log-mel floor's reference max
LOG_MEL_MIN = -10.0  # log10 of the log-mel's 1e-10 clamp: the reference that changes nothing
OPTIONAL_INPUTS = (POSITIONS, MEL_REFERENCE)  # absent from exports older than xyrt 0.1 streams

# name -> (dtype, dims); a str dim is dynamic. The exporter's input/output names and the
# manifest's listing come from here.
ENCODER_IO = {
    "inputs": {
        WAVEFORM: ("float32", ["batch", "samples"]),
        LENGTHS: ("int64", ["batch"]),
        POSITIONS: ("int64", ["batch"]),
        MEL_REFERENCE: ("float32", ["batch"]),
    },
    "outputs": {
        CODES: ("int64", [8, "batch", "frames"]),
        CODE_LENGTHS: ("int64", ["batch"]),
    },
}
DECODER_IO = {
    "inputs": {
        CODES: ("int64", [8, "batch", "frames"]),
        LENGTHS: ("int64", ["batch"]),
        POSITIONS: ("int64", ["batch"]),
    },
    "outputs": {
        WAVEFORM: ("float32", ["batch", "samples"]),
        WAVEFORM_LENGTHS: ("int64", ["batch"]),
    },
}
GRAPH_IO = {ENCODER: ENCODER_IO, DECODER: DECODER_IO}
GRAPH_OUTPUT = {ENCODER: CODES, DECODER: WAVEFORM}  # the output a backend returns

# Node-name scopes of the exported graphs (`xyrt.export.graphs`): which nodes belong to which
# stage. FLOAT_SCOPES stay float32 in every precision (front end, residual VQ, iSTFT).
FLOAT_SCOPES = ("/frontend/", "/rvq/", "/istft/")
STAGE_SCOPES = {
    ENCODER: (
        ("/frontend/", "frontend"),
        ("/semantic_encoder_adapter/", "semantic_adapter"),
        ("/semantic_encoder/", "semantic_encoder"),
        ("/acoustic_encoder/", "acoustic_encoder"),
        ("/pre_rvq_adapter/", "pre_rvq_adapter"),
        ("/downsample/", "downsample"),
        ("/rvq/", "rvq"),
    ),
    DECODER: (
        ("/rvq/", "rvq_decode"),
        ("/post_rvq_adapter/", "post_rvq_adapter"),
        ("/upsample/", "upsample"),
        ("/acoustic_decoder/", "acoustic_decoder"),
        ("/vocoder/", "vocoder"),
        ("/istft/", "vocoder"),
    ),
}


def stage_of(node: str, graph: str) -> str:
    """The stage a node of ``graph`` belongs to, by its scope ("other" when in none)."""
    for prefix, stage in STAGE_SCOPES[graph]:
        if node.startswith(prefix):
            return stage
    return "other"


def padded_length(max_samples: int, pad_to_30s: bool = False) -> int:
    """Samples a window must hold so every valid frame equals the 30 s computation.

    The longest item plus 400 zeros (200 for the centred STFT frame, 200 for the reflect
    padding, which then reflects zeros as in the 30 s window), rounded up to whole codes (1280
    samples, so the x4 downsample never pads), at most 480000 (30 s).
    """
    if pad_to_30s:
        return N_SAMPLES
    need = -(-(max_samples + N_FFT) // SAMPLES_PER_CODE_IN) * SAMPLES_PER_CODE_IN
    return min(N_SAMPLES, need)


def pack_windows(
    segments: Sequence[np.ndarray],
    pad_to_30s: bool = False,
    bucket: Callable[[int], int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Zero-padded batch (B, padded_length) float32 and lengths (B,) int64; ``bucket`` maps
    that length to the one a backend runs (`Backend.window_samples`)."""
    lengths = np.array([len(s) for s in segments], dtype=np.int64)
    size = padded_length(int(lengths.max()), pad_to_30s)
    if bucket is not None and not pad_to_30s:
        size = bucket(size)
    batch = np.zeros((len(segments), size), np.float32)
    for row, seg in enumerate(segments):
        batch[row, : len(seg)] = seg
    return batch, lengths


def _positions(positions: np.ndarray | None, frames: np.ndarray) -> np.ndarray:
    """(rows,) int64 window positions, checked: each row's ``frames`` valid codes stay inside
    the 30 s window (the graphs clamp the positions of padding, which is masked anyway)."""
    rows = len(frames)
    if positions is None:
        return np.zeros(rows, np.int64)
    pos = np.ascontiguousarray(positions, np.int64).reshape(-1)
    if len(pos) != rows:
        raise XyrtError(f"positions: expected {rows} (one per row), got {len(pos)}")
    over = (pos < 0) | (pos + frames > CODES_PER_CHUNK)
    if over.any():
        row = int(np.argmax(over))
        raise XyrtError(
            f"positions: row {row} has {int(frames[row])} codes at position {int(pos[row])}; a "
            f"30 s window holds positions 0..{CODES_PER_CHUNK - 1}"
        )
    return pos


def encoder_feed(
    wav: np.ndarray,
    lengths: np.ndarray,
    positions: np.ndarray | None = None,
    mel_reference: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The encoder's inputs: waveform (B, P) float32, lengths (B,) int64, positions (B,) int64
    (default 0) and mel_reference (B,) float32 (default `LOG_MEL_MIN`), contiguous."""
    lengths = np.ascontiguousarray(lengths, np.int64)
    ref = np.full(len(lengths), LOG_MEL_MIN, np.float32) if mel_reference is None else mel_reference
    return {
        WAVEFORM: np.ascontiguousarray(wav, np.float32),
        LENGTHS: lengths,
        POSITIONS: _positions(positions, lengths // SAMPLES_PER_CODE_IN),
        MEL_REFERENCE: np.ascontiguousarray(ref, np.float32).reshape(-1),
    }


def decoder_lengths(codes: np.ndarray) -> np.ndarray:
    """The decoder's lengths input for codes (8, B, T): T for every row (int64)."""
    return np.full(codes.shape[1], codes.shape[2], dtype=np.int64)


def decoder_feed(codes: np.ndarray, positions: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The decoder's inputs: codes (8, B, T) int64, lengths (B,) = T, positions (B,) int64."""
    return {
        CODES: np.ascontiguousarray(codes, np.int64),
        LENGTHS: decoder_lengths(codes),
        POSITIONS: _positions(positions, decoder_lengths(codes)),
    }


def window_feed(graph: str, *args: np.ndarray) -> dict[str, np.ndarray]:
    """``encoder_feed(wav, lengths)`` or ``decoder_feed(codes)`` by graph name."""
    return encoder_feed(*args) if graph == ENCODER else decoder_feed(*args)


def fit_feed(feed: dict[str, np.ndarray], input_names: Collection[str]) -> dict[str, np.ndarray]:
    """``feed`` for a graph with these inputs: the `OPTIONAL_INPUTS` an older export lacks are
    left out (that export restarts positions at 0 in every window, as xyrt did before)."""
    return {k: v for k, v in feed.items() if k in input_names or k not in OPTIONAL_INPUTS}


def has_window_inputs(input_names: Collection[str], graph: str) -> bool:
    """Whether a graph takes window positions (and, for the encoder, the mel reference)."""
    wanted = [n for n in GRAPH_IO[graph]["inputs"] if n in OPTIONAL_INPUTS]
    return all(n in input_names for n in wanted)
