"""The XY_Tokenizer drop-in goes through the runtime's own checks (issue 21, class 2), and API
misuse of the drop-in and the stream calls is an `XyrtError` (class 6)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import xyrt.runtime
from helpers import exported, golden
from xyrt.compat import XY_Tokenizer
from xyrt.errors import AudioError, CodesError, XyrtError
from xyrt.runtime.codec import ChunkedCodec


@cache
def codec() -> ChunkedCodec:
    return xyrt.runtime.load(exported("tiny_16k"))


@cache
def spt() -> XY_Tokenizer:
    return XY_Tokenizer(codec())


def _speech() -> np.ndarray:
    return golden("tiny_16k")["speech_2/wav"]


def _pcm(dtype: np.dtype) -> np.ndarray:
    """The speech clip in ``dtype``: integer PCM at its full scale, other kinds cast."""
    wav = np.clip(_speech(), -1, 1 - 2**-15)
    if dtype.kind == "i":
        return np.round(wav * (2.0 ** (8 * dtype.itemsize - 1) - 1)).astype(dtype)
    if dtype.kind == "u":
        return np.round(wav * 127 + 128).astype(dtype)
    return wav.astype(dtype)


# -- class 2: one implementation of the audio and code checks -----------------------------------


@pytest.mark.parametrize("kind", ["numpy", "tensor"])
@pytest.mark.parametrize("dtype", ["int16", "int32", "int8", "uint8"])
def test_integer_pcm_is_scaled_as_the_runtime_scales_it(dtype: str, kind: str) -> None:
    pcm = _pcm(np.dtype(dtype))
    want = codec().encode(pcm, 16000)
    item = pcm if kind == "numpy" else torch.from_numpy(pcm)
    got = spt().encode([item])["codes_list"][0]
    assert np.array_equal(np.asarray(got), want)
    window = spt().inference_tokenize(item[None, None], [len(pcm)])["codes"]
    assert np.array_equal(np.asarray(window)[:, 0], want)  # one window: the clip is < 30 s


DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "float16", "float32", "float64",
          "bool", "complex64"]  # fmt: skip


@settings(max_examples=12, deadline=None)
@given(dtype=st.sampled_from(DTYPES), nan=st.booleans())
def test_the_drop_in_refuses_exactly_what_the_runtime_refuses(dtype: str, nan: bool) -> None:
    """Property: for any sample dtype (with or without a NaN), encode through the drop-in and
    through ``codec.encode`` either both give the same codes or both refuse with the same
    message (apart from the name of the argument)."""
    pcm = _pcm(np.dtype(dtype))
    if nan and pcm.dtype.kind in "fc":
        pcm[100] = np.nan

    def run(fn):
        try:
            return np.asarray(fn()), None
        except XyrtError as exc:
            return None, (type(exc), str(exc).split(" ", 1)[1])

    runtime = run(lambda: codec().encode(pcm, 16000))
    drop_in = run(lambda: spt().encode([pcm])["codes_list"][0])
    tokenize = run(lambda: spt().inference_tokenize(pcm[None, None], [len(pcm)])["codes"][:, 0])
    for got in (drop_in, tokenize):
        assert got[1] == runtime[1]
        assert (got[0] is None) == (runtime[0] is None)
        if runtime[0] is not None:
            assert np.array_equal(got[0], runtime[0])


def test_nan_sample_in_a_window_is_refused() -> None:
    x = torch.from_numpy(_speech().copy())[None, None]
    x[0, 0, 7] = float("nan")
    with pytest.raises(AudioError, match=r"x\[0\] contains 1 NaN or Inf samples"):
        spt().inference_tokenize(x, torch.tensor([x.shape[-1]]))
    with pytest.raises(AudioError, match=r"wav_list\[0\] contains 1 NaN"):
        spt().encode([x[0, 0]])
    with pytest.raises(AudioError, match=r"wav_list\[1\] contains 1 NaN"):  # under 80 ms too
        spt().encode([x[0, 0, 1000:], x[0, 0, :100]])


@pytest.mark.parametrize("dtype", [torch.complex64, torch.bool, torch.float32, torch.float64])
def test_codes_of_a_non_integer_dtype_are_refused(dtype: torch.dtype) -> None:
    name = str(dtype).removeprefix("torch.")
    codes = torch.zeros(8, 10, dtype=dtype)
    with pytest.raises(CodesError, match=rf"codes_list\[0\]: codes have dtype {name}; expected"):
        spt().decode([codes])
    with pytest.raises(CodesError, match=rf"codes_list\[0\]: codes have dtype {name}"):
        spt().decode([codes[:, :0]])  # empty: still not integer codes
    with pytest.raises(CodesError, match=rf"codes have dtype {name}; expected an integer"):
        spt().inference_detokenize(codes[:, None], torch.tensor([10]))
    with pytest.raises(CodesError, match=rf"codes have dtype {name}"):
        codec().decode(codes.numpy())  # the runtime's own refusal, for comparison


def test_integer_codes_decode_as_the_runtime_decodes_them() -> None:
    codes = codec().encode(_speech(), 16000)
    want = codec().decode(codes)
    for item in (codes.astype(np.int32), torch.from_numpy(codes).to(torch.int16)):
        got = spt().decode([item])["syn_wav_list"][0]
        assert np.array_equal(np.asarray(got), want)


@pytest.mark.parametrize("overlap", [-1, -0.08, 30, 31])
def test_overlap_out_of_range_is_refused_even_for_short_clips(overlap: float) -> None:
    short = np.zeros(100, np.float32)  # under 80 ms: no window is run at all
    with pytest.raises(XyrtError, match=r"overlap must be in \[0"):
        spt().encode([short], overlap_seconds=overlap)
    with pytest.raises(XyrtError, match=r"overlap must be in \[0"):
        spt().decode([np.zeros((8, 0), np.int64)], overlap_seconds=overlap)


# -- class 6: API misuse is an XyrtError ----------------------------------------------------------


def test_batch_of_zero_is_refused() -> None:
    with pytest.raises(AudioError, match=r"x has shape \(0, 1, 1600\); expected .* B >= 1"):
        spt().inference_tokenize(np.zeros((0, 1, 1600), np.float32), np.zeros(0, np.int64))
    with pytest.raises(CodesError, match=r"codes have shape \(8, 0, 10\); expected .* B >= 1"):
        spt().inference_detokenize(np.zeros((8, 0, 10), np.int64), np.zeros(0, np.int64))


def test_lengths_must_be_integers_one_per_item() -> None:
    x = np.zeros((2, 1, 1600), np.float32)
    with pytest.raises(XyrtError, match=r"input_lengths has dtype float64; expected integer"):
        spt().inference_tokenize(x, np.array([1600.0, 1600.0]))
    with pytest.raises(XyrtError, match=r"input_lengths has 1 entries for a batch of 2"):
        spt().inference_tokenize(x, np.array([1600]))


@pytest.mark.parametrize("overlap", ["5", None, True, float("nan")])
def test_overlap_that_is_not_a_number_is_refused(overlap: object) -> None:
    with pytest.raises(XyrtError, match="overlap must be a finite number"):
        spt().encode([_speech()], overlap_seconds=overlap)
    with pytest.raises(XyrtError, match="overlap must be a finite number"):
        spt().decode([np.zeros((8, 5), np.int64)], overlap_seconds=overlap)
    with pytest.raises(XyrtError, match="overlap must be a finite number"):
        codec().encode(_speech(), 16000, overlap=overlap)


@pytest.mark.parametrize("device", ["bogus", "cuda:99", 3.5])
def test_a_device_that_does_not_exist_is_refused(device: object) -> None:
    with pytest.raises(XyrtError, match=r"device .*(not a torch device|CUDA)"):
        spt().encode([_speech()], device=device)
    with pytest.raises(XyrtError, match=r"device .*(not a torch device|CUDA)"):
        spt().decode([np.zeros((8, 5), np.int64)], device=device)


@pytest.mark.parametrize("streams", [None, "streams", 3])
def test_stream_lists_that_are_not_lists_are_refused(streams: object) -> None:
    with pytest.raises(XyrtError, match=r"expected a list of DecodeStreams .* got"):
        codec().decode_streams(streams)
    with pytest.raises(XyrtError, match=r"expected a list of EncodeStreams .* got"):
        codec().encode_streams(streams)


def test_a_single_stream_where_a_list_is_expected_is_refused() -> None:
    with pytest.raises(XyrtError, match=r"list of DecodeStreams .* got DecodeStream"):
        codec().decode_streams(codec().create_decode_stream())


def test_a_stream_of_the_other_kind_is_refused() -> None:
    encode_stream = codec().create_stream()
    encode_stream.accept_waveform(16000, _speech())
    encode_stream.input_finished()
    with pytest.raises(XyrtError, match=r"expected a DecodeStream from .*\(\), got EncodeStream"):
        codec().decode_stream(encode_stream)
    with pytest.raises(XyrtError, match=r"streams\[1\] is EncodeStream"):
        codec().decode_streams([codec().create_decode_stream(), encode_stream])
    with pytest.raises(XyrtError, match=r"expected an EncodeStream from .*\(\), got DecodeStream"):
        codec().encode_stream(codec().create_decode_stream())
    assert encode_stream.ready()  # nothing consumed it
