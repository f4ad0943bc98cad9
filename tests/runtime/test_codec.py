"""`ChunkedCodec` (runtime/codec.py): what counts as one clip; the rest of its behaviour is
covered against the golden outputs in tests/export/test_golden.py."""

from __future__ import annotations

import numpy as np

from helpers import codec, golden


def test_a_2d_array_is_one_stereo_clip_not_a_batch() -> None:
    wav = golden("tiny_16k")["speech_4/wav"]
    stereo = np.stack([wav, wav], axis=1)
    np.testing.assert_array_equal(codec("tiny_16k").encode(stereo), codec("tiny_16k").encode(wav))
