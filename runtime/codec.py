"""`ChunkedCodec`: the codec users hold, over any `xyrt.runtime.backends.base.Backend`.

It adds what every backend shares: input checks, the published long-audio chunking, batching of
windows, trimming each window to the samples it needs (`xyrt.runtime.graph_io.padded_length`),
stitching, and the streaming entry points (`create_stream`, `is_ready`, `encode_stream(s)`;
`create_decode_stream`, `decode_stream(s)`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterator, Sequence

import numpy as np

from xyrt.config import INPUT_SAMPLE_RATE, SAMPLES_PER_CODE_IN
from xyrt.errors import AudioError, CodesError, XyrtError
from xyrt.runtime.backends.base import Backend, limits_of
from xyrt.runtime.chunking import (
    OVERLAP_SECONDS,
    decode_plan,
    encode_plan,
    num_codes,
    stitch,
    window_batches,
)
from xyrt.runtime.formats.audio import prepare_audio
from xyrt.runtime.formats.codes import validate_codes
from xyrt.runtime.graph_io import GRAPHS, pack_windows
from xyrt.runtime.streams.decode_stream import DecodeStream, DecodeStreamOptions, decode_streams
from xyrt.runtime.streams.encode_stream import EncodeStream, EncodeStreamOptions, encode_streams


def in_flight(
    batches: Sequence[list[int]],
    submit: Callable[[list[int]], Callable[[], object]],
    collect: Callable[[list[int], Callable[[], object]], None],
) -> None:
    """Two batches in flight: submit batch k + 1, then collect batch k (its result waits for
    the backend), so a backend that runs asynchronously overlaps its work with the packing of
    the next batch."""
    previous = None
    for idx in batches:
        result = submit(idx)
        if previous is not None:
            collect(*previous)
        previous = (idx, result)
    if previous is not None:
        collect(*previous)


def check_encodable(clip: np.ndarray) -> np.ndarray:
    """``clip`` (16 kHz samples) unchanged if it holds at least one code (80 ms), else
    `AudioError`."""
    if num_codes(len(clip)) == 0:
        raise AudioError(
            f"audio of {len(clip)} samples ({len(clip) / 16:.1f} ms at 16 kHz) is shorter than "
            f"one code ({SAMPLES_PER_CODE_IN} samples, 80 ms)"
        )
    return clip


class ChunkedCodec:
    """Offline encode/decode over any `Backend`, with the published chunking.

    Up to ``batch_size`` windows of similar length run together (`chunking.window_batches`);
    results do not depend on it (ragged batches are masked). ``batch_size=None`` takes the
    backend's preferred batch (`BackendLimits`: 4 on a CPU, 32 on a GPU); any batch is capped
    by the backend's ``max_batch``.
    ``pad_to_30s`` runs every window as 30 s like the published code: same codes, more work.
    """

    def __init__(
        self,
        backend: Backend,
        batch_size: int | None = None,
        pad_to_30s: bool = False,
        progress: bool = False,
    ) -> None:
        from xyrt.checks import positive_int

        if batch_size is not None:
            positive_int(batch_size, "batch_size")
        for name, flag in (("pad_to_30s", pad_to_30s), ("progress", progress)):
            if not isinstance(flag, bool):
                raise XyrtError(f"{name} must be True or False, got {flag!r}")
        self.backend = backend
        self.info = backend.info
        self.batch_size = limits_of(backend).batch(batch_size)
        self.pad_to_30s = pad_to_30s
        self.progress = progress

    def load(self, graphs: Collection[str] = GRAPHS) -> ChunkedCodec:
        """Create the backend's sessions/engines now (they are otherwise made on first use):
        of ``graphs`` (`graph_io.ENCODER`, `graph_io.DECODER`; default both)."""
        self.backend.load(graphs)
        return self

    @contextlib.contextmanager
    def facts_checked(self) -> Iterator[None]:
        """Codes refused against the model's facts (quantizers, codebook size) inside the block
        are blamed on the codes only once the model itself is loaded and checked: a manifest
        edited to disagree with its graphs is named first, not the (valid) codes."""
        try:
            yield
        except CodesError:
            self.backend.load()
            raise

    def close(self) -> None:
        """Release the backend's sessions, engines and device memory."""
        self.backend.close()

    def __enter__(self) -> ChunkedCodec:
        return self.load()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def output_sample_rate(self) -> int:
        """Sample rate (Hz) of decoded audio: 16000, 24000 or 32000 by variant."""
        return self.info.output_sample_rate

    # -- streaming (see xyrt.runtime.streams.encode_stream) --------------------------------
    def create_stream(
        self,
        hop: float = EncodeStreamOptions.hop,
        context: float = EncodeStreamOptions.context,
        lookahead: float = EncodeStreamOptions.lookahead,
        overlap: float = OVERLAP_SECONDS,
        match_offline: bool = True,
    ) -> EncodeStream:
        """A new `EncodeStream`: hop, left context and lookahead in seconds (multiples of 0.08);
        ``overlap``: of the offline plan whose codes the stream follows (as `encode` takes it)."""
        return EncodeStream(EncodeStreamOptions(hop, context, lookahead, overlap, match_offline))

    def is_ready(self, stream: EncodeStream | DecodeStream) -> bool:
        """Whether ``stream`` (encode or decode) has a step (or, once finished, its tail) ready."""
        from xyrt.runtime.streams.encode_stream import check_stream

        return (stream if isinstance(stream, DecodeStream) else check_stream(stream)).ready()

    def encode_stream(self, stream: EncodeStream) -> None:
        """Encode one step of ``stream``; its codes are then available from ``pop_codes()``."""
        self.encode_streams([stream])

    def encode_streams(self, streams: Sequence[EncodeStream]) -> int:
        """One step of every ready stream, batched; returns how many streams stepped."""
        return encode_streams(self.backend, streams)

    # -- streaming decode (see xyrt.runtime.streams.decode_stream) -------------------------
    def create_decode_stream(
        self,
        hop: float = DecodeStreamOptions.hop,
        context: float = DecodeStreamOptions.context,
        lookahead: float = DecodeStreamOptions.lookahead,
        max_hop: float | None = None,
        crossfade: float | None = None,
        overlap: float = OVERLAP_SECONDS,
        match_offline: bool = True,
        prompt: np.ndarray | None = None,
    ) -> DecodeStream:
        """A new `DecodeStream` (codes in, audio out); seconds, see `DecodeStreamOptions`.
        ``prompt``: reference codes (8, P) the stream starts from as context (no audio for them;
        `DecodeStream`)."""
        options = DecodeStreamOptions(
            hop, context, lookahead, max_hop, crossfade, overlap, match_offline
        )
        return DecodeStream(options, self.info, prompt)

    def decode_stream(self, stream: DecodeStream) -> None:
        """Decode one step of ``stream``; its audio is then available from ``pop_audio()``."""
        self.decode_streams([stream])

    def decode_streams(self, streams: Sequence[DecodeStream]) -> int:
        """One step of every ready decode stream, batched; returns how many streams stepped."""
        return decode_streams(self.backend, streams)

    def _bar(self, total: int, desc: str):
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit="win", disable=not self.progress or total < 2)

    def encode(
        self,
        audio: np.ndarray | Sequence[np.ndarray],
        sample_rate: int = INPUT_SAMPLE_RATE,
        overlap: float = OVERLAP_SECONDS,
    ) -> np.ndarray | list[np.ndarray]:
        """One clip ((n,) or (n, channels), any rate) or a list of clips -> codes
        (8, floor(n / 1280)) int64 at 16 kHz (a list for a list)."""
        single, out = self.encode_with(None, audio, sample_rate, overlap)
        codes = [parts[0] for parts in out]
        return codes[0] if single else codes

    def encode_with(
        self,
        window_fn: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, ...]] | None,
        audio: np.ndarray | Sequence[np.ndarray],
        sample_rate: int = INPUT_SAMPLE_RATE,
        overlap: float = OVERLAP_SECONDS,
    ) -> tuple[bool, list[tuple[np.ndarray, ...]]]:
        """`encode` through ``window_fn(wav (B, P), lengths (B,))``, which returns one or more
        per-code arrays (stages, B, P / 1280) (codes and, e.g., their tie margins), each
        stitched per clip; None: the backend's codes, two batches in flight (the next one is
        packed while the backend runs this one). Returns (whether ``audio`` was a single clip,
        per clip the arrays)."""
        single = not isinstance(audio, (list, tuple))  # an array is one clip, (n,) or (n, ch)
        clips = [prepare_audio(c, sample_rate) for c in ([audio] if single else list(audio))]
        for c in clips:
            check_encodable(c)
        plans = [encode_plan(len(c), overlap) for c in clips]
        jobs = [(i, w) for i, plan in enumerate(plans) for w in plan]
        sizes = [w.stop - w.start for _, w in jobs]
        pieces: list[tuple[np.ndarray, ...]] = [()] * len(jobs)
        bucket = self.backend.window_samples

        def submit(idx: list[int]) -> Callable[[], tuple[np.ndarray, ...]]:
            segs = [clips[jobs[j][0]][jobs[j][1].start : jobs[j][1].stop] for j in idx]
            packed = pack_windows(segs, self.pad_to_30s, bucket)
            if window_fn is not None:
                outputs = window_fn(*packed)
                return lambda: outputs
            pending = self.backend.submit_encode(*packed)
            return lambda: (pending.result(),)

        def collect(idx: list[int], result: Callable[[], tuple[np.ndarray, ...]]) -> None:
            outputs = result()
            for row, j in enumerate(idx):
                pieces[j] = tuple(a[:, row] for a in outputs)
            bar.update(len(idx))

        with self._bar(len(jobs), "encode") as bar:
            in_flight(window_batches(sizes, self.batch_size), submit, collect)
        out, k = [], 0
        for clip, plan in zip(clips, plans, strict=True):
            mine = pieces[k : k + len(plan)]
            total = num_codes(len(clip))
            out.append(tuple(stitch(parts, plan, total) for parts in zip(*mine, strict=True)))
            k += len(plan)
        return single, out

    def encode_windows(self, wav: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Packed windows, one per row: wav (B, P <= 30 s) float32 zero past each row's length,
        lengths (B,) -> codes (8, B, P / 1280) int64, run in batches of ``batch_size`` rows
        within the backend's limits, two in flight (no chunking, no stitching: the window-level
        call of the published ``inference_tokenize``)."""
        out: list[np.ndarray] = []
        rows = [
            list(range(b, min(b + self.batch_size, len(lengths))))
            for b in range(0, len(lengths), self.batch_size)
        ]

        def submit(idx: list[int]) -> Callable[[], np.ndarray]:
            rows = slice(idx[0], idx[-1] + 1)
            return self.backend.submit_encode(wav[rows], lengths[rows]).result

        in_flight(rows, submit, lambda idx, result: out.append(result()))
        return np.concatenate(out, axis=1)

    def decode_windows(self, codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Windows of codes, one per row: codes (8, B, T <= 375), lengths (B,) -> audio (B, T x
        samples_per_code) float32, zero past each row's length. Rows of equal length run
        together (the vocoder has no padding mask), ``batch_size`` at a time, two in flight."""
        spc = self.info.samples_per_code_out
        audio = np.zeros((codes.shape[1], codes.shape[2] * spc), np.float32)
        batches = []
        for n in np.unique(lengths[lengths > 0]):
            same = np.flatnonzero(lengths == n)
            batches += [same[b : b + self.batch_size] for b in range(0, len(same), self.batch_size)]

        def submit(idx: np.ndarray) -> Callable[[], np.ndarray]:
            n = int(lengths[idx[0]])
            window = validate_codes(
                codes[:, idx, :n].reshape(self.info.num_quantizers, -1),
                self.info.num_quantizers,
                self.info.codebook_size,
            ).reshape(self.info.num_quantizers, len(idx), n)
            return self.backend.submit_decode(window).result

        def collect(idx: np.ndarray, result: Callable[[], np.ndarray]) -> None:
            audio[idx, : int(lengths[idx[0]]) * spc] = result()

        in_flight(batches, submit, collect)
        return audio

    def decode(
        self,
        codes: np.ndarray | Sequence[np.ndarray],
        overlap: float = OVERLAP_SECONDS,
        prompt: np.ndarray | Sequence[np.ndarray] | None = None,
    ) -> np.ndarray | list[np.ndarray]:
        """Codes (8, T) or a list -> audio (T x samples_per_code,) float32 at the output rate.

        Only windows of equal length are batched: the vocoder has no padding mask, so batching
        windows of different lengths would change their edges. ``prompt``: reference codes
        (8, P) decoded before every item (or a list, one per item) and cut from the audio, as
        MOSS-TTSD's server decodes (`xyrt.runtime.prompted`; its own 10 s windows, so
        ``overlap`` does not apply).
        """
        single = not isinstance(codes, (list, tuple))
        info = self.info
        with self.facts_checked():
            items = [
                validate_codes(c, info.num_quantizers, info.codebook_size)
                for c in ([codes] if single else list(codes))
            ]
        if prompt is not None:
            out = self._decode_prompted(items, prompt)
            return out[0] if single else out
        plans = [decode_plan(c.shape[1], overlap) for c in items]
        jobs = [(i, w) for i, plan in enumerate(plans) for w in plan]
        by_len: dict[int, list[int]] = {}
        for j, (_, w) in enumerate(jobs):
            by_len.setdefault(w.stop - w.start, []).append(j)
        pieces: list[np.ndarray] = [np.empty(0)] * len(jobs)
        batches = [
            group[b : b + self.batch_size]
            for group in by_len.values()
            for b in range(0, len(group), self.batch_size)
        ]

        def submit(idx: list[int]) -> Callable[[], np.ndarray]:
            batch = np.stack(
                [items[jobs[j][0]][:, jobs[j][1].start : jobs[j][1].stop] for j in idx], axis=1
            )
            return self.backend.submit_decode(batch).result

        def collect(idx: list[int], result: Callable[[], np.ndarray]) -> None:
            audio = result()
            for row, j in enumerate(idx):
                pieces[j] = audio[row]
            bar.update(len(idx))

        with self._bar(len(jobs), "decode") as bar:
            in_flight(batches, submit, collect)
        spc = info.samples_per_code_out
        out, k = [], 0
        for item, plan in zip(items, plans, strict=True):
            out.append(stitch(pieces[k : k + len(plan)], plan, item.shape[1] * spc, unit=spc))
            k += len(plan)
        return out[0] if single else out

    def _decode_prompted(
        self, items: list[np.ndarray], prompt: np.ndarray | Sequence[np.ndarray]
    ) -> list[np.ndarray]:
        from xyrt.runtime.prompted import check_prompt, decode_prompted

        info = self.info
        many = isinstance(prompt, (list, tuple))
        prompts = list(prompt) if many else [prompt] * len(items)
        if len(prompts) != len(items):
            raise XyrtError(
                f"{len(prompts)} prompts for {len(items)} code arrays; give one prompt, or one "
                "per array"
            )
        prompts = [check_prompt(p, info.num_quantizers, info.codebook_size) for p in prompts]
        return decode_prompted(self, items, prompts)
