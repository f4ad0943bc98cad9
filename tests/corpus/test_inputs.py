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
    }
    for item, kind in cases.items():
        with pytest.raises(ItemError) as info:
            read_item(item)
        assert info.value.kind == kind, (item, info.value)


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


def test_gpu_backends_get_gpu_actors_and_options_are_checked():
    from xyrt.corpus import TokenizeOptions

    assert TokenizeOptions(backend="tensorrt").uses_gpu
    assert TokenizeOptions(providers=("cuda",)).uses_gpu
    assert not TokenizeOptions().uses_gpu and not TokenizeOptions(backend="openvino").uses_gpu
    for bad, match in [
        ({"workers": 0}, "workers must be at least 1"),
        ({"batch_seconds": 0}, "batch_seconds must be positive"),
        ({"overlap": 30.0}, r"overlap must be in \[0, 29.92\]"),
        ({"backend": "nope"}, "unknown backend"),
    ]:
        with pytest.raises(XyrtError, match=match):
            TokenizeOptions(**bad)
