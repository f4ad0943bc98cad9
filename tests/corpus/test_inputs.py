"""xyrt tokenize without Ray: inputs, manifests, the shard plan, duration packing, errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from xyrt.corpus.inputs import Item, ItemError, collect_items, read_item
from xyrt.corpus.shards import inputs_sha256, plan_shards
from xyrt.corpus.stages import pack_by_duration
from xyrt.errors import MissingDependencyError, XyrtError

sf = pytest.importorskip("soundfile", reason="xyrt[audio] is not installed")


@pytest.fixture
def folder(tmp_path):
    for name, seconds in [("a.wav", 1.0), ("b.flac", 2.0), ("sub/c.wav", 0.5)]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        sf.write(tmp_path / name, np.zeros(int(seconds * 16000), np.float32), 16000)
    (tmp_path / "notes.txt").write_text("not audio")
    return tmp_path


def test_folders_globs_and_files(folder):
    items = collect_items([folder])
    assert [it.id for it in items] == [str(folder / n) for n in ("a.wav", "b.flac", "sub/c.wav")]
    assert [it.id for it in collect_items([str(folder / "**" / "*.wav")])] == [
        str(folder / "a.wav"),
        str(folder / "sub" / "c.wav"),
    ]
    with pytest.raises(XyrtError, match="more than once"):
        collect_items([folder, folder / "a.wav"])
    with pytest.raises(XyrtError, match="does not exist"):
        collect_items([folder / "missing.wav"])
    with pytest.raises(XyrtError, match="matches no files"):
        collect_items([str(folder / "*.opus")])


@pytest.mark.parametrize("suffix,sep", [(".csv", ","), (".tsv", "\t")])
def test_csv_tsv_manifest(folder, suffix, sep):
    m = folder / f"m{suffix}"
    m.write_text(sep.join(["path", "id", "start", "end", "text"]) + "\n")
    with m.open("a") as f:
        f.write(sep.join(["a.wav", "x", "0.25", "0.75", "hello"]) + "\n")
        f.write(sep.join(["b.flac", "", "", "", "world"]) + "\n")
    a, b = collect_items([m])
    assert (a.id, a.start, a.end, a.extra) == ("x", 0.25, 0.75, {"text": "hello"})
    assert (b.id, b.start, b.end) == (str(folder / "b.flac"), None, None)
    samples, rate = read_item(a)
    assert rate == 16000 and len(samples) == 8000


def test_malformed_manifests_name_the_line(tmp_path):
    bad = tmp_path / "m.jsonl"
    bad.write_text('{"path": "a.wav"}\n[1, 2]\n')
    with pytest.raises(XyrtError, match=r"m.jsonl:2 is list"):
        collect_items([bad])
    bad.write_text('{"path": "a.wav", "start": 2, "end": 1}\n')
    with pytest.raises(XyrtError, match=r"m.jsonl:1: end \(1.0\) must be after start"):
        collect_items([bad])
    csv = tmp_path / "m.csv"
    csv.write_text("file,id\na.wav,1\n")
    with pytest.raises(XyrtError, match="expected a header row with a 'path' column"):
        collect_items([csv])


def test_read_errors_have_kinds(folder):
    (folder / "bad.wav").write_bytes(b"nope")
    sf.write(folder / "tiny.wav", np.zeros(100, np.float32), 16000)
    cases = {
        Item("1", str(folder / "bad.wav")): "unreadable",
        Item("2", str(folder / "gone.wav")): "unreadable",
        Item("3", str(folder / "tiny.wav")): "too-short",
        Item("4", str(folder / "a.wav"), 5.0, 6.0): "bad-segment",
        Item("5", str(folder / "a.wav"), 0.5, 1.5): "bad-segment",  # ends 0.5 s past a.wav
    }
    for item, kind in cases.items():
        with pytest.raises(ItemError) as info:
            read_item(item)
        assert info.value.kind == kind, (item, info.value)
    with pytest.raises(ItemError, match=r"segment 0.5-1.5 s ends past the end of .*a.wav"):
        read_item(Item("5", str(folder / "a.wav"), 0.5, 1.5))
    samples, _ = read_item(Item("6", str(folder / "a.wav"), 0.5, 1.004))  # rounded: cut to 1 s
    assert len(samples) == 8000


@pytest.mark.parametrize(
    "name,text",
    [
        ("m.jsonl", ""),
        ("m.jsonl", "\n  \n\n"),
        ("m.csv", "path,id,start,end\n"),
        ("m.tsv", "path\tid\n\n"),
        ("m.csv", ""),
    ],
)
def test_empty_manifests_are_refused(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    with pytest.raises(XyrtError, match="lists no items.*empty, blank or only a header"):
        collect_items([tmp_path / name])


def test_empty_manifest_exits_1_before_ray(tmp_path, capsys):
    from xyrt.cli import main

    (tmp_path / "m.csv").write_text("path,id\n")
    args = ["tokenize", str(tmp_path / "m.csv"), "-o", str(tmp_path / "out"), "--model", "m"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lists no items" in err[0], err
    assert not (tmp_path / "out").exists()


def test_file_identity_covers_content_changes(folder):
    """Size and mtime_ns are in the inputs hash: the same file rewritten with other audio of the
    same size (a new mtime) changes it; the recorded inputs name the file that changed."""
    import os

    from xyrt.corpus.shards import _inputs_table, changed_files

    pq = pytest.importorskip("pyarrow.parquet", reason="xyrt[scale] (pyarrow) is not installed")
    before = collect_items([folder])
    pq.write_table(_inputs_table(before), folder / "inputs.parquet")
    size = (folder / "a.wav").stat().st_size
    sf.write(folder / "a.wav", np.full(16000, 0.25, np.float32), 16000)  # same length
    st = os.stat(folder / "a.wav")
    os.utime(folder / "a.wav", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # coarse clocks
    after = collect_items([folder])
    assert (folder / "a.wav").stat().st_size == size
    assert inputs_sha256(plan_shards(after, 2)) != inputs_sha256(plan_shards(before, 2))
    assert changed_files(folder / "inputs.parquet", after) == [f"{folder / 'a.wav'} (modified)"]
    assert changed_files(folder / "inputs.parquet", before) == []


def test_shard_plan_is_deterministic():
    items = [Item(f"id{i}", f"/x/{i}.wav", size=(i * 7919) % 100) for i in range(10)]
    shards = plan_shards(items, 4)
    assert [len(s) for s in shards] == [4, 4, 2]
    sizes = [it.size for s in shards for it in s]
    assert sizes == sorted(sizes)
    assert plan_shards(list(reversed(items)), 4) == shards
    assert inputs_sha256(shards) == inputs_sha256(plan_shards(items, 4))
    assert inputs_sha256(shards) != inputs_sha256(plan_shards(items[:-1], 4))


def test_pack_by_duration_bounds_window_seconds():
    rng = np.random.default_rng(0)
    lengths = [int(s * 16000) for s in rng.uniform(1, 30, 50)] + [16000 * 70]
    packs = pack_by_duration(lengths, batch_seconds=60.0)
    assert sorted(i for p in packs for i in p) == list(range(len(lengths)))

    def window_seconds(i: int) -> float:  # 30 s windows every 20 s, each cut to the clip
        return sum(min(lengths[i], s + 480000) - s for s in range(0, lengths[i], 320000)) / 16000

    for pack in packs:
        assert len(pack) == 1 or sum(window_seconds(i) for i in pack) <= 60.0
        assert [lengths[i] for i in pack] == sorted((lengths[i] for i in pack), reverse=True)
    assert [len(lengths) - 1] in packs  # 70 s: windows of 30 + 30 + 30 s = 90 s > 60 s, alone
    assert len(packs) < len(lengths) / 2  # short clips do share packs


def test_missing_ray_says_what_to_install(monkeypatch, folder, tmp_path):
    import xyrt

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'xyrt\[scale\]'"):
        xyrt.tokenize([folder], tmp_path / "out", folder)  # before the model is even read


def test_cli_errors_are_one_line(folder, tmp_path, capsys):
    from xyrt.cli import main

    assert main(["tokenize", str(folder / "nope"), "-o", str(tmp_path), "--model", "m"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]
    with pytest.raises(SystemExit) as exit_info:
        main(["tokenize", str(folder), "--model", "m"])
    assert exit_info.value.code == 2


def test_gpu_backends_get_gpu_actors_and_options_are_checked(tmp_path):
    from helpers import exported, fake_engines
    from xyrt.corpus import TokenizeOptions
    from xyrt.corpus.pipeline import gpus_per_actor
    from xyrt.runtime import Options

    def gpus(model, backend: str = "auto", **fields) -> float:  # resolved for a cluster
        o = TokenizeOptions(backend, Options.of(**fields), address="ray://cluster:10001")
        return gpus_per_actor(o, o.resolve(model))

    export = exported("tiny_16k")
    assert gpus(fake_engines(tmp_path / "e")) == 1.0  # --backend auto: TensorRT
    assert gpus(export, providers=("cuda",)) == 1.0
    assert gpus(export) == 0.0 and gpus(export, backend="openvino") == 0.0
    for bad, match in [
        ({"workers": 0}, "workers must be an integer >= 1, got 0"),
        ({"workers": "2"}, "workers must be an integer >= 1, got '2'"),  # not converted
        ({"threads_per_worker": 1.5}, "threads_per_worker must be an integer >= 1, got 1.5"),
        ({"batch_seconds": 0}, "batch_seconds must be > 0, got 0"),
        ({"batch_seconds": "60"}, "batch_seconds must be a finite number, got '60'"),
        ({"overlap": 30.0}, r"overlap must be in \[0, 29.92\]"),
        ({"backend": "nope"}, "unknown backend"),
    ]:
        with pytest.raises(XyrtError, match=match):
            TokenizeOptions(**bad)


def test_gpu_actors_are_refused_when_the_cluster_has_no_gpu(folder, tmp_path):
    """Class 9: Ray would wait forever for GPUs it does not have; say so, with its resources.
    OpenVINO runs on the CPU: --providers cuda with it is refused before Ray starts."""
    import xyrt
    from helpers import exported, fake_engines
    from xyrt.corpus import TokenizeOptions
    from xyrt.corpus.pipeline import check_gpus

    cpu_only = {"CPU": 3.0, "memory": 4 * 2**30, "node:10.0.0.1": 1.0}
    trt = TokenizeOptions(backend="tensorrt", address="ray://cluster:10001")
    with pytest.raises(XyrtError, match=r"--backend tensorrt asks for 1 GPU .* reports 0 GPU"):
        check_gpus(trt, trt.resolve(fake_engines(tmp_path / "e")), 1, cpu_only)
    cpu = TokenizeOptions().resolve(exported("tiny_16k"))
    shown = r"2 for 4 worker.* reports 1 GPU.*resources: CPU 3, GPU 1, memory 4.0 GiB\)"
    with pytest.raises(XyrtError, match=shown):
        check_gpus(TokenizeOptions(gpus_per_worker=0.5), cpu, 4, {**cpu_only, "GPU": 1.0})
    check_gpus(TokenizeOptions(gpus_per_worker=0.5), cpu, 2, {**cpu_only, "GPU": 1.0})  # fits
    check_gpus(TokenizeOptions(), cpu, 8, cpu_only)  # CPU actors need no GPU
    with pytest.raises(XyrtError, match="providers.*does not apply to the openvino backend"):
        xyrt.tokenize(
            [folder], tmp_path / "o", exported("tiny_16k"), backend="openvino", providers=["cuda"]
        )
    assert not (tmp_path / "o").exists()
