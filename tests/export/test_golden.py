"""Parity with the published implementation's outputs (golden.npz), both checkpoint layouts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import CLIPS, SPEECH, codec, expect_codes, golden, golden_reference

# codes: identical except reference float32 near-ties (xyrt.runtime.compare), on any host
pytestmark = pytest.mark.golden


@pytest.mark.parametrize("overlap", [10, 0])
@pytest.mark.parametrize("clip", CLIPS)
def test_codes_identical(golden_name: str, clip: str, overlap: int) -> None:
    g = golden(golden_name)
    codes = codec(golden_name).encode(g[f"{clip}/wav"], overlap=overlap)
    ref = golden_reference(golden_name, clip, overlap)
    assert codes.dtype == np.int64 and codes.shape == ref.codes.shape
    expect_codes(ref, codes, f"pytorch {golden_name} {clip} overlap {overlap}")


@pytest.mark.parametrize("overlap", [10, 0])
@pytest.mark.parametrize("clip", CLIPS)
def test_decode_matches_golden_audio(golden_name: str, clip: str, overlap: int) -> None:
    g = golden(golden_name)
    ref = g[f"{clip}/recon_ov{overlap}"]
    audio = codec(golden_name).decode(g[f"{clip}/codes_ov{overlap}"], overlap=overlap)
    assert audio.dtype == np.float32 and audio.shape == ref.shape
    assert np.abs(audio - ref).max() <= 1e-4 * np.abs(ref).max()


def test_ragged_batch_equals_golden_batch(golden_name: str) -> None:
    g = golden(golden_name)
    c = codec(golden_name)
    for batch_size in (6, 4):
        c.batch_size = batch_size
        out = c.encode([g[f"{s}/wav"] for s in SPEECH])
        for s, codes in zip(SPEECH, out, strict=True):
            ref = golden_reference(golden_name, s, 10, batch=True)
            expect_codes(ref, codes, f"pytorch {golden_name} {s} batch of {batch_size}")


@pytest.mark.parametrize("clip", ["speech_3", "short_quarter_second", "chirp_loud"])
def test_pad_to_30s_gives_the_same_codes(clip: str) -> None:
    g = golden("tiny_16k")
    c = codec("tiny_16k")
    c.pad_to_30s = True
    try:
        ref = golden_reference("tiny_16k", clip, 10)
        expect_codes(ref, c.encode(g[f"{clip}/wav"]), f"pytorch tiny_16k {clip} pad_to_30s")
    finally:
        c.pad_to_30s = False


@pytest.mark.parametrize("clip", CLIPS)
def test_torch_frontend_matches_golden_mel(clip: str) -> None:
    g = golden("tiny_16k")
    model = codec("tiny_16k").model
    wav = torch.from_numpy(g[f"{clip}/wav"][:480000])[None]
    lengths = torch.tensor([wav.shape[1]])
    mel, frames = model.frontend(model.prepare_window(wav, lengths), lengths)
    assert int(frames[0]) == int(g[f"{clip}/mel_frames"])
    ref = g[f"{clip}/mel"][:, : mel.shape[2]]
    full = mel.shape[2] == 3000
    assert full or mel.shape[2] > int(frames[0]), "a trimmed window reaches past the valid frames"
    assert np.abs(mel[0].numpy() - ref).max() < 1e-4


def test_trimmed_window_is_smaller_than_30s() -> None:
    model = codec("tiny_16k").model
    wav = torch.zeros(1, 160000)
    x = model.prepare_window(wav, torch.tensor([160000]))
    assert x.shape[1] < 480000 / 2
    assert model.prepare_window(wav, torch.tensor([160000]), pad_to_30s=True).shape[1] == 480000
