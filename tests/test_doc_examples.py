"""Every command README.md and the docs/ pages show is run here (issue 21, class 7; issue 27).

`page_commands` extracts each command of a page's ```bash blocks (continuation lines joined,
comments dropped). `EXAMPLES` says, per command, how it is run; a command shown on several pages
(the README's tour repeats a page's first command) has one entry and runs once:

- `Run`: the command itself, in a fresh folder holding the files it names (tiny substitutes made
  once per session: `INPUTS`), with ``~`` as that folder. Where it needs what a test cannot have,
  it runs in a declared reduced form (`Run.why` says why): a microphone is the speech clip, a
  speaker a recorder, ``--device cuda``/``--providers cuda`` run on the CPU when this machine has
  no CUDA device, full-size models are the tiny fixtures, long measurements are cut short.
- `Check`: a command that installs or configures (pip), replaced by a check of what it names.
- `Skip`: cannot run in a test at all (full-size benchmarks, the test suite itself, a cluster):
  skipped with the reason, never silently.

A command on a page without an entry here fails `test_every_page_command_has_an_example`, and
so does an entry whose command left every page; so does a fenced block of a kind that is neither
commands (bash) nor API examples and diagrams, which would otherwise go unrun. A new page
section adds its rows to `EXAMPLES` (and, where it names new files, to `INPUTS`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import tomllib

from helpers import FIXTURES, calib_set, exported, golden, moss_ttsd_v07, quantized
from xyrt.cli import main
from xyrt.runtime.formats.audio import write_wav

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = (README, *sorted(DOCS.glob("*.md")))  # every page whose commands run here
README_MAX_LINES = 300  # a newcomer reads it in five minutes (issue 27)
COMMAND_BLOCKS = ("bash",)  # fenced blocks whose lines are commands
OTHER_BLOCKS = ("python", "")  # API examples and diagrams, not commands


def page_name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def page_commands(text: str) -> list[str]:
    """The commands of the ```bash blocks of ``text``, each as its words joined by one space
    (quotes resolved, comments dropped, backslash-continued lines joined), in order."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, re.M | re.S):
        pending = ""
        for line in block.splitlines():
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            words = shlex.split(pending + line, comments=True)
            pending = ""
            if words:
                commands.append(" ".join(words))
    return commands


# -- how each command is run ---------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """Run the command in a fresh folder holding ``inputs`` (names in `INPUTS`, or
    ``name=key`` to place input ``key`` under ``name``). The reduced form: words in ``replace``
    substituted, options in ``set`` given these values, ``drop`` words removed, ``add`` words
    appended, always; ``cpu`` applied only where there is no CUDA device. ``needs``: what must
    be installed (else skipped, saying so). ``outputs`` must exist afterwards; ``check`` sees the
    folder and what went to stdout. xyrt runs in this process unless ``process``. ``serves``:
    the command serves until stopped (run by `_serve`). ``server``: the command is a client of
    ``http://127.0.0.1:8000``, which is `docs_server` (the tiny ONNX model) instead."""

    inputs: tuple[str, ...] = ()
    why: str = ""
    replace: dict[str, str] = field(default_factory=dict)
    set: dict[str, str] = field(default_factory=dict)
    drop: tuple[str, ...] = ()
    add: tuple[str, ...] = ()
    cpu: dict[str, str] = field(default_factory=dict)
    needs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    check: Callable[[Path, str], None] | None = None
    process: bool = False  # run xyrt as its own process (it starts and stops a local Ray)
    serves: bool = False
    server: bool = False


@dataclass(frozen=True)
class Check:
    """A command that installs something: ``check`` (no arguments) checks what it names."""

    check: Callable[[], None]
    why: str


@dataclass(frozen=True)
class Skip:
    reason: str


CPU = {"--device": "cpu", "--providers": "cpu"}  # the reduced form of a CUDA command
ON_CPU = "without a CUDA device it runs on the CPU"
DEVICES = "the microphone is the speech clip and the speaker a recorder (no audio devices in tests)"
FULLSIZE = "a benchmark of the full-size (~520 M parameter) model: minutes, several GB"
URL = "http://127.0.0.1:8000"  # the pages' server address; tests use `docs_server`'s


def _extras(*names: str) -> Callable[[], None]:
    def check() -> None:
        declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        missing = set(names) - set(declared["optional-dependencies"])
        assert not missing, f"a page installs extras pyproject.toml does not declare: {missing}"

    return check


def _torch_pin() -> None:
    """README's torch pin is the Makefile's (the version `make` installs)."""
    assert "TORCH  ?= torch==2.13.0" in (ROOT / "Makefile").read_text()


def _continuity(folder: Path, stdout: str) -> None:
    """The prompted decode continues the prompt where the unprompted one does not."""
    snr = json.loads(stdout)["median_snr_db"]["first_0.1s"]
    assert snr["prompted"] > snr["unprompted"] + 10, snr


def _codes_shape(frames: int, name: str = "codes.npy") -> Callable[[Path, str], None]:
    def check(folder: Path, _out: str) -> None:
        codes = np.load(folder / name)
        assert codes.shape == (8, frames) and codes.dtype == np.int64

    return check


def _played(folder: Path, _out: str) -> None:
    assert Recorder.samples > 0, "nothing was played"


def _jsonl_frames(frames: int, name: str = "codes.jsonl") -> Callable[[Path, str], None]:
    def check(folder: Path, out: str) -> None:
        lines = (folder / name).read_text().splitlines() if name else out.splitlines()
        assert [json.loads(line)["index"] for line in lines] == list(range(frames))

    return check


def _tokens(rows: int, folder_name: str = "tokens") -> Callable[[Path, str], None]:
    def check(folder: Path, _out: str) -> None:
        summary = json.loads((folder / folder_name / "summary.json").read_text())
        assert summary["rows"] == rows and summary["errors"] == 0, summary

    return check


def _reports(out: str, *targets: str) -> None:
    """xyrt verify printed a report in which every clip passed, one per graph set (each
    heading in ``targets``, when given)."""
    for target in targets:
        assert target in out, out[-2000:]
    counts = re.findall(r"(\d+)/(\d+) clips passed", out)
    assert len(counts) == max(1, len(targets)), out[-2000:]
    assert all(a == b != "0" for a, b in counts), counts


def _verified(folder: Path, out: str) -> None:
    _reports(out)


def _synth_config(folder: Path, _out: str) -> None:
    from xyrt.config import XYConfig

    assert XYConfig.from_yaml(ROOT / "xyrt/data/moss_ttsd_24k.yaml").output_sample_rate == 24000


SPEECH_FRAMES = len(golden("tiny_16k")["speech_2/wav"]) // 1280  # 59
LECTURE_FRAMES = len(golden("tiny_16k")["long_concat/wav"]) // 1280  # 642, three 30 s windows
TINY_CONFIG = str(FIXTURES / "tiny_16k" / "config.yaml")
QUICK_QUANTIZE = (
    "the sensitivity search is off (--no-sensitivity; ~150 s here, tested in tests/calib)"
)

EXAMPLES: dict[str, Run | Check | Skip] = {
    # -- README.md
    "make demo": Skip(FULLSIZE + " (xyrt bench on it, then encode/decode)"),
    "make test": Skip("the test suite this test is part of"),
    "pip install torch==2.13.0": Check(_torch_pin, "installs from the network; the pin checked"),
    "pip install -e .[audio,export,ort]": Check(
        _extras("audio", "export", "ort"), "installs from the network; the extras checked"
    ),
    "xyrt encode --model xy_tokenizer.ckpt speech.wav -o codes.npy": Run(
        ("xy_tokenizer.ckpt", "speech.wav"), check=_codes_shape(SPEECH_FRAMES)
    ),
    "xyrt decode --model xy_tokenizer.ckpt codes.npy -o recon.wav": Run(
        ("xy_tokenizer.ckpt", "codes.npy"), outputs=("recon.wav",)
    ),
    "xyrt encode --model xy_tokenizer.ckpt --overlap 5 lecture.flac -o codes.npy": Run(
        ("xy_tokenizer.ckpt", "lecture.flac"), check=_codes_shape(LECTURE_FRAMES)
    ),
    "xyrt encode --model XY_Tokenizer_TTSD_V0_hf speech.wav -o codes.npy": Run(
        ("XY_Tokenizer_TTSD_V0_hf", "speech.wav"), check=_codes_shape(SPEECH_FRAMES)
    ),
    "xyrt convert --model xy_tokenizer.ckpt -o xy_hf": Run(
        ("xy_tokenizer.ckpt",), outputs=("xy_hf/config.json", "xy_hf/model.safetensors")
    ),
    "xyrt convert --model xy_hf -o back/xy_tokenizer.ckpt": Run(
        ("xy_hf",), outputs=("back/xy_tokenizer.ckpt", "back/config.yaml")
    ),
    "xyrt export --model xy_tokenizer.ckpt -o xy_onnx --verify": Run(
        ("xy_tokenizer.ckpt",), outputs=("xy_onnx/manifest.json",), check=_verified
    ),
    "xyrt verify --model xy_onnx": Run(("xy_onnx", "xy_tokenizer.ckpt"), check=_verified),
    "xyrt encode --model xy_onnx speech.wav -o codes.npy": Run(
        ("xy_onnx", "speech.wav"), check=_codes_shape(SPEECH_FRAMES)
    ),
    "xyrt quantize --model xy_onnx --precision int8 --calib calib.npz -o xy_int8": Run(
        ("xy_onnx", "calib.npz"),
        why=QUICK_QUANTIZE,
        add=("--no-sensitivity",),
        outputs=("xy_int8/encoder.onnx", "xy_int8/encoder.qdq.onnx"),
    ),
    "xyrt stream --model xy_onnx --source mic --hop 0.32 --context 5 --lookahead 0.32 "
    "-o codes.jsonl": Run(
        ("xy_onnx", "speech.wav"), why=DEVICES, check=_jsonl_frames(SPEECH_FRAMES)
    ),
    "xyrt tokenize ~/corpus/wavs more/**/*.flac -o tokens/ --model xy_int8 --workers 2": Run(
        ("corpus", "more", "xy_int8"), process=True, check=_tokens(3)
    ),
    "xyrt serve --model xy_int8 --backend openvino --precision int8": Run(
        ("xy_int8=xy_int8_openvino",), needs=("serve",), serves=True
    ),
    "xyrt bench": Skip(FULLSIZE + " (its default builds and caches one)"),
    "xyrt synth -o synth/model.ckpt --seed 0": Run(
        why="the tiny config: the built-in full-size one writes 2 GB",
        add=("--config", TINY_CONFIG),
        outputs=("synth/model.ckpt", "synth/config.yaml"),
    ),
    "xyrt synth --config xyrt/data/moss_ttsd_24k.yaml -o synth24k/model.ckpt": Run(
        why="the tiny config (the README's full-size one is parsed, not built: 2 GB)",
        set={"--config": TINY_CONFIG},
        outputs=("synth24k/model.ckpt",),
        check=_synth_config,
    ),
    # -- docs/bench.md
    "xyrt bench --checkpoint xy_tokenizer.ckpt --model xy_onnx --seconds 1,5,10,30 "
    "--batch-size 1,4 --runs 10 --threads 2 --json bench.json --plot bench.png": Run(
        ("xy_tokenizer.ckpt", "xy_onnx"),
        why="one 1 s clip, batch 1, one run, three backends: the measurements are not tested",
        set={"--seconds": "1", "--batch-size": "1", "--runs": "1"},
        add=("--backends", "pytorch-published,pytorch,ort-fp32"),
        outputs=("bench.json", "bench.png"),
    ),
    "make bench": Skip(FULLSIZE),
    "make verify": Skip("xyrt verify of the full-size synthetic export (minutes, several GB)"),
    # -- docs/compat.md
    "flock /work/fullsize.lock python benchmarks/compat_speed.py --checkpoint "
    "/work/cache/synth-16k-seed0/model.ckpt --model /work/cache/synth-16k-seed0/onnx-fp32 "
    "--model /work/cache/synth-16k-seed0/onnx-int8 --model "
    "/work/cache/synth-16k-seed0/onnx-fp32@openvino --seconds 10 --runs 3": Skip(FULLSIZE),
    "xyrt encode --model XY_Tokenizer/weights/MOSS_TTSD_tokenizer --config "
    "XY_Tokenizer/config/MOSS_TTSD_tokenizer.yaml speech.wav -o codes.npy": Run(
        ("XY_Tokenizer", "speech.wav"), check=_codes_shape(SPEECH_FRAMES)
    ),
    "xyrt decode --model xy_onnx codes.npy --prompt prompt.npy -o speech.wav": Run(
        ("xy_onnx", "codes.npy", "prompt.npy=codes.npy"), outputs=("speech.wav",)
    ),
    "python benchmarks/prompted_continuity.py --model "
    "tests/fixtures/tiny_moss_ttsd_24k/model.ckpt": Run(
        why="two cuts instead of five", add=("--prompt-seconds", "4,8"), check=_continuity
    ),
    # -- docs/cpu.md
    "pip install -e .[audio,openvino]": Check(
        _extras("audio", "openvino"), "installs from the network; the extras checked"
    ),
    "xyrt encode --model xy_onnx --backend openvino speech.wav -o codes.npy": Run(
        ("xy_onnx", "speech.wav"), check=_codes_shape(SPEECH_FRAMES)
    ),
    "xyrt encode --model xy_onnx --backend openvino --precision bf16 speech.wav -o c.npy": Run(
        ("xy_onnx", "speech.wav"),
        needs=("openvino-bf16",),
        check=_codes_shape(SPEECH_FRAMES, "c.npy"),
    ),
    "xyrt quantize --model xy_onnx --precision int8 --scheme cpu-dynamic,openvino --calib "
    "calib.npz -o xy_int8": Run(
        ("xy_onnx", "calib.npz"),
        why=QUICK_QUANTIZE,
        add=("--no-sensitivity",),
        outputs=("xy_int8/encoder.onnx", "xy_int8/encoder.ov.xml"),
    ),
    "xyrt encode --model xy_int8 --backend openvino speech.wav -o codes.npy": Run(
        ("xy_int8=xy_int8_openvino", "speech.wav"), check=_codes_shape(SPEECH_FRAMES)
    ),
    "xyrt verify --model xy_onnx --backend openvino": Run(
        ("xy_onnx", "xy_tokenizer.ckpt"), check=_verified
    ),
    "D=$XYRT_CACHE/synth-16k-seed0": Skip("sets the shell variable of the benchmark below"),
    "python benchmarks/cpu_paths.py --fp32 $D/onnx-fp32 --int8 $D/onnx-int8 --openvino-int8 "
    "$XYRT_CACHE/openvino/int8-mixed --runs 2 --threads 2 --paths ort-fp32,published,ort-int8,"
    "openvino-int8,openvino-w8dq,openvino-bf16,openvino-fp32": Skip(FULLSIZE),
    "make test-avx2": Skip("an emulated CPU (minutes under qemu); .ci/run runs it after make test"),
    "make test-aarch64": Skip(
        "an emulated Arm CPU (a Debian root, minutes under qemu); .ci/run runs it after make test"
    ),
    # -- docs/gpu.md
    "xyrt encode --model xy_tokenizer.ckpt --device cuda --precision bf16 speech.wav "
    "-o codes.npy": Run(
        ("xy_tokenizer.ckpt", "speech.wav"), why=ON_CPU, cpu=CPU, outputs=("codes.npy",)
    ),
    "xyrt decode --model xy_tokenizer.ckpt --device cuda codes.npy -o recon.wav": Run(
        ("xy_tokenizer.ckpt", "codes.npy"), why=ON_CPU, cpu=CPU, outputs=("recon.wav",)
    ),
    "xyrt verify --model xy_tokenizer.ckpt --device cuda --precision bf16": Run(
        ("xy_tokenizer.ckpt",),
        why=ON_CPU + ", in fp32: bf16 on a CPU is emulated (minutes) and the tiny model's random "
        "weights are not robust to it",
        cpu={**CPU, "--precision": "fp32"},
        check=_verified,
    ),
    "xyrt decode --model xy_onnx codes.npy -o recon.wav --providers cuda": Run(
        ("xy_onnx", "codes.npy"), why=ON_CPU, cpu=CPU, outputs=("recon.wav",)
    ),
    "python benchmarks/gpu_check.py --out OUT": Skip("the prepared GPU check (a CUDA device)"),
    "python benchmarks/gpu_speed.py --out OUT": Skip("GPU speed options (a CUDA device)"),
    "python benchmarks/gpu_check.py --out /tmp/gc --device cpu --quick --checkpoint "
    "tests/fixtures/tiny_16k/model.ckpt": Run(
        why="its exactness section only (the whole dry run measures for over 3 minutes)",
        replace={"/tmp/gc": "{folder}/gc"},
        add=("--sections", "exactness"),
        outputs=("gc",),
    ),
    "xyrt build --model xy_int8 --precision int8 --batch-size 1,1,4 --seconds 0.08,10,30 "
    "-o xy_trt_int8": Run(
        ("xy_int8",), needs=("tensorrt", "cuda"), outputs=("xy_trt_int8/engines.json",)
    ),
    "xyrt encode --model xy_trt_int8 speech.wav -o codes.npy": Run(
        ("xy_trt_int8", "speech.wav"), needs=("tensorrt", "cuda"), outputs=("codes.npy",)
    ),
    "xyrt encode --model xy_int8 --providers tensorrt speech.wav -o c.npy": Run(
        ("xy_int8", "speech.wav"), needs=("ort-tensorrt",), outputs=("c.npy",)
    ),
    # -- docs/quality.md
    "python benchmarks/proxy_quality.py --trained .cache/xyrt/proxy-16k-seed0/model.ckpt "
    "--json proxy_quality.json": Skip(
        "needs the trained proxy (make proxy: about 70 minutes of training on one core)"
    ),
    # -- docs/quantize.md
    "xyrt calib ~/recordings more.flac -o calib.npz": Run(
        ("recordings", "more.flac"), outputs=("calib.npz",)
    ),
    "xyrt quantize --model xy_onnx --precision fp16 -o xy_fp16": Run(
        ("xy_onnx",), outputs=("xy_fp16/manifest.json",)
    ),
    "xyrt quantize --model xy_onnx --scheme cpu-dynamic --attention int8 -o xy_int8a": Run(
        ("xy_onnx",), outputs=("xy_int8a/manifest.json",)
    ),
    "xyrt verify --model xy_int8": Run(
        ("xy_int8", "xy_tokenizer.ckpt"),
        why="--min-stage0 0: in int8 the tiny model's random weights stay below the 98% stage-0 "
        "agreement real weights reach; the report for every graph set is still made",
        add=("--min-stage0", "0"),
        check=lambda folder, out: _reports(
            out, "int8 (default graphs)", "graphs for onnxruntime-cpu-u8", "graphs for tensorrt"
        ),
    ),
    "xyrt encode --model xy_int8 speech.wav -o codes.npy": Run(
        ("xy_int8", "speech.wav"), check=_codes_shape(SPEECH_FRAMES)
    ),
    "python benchmarks/precision.py --fp32 .cache/xyrt/synth-16k-seed0/onnx-fp32 --int8 "
    ".cache/xyrt/synth-16k-seed0/onnx-int8 --fp16 .cache/xyrt/synth-16k-seed0/onnx-fp16": Skip(
        FULLSIZE
    ),
    # -- docs/serving.md
    "xyrt serve --model model.ckpt --device cuda --precision bf16 --replicas 2": Run(
        ("model.ckpt=xy_tokenizer.ckpt",),
        why=f"{ON_CPU} in fp32 (bf16 on a CPU is emulated and the tiny model's random weights "
        "are not robust to it)",
        cpu={**CPU, "--precision": "fp32"},
        needs=("serve",),
        serves=True,
    ),
    "ray start --head": Skip("starts a Ray cluster's head node (a daemon outliving the test)"),
    "xyrt serve --model /shared/xy_int8 --address auto --host 0.0.0.0 --replicas 8": Run(
        ("shared",),
        why="a local Ray instead of the cluster (--address auto), one replica (this machine has "
        "2 cores), listening on 127.0.0.1 only, shared/ beside the test instead of /shared",
        replace={"/shared/": "shared/"},
        drop=("--address", "auto"),
        set={"--host": "127.0.0.1", "--replicas": "1"},
        needs=("serve",),
        serves=True,
    ),
    f"xyrt encode --server {URL} speech.mp3 -o codes.npy": Run(
        ("speech.mp3",), needs=("serve",), server=True, check=_codes_shape(SPEECH_FRAMES)
    ),
    f"xyrt decode --server {URL} codes.npy -o out.wav": Run(
        ("codes.npy",), needs=("serve",), server=True, outputs=("out.wav",)
    ),
    f"xyrt stream --server {URL} --source mic | xyrt decode --server {URL} --stream - --play": Run(
        ("speech.wav",), why=DEVICES, needs=("serve",), server=True, check=_played
    ),
    "python benchmarks/serve_load.py --model .cache/xyrt/synth-16k-seed0/onnx-int8 --backend "
    "openvino --precision int8 --json out/serve_load.json": Skip(
        FULLSIZE + " (its --quick form runs in tests/serve/test_serve.py)"
    ),
    # -- docs/streaming.md
    "xyrt stream --model xy_tokenizer.ckpt --device cuda --precision bf16 --source mic "
    "--input-device 2": Run(
        ("xy_tokenizer.ckpt", "speech.wav=short.wav"),
        why=f"{DEVICES}; {ON_CPU} in fp32 (bf16 on a CPU is emulated: 26 s for 5 s of audio)",
        cpu={**CPU, "--precision": "fp32"},
        check=_jsonl_frames(len(golden("tiny_16k")["speech_5/wav"]) // 1280, name=""),
    ),
    "xyrt stream --model xy_onnx --source speech.wav --realtime --loopback": Run(
        ("xy_onnx", "speech.wav=short.wav"), why=DEVICES, check=_played
    ),
    "xyrt stream --model xy_onnx --source speech.wav --loopback --decode-context 2 "
    "--decode-lookahead 0.32": Run(("xy_onnx", "speech.wav=short.wav"), why=DEVICES, check=_played),
    "xyrt stream --model xy_onnx --source mic | xyrt decode --model xy_onnx --stream - --play": Run(
        ("xy_onnx", "speech.wav"), why=DEVICES, check=_played
    ),
    "xyrt decode --model xy_onnx --stream codes.jsonl --context 2 --lookahead 0.16 -o speech.wav": (
        Run(("xy_onnx", "codes.jsonl"), outputs=("speech.wav",))
    ),
    "python benchmarks/streaming.py --model .cache/xyrt/synth-16k-seed0/onnx-fp32 --model "
    ".cache/xyrt/synth-16k-seed0/onnx-int8": Skip(FULLSIZE),
    # -- docs/tokenize.md
    "xyrt tokenize train.jsonl -o tokens/ --model xy_int8": Run(
        ("train.jsonl", "speech.wav", "xy_int8"), process=True, check=_tokens(2)
    ),
    "xyrt tokenize /shared/corpus -o /shared/tokens --model /shared/xy_int8 --address auto "
    "--workers 16 --threads-per-worker 4": Run(
        ("shared",),
        why="a local Ray instead of the cluster (--address auto), one worker of one thread "
        "(this machine is not 16 x 4 cores), shared/ beside the test instead of /shared",
        replace={"/shared/": "shared/"},
        drop=("--address", "auto"),
        set={"--workers": "1", "--threads-per-worker": "1"},
        process=True,
        check=lambda folder, out: _tokens(2, "shared/tokens")(folder, out),
    ),
    "xyrt tokenize ... --model /shared/xy_trt_int8 --backend tensorrt --address ray://head:10001": (
        Skip("'...' stands for the arguments above; it needs a Ray cluster with TensorRT GPUs")
    ),
    "python benchmarks/tokenize_throughput.py --cases ray2,loop,published --published-clips 12 "
    "--json out/tokenize_full.json": Skip(FULLSIZE + ", over the bundled corpus"),
    "python benchmarks/tokenize_throughput.py --subset 60 --published-clips 6 --cases "
    "loop,ray2,ray1,published,overhead --json out/tokenize_subset60.json": Skip(FULLSIZE),
}


# -- the files the pages' commands name, as tiny substitutes (made once per session) ---------------


@cache
def _store() -> Path:
    return Path(tempfile.mkdtemp(prefix="xyrt-docs-"))


def _wav(path: Path, clip: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_wav(path, golden("tiny_16k")[f"{clip}/wav"], 16000)


def _mp3(path: Path, clip: str) -> Path:
    import soundfile as sf

    sf.write(path, golden("tiny_16k")[f"{clip}/wav"], 16000, format="MP3")
    return path


def _flac(path: Path, clip: str) -> Path:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, golden("tiny_16k")[f"{clip}/wav"], 16000, format="FLAC")
    return path


def _checkpoint(folder: Path) -> Path:
    folder.mkdir()
    for name in ("model.ckpt", "config.yaml"):
        shutil.copy(FIXTURES / "tiny_16k" / name, folder / name)
    return folder


def _hf(name: str, folder: Path) -> Path:
    from xyrt.export.convert import convert

    return convert(FIXTURES / name / "model.ckpt", folder, "hf")


def _codes(path: Path) -> Path:
    import xyrt.runtime
    from xyrt.runtime.formats.codes import save_codes

    codec = xyrt.runtime.load(FIXTURES / "tiny_16k" / "model.ckpt")
    return save_codes(path, codec.encode(golden("tiny_16k")["speech_2/wav"]))


def _jsonl(path: Path) -> Path:
    import xyrt.runtime

    codec = xyrt.runtime.load(exported("tiny_16k"))
    codes = codec.encode(golden("tiny_16k")["speech_2/wav"])
    lines = [
        json.dumps({"index": t, "time": t * 0.08, "codes": codes[:, t].tolist()})
        for t in range(codes.shape[1])
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _calib(path: Path) -> Path:
    from xyrt.calib.dataset import save

    save(calib_set(), path)
    return path


def _openvino_int8(folder: Path) -> Path:
    from xyrt.calib.quantize import quantize
    from xyrt.calib.sensitivity import SensitivityOptions

    pytest.importorskip("nncf", reason="nncf is not installed (pip install 'xyrt[openvino]')")
    return quantize(
        exported("tiny_16k"),
        folder,
        "int8",
        ["cpu-dynamic", "openvino"],
        calib_set(),
        sensitivity=SensitivityOptions(False),
    ).directory


def _engines(folder: Path) -> Path:
    from xyrt.calib.trt_build import build_engines
    from xyrt.runtime.backends.trt.profiles import Profile

    return build_engines(quantized("int8"), folder, "int8", Profile.parse("1,1,4", "0.08,10,30"))


def _corpus(folder: Path) -> Path:
    _wav(folder / "wavs" / "a.wav", "speech_0")
    _wav(folder / "wavs" / "deeper" / "b.wav", "speech_1")
    return folder


def _more(folder: Path) -> Path:
    _flac(folder / "x" / "y" / "c.flac", "speech_3")
    return folder


def _manifest(path: Path) -> Path:
    rows = [
        {"path": "speech.wav", "id": "whole"},
        {"path": "speech.wav", "id": "part", "start": 0.5, "end": 2.5, "speaker": "s1"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _shared(folder: Path) -> Path:
    _corpus(folder / "corpus")
    (folder / "xy_int8").symlink_to(quantized("int8"))
    return folder


INPUTS: dict[str, Callable[[Path], Path]] = {  # name -> maker(path to create) -> what it made
    "xy_tokenizer.ckpt": lambda p: _checkpoint(p) / "model.ckpt",  # config.yaml beside it
    "speech.wav": lambda p: _wav(p, "speech_2"),
    "speech.mp3": lambda p: _mp3(p, "speech_2"),
    "short.wav": lambda p: _wav(p, "speech_5"),
    "lecture.flac": lambda p: _flac(p, "long_concat"),
    "more.flac": lambda p: _flac(p, "speech_4"),
    "recordings": lambda p: _wav(p / "take1.wav", "speech_0").parent,
    "codes.npy": _codes,
    "codes.jsonl": _jsonl,
    "calib.npz": _calib,
    "XY_Tokenizer_TTSD_V0_hf": lambda p: _hf("tiny_moss_ttsd_24k", p),
    "XY_Tokenizer": lambda p: moss_ttsd_v07(p)[0].parents[1],  # MOSS-TTSD v0.7's layout
    "xy_hf": lambda p: _hf("tiny_16k", p),
    "xy_onnx": lambda p: exported("tiny_16k"),
    "xy_int8": lambda p: quantized("int8"),
    "xy_int8_openvino": _openvino_int8,
    "xy_trt_int8": _engines,
    "corpus": _corpus,
    "more": _more,
    "train.jsonl": _manifest,
    "shared": _shared,
}


@cache
def _made(key: str) -> Path:
    return INPUTS[key](_store() / key)


def _place(folder: Path, spec: str) -> None:
    """Input ``spec`` ("name" or "name=key") linked into ``folder`` (a checkpoint with its
    config.yaml beside it)."""
    name, _, key = spec.partition("=")
    made = _made(key or name)
    (folder / name).symlink_to(made)
    if made.suffix == ".ckpt":
        (folder / "config.yaml").symlink_to(made.parent / "config.yaml")


# -- stand-ins for audio devices -----------------------------------------------------------------


class Recorder:
    """A speaker that keeps count of what it was given to play."""

    samples = 0

    def __init__(self, sample_rate: int, device: object = None, **_kw: object) -> None:
        self.rate, self.underruns = sample_rate, 0

    def play(self, audio: np.ndarray) -> None:
        Recorder.samples += len(audio)

    def close(self) -> None:
        pass


def _microphone(folder: Path):
    from xyrt.runtime.realtime.encode_loop import FileSource

    class Microphone(FileSource):
        """The speech clip, as the microphone would give it (named, at its device rate)."""

        def __init__(self, device=None, sample_rate=None, duration=None, **_kw) -> None:
            super().__init__(folder / "speech.wav")
            self.name = f"stand-in microphone {device if device is not None else 'default'}"

    return Microphone


# -- running a command ---------------------------------------------------------------------------


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _missing(needs: tuple[str, ...]) -> str | None:
    import importlib.util

    for need in needs:
        if need == "serve" and importlib.util.find_spec("ray") is None:
            return "needs xyrt[serve] (ray[serve]), which is not installed"
        if need == "cuda" and not _cuda():
            return "needs a CUDA device (this machine has none)"
        if need == "tensorrt" and importlib.util.find_spec("tensorrt") is None:
            return "needs TensorRT (pip install 'xyrt[gpu]' and the tensorrt wheel)"
        if need == "openvino-bf16":
            from xyrt.runtime.backends.openvino.backend import cpu_supports

            if not cpu_supports("BF16"):  # the refusal itself: tests/runtime/test_openvino.py
                return "needs a CPU with AVX512-BF16 or AMX (OpenVINO lists no BF16 on this one)"
        if need == "ort-tensorrt":
            import onnxruntime as ort

            if "TensorrtExecutionProvider" not in ort.get_available_providers():
                return "needs ONNX Runtime's TensorRT provider (onnxruntime-gpu with TensorRT)"
    return None


def reduced(command: str, run: Run, folder: Path, server: str = URL) -> list[list[str]]:
    """The words of each stage (split at ``|``) of ``command`` in its reduced form, with
    ``server`` for the pages' server address."""
    words = [w.replace(URL, server) for w in shlex.split(command)]
    for old, new in run.replace.items():
        words = [w.replace(old, new.format(folder=folder)) for w in words]
    options = {**run.set, **({} if _cuda() else run.cpu)}
    for i, word in enumerate(words[:-1]):
        if word in options:
            words[i + 1] = options[word]
    for i in range(len(words)):
        if tuple(words[i : i + len(run.drop)]) == run.drop and run.drop:
            del words[i : i + len(run.drop)]
            break
    words = [os.path.expanduser(w) if w.startswith("~") else w for w in words]
    stages, stage = [], []
    for word in [*words, "|"]:
        if word == "|":
            stages.append(stage)
            stage = []
        else:
            stage.append(word)
    stages[-1] += list(run.add)
    return stages


def _run_stage(
    words: list[str], stdin: str | None, folder: Path, monkeypatch, process: bool
) -> str:
    """One stage: xyrt in this process (stdin fed, stdout returned) unless ``process``, python
    (from the repository root) and ``process`` stages as subprocesses."""
    assert words[0] in ("xyrt", "python"), words
    if words[0] == "python" or process:
        argv = [sys.executable, *words[1:]]
        if words[0] == "xyrt":
            argv[1:1] = ["-m", "xyrt.cli"]
        proc = subprocess.run(
            argv,
            cwd=ROOT if words[0] == "python" else folder,
            env={**os.environ, "HOME": str(folder)},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(words[1:])
    assert status == 0, f"{' '.join(words)} exited with {status}"
    return out.getvalue()


def _serve(words: list[str], folder: Path) -> None:
    """A serving command: started as a process in ``folder`` on a free port, it must say it is
    serving, encode the speech clip for a client (the codes of `xyrt encode`'s shape), and
    stop on SIGTERM with status 0."""
    from serving import Server

    from xyrt.client import Client

    assert words[0] == "xyrt", words
    server = Server(words[1:], cwd=folder)
    try:
        server.wait_serving()
        codes = Client(server.url, timeout=120).encode(golden("tiny_16k")["speech_2/wav"], 16000)
        assert codes.shape == (8, SPEECH_FRAMES), codes.shape
    finally:
        status = server.stop()
    assert status == 0, "\n".join(server.lines[-20:])


@pytest.fixture(scope="module")
def docs_server():
    """The pages' ``http://127.0.0.1:8000``: xyrt serve of the tiny ONNX model, one replica."""
    from serving import Server

    server = Server(["serve", "--model", str(exported("tiny_16k")), "--replicas", "1"])
    try:
        yield server.wait_serving()
    finally:
        server.stop()


def _pages_of_commands() -> dict[str, list[str]]:
    """Each command of every page (in page order, README first) -> the pages showing it."""
    pages: dict[str, list[str]] = {}
    for page in PAGES:
        for command in page_commands(page.read_text()):
            pages.setdefault(command, [])
            if page_name(page) not in pages[command]:
                pages[command].append(page_name(page))
    return pages


PAGES_OF = _pages_of_commands()
COMMANDS = list(PAGES_OF)  # each command once, however many pages show it


def _command_id(command: str) -> str:
    """``pages: command``, so that ``-k streaming`` selects every command streaming.md shows."""
    return f"{'+'.join(Path(p).stem for p in PAGES_OF[command])}: {command[:70]}"


@pytest.mark.parametrize("page", PAGES, ids=page_name)
def test_every_page_command_has_an_example(page: Path) -> None:
    """A command added to a page needs a row in `EXAMPLES`. Fenced blocks are commands (bash),
    API examples (python) or diagrams: a block of another kind (``sh``, ``console``) would hold
    commands nothing runs."""
    text = page.read_text()
    kinds = set(re.findall(r"^```(\w*)\n", text, re.M))
    assert kinds <= {*COMMAND_BLOCKS, *OTHER_BLOCKS}, f"{page_name(page)}: blocks {kinds}"
    missing = [c for c in page_commands(text) if c not in EXAMPLES]
    assert not missing, f"{page_name(page)}: commands without an entry in EXAMPLES: {missing}"


def test_no_example_outlives_its_command() -> None:
    stale = [c for c in EXAMPLES if c not in PAGES_OF]
    assert not stale, f"EXAMPLES entries no longer on any page: {stale}"


def test_page_commands_are_extracted_whole() -> None:
    text = "```bash\nxyrt a 'x y' \\\n    --b 1   # note\n# only a comment\n\nc | d\n```\n"
    assert page_commands(text) == ["xyrt a x y --b 1", "c | d"]


def test_readme_is_short_and_links_every_page() -> None:
    """README is read in five minutes: at most `README_MAX_LINES` lines, the rest on docs/
    pages, each of which it links."""
    text = README.read_text()
    lines = len(text.splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines (at most {README_MAX_LINES})"
    linked = set(re.findall(r"\]\((docs/[^)#\s]+\.md)(?:#[^)]*)?\)", text))
    unlinked = [p for p in map(page_name, DOCS.glob("*.md")) if p not in linked]
    assert not unlinked, f"README.md does not link {unlinked}"


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors of ``page``'s headings: lower case, punctuation dropped, spaces to
    hyphens, a repeated heading numbered."""
    anchors: set[str] = set()
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
    for heading in re.findall(r"^#+ (.+)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in anchors:
            n += 1
            anchor = f"{slug}-{n}"
        anchors.add(anchor)
    return anchors


@pytest.mark.parametrize("page", PAGES, ids=page_name)
def test_links_between_pages_resolve(page: Path) -> None:
    """Content moved between pages takes its links along: every relative link names a file
    that exists and, with ``#anchor``, a heading of it."""
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists() or (anchor and file.suffix == ".md" and anchor not in _anchors(file)):
            broken.append(target)
    assert not broken, f"{page_name(page)}: broken links {broken}"


@pytest.mark.parametrize("command", COMMANDS, ids=[_command_id(c) for c in COMMANDS])
def test_page_command(command: str, tmp_path: Path, monkeypatch, request) -> None:
    example = EXAMPLES.get(command)
    if example is None:
        pytest.fail(f"no entry in EXAMPLES for {PAGES_OF[command]} command {command!r}")
    if isinstance(example, Skip):
        pytest.skip(example.reason)
    if isinstance(example, Check):
        example.check()
        return
    why = _missing(example.needs)
    if why is not None:
        pytest.skip(why)
    for spec in example.inputs:
        _place(tmp_path, spec)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr("xyrt.runtime.realtime.encode_loop.MicSource", _microphone(tmp_path))
    monkeypatch.setattr("xyrt.commands.DevicePlayer", Recorder)
    monkeypatch.setattr("xyrt.runtime.realtime.decode_loop.DevicePlayer", Recorder)  # xyrt.remote's
    monkeypatch.setattr(Recorder, "samples", 0)
    url = request.getfixturevalue("docs_server").url if example.server else URL
    stages = reduced(command, example, tmp_path, url)
    if example.serves:
        (words,) = stages
        _serve(words, tmp_path)
        return
    out = None
    for words in stages:
        out = _run_stage(words, out, tmp_path, monkeypatch, example.process)
    for name in example.outputs:
        assert (tmp_path / name).exists(), f"{command}: {name} was not written"
    if example.check is not None:
        example.check(tmp_path, out)
