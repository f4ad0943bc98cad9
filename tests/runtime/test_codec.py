"""`ChunkedCodec` (runtime/codec.py): what counts as one clip; the rest of its behaviour is
covered against the golden outputs in tests/export/test_golden.py."""

from __future__ import annotations

import numpy as np

from helpers import codec, golden


def test_a_2d_array_is_one_stereo_clip_not_a_batch() -> None:
    wav = golden("tiny_16k")["speech_4/wav"]
    stereo = np.stack([wav, wav], axis=1)
    np.testing.assert_array_equal(codec("tiny_16k").encode(stereo), codec("tiny_16k").encode(wav))


def test_two_batches_in_flight_and_results_in_place() -> None:
    """ChunkedCodec submits batch k + 1 before it waits for batch k, and puts every result
    back in its place (an asynchronous backend, as the PyTorch one on a GPU)."""
    from xyrt.runtime.backends.base import Backend, ModelInfo, Pending
    from xyrt.runtime.codec import ChunkedCodec

    events: list[str] = []

    class Later(Pending):
        def __init__(self, k: int, value: np.ndarray) -> None:
            self.k, self.value = k, value

        def result(self) -> np.ndarray:
            events.append(f"collect {self.k}")
            return self.value

    class Async(Backend):
        info = ModelInfo(16000, 1280)
        submitted = 0

        def submit_encode(self, wav, lengths, *window):
            k, self.submitted = self.submitted, self.submitted + 1
            events.append(f"submit {k}")
            first = (wav[:, :1] * 0 + np.arange(len(wav))[:, None] + 100 * k).astype(np.int64)
            return Later(k, np.repeat(first[None], 8, 0).repeat(wav.shape[1] // 1280, 2))

        def encode_window(self, wav, lengths, *window):
            return self.submit_encode(wav, lengths).result()

        def decode_window(self, codes, positions=None):
            raise NotImplementedError

    codec = ChunkedCodec(Async(), batch_size=2)
    clips = [np.ones(12800 * (i + 1), np.float32) * 0.1 for i in range(5)]
    out = codec.encode(clips)
    assert events[:3] == ["submit 0", "submit 1", "collect 0"]
    assert events.index("submit 2") < events.index("collect 1")
    # every clip got the codes of the row it ran in: distinct (batch, row) values per clip
    tags = {int(c[0, 0]) for c in out}
    assert len(tags) == 5 and all((c == c[0, 0]).all() for c in out)
    assert [c.shape[1] for c in out] == [10 * (i + 1) for i in range(5)]
