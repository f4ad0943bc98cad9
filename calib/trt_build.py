"""``xyrt build``: build TensorRT engines from an exported (fp32, fp16 or int8) model directory.

Where precision comes from:

- TensorRT 11 drops the FP16/INT8 builder flags and implicit calibration: networks are strongly
  typed, so the graph carries its precision (``xyrt quantize --precision fp16`` for FP16, the
  ``trt-qdq`` graphs of ``--precision int8`` for INT8).
- TensorRT 10 (JetPack 6 ships 10.3) builds the same strongly typed FP16 graph; FP32 graphs
  with ``--precision fp16`` use the FP16 flag and keep the float islands (front end, RVQ, iSTFT)
  in FP32 through layer precision constraints; Q/DQ graphs use the INT8 flag.

Engines are cached: ENGINE_DIR/engines.json records, per graph, the key of every fact the engine
depends on (`xyrt.runtime.backends.trt.profiles.engine_key`); an engine whose key matches is
kept, any other is rebuilt. The timing cache is persistent per GPU model and TensorRT version.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from xyrt.atomic import atomic_write, output_dir
from xyrt.errors import XyrtError, require
from xyrt.runtime.backends.trt.backend import device_facts, read_engines, trt_logger
from xyrt.runtime.backends.trt.profiles import (
    ENGINES_FORMAT,
    ENGINES_FORMAT_VERSION,
    DeviceFacts,
    Profile,
    build_mode,
    engine_key,
)
from xyrt.runtime.graph_io import DECODER, ENCODER, FLOAT_SCOPES, GRAPHS
from xyrt.runtime.modeldir.dirs import ENGINE_DIR
from xyrt.runtime.modeldir.manifest import Manifest, read_manifest, sha256_file

PRECISIONS = ("fp32", "fp16", "int8")


def graph_keys(manifest: Manifest, precision: str) -> dict[str, str]:
    """The graphs of ``manifest`` to build for ``precision``; `XyrtError` when the directory
    cannot give that precision, saying which command makes one that can."""
    if precision not in PRECISIONS:
        raise XyrtError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    have = manifest.data.get("precision", "fp32")
    if precision == "int8":
        target = manifest.data.get("targets", {}).get("tensorrt")
        if have != "int8" or target is None:
            raise XyrtError(
                f"{manifest.directory} holds a {have} model without TensorRT Q/DQ graphs; run "
                "`xyrt quantize DIR --precision int8 --scheme trt-qdq --calib CALIB.npz` first"
            )
        return {g: target[g] for g in GRAPHS}
    if have == precision or (have == "fp32" and precision == "fp16"):
        return {ENCODER: ENCODER, DECODER: DECODER}
    raise XyrtError(
        f"{manifest.directory} holds a {have} model; --precision {precision} needs an fp32 "
        f"export{' or an fp16 one (xyrt quantize --precision fp16)' if precision == 'fp16' else ''}"
    )


def plan_builds(
    manifest: Manifest,
    precision: str,
    profile: Profile,
    device: DeviceFacts,
    existing: dict | None,
) -> dict[str, dict]:
    """Per graph: the engines.json entry to have, and whether it must be (re)built."""
    graph_precision = manifest.data.get("precision", "fp32")
    mode = build_mode(device.tensorrt_version, graph_precision)
    if mode == "strongly-typed" and graph_precision == "fp32" and precision == "fp16":
        raise XyrtError(
            f"TensorRT {device.tensorrt_version} takes precision from the ONNX graph: make an "
            "fp16 export with `xyrt quantize DIR --precision fp16 -o DIR16` and build that"
        )
    old = (existing or {}).get("engines", {})
    plans = {}
    for graph, key_name in graph_keys(manifest, precision).items():
        graph_sha = manifest.data["graphs"][key_name]["sha256"]
        key = engine_key(graph_sha, precision, mode, profile, device)
        entry = {
            "graph": graph,
            "source_graph": key_name,
            "graph_sha256": graph_sha,
            "precision": precision,
            "mode": mode,
            "profile": profile.to_dict(),
            "device": device.__dict__,
            "key": key,
            "file": f"{graph}-{precision}-{key[:16]}.plan",
            "num_quantizers": manifest.num_quantizers,
        }
        previous = old.get(graph)
        fresh = previous is not None and previous.get("key") == key
        plans[graph] = {"entry": previous if fresh else entry, "build": not fresh}
    return plans


def timing_cache_path(out_dir: Path, device: DeviceFacts) -> Path:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", f"{device.gpu_name}-sm{device.compute_capability}")
    return out_dir / f"timing-{slug}-trt{device.tensorrt_version}.cache"


def build_engines(
    model_dir: str | Path,
    out_dir: str | Path,
    precision: str = "fp32",
    profile: Profile | None = None,
    workspace_gib: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Build (or keep, when up to date) the encoder and decoder engines; write engines.json.
    ``out_dir`` must be new, empty or an engine directory; one created here is removed again
    when nothing could be built."""
    with output_dir(out_dir, ENGINE_DIR) as out:
        return _build_engines(model_dir, out, precision, profile, workspace_gib, progress)


def _build_engines(model_dir, out_dir, precision, profile, workspace_gib, progress) -> Path:
    say = progress or (lambda _msg: None)
    manifest = read_manifest(model_dir)
    graph_keys(manifest, precision)  # argument errors before needing TensorRT
    profile = profile or Profile()
    if workspace_gib is not None and workspace_gib <= 0:
        raise XyrtError(f"workspace must be positive, got {workspace_gib} GiB")
    trt = require("tensorrt", "gpu", "xyrt build")
    device = device_facts()
    existing = None
    if (out_dir / "engines.json").is_file():
        try:
            existing = read_engines(out_dir)
        except XyrtError as exc:  # an older or broken record: rebuild everything
            say(f"ignoring {out_dir / 'engines.json'}: {exc}")
    plans = plan_builds(manifest, precision, profile, device, existing)
    engines = {}
    for graph, plan in plans.items():
        entry = plan["entry"]
        plan_file = out_dir / entry["file"]
        if (
            not plan["build"]
            and plan_file.is_file()
            and sha256_file(plan_file) == entry.get("plan_sha256")
        ):
            say(f"{graph}: engine up to date ({entry['file']})")
            engines[graph] = entry
            continue
        say(f"{graph}: building {precision} engine ({entry['mode']}) on {device.describe()}")
        source = manifest.check_graph(entry["source_graph"])
        cache = timing_cache_path(out_dir, device)
        data = _build_one(trt, source, entry, profile, cache, workspace_gib)
        with atomic_write(plan_file, XyrtError, claim=False) as tmp:  # engine dir
            Path(tmp).write_bytes(data)
        engines[graph] = {**entry, "plan_sha256": sha256_file(plan_file)}
    doc = {
        "format": ENGINES_FORMAT,
        "format_version": ENGINES_FORMAT_VERSION,
        "model_dir": str(Path(model_dir).resolve()),
        "model": {k: v for k, v in manifest.data.items() if k not in ("graphs", "quantization")},
        "engines": engines,
    }
    with atomic_write(out_dir / "engines.json", XyrtError, claim=False) as tmp:
        Path(tmp).write_text(json.dumps(doc, indent=2) + "\n")
    return out_dir


def _build_one(trt, onnx_path: Path, entry: dict, profile: Profile, cache: Path, workspace):
    """The TensorRT calls: parse, configure precision/profile/timing cache, serialize."""
    logger = trt_logger()
    builder = trt.Builder(logger)
    flags = 0
    if entry["mode"] == "strongly-typed":
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise XyrtError(f"TensorRT cannot parse {onnx_path}: {'; '.join(errors)}")
    config = builder.create_builder_config()
    if workspace:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace * 2**30))
    if entry["mode"] == "flags":
        if entry["precision"] in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)
        if entry["precision"] == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
        _pin_float_islands(trt, network, config)
    opt = builder.create_optimization_profile()
    inputs = {network.get_input(i).name for i in range(network.num_inputs)}
    for name, (lo, mid, hi) in profile.shapes(entry["graph"], entry["num_quantizers"]).items():
        if name in inputs:  # an export older than window positions lacks them
            opt.set_shape(name, lo, mid, hi)
    config.add_optimization_profile(opt)
    timing = config.create_timing_cache(cache.read_bytes() if cache.is_file() else b"")
    if not config.set_timing_cache(timing, ignore_mismatch=False):  # stale or corrupt: start anew
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise XyrtError(f"TensorRT failed to build an engine from {onnx_path} (see its log)")
    updated = config.get_timing_cache()
    if updated is not None:
        with atomic_write(cache, XyrtError, claim=False) as tmp:
            Path(tmp).write_bytes(bytes(updated.serialize()))
    return bytes(serialized)


def _pin_float_islands(trt, network, config) -> None:
    """Layers from the front end, RVQ and iSTFT run in FP32 under the FP16 flag."""
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        outputs = [layer.get_output(j).dtype for j in range(layer.num_outputs)]
        if layer.name.startswith(FLOAT_SCOPES) and all(
            t in (trt.float32, trt.float16) for t in outputs
        ):
            layer.precision = trt.float32
            for j in range(layer.num_outputs):
                layer.set_output_type(j, trt.float32)
    config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
