"""Prompted decode (issue 28): generated codes decoded after reference codes and the reference's
audio cut off, in MOSS-TTSD v0.7's server's windows (125 codes, stride 85, 20 codes of left
context, 0.1 s linear crossfade), from xyrt.runtime, xyrt.compat, the CLI and the decode
stream."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

import xyrt.runtime
from helpers import exported, golden
from xyrt.cli import main
from xyrt.errors import CodesError, XyrtError
from xyrt.runtime.prompted import (
    CONTEXT_CODES,
    STRIDE_CODES,
    WINDOW_CODES,
    assemble,
    crossfade_samples,
    prompt_windows,
)

NAME = "tiny_moss_ttsd_24k"
SPC = 1920


@cache
def codec():
    return xyrt.runtime.load(exported(NAME))


def _codes(clip: str) -> np.ndarray:
    return golden(NAME)[f"{clip}/codes_ov10"]


def snr_db(reference: np.ndarray, x: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(reference**2) / np.sum((reference - x) ** 2)))


def test_windows_and_crossfade() -> None:
    assert (WINDOW_CODES, STRIDE_CODES, CONTEXT_CODES) == (125, 85, 20)
    assert prompt_windows(300) == [(0, 125, 0), (85, 210, 105), (170, 295, 190), (255, 300, 275)]
    assert prompt_windows(300, skip_before=200) == prompt_windows(300)[1:]  # audio < 200 unused
    assert prompt_windows(100) == [(0, 100, 0)]
    spc = 4
    fade = crossfade_samples(spc)
    assert fade == 5  # 0.1 s = 1.25 codes
    windows = prompt_windows(300)
    pieces = [
        np.full((e - s) * spc, float(k + 1), np.float32) for k, (s, e, _) in enumerate(windows)
    ]
    out, first = assemble(pieces, windows, spc)
    assert first == 0 and len(out) == 300 * spc
    assert (out[: 105 * spc] == 1).all() and (out[105 * spc + fade : 190 * spc] == 2).all()
    ramp = out[105 * spc : 105 * spc + fade]
    np.testing.assert_allclose(ramp, 1 + (np.arange(fade) + 0.5) / fade, rtol=1e-6)  # linear


def test_prompted_decode_continues_the_prompt() -> None:
    c = codec()
    prompt, gen = _codes("speech_1"), _codes("speech_3")
    audio = c.decode(gen, prompt=prompt)
    assert audio.shape == (gen.shape[1] * SPC,) and audio.dtype == np.float32
    continuous = c.decode(np.concatenate([prompt, gen], axis=1))[prompt.shape[1] * SPC :]
    plain = c.decode(gen)
    first_second = slice(0, 12 * SPC)
    prompted_snr = snr_db(continuous[first_second], audio[first_second])
    plain_snr = snr_db(continuous[first_second], plain[first_second])
    assert prompted_snr > 10 and prompted_snr > plain_snr + 10, (prompted_snr, plain_snr)
    both = c.decode([gen, _codes("speech_5")], prompt=prompt)
    np.testing.assert_allclose(both[0], audio, rtol=0, atol=1e-5 * np.abs(audio).max())
    each = c.decode([gen, gen], prompt=[prompt, _codes("speech_0")])
    assert not np.allclose(each[0], each[1])  # another prompt, other audio at the start
    long = _codes("long_concat")  # 642 codes: many windows, each crossfaded in
    assert c.decode(long, prompt=prompt).shape == (642 * SPC,)


def test_bad_prompts_are_clear_errors() -> None:
    c = codec()
    with pytest.raises(CodesError, match="prompt: "):
        c.decode(_codes("speech_3"), prompt=np.zeros((4, 10), np.int64))
    with pytest.raises(XyrtError, match="2 prompts for 1 code arrays"):
        c.decode([_codes("speech_3")], prompt=[_codes("speech_1")] * 2)


def test_compat_and_hf_api_take_a_prompt() -> None:
    torch = pytest.importorskip("torch")
    from xyrt.compat import XY_Tokenizer, XYTokenizer

    c = codec()
    prompt, gen = _codes("speech_1"), _codes("speech_3")
    want = c.decode(gen, prompt=prompt)
    spt = XY_Tokenizer(c)
    got = spt.decode([torch.from_numpy(gen)], prompt=torch.from_numpy(prompt))["syn_wav_list"][0]
    np.testing.assert_array_equal(got.numpy(), want)
    hf = XYTokenizer(c).decode(gen[:, None], prompt=prompt)
    np.testing.assert_array_equal(hf.audio_values[0, 0], want)


def test_cli_decode_prompt(tmp_path) -> None:
    prompt, gen = _codes("speech_1"), _codes("speech_3")
    np.save(tmp_path / "prompt.npy", prompt)
    np.save(tmp_path / "codes.npy", gen)
    model = ["--model", str(exported(NAME))]
    out = tmp_path / "out.wav"
    args = ["decode", str(tmp_path / "codes.npy"), "--prompt", str(tmp_path / "prompt.npy")]
    assert main([*args, "-o", str(out), *model]) == 0
    import soundfile

    audio, rate = soundfile.read(out, dtype="float32")
    np.testing.assert_allclose(audio, codec().decode(gen, prompt=prompt), rtol=0, atol=1e-6)
    with pytest.raises(SystemExit) as exc:
        main([*args, "-o", str(out), "--overlap", "5", *model])
    assert exc.value.code == 2


def test_decode_stream_starts_from_the_prompt() -> None:
    c = codec()
    prompt, gen = _codes("speech_1")[:, :84], _codes("speech_3")  # 84: a multiple of the hop

    def run(stream, codes: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, codes.shape[1], 7):
            stream.accept_codes(codes[:, i : i + 7])
            while c.is_ready(stream):
                c.decode_stream(stream)
                out.append(stream.pop_audio())
        stream.input_finished()
        while c.is_ready(stream):
            c.decode_stream(stream)
            out.append(stream.pop_audio())
        return np.concatenate(out)

    prompted = c.create_decode_stream(prompt=prompt)
    audio = run(prompted, gen)
    assert prompted.frames_received == prompted.frames_emitted == gen.shape[1]
    assert audio.shape == (gen.shape[1] * SPC,) == (prompted.samples_emitted,)
    whole = run(c.create_decode_stream(), np.concatenate([prompt, gen], axis=1))[84 * SPC :]
    fade = int(0.16 * 12.5 * SPC)  # the whole stream crossfades its first step's start
    np.testing.assert_array_equal(audio[fade:], whole[fade:])
    with pytest.raises(CodesError, match="prompt: "):
        c.create_decode_stream(prompt=np.zeros((3, 4), np.int64))


def test_cli_decode_stream_prompt(tmp_path) -> None:
    import json

    import soundfile

    prompt, gen = _codes("speech_1")[:, :84], _codes("speech_3")
    np.save(tmp_path / "prompt.npy", prompt)
    lines = [json.dumps({"index": t, "codes": gen[:, t].tolist()}) for t in range(gen.shape[1])]
    (tmp_path / "codes.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.wav"
    argv = ["decode", "--model", str(exported(NAME)), "--stream", str(tmp_path / "codes.jsonl")]
    assert main([*argv, "--prompt", str(tmp_path / "prompt.npy"), "-o", str(out)]) == 0
    audio, _ = soundfile.read(out, dtype="float32")
    stream = codec().create_decode_stream(prompt=prompt)
    for t in range(gen.shape[1]):  # frame by frame, as the CLI reads them
        stream.accept_codes(gen[:, t : t + 1])
        while codec().is_ready(stream):
            codec().decode_stream(stream)
    stream.input_finished()
    while codec().is_ready(stream):
        codec().decode_stream(stream)
    np.testing.assert_allclose(audio, stream.pop_audio(), rtol=0, atol=1e-6)


def test_cli_prompt_needs_a_local_model(tmp_path) -> None:
    argv = ["decode", "--server", "http://127.0.0.1:9", "codes.npy", "--prompt", "p.npy"]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "-o", str(tmp_path / "o.wav")])
    assert exc.value.code == 2
