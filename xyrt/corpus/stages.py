"""The two Ray Data stages of `xyrt tokenize`, run on the workers.

read (tasks): a block of items -> decoded, resampled 16 kHz audio, grouped into packs by
    duration (longest first, each pack at most ``batch_seconds`` of windows), one row per
    pack; items that cannot be read travel as error entries.
encode (actors): one `Encoder` per worker holds the model for the whole run and encodes a pack
    with the codec's published chunking (`ChunkedCodec.encode`), exactly as ``xyrt encode``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from xyrt.config import CHUNK_SECONDS, INPUT_SAMPLE_RATE, SAMPLES_PER_CODE_IN
from xyrt.corpus.inputs import Item, ItemError, read_item
from xyrt.errors import XyrtError
from xyrt.runtime.backends.base import limits_of
from xyrt.runtime.backends.registry import Options
from xyrt.runtime.chunking import OVERLAP_SECONDS, encode_plan


def pack_by_duration(
    lengths: Sequence[int], batch_seconds: float, overlap: float = OVERLAP_SECONDS
) -> list[list[int]]:
    """Indices of clips (16 kHz samples each) grouped into packs, longest first: a pack's cost
    is the seconds of its windows (the codec batches only windows of similar length,
    `chunking.window_batches`), at most ``batch_seconds``; a clip that alone costs more gets a
    pack of its own."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    packs: list[list[int]] = []
    cost = 0.0
    for i in order:
        seconds = sum(w.stop - w.start for w in encode_plan(lengths[i], overlap))
        seconds /= INPUT_SAMPLE_RATE
        if packs and cost + seconds <= batch_seconds:
            packs[-1].append(i)
            cost += seconds
        else:
            packs.append([i])
            cost = seconds
    return packs


def items_to_json(items: Sequence[Item]) -> str:
    """The fields the workers need, as one JSON string (extra columns stay on the driver)."""
    return json.dumps([[it.id, it.path, it.start, it.end] for it in items])


def _pack_row(shard: int, entries: list[dict], clips: list[np.ndarray]) -> dict[str, Any]:
    audio = np.concatenate(clips).astype(np.float32) if clips else np.zeros(0, np.float32)
    return {
        "shard": shard,
        "entries": json.dumps(entries),
        "audio": audio.tobytes(),
        "lengths": [len(c) for c in clips],
    }


def read_stage(batch, batch_seconds: float, overlap: float):
    """Ray Data map_batches function: rows (shard, items JSON) -> pack rows (pyarrow)."""
    import pyarrow as pa

    rows = []
    for shard, blob in zip(batch["shard"].to_pylist(), batch["items"].to_pylist(), strict=True):
        ok, clips, failed = [], [], []
        for item_id, path, start, end in json.loads(blob):
            entry = {"id": item_id}
            try:
                samples, rate = read_item(Item(item_id, path, start, end))
            except ItemError as exc:
                failed.append({**entry, "kind": exc.kind, "reason": str(exc)})
                continue
            except Exception as exc:  # noqa: BLE001 - one bad file never stops the job
                failed.append({**entry, "kind": "unreadable", "reason": f"{path}: {exc!r}"})
                continue
            ok.append({**entry, "sample_rate": rate, "samples": len(samples)})
            clips.append(samples)
        if failed:
            rows.append(_pack_row(shard, failed, []))
        for pack in pack_by_duration([len(c) for c in clips], batch_seconds, overlap):
            rows.append(_pack_row(shard, [ok[i] for i in pack], [clips[i] for i in pack]))
    schema = pa.schema(
        [
            ("shard", pa.int64()),
            ("entries", pa.string()),
            ("audio", pa.large_binary()),
            ("lengths", pa.list_(pa.int64())),
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


RESULT_COLUMNS = ("shard", "id", "sample_rate", "duration", "frames", "codes", "kind", "reason")


class Encoder:
    """Ray Data actor: loads the model once (`xyrt.runtime.load`) and encodes packs."""

    def __init__(
        self,
        model: str,
        backend: str,
        options: Options,
        batch_seconds: float,
        overlap: float,
    ) -> None:
        import xyrt.runtime

        self.codec = xyrt.runtime.load(model, backend, options=options)
        self.limits = limits_of(self.codec.backend)
        self.batch_seconds, self.overlap = batch_seconds, overlap
        # one code of silence: builds the sessions now, so a model that cannot load fails the
        # actor (and the job, with the reason) instead of turning every item into an error
        self.codec.encode(np.zeros(SAMPLES_PER_CODE_IN, np.float32))

    def _encode(self, clips: list[np.ndarray]) -> list[np.ndarray | XyrtError]:
        longest = min(max(len(c) for c in clips) / INPUT_SAMPLE_RATE, CHUNK_SECONDS)
        wanted = max(1, int(self.batch_seconds // max(longest, 0.08)))
        self.codec.batch_size = self.limits.batch(wanted)  # within the backend's maximum
        try:
            return self.codec.encode(clips, INPUT_SAMPLE_RATE, overlap=self.overlap)
        except XyrtError:
            if len(clips) == 1:
                raise
        out: list[np.ndarray | XyrtError] = []
        for clip in clips:  # isolate the clip that fails
            try:
                out.append(self.codec.encode(clip, INPUT_SAMPLE_RATE, overlap=self.overlap))
            except XyrtError as exc:
                out.append(exc)
        return out

    def __call__(self, batch):
        import pyarrow as pa

        cols: dict[str, list] = {k: [] for k in RESULT_COLUMNS}

        def emit(shard, entry, codes=None, kind=None, reason=None) -> None:
            seconds = entry.get("samples", 0) / INPUT_SAMPLE_RATE
            values = (shard, entry["id"], entry.get("sample_rate"), seconds)
            values += (None if codes is None else codes.shape[1],)
            values += (None if codes is None else codes.astype(np.int16).tobytes(), kind, reason)
            for k, v in zip(RESULT_COLUMNS, values, strict=True):
                cols[k].append(v)

        for row in batch.to_pylist():
            entries = json.loads(row["entries"])
            if not row["lengths"]:  # items the read stage could not read
                for e in entries:
                    emit(row["shard"], e, kind=e["kind"], reason=e["reason"])
                continue
            audio = np.frombuffer(row["audio"], np.float32)
            clips = np.split(audio, np.cumsum(row["lengths"])[:-1])
            try:
                results: list = self._encode(clips)
            except XyrtError as exc:
                results = [exc]
            for e, res in zip(entries, results, strict=True):
                if isinstance(res, XyrtError):
                    emit(row["shard"], e, kind="encode", reason=str(res))
                else:
                    emit(row["shard"], e, codes=res)
        schema = pa.schema(
            [
                ("shard", pa.int64()),
                ("id", pa.string()),
                ("sample_rate", pa.int32()),
                ("duration", pa.float64()),
                ("frames", pa.int32()),
                ("codes", pa.large_binary()),
                ("kind", pa.string()),
                ("reason", pa.string()),
            ]
        )
        return pa.table(cols, schema=schema)
