"""Training speech for the proxy: espeak-ng sentences (many languages, voices, rates, pitches)
plus the bundled clips, cached as one npz; held-aside bundled speech for evaluation.

Generation is deterministic given the seed (the utterance list comes from a seeded generator;
espeak-ng itself is deterministic), so the cache key is the parameters plus espeak-ng's version.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from xyrt.atomic import atomic_write
from xyrt.config import INPUT_SAMPLE_RATE
from xyrt.data import FOLDER, bundled_speech
from xyrt.errors import AudioError, MissingDependencyError
from xyrt.runtime.formats.audio import load_audio

TRAIN_CLIPS = ("speech_0", "speech_1", "speech_2", "speech_3")  # bundled real speech trained on
EVAL_CLIPS = ("speech_4", "speech_5")  # bundled real speech held aside (never trained on)
CORPUS_VERSION = 2  # bump when the generation below changes

# Short sentences per espeak-ng language (written for this corpus); voices of other languages
# read the English ones, which adds accents without new text.
SENTENCES = {
    "en": [
        "The quick brown fox jumps over the lazy dog near the river bank.",
        "Please call Stella and ask her to bring these things from the store.",
        "Seven bright lanterns were hanging above the quiet harbour tonight.",
        "Do you think the weather will hold until the end of the week?",
        "A codec turns speech into a short sequence of numbers and back again.",
        "We measured the time it takes to encode ten seconds of audio.",
        "Her grandmother kept a garden full of roses, mint and tomatoes.",
        "Turn left at the second light, then walk straight for two blocks.",
    ],
    "de": [
        "Guten Morgen, wie geht es dir heute?",
        "Der Zug nach Berlin fährt um halb neun vom dritten Gleis ab.",
        "Im Sommer schwimmen wir oft im kleinen See hinter dem Wald.",
    ],
    "fr-fr": [
        "Bonjour, je voudrais un café et un croissant, s'il vous plaît.",
        "La bibliothèque ferme à dix-huit heures le samedi.",
        "Nous avons marché le long de la plage jusqu'au phare.",
    ],
    "es": [
        "Buenos días, ¿sabes dónde está la estación de tren?",
        "Mi hermano vive en una casa pequeña cerca del mar.",
        "Mañana vamos a cocinar una paella para toda la familia.",
    ],
    "it": [
        "Oggi il cielo è sereno e fa abbastanza caldo.",
        "Vorrei prenotare un tavolo per quattro persone stasera.",
    ],
    "pt": [
        "O gato dorme no sofá enquanto chove lá fora.",
        "Precisamos comprar pão, leite e frutas no mercado.",
    ],
    "nl": ["De fiets staat achter het huis naast de oude boom."],
    "pl": ["Dzień dobry, czy mogę prosić o szklankę wody?"],
    "sv": ["Vi åker till landet i helgen och plockar svamp."],
    "fi": ["Huomenna sataa luultavasti koko päivän."],
    "ru": ["Сегодня вечером мы пойдём в театр с друзьями."],
    "cmn": ["今天天气很好，我们去公园散步吧。"],
    "ja": ["今日はとても良い天気ですね。"],
    "hi": ["आज मौसम बहुत अच्छा है और हम बाहर जाएंगे।"],
    "tr": ["Yarın sabah erkenden yola çıkacağız."],
    "el": ["Καλημέρα, τι κάνεις σήμερα;"],
}
ACCENTED = ("en-us", "en-gb-scotland", "en-029", "de", "fr-fr", "es", "it", "hi", "ru", "sw")
VARIANTS = ("", "+m1", "+m2", "+m3", "+m4", "+m5", "+m6", "+m7", "+f1", "+f2", "+f3", "+f4",
            "+f5", "+croak", "+klatt")  # fmt: skip


def espeak_version() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise MissingDependencyError(
            "espeak-ng is not on PATH; the proxy's training corpus is generated with it "
            "(Debian/Ubuntu: apt-get install espeak-ng), or pass --utterances 0"
        )
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    return out.stdout.split("Data at")[0].strip(" :\n")  # "eSpeak NG text-to-speech: 1.51"


def utterance_plan(count: int, seed: int) -> list[dict]:
    """``count`` (voice, rate, pitch, text) choices, the same for the same seed."""
    rng = np.random.default_rng(seed)
    english = SENTENCES["en"]
    plan = []
    for i in range(count):
        if i % 3 == 2:  # a third: another language's voice reading English (accents)
            lang = ACCENTED[rng.integers(len(ACCENTED))]
            text = english[rng.integers(len(english))]
        else:
            lang = sorted(SENTENCES)[rng.integers(len(SENTENCES))]
            pool = SENTENCES[lang]
            text = pool[rng.integers(len(pool))]
            lang = {"en": ("en-us", "en-gb", "en-gb-x-rp")[rng.integers(3)]}.get(lang, lang)
        variant = VARIANTS[rng.integers(len(VARIANTS))]
        plan.append(
            {
                "voice": lang + variant,
                "rate": int(rng.integers(110, 230)),
                "pitch": int(rng.integers(15, 90)),
                "text": text,
            }
        )
    return plan


def speak(utt: dict, folder: Path) -> np.ndarray:
    """One espeak-ng utterance at 16 kHz float32."""
    wav = folder / "utt.wav"
    cmd = ["espeak-ng", "-v", utt["voice"], "-s", str(utt["rate"]), "-p", str(utt["pitch"])]
    cmd += ["-w", str(wav), utt["text"]]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not wav.is_file():
        raise AudioError(f"espeak-ng failed for {utt}: {proc.stderr.strip()[:300]}")
    return load_audio(wav, INPUT_SAMPLE_RATE)


def bundled_training_clips() -> list[np.ndarray]:
    """The bundled speech trained on: four real clips and the four espeak calibration clips."""
    clips = [load_audio(bundled_speech()[name]) for name in TRAIN_CLIPS]
    clips += [load_audio(p) for p in sorted(FOLDER.glob("espeak_*.flac"))]
    return clips


def eval_clips() -> dict[str, np.ndarray]:
    """Held-aside speech: two real bundled clips and the three held-out espeak sentences."""
    clips = {name: load_audio(bundled_speech()[name]) for name in EVAL_CLIPS}
    clips.update({p.stem: load_audio(p) for p in sorted(FOLDER.glob("heldout_*.flac"))})
    return clips


def build_corpus(utterances: int, seed: int, cache: Path) -> tuple[np.ndarray, dict]:
    """One 16 kHz stream: every training clip, 0.2 s of silence between; and its description.

    Cached in ``cache`` (16-bit) by a key over the parameters and espeak-ng's version."""
    version = espeak_version() if utterances else "none"
    key_src = json.dumps([CORPUS_VERSION, utterances, seed, version, TRAIN_CLIPS])
    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    path = cache / f"proxy-corpus-{key}.npz"
    plan = utterance_plan(utterances, seed)
    info = {"utterances": utterances, "espeak": version, "bundled": [*TRAIN_CLIPS, "espeak_*"]}
    info["voices"] = sorted({u["voice"] for u in plan})
    if path.is_file():
        with np.load(path) as data:
            return data["audio"].astype(np.float32) / 32767, info | {"cache": str(path)}
    clips = bundled_training_clips()
    with tempfile.TemporaryDirectory() as tmp:
        clips += [speak(utt, Path(tmp)) for utt in plan]
    gap = np.zeros(INPUT_SAMPLE_RATE // 5, np.float32)
    audio = np.concatenate([np.concatenate([c, gap]) for c in clips])
    pcm = np.round(np.clip(audio, -1, 1) * 32767).astype(np.int16)  # as the cache holds it
    cache.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, AudioError, claim=False) as tmp, open(tmp, "wb") as f:
        np.savez(f, audio=pcm)
    return pcm.astype(np.float32) / 32767, info | {"cache": str(path)}
