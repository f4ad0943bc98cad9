"""xyrt tokenize on Ray Data (local Ray, 2 workers, tiny model): every good file once with the
codes of ``xyrt encode``, bad files in the errors table, a killed worker, resume, refusal."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from helpers import exported

ray = pytest.importorskip("ray", reason="xyrt[scale] (ray[data]) is not installed")
pq = pytest.importorskip("pyarrow.parquet", reason="xyrt[scale] (pyarrow) is not installed")
sf = pytest.importorskip("soundfile", reason="xyrt[audio] is not installed")

import xyrt  # noqa: E402
import xyrt.runtime  # noqa: E402
from xyrt.corpus import iter_codes  # noqa: E402
from xyrt.data import bundled_speech, speech_clip  # noqa: E402
from xyrt.errors import XyrtError  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")
BAD = {"corrupt.wav": "unreadable", "empty.wav": "empty", "blip.wav": "too-short"}
RUN = {"workers": 2, "shard_size": 3, "batch_seconds": 20.0, "read_block": 2, "progress": False}


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (2 model actors + a reading slot); tokenize() joins it."""
    import logging

    ray.init(
        num_cpus=3,
        include_dashboard=False,
        object_store_memory=512 << 20,
        logging_level=logging.ERROR,
        log_to_driver=False,
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Six speech mp3s, a 24 kHz FLAC, a 41 s WAV (two published 30 s windows) and bad files."""
    root = tmp_path_factory.mktemp("corpus")
    for name, path in bundled_speech().items():
        (root / f"{name}.mp3").write_bytes(path.read_bytes())
    sf.write(root / "flac24k.flac", speech_clip(3.3, 24000), 24000)
    sf.write(root / "long.wav", speech_clip(41.0), 16000)
    (root / "corrupt.wav").write_bytes(b"RIFF not really a wave file")
    sf.write(root / "empty.wav", np.zeros(0, np.float32), 16000)
    sf.write(root / "blip.wav", np.zeros(800, np.float32), 16000)  # 50 ms < one code
    return root


@pytest.fixture(scope="module")
def model() -> Path:
    return exported("tiny_16k")


@pytest.fixture(scope="module")
def first_run(local_ray, corpus, model, tmp_path_factory):
    out = tmp_path_factory.mktemp("tokens") / "out"
    return out, xyrt.tokenize([corpus], out, model, **RUN)


def _good(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.iterdir() if p.name not in BAD)


def test_every_good_file_once_with_the_codes_of_xyrt_encode(first_run, corpus, model, tmp_path):
    from xyrt.cli import main

    out, summary = first_run
    rows = list(iter_codes(out))
    ids = [i for i, _ in rows]
    assert sorted(ids) == sorted(str(p.resolve()) for p in _good(corpus))  # each exactly once
    assert summary["rows"] == len(ids) and summary["num_shards"] == 4
    got = dict(rows)
    for path in _good(corpus):
        assert (
            main(["encode", "--model", str(model), str(path), "-o", str(tmp_path / "c.npy")]) == 0
        )
        want = np.load(tmp_path / "c.npy")
        codes = got[str(path.resolve())]
        assert codes.dtype == np.int16 and codes.shape == want.shape, path.name
        np.testing.assert_array_equal(codes, want, err_msg=path.name)


def test_rows_and_shard_metadata(first_run, corpus):
    out, summary = first_run
    table = pq.read_table(out / "codes")
    row = {r["id"]: r for r in table.to_pylist()}[str((corpus / "flac24k.flac").resolve())]
    assert row["sample_rate"] == 24000 and row["start"] is None and row["end"] is None
    assert row["duration"] == pytest.approx(3.3, abs=1e-3)
    assert row["frames"] == int(3.3 * 16000) // 1280 == np.array(row["codes"]).shape[1]
    manifest = json.loads((model_dir := exported("tiny_16k")).joinpath("manifest.json").read_text())
    for path in (out / "codes").glob("part-*.parquet"):
        facts = json.loads(pq.read_schema(path).metadata[b"xyrt"])
        assert facts["model_sha256"] == manifest["source_checkpoint"]["sha256"], model_dir
        assert facts["backend"] == "onnxruntime[cpu]" and facts["precision"] == "fp32"
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["rows"] == summary["rows"] and on_disk["errors"] == len(BAD)
    assert summary["run"]["audio_seconds"] > 41


def test_bad_files_land_in_the_errors_table(first_run, corpus):
    out, summary = first_run
    errors = pq.read_table(out / "errors").to_pylist()
    assert {Path(e["id"]).name: e["kind"] for e in errors} == BAD
    assert all(e["reason"] for e in errors) and summary["errors"] == len(BAD)


def test_rerun_is_a_no_op(first_run, corpus, model):
    out, _ = first_run
    files = sorted(p for p in out.rglob("*.parquet"))
    before = {p: p.stat().st_mtime_ns for p in files}
    summary = xyrt.tokenize([corpus], out, model, **RUN)
    assert summary["run"]["shards_written"] == 0 and summary["shards_skipped"] == 4
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.parquet")} == before


def test_changed_options_or_foreign_folder_are_refused(first_run, corpus, model, tmp_path):
    out, _ = first_run
    with pytest.raises(XyrtError, match="different run.*overlap"):
        xyrt.tokenize([corpus], out, model, **{**RUN, "overlap": 2.0})
    (tmp_path / "mine.txt").write_text("not xyrt's")
    with pytest.raises(XyrtError, match="not an xyrt tokenize output"):
        xyrt.tokenize([corpus], tmp_path, model, **RUN)
    assert (tmp_path / "mine.txt").read_text() == "not xyrt's"


def test_changed_file_or_damaged_shard_is_not_skipped_as_done(local_ray, model, tmp_path):
    """A file rewritten with other audio of the same size is not taken as done: the rerun is
    refused naming it; a damaged shard is named too (not a pyarrow traceback)."""
    ONE = {**RUN, "workers": 1}  # one item: one model actor
    folder = tmp_path / "corpus"
    folder.mkdir()
    sf.write(folder / "a.wav", speech_clip(2.0), 16000)
    out = tmp_path / "out"
    xyrt.tokenize([folder], out, model, **ONE)
    size = (folder / "a.wav").stat().st_size
    sf.write(folder / "a.wav", speech_clip(2.0)[::-1].copy(), 16000)  # same size, other audio
    st = os.stat(folder / "a.wav")
    os.utime(folder / "a.wav", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # coarse clocks
    assert (folder / "a.wav").stat().st_size == size
    with pytest.raises(XyrtError, match=r"1 input file\(s\) changed .*a.wav \(modified\)"):
        xyrt.tokenize([folder], out, model, **ONE)
    (folder / "a.wav").unlink()
    sf.write(folder / "b.wav", speech_clip(2.0), 16000)
    out2 = tmp_path / "out2"
    xyrt.tokenize([folder], out2, model, **ONE)
    shard = next((out2 / "codes").glob("part-*.parquet"))
    shard.write_bytes(shard.read_bytes()[:-20])  # the footer is gone
    with pytest.raises(XyrtError, match=rf"shard {shard} is damaged.*delete it and rerun"):
        xyrt.tokenize([folder], out2, model, **ONE)


def test_gpu_actors_on_a_ray_without_gpus_are_refused(local_ray, corpus, model, tmp_path):
    """Class 9: the module's Ray has no GPU; GPU actors would wait for one forever."""
    with pytest.raises(XyrtError, match=r"gpus_per_worker=1.0 asks for 1 GPU .* reports 0 GPU"):
        xyrt.tokenize([corpus / "long.wav"], tmp_path / "out", model, **RUN, gpus_per_worker=1.0)
    assert not list((tmp_path / "out").glob("codes/*"))


def _ancestors(pid: int) -> set[int]:
    seen: set[int] = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        try:  # field 4 of /proc/PID/stat is the parent; the name (field 2) may hold spaces
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return seen


def _model_actor_pids() -> list[int]:
    """Model actors of this test session's own Ray (descendants of this process): never another
    Ray job's workers on the same machine."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith("ray::MapWorker(MapBatches(Encoder))") and os.getpid() in _ancestors(
            int(pid)
        ):
            pids.append(int(pid))
    return pids


def _state(pid: int) -> str | None:
    """The state letter of a process (Z: a zombie, dead), None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _descendants(root_pid: int) -> dict[int, bytes]:
    """Live descendants of ``root_pid`` and their command lines."""
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if int(pid) != root_pid and root_pid in _ancestors(int(pid)):
            out[int(pid)] = cmd
    return out


def _poll(condition, timeout: float, what: str):
    """Wait until ``condition()`` is truthy (checked every 50 ms), at most ``timeout`` s."""
    import time

    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.05)
    return result


def test_a_sigkilled_tokenize_leaves_no_ray_behind(model, tmp_path):
    """Class 11: the local Ray xyrt starts (agents and workers included) ends with xyrt even
    when xyrt is SIGKILLed mid-run (`xyrt.localray`); synchronised on the processes
    themselves: killed once its model actor runs, then polled until none is left."""
    import subprocess
    import sys

    from xyrt.localray import processes_of

    folder = tmp_path / "corpus"
    folder.mkdir()
    clip = speech_clip(30.0)
    for i in range(12):  # minutes of audio: the run is still going when it is killed
        sf.write(folder / f"{i}.wav", clip, 16000)
    xyrt_cli = str(Path(sys.executable).with_name("xyrt"))
    args = [xyrt_cli, "tokenize", str(folder), "-o", str(tmp_path / "out"), "--model", str(model)]
    proc = subprocess.Popen([*args, "--workers", "1"], stderr=subprocess.DEVNULL)
    try:
        running = _poll(
            lambda: (
                (d := _descendants(proc.pid))
                and any(c.startswith(b"ray::MapWorker") for c in d.values())
                and d
            ),
            180,
            "the model actor of xyrt tokenize to start",
        )
        reaper = [c for c in running.values() if b"xyrt.localray" in c]
        assert len(reaper) == 1, running
        root = reaper[0].split(b"\0")[3].decode()
        ray_pids = set(running) - {p for p, c in running.items() if c == reaper[0]}
        assert len(ray_pids) >= 4 and any(c.startswith(b"ray::") for c in running.values())
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL  # killed mid-run, not finished
        _poll(lambda: not processes_of(root), 20, f"the Ray processes of {root} to end")
        alive = {p for p in ray_pids if _state(p) not in (None, "Z")}
        assert not alive, {p: running[p][:40] for p in alive}
        _poll(lambda: not Path(root).exists(), 10, f"{root} to be removed")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_killed_worker_is_retried_and_output_stays_exactly_once(first_run, corpus, model, tmp_path):
    killed: list[int] = []

    def kill_one(progress) -> None:
        if not killed:
            pids = _model_actor_pids()
            assert pids, "no model actor process found"
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    out = tmp_path / "out"
    summary = xyrt.tokenize([corpus], out, model, **RUN, on_progress=kill_one)
    assert killed and summary["rows"] == len(_good(corpus)) and summary["errors"] == len(BAD)
    rows = list(iter_codes(out))
    assert len(rows) == len({i for i, _ in rows}) == len(_good(corpus))
    reference = dict(iter_codes(first_run[0]))
    for item_id, codes in rows:
        np.testing.assert_array_equal(codes, reference[item_id])
    assert len(pq.read_table(out / "errors")) == len(BAD)


def test_manifest_segments_and_extra_columns(local_ray, corpus, model, tmp_path):
    from xyrt.runtime.formats.audio import load_audio

    lines = [
        {"path": str(corpus / "long.wav"), "id": "a", "start": 1.0, "end": 3.5, "spk": 7},
        {"path": "long.wav", "id": "b", "start": 40.0, "spk": 8},
        {"path": "long.wav", "id": "c", "start": 50.0, "end": 51.0, "spk": 9},  # past the end
    ]
    manifest = corpus / "segments.jsonl"
    manifest.write_text("".join(json.dumps(x) + "\n" for x in lines))
    try:
        xyrt.tokenize([manifest], tmp_path / "out", model, **RUN)
    finally:
        manifest.unlink()
    rows = {r["id"]: r for r in pq.read_table(tmp_path / "out" / "codes").to_pylist()}
    assert sorted(rows) == ["a", "b"] and rows["a"]["spk"] == 7 and rows["a"]["end"] == 3.5
    assert rows["b"]["frames"] == 1 * 16000 // 1280
    codec = xyrt.runtime.load(model)
    want = codec.encode(load_audio(corpus / "long.wav")[16000:56000])
    np.testing.assert_array_equal(np.array(rows["a"]["codes"]), want)
    errors = pq.read_table(tmp_path / "out" / "errors").to_pylist()
    assert [(e["id"], e["kind"]) for e in errors] == [("c", "bad-segment")]


def test_a_model_that_cannot_load_fails_the_job_with_the_reason(local_ray, corpus, model, tmp_path):
    import shutil

    broken = tmp_path / "model"
    shutil.copytree(model, broken)
    with open(broken / "encoder.onnx", "r+b") as f:  # same size, other bytes: sha256 differs
        f.seek(100)
        f.write(b"\x00" * 8)
    with pytest.raises(XyrtError, match="Ray Data job failed.*sha256"):
        xyrt.tokenize([corpus / "long.wav"], tmp_path / "out", broken, **RUN)
    assert not list((tmp_path / "out").glob("codes/*.parquet"))


def test_torch_backend_on_cpu_gives_the_codes_of_xyrt_encode(local_ray, corpus, tmp_path):
    """A checkpoint runs on the PyTorch backend (`--device cpu` here; `cuda` gives GPU actors,
    one GPU each): the codes of `xyrt encode` with the same backend, its identity recorded, and
    a rerun with another precision refused."""
    from helpers import FIXTURES
    from xyrt.cli import main

    ckpt = FIXTURES / "tiny_16k" / "model.ckpt"
    out = tmp_path / "out"
    summary = xyrt.tokenize([corpus], out, ckpt, device="cpu", **RUN)
    got = dict(iter_codes(out))
    assert summary["rows"] == len(_good(corpus)) == len(got)
    for path in _good(corpus)[:3]:
        assert main(["encode", "--model", str(ckpt), str(path), "-o", str(tmp_path / "c.npy")]) == 0
        np.testing.assert_array_equal(got[str(path.resolve())], np.load(tmp_path / "c.npy"))
    facts = json.loads(pq.read_schema(next((out / "codes").glob("part-*"))).metadata[b"xyrt"])
    assert facts["backend"] == "torch[cpu]" and facts["precision"] == "fp32"
    with pytest.raises(XyrtError, match="precision"):
        xyrt.tokenize([corpus], out, ckpt, device="cpu", precision="bf16", **RUN)
    with pytest.raises(XyrtError, match="does not apply to the torch backend"):
        xyrt.tokenize([corpus], tmp_path / "o2", ckpt, providers=["cpu"], **RUN)
