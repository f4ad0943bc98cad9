"""manifest.json of an exported model directory: read and checked by the runtime.

Every file a graph uses is inside the directory, listed and hashed: a graph's ``file`` and
``external_data`` are plain names in the directory (no folders, ``..`` or absolute paths; checked
when the manifest is read), and the files a graph reads its tensors from (ONNX external data, an
OpenVINO IR's .bin) must be exactly the ``external_data`` its entry lists with a sha256.
"""

from __future__ import annotations

import json
import mmap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xyrt.errors import XyrtError, require
from xyrt.runtime.modeldir.filecheck import cache_dir, member, sha256_file, verify_file
from xyrt.runtime.modeldir.jsonfile import POSITIVE, Each, Nullable, read_versioned

FORMAT = "xyrt-onnx"
FORMAT_VERSION = 1
METADATA_PREFIX = "xyrt."
_IO = [{"name": str, "dtype": str, "shape": list}]
_GRAPH = {
    "file": str,
    "sha256": str,
    "external_data?": Nullable(str),
    "external_data_sha256?": Nullable(str),
    "inputs": _IO,
    "outputs": _IO,
}
SCHEMA = {  # what the runtime reads from manifest.json, checked once at read
    "precision": str,
    "source_checkpoint": {"sha256": str, "path?": str},
    "config": dict,
    "variant": str,
    "input_sample_rate": POSITIVE,
    "output_sample_rate": POSITIVE,
    "samples_per_code_in": POSITIVE,
    "samples_per_code_out": POSITIVE,
    "num_quantizers": POSITIVE,
    "codebook_size": POSITIVE,
    "opset": POSITIVE,
    "graphs": Each(_GRAPH),  # an OpenVINO-only directory has no plain encoder/decoder
    "targets?": Each({"encoder": str, "decoder": str}),
}
EXTERNAL_DATA_BYTES = 1_800_000_000  # protobuf's limit is 2 GiB: larger graphs use external data


def metadata_facts(manifest: dict[str, Any]) -> dict[str, str]:
    """The facts every graph carries in its ``metadata_props`` (string values, xyrt.* keys)."""
    keys = [
        "format",
        "format_version",
        "variant",
        "precision",
        "input_sample_rate",
        "output_sample_rate",
        "samples_per_code_in",
        "samples_per_code_out",
        "num_quantizers",
        "codebook_size",
        "opset",
    ]
    facts = {k: str(manifest[k]) for k in keys}
    facts["source_sha256"] = manifest["source_checkpoint"]["sha256"]
    return {METADATA_PREFIX + k: v for k, v in facts.items()}


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest.json and the directory it describes."""

    directory: Path
    data: dict[str, Any]

    @property
    def output_sample_rate(self) -> int:
        return int(self.data["output_sample_rate"])

    @property
    def samples_per_code_out(self) -> int:
        return int(self.data["samples_per_code_out"])

    @property
    def num_quantizers(self) -> int:
        return int(self.data["num_quantizers"])

    @property
    def codebook_size(self) -> int:
        return int(self.data["codebook_size"])

    def input_names(self, name: str) -> list[str]:
        """The inputs graph ``name`` takes, as the manifest lists them (none for a graph it does
        not list: loading that graph says so)."""
        entry = self.data.get("graphs", {}).get(name, {})
        return [io["name"] for io in entry.get("inputs", [])]

    def graph_path(self, name: str) -> Path:
        """Path of graph ``name`` ("encoder" or "decoder"), unchecked."""
        graphs = self.data.get("graphs", {})
        if name not in graphs:
            ir_only = graphs and all(
                str(g.get("file", "")).endswith(".xml") for g in graphs.values()
            )
            hint = (
                ": it holds OpenVINO IR only (xyrt quantize --scheme openvino), which the openvino "
                "backend runs: pass --backend openvino (backend='openvino')"
                if ir_only
                else ""
            )
            raise XyrtError(
                f"{self.directory}/manifest.json lists no '{name}' graph (has: {sorted(graphs)})"
                + hint
            )
        return self.directory / graphs[name]["file"]

    def _check_external(self, name: str, path: Path, sha256: str) -> None:
        """`XyrtError` unless the files graph ``name`` reads its tensors from are the one its
        entry lists (hashed), if any."""
        listed = self.data["graphs"][name].get("external_data")
        if path.suffix == ".xml":  # an OpenVINO IR reads its weights from <stem>.bin
            used = [path.stem + ".bin"] if path.with_suffix(".bin").exists() else []
        else:
            used = external_files(path, sha256)
        unlisted = [u for u in used if u != listed]
        if unlisted:
            raise XyrtError(
                f"{path} reads tensors from {', '.join(unlisted)}, which "
                f"{self.directory}/manifest.json does not list as its external_data (with a "
                "sha256), so it cannot be checked: the directory is not as xyrt wrote it; "
                "re-run xyrt export"
            )

    def check_metadata(self, meta: dict[str, str], graph: str, path: Path) -> None:
        """`XyrtError` unless a loaded graph's metadata (``meta``: its xyrt.* facts) are this
        manifest's and name ``graph``: a file from another export is refused."""
        want = metadata_facts(self.data)
        wrong = {k: (meta.get(k), v) for k, v in want.items() if meta.get(k) != v}
        stamped = meta.get(METADATA_PREFIX + "graph")
        if stamped != graph:
            wrong[METADATA_PREFIX + "graph"] = (stamped, graph)
        if wrong:
            raise XyrtError(
                f"{path} metadata does not match {self.directory}/manifest.json "
                f"(graph vs manifest: {wrong}); the file belongs to another export, or "
                "manifest.json was edited since xyrt wrote it"
            )

    def check_io(
        self, graph: str, path: Path, inputs: list[set[str]], outputs: list[set[str]]
    ) -> None:
        """`XyrtError` unless a loaded graph's inputs and outputs (each port's names, in order)
        are the ones this manifest lists for ``graph``: copied metadata do not make a graph of
        another model this export's (every backend checks this, after `check_metadata`)."""
        entry = self.data["graphs"][graph]
        for group, ports in (("inputs", inputs), ("outputs", outputs)):
            want = [io["name"] for io in entry[group]]
            if len(ports) != len(want) or any(
                w not in p for w, p in zip(want, ports, strict=False)
            ):
                have = [sorted(p)[0] if len(p) == 1 else sorted(p) for p in ports]
                raise XyrtError(
                    f"{path} has {group} {have}, but {self.directory}/manifest.json lists "
                    f"{want}; the graph belongs to another export: re-run xyrt export"
                )

    def check_graph(self, name: str, rehash: bool = False) -> Path:
        """Path of the graph after checking that it exists and its sha256 is the manifest's
        (files unchanged since they last matched are not re-read unless ``rehash``:
        `xyrt.runtime.modeldir.filecheck`)."""
        path = self.graph_path(name)
        if not path.is_file():
            raise XyrtError(f"{path} is missing; re-run xyrt export into {self.directory}")
        entry = self.data["graphs"][name]
        files = [(path, entry["sha256"])]
        if entry.get("external_data"):
            if not entry.get("external_data_sha256"):
                raise XyrtError(
                    f"{self.directory}/manifest.json lists {entry['external_data']} for graph "
                    f"'{name}' without its external_data_sha256; re-run xyrt export"
                )
            files.append((self.directory / entry["external_data"], entry["external_data_sha256"]))
        for file, want in files:
            if not file.is_file():
                raise XyrtError(f"{file} is missing; re-run xyrt export into {self.directory}")
            verify_file(file, want, rehash)
        self._check_external(name, path, entry["sha256"])
        return path


def _check_names(directory: Path, data: dict[str, Any]) -> None:
    """`XyrtError` unless every graph's ``file`` and ``external_data`` is a plain name of a
    file inside ``directory`` (`filecheck.member`)."""
    for entry in data["graphs"].values():
        for key in ("file", "external_data"):
            if entry.get(key) is not None:
                member(directory, entry[key], "manifest.json")


def _onnx_locations(path: Path) -> list[str]:
    """The external-data locations of an ONNX graph's tensors (reads the graph without them)."""
    onnx = require("onnx", "export", "checking which files an ONNX graph with external data reads")
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and others
        raise XyrtError(f"cannot read the ONNX graph {path}: {exc}") from exc
    found: set[str] = set()

    def walk(graph) -> None:
        tensors = [*graph.initializer]
        tensors += [t for s in graph.sparse_initializer for t in (s.values, s.indices)]
        for node in graph.node:
            for attr in node.attribute:
                tensors += [attr.t, *attr.tensors] if attr.HasField("t") else [*attr.tensors]
                for sub in [attr.g] if attr.HasField("g") else []:
                    walk(sub)
                for sub in attr.graphs:
                    walk(sub)
        found.update(ExternalDataInfo(t).location for t in tensors if uses_external_data(t))

    walk(model.graph)
    return sorted(found)


def external_files(path: Path, sha256: str) -> list[str]:
    """Names of the files the ONNX graph ``path`` (of content ``sha256``) keeps tensor data in.
    A graph whose bytes never say "location" has none (no parse); otherwise the graph is read
    with the onnx package. The answer depends only on the content: it is cached by sha256."""
    cached = cache_dir() / "external-data" / f"{sha256}.json"
    try:
        names = json.loads(cached.read_text())
        if isinstance(names, list) and all(isinstance(n, str) for n in names):
            return names
    except (OSError, ValueError):
        pass
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        if size == 0:
            return []
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
            maybe = view.find(b"location") >= 0
    names = _onnx_locations(path) if maybe else []
    from xyrt.atomic import atomic_write

    try:
        with atomic_write(cached, claim=False) as tmp:  # xyrt's cache
            tmp.write_text(json.dumps(names))
    except XyrtError:
        pass  # an unwritable cache: the next check reads the graph again
    return names


def read_manifest(directory: str | Path) -> Manifest:
    """Read ``DIR/manifest.json``; `XyrtError` if missing, corrupt or of another format."""
    directory = Path(directory)
    path = directory / "manifest.json"
    if not path.is_file():
        raise XyrtError(
            f"{directory} is not an xyrt model directory (no manifest.json); create one with "
            "`xyrt export --model CKPT -o DIR`"
        )
    data = read_versioned(
        path, FORMAT, FORMAT_VERSION, SCHEMA, "an xyrt manifest", "re-export with this xyrt"
    )
    _check_names(directory, data)
    return Manifest(directory, data)


def stamp_graph(
    path: Path, facts: dict[str, str], graph: str, external_over: int = EXTERNAL_DATA_BYTES
) -> None:
    """Write ``facts`` (+ ``xyrt.graph``) into the graph's metadata_props and save it; graphs
    larger than ``external_over`` bytes keep their weights in ``<name>.data`` (writer side:
    needs the onnx package)."""
    onnx = require("onnx", "export", "writing ONNX graphs")
    import xyrt

    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for key, value in {**facts, METADATA_PREFIX + "graph": graph}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "xyrt"
    proto.producer_version = xyrt.__version__
    external = proto.ByteSize() > external_over
    path.with_name(path.name + ".data").unlink(missing_ok=True)
    onnx.save_model(
        proto,
        str(path),
        save_as_external_data=external,
        all_tensors_to_one_file=True,
        location=path.name + ".data",
    )


def graph_entry(path: Path, io: dict[str, list]) -> dict[str, Any]:
    """The manifest entry of a written graph: file, sha256s, size, inputs and outputs."""
    data = path.with_name(path.name + ".data")
    sha = sha256_file(path)
    stray = [u for u in external_files(path, sha) if u != data.name]
    if stray:  # every file a graph reads is listed (and hashed) in the manifest
        raise XyrtError(f"internal: {path} reads tensors from {stray}, not only {data.name}")
    return {
        "file": path.name,
        "sha256": sha,
        "external_data": data.name if data.exists() else None,
        "external_data_sha256": sha256_file(data) if data.exists() else None,
        "bytes": path.stat().st_size + (data.stat().st_size if data.exists() else 0),
        **io,
    }
