"""``xyrt quantize``: an FP32 export -> an INT8 or FP16 export with its own manifest.

``--precision int8`` writes two graph sets by default (see `xyrt.calib.schemes`):

- ``cpu-dynamic`` -> ``encoder.onnx``/``decoder.onnx``, for ONNX Runtime on CPUs (the default
  graphs of the directory);
- ``trt-qdq`` -> ``encoder.qdq.onnx``/``decoder.qdq.onnx``, Q/DQ for TensorRT (``xyrt build``
  and ONNX Runtime's TensorRT provider), calibrated on a calibration set.

``--precision fp16`` writes one set (``encoder.onnx``/``decoder.onnx``). The manifest's
``targets`` says which set is for which runtime; ``quantization`` records per scheme what was
quantized, what stayed float and why (the sensitivity pass), and the calibration summary.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xyrt.atomic import check_output_dir, replace_dir
from xyrt.calib import openvino_ptq, schemes
from xyrt.calib.dataset import CalibSet
from xyrt.calib.sensitivity import (
    SensitivityOptions,
    SensitivityReport,
    choose_exclusions,
    quantizable_groups,
)
from xyrt.config import CODES_PER_CHUNK, INPUT_SAMPLE_RATE, N_SAMPLES
from xyrt.errors import XyrtError, received, require
from xyrt.runtime.backends.openvino.backend import OPENVINO_TARGET
from xyrt.runtime.compare import snr_db
from xyrt.runtime.graph_io import (
    ENCODER,
    FLOAT_SCOPES,
    GRAPHS,
    decoder_feed,
    encoder_feed,
    pack_windows,
)
from xyrt.runtime.modeldir.dirs import EXPORT_DIR
from xyrt.runtime.modeldir.manifest import graph_entry, metadata_facts, read_manifest, stamp_graph

PRECISION_SCHEMES = {"int8": ("cpu-dynamic", "trt-qdq", "openvino"), "fp16": ("fp16",)}
DEFAULT_SCHEMES = {"int8": ("cpu-dynamic", "trt-qdq"), "fp16": ("fp16",)}
CALIBRATED = ("trt-qdq", "openvino")  # schemes that need a calibration set
SCHEME_OPTIONS = {  # the options each scheme takes (besides the sensitivity pass)
    "cpu-dynamic": ("attention", "exclude"),
    "trt-qdq": ("calib", "exclude"),
    "openvino": ("calib", "exclude"),
    "fp16": ("exclude",),
}
SCHEME_TARGET = {
    "cpu-dynamic": "onnxruntime-cpu",
    "trt-qdq": "tensorrt",
    "openvino": OPENVINO_TARGET,
    "fp16": "any",
}
U8_TARGET, U8_SUFFIX = "onnxruntime-cpu-u8", "u8"  # cpu-dynamic's twin (`schemes.u8_twin`)
SCHEME_SUFFIX = {"cpu-dynamic": "dynamic", "trt-qdq": "qdq", "openvino": "ov", "fp16": "fp16"}
SCHEME_FACTS = {
    "openvino": openvino_ptq.FACTS,
    "cpu-dynamic": {
        "weights": "int8 symmetric, per output channel (MatMul with constant weights); a uint8 "
        "twin (w + 128) for x86 CPUs without VNNI, target onnxruntime-cpu-u8",
        "activations": "uint8, quantized at run time (dynamic)",
    },
    "trt-qdq": {
        "weights": "int8 symmetric (zero-point 0), per output channel (MatMul, Conv)",
        "activations": "int8 symmetric (zero-point 0), MinMax calibration",
    },
    "fp16": {
        "weights": "float16",
        "activations": "float16, float32 islands: " + ", ".join(schemes.FP16_FLOAT_OPS),
    },
}


@dataclass(frozen=True)
class Quantized:
    """What `quantize` wrote: the directory, and per scheme the runtime it targets and the
    sensitivity report of each graph (also recorded in the manifest's ``quantization``)."""

    directory: Path
    targets: dict[str, str]  # scheme -> runtime target ("onnxruntime-cpu", "tensorrt", "any")
    reports: dict[str, dict[str, SensitivityReport]]  # scheme -> graph -> report


def quantize(
    model_dir: str | Path,
    out_dir: str | Path,
    precision: str = "int8",
    scheme_names: Sequence[str] | None = None,
    calib: CalibSet | None = None,
    exclude: Sequence[str] = (),
    sensitivity: SensitivityOptions | None = None,
    progress: Callable[[str], None] | None = None,
    attention: str | None = None,
) -> Quantized:
    """Write a quantized copy of the FP32 export in ``model_dir`` to ``out_dir``; return what
    was written (`Quantized`: the directory and the sensitivity reports).

    ``exclude`` adds node-name prefixes kept float; ``calib`` is needed by ``trt-qdq`` and
    ``openvino``. ``attention`` (``cpu-dynamic`` only): ``"fused"`` (default) float32 attention
    as ORT's MultiHeadAttention, ``"float"`` the exported float32 ops as they are, ``"int8"`` the
    attention products (activation x activation MatMuls) quantized dynamically too.
    Sensitivity (default on) runs on the held-out bundled speech; the ``openvino`` scheme
    (NNCF, an OpenVINO IR) is measured on it, not searched. An option none of the chosen
    schemes takes (`SCHEME_OPTIONS`), or an ``exclude`` prefix that names no node, is an
    `XyrtError`.
    """
    say = progress or (lambda _msg: None)
    if attention is not None and attention not in schemes.ATTENTION_MODES:
        raise XyrtError(
            f"attention {attention!r}: choose from {', '.join(schemes.ATTENTION_MODES)}"
        )
    chosen = _check_args(model_dir, out_dir, precision, scheme_names, calib)
    _check_scheme_options(chosen, precision, attention=attention, calib=calib, exclude=exclude)
    attention = attention or "fused"
    sensitivity = sensitivity or SensitivityOptions()
    source = read_manifest(model_dir)
    _check_exclude(source, exclude)
    out_dir = Path(out_dir)
    manifest = json.loads(json.dumps(source.data))
    manifest["precision"] = precision
    facts = metadata_facts(manifest)
    probe = _Probe(source, say)
    with replace_dir(out_dir, EXPORT_DIR) as tmp:
        graphs, targets, info = {}, {}, {}
        reports: dict[str, dict[str, SensitivityReport]] = {}
        # the first ONNX scheme's graphs are the directory's default encoder/decoder
        default = next((s for s in chosen if s != "openvino"), None)
        for scheme in chosen:
            plain = scheme == default
            keys = {g: g if plain else f"{g}.{SCHEME_SUFFIX[scheme]}" for g in probe.graphs}
            info[scheme] = {"target": SCHEME_TARGET[scheme], **SCHEME_FACTS[scheme]}
            info[scheme]["float_scopes"] = list(FLOAT_SCOPES) + list(exclude)
            if scheme == "cpu-dynamic":
                info[scheme]["attention_products"] = schemes.ATTENTION_MODES[attention]
            targets[SCHEME_TARGET[scheme]] = {"scheme": scheme, **keys}
            if scheme == "openvino":
                reports["openvino"] = {}
                graphs.update(
                    _openvino_set(source, keys, tmp, probe, calib, exclude, facts, info, reports)
                )
                continue
            for graph, key in keys.items():
                src = _stage(source.check_graph(graph), tmp / "source")
                keep = schemes.nodes_under(src, (*FLOAT_SCOPES, *exclude))
                write = _writer(scheme, graph, src, probe, calib, attention)
                report = probe.sensitivity(graph, src, keep, _plus(write, keep), sensitivity)
                groups = report.chosen if report else []
                if groups:
                    kept = set(keep)
                    keep += [n for n in schemes.nodes_under(src, groups) if n not in kept]
                say(f"{scheme}: writing {key}.onnx")
                dst = tmp / f"{key}.onnx"
                write(dst, keep)
                stamp_graph(dst, facts, key)
                if report is None:  # no pass: still measure and record the result
                    report = probe.measured(graph, dst)
                entry = source.data["graphs"][graph]
                io = {"inputs": entry["inputs"], "outputs": entry["outputs"]}
                graphs[key] = graph_entry(dst, io)
                graphs[key]["float_nodes"] = len(keep)
                if scheme == "cpu-dynamic":  # its uint8 twin, for x86 CPUs without VNNI
                    twin = f"{key}.{U8_SUFFIX}"
                    schemes.u8_twin(dst, tmp / f"{twin}.onnx")
                    stamp_graph(tmp / f"{twin}.onnx", facts, twin)
                    graphs[twin] = graph_entry(tmp / f"{twin}.onnx", io)
                    graphs[twin]["float_nodes"] = len(keep)
                    u8 = targets.setdefault(U8_TARGET, {"scheme": scheme})
                    u8[graph] = twin
                info[scheme].setdefault("sensitivity", {})[graph] = report.to_dict()
                reports.setdefault(scheme, {})[graph] = report
                info[scheme].setdefault("kept_float_groups", {})[graph] = groups
        manifest["graphs"] = graphs
        manifest["targets"] = targets
        manifest["quantization"] = {
            "precision": precision,
            "schemes": info,
            "source_sha256": {g: source.data["graphs"][g]["sha256"] for g in probe.graphs},
            "calibration": calib.summary
            if calib is not None and set(CALIBRATED) & set(chosen)
            else None,
            "heldout": sorted(probe.heldout),
            "measured_on": measured_on(),
        }
        shutil.rmtree(tmp / "source", ignore_errors=True)  # scratch links, not part of the output
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")  # last
    return Quantized(out_dir, {s: SCHEME_TARGET[s] for s in chosen}, reports)


@contextlib.contextmanager
def _as_run_here(path: Path) -> Iterator[Path]:
    """The graph the ONNX Runtime backend runs on this CPU for the cpu-dynamic ``path``: its
    uint8 twin (in a temporary folder) where int8 products would saturate
    (`xyrt.runtime.hostcpu.int8_dot`), so the sensitivity pass scores what will run; on any CPU
    the twin computes the same integers."""
    from xyrt.runtime import hostcpu

    if hostcpu.int8_dot() != "vpmaddubsw":
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="xyrt-u8-") as tmp:
        twin = Path(tmp) / path.name
        yield twin if schemes.u8_twin(path, twin) else path


def measured_on() -> dict[str, str]:
    """The host the agreement figures of the manifest were measured on (they depend on its CPU
    kernels: `xyrt.runtime.hostcpu`)."""
    import onnxruntime

    from xyrt.runtime import hostcpu

    return {
        "isa": hostcpu.isa(),
        "int8_dot": hostcpu.int8_dot(),
        "onnxruntime": onnxruntime.__version__,
    }


def _check_args(model_dir, out_dir, precision, scheme_names, calib) -> tuple[str, ...]:
    if precision not in PRECISION_SCHEMES:
        raise XyrtError(
            f"precision {precision!r} is not supported (choose {', '.join(PRECISION_SCHEMES)})"
        )
    allowed = PRECISION_SCHEMES[precision]
    chosen = tuple(scheme_names or DEFAULT_SCHEMES[precision])
    wrong = [s for s in chosen if s not in allowed]
    if wrong or len(set(chosen)) != len(chosen):
        raise XyrtError(f"scheme(s) {list(chosen)} for {precision}: choose from {list(allowed)}")
    needs = [s for s in chosen if s in CALIBRATED]
    if needs and calib is None:
        raise XyrtError(
            f"the {'/'.join(needs)} scheme calibrates activation ranges: pass --calib "
            "CALIB.npz (from xyrt calib), or --scheme cpu-dynamic"
        )
    if calib is not None and calib.sample_rate != INPUT_SAMPLE_RATE:
        raise XyrtError(
            f"the calibration set holds {calib.sample_rate} Hz audio, not {INPUT_SAMPLE_RATE} Hz"
        )
    source = read_manifest(model_dir)
    if source.data.get("precision") != "fp32":
        raise XyrtError(
            f"{model_dir} holds a {source.data.get('precision')} model; quantize an fp32 export"
        )
    if Path(out_dir).resolve() == Path(model_dir).resolve():
        raise XyrtError("the quantized model needs its own directory (-o) next to the fp32 one")
    check_output_dir(Path(out_dir), EXPORT_DIR)
    return chosen


def _check_scheme_options(chosen: Sequence[str], precision: str, **given: object) -> None:
    """`XyrtError` for an option (given: not None or empty) that none of ``chosen`` takes."""
    for name, value in given.items():
        if value is None or (isinstance(value, (list, tuple)) and not value):
            continue
        if any(name in SCHEME_OPTIONS[s] for s in chosen):
            continue
        takers = [s for s, names in SCHEME_OPTIONS.items() if name in names]
        label = f"{name}={value!r}" if isinstance(value, (str, list, tuple)) else name
        raise XyrtError(
            f"{label} applies only to the {' and '.join(takers)} scheme"
            f"{'s' if len(takers) > 1 else ''}; this {precision} run writes "
            f"{', '.join(chosen)}, where it would have no effect"
        )


def _check_exclude(source, exclude: Sequence[str]) -> None:
    """Each ``exclude`` prefix must be a non-empty string naming at least one node: '' would
    keep every node float (an "int8" model with nothing quantized), a typo would keep none."""
    if isinstance(exclude, str):
        raise XyrtError(
            f"exclude must be a list of node-name prefixes, got the string {received(exclude)}"
        )
    for prefix in exclude:
        if not isinstance(prefix, str) or not prefix.strip():
            raise XyrtError(
                f"exclude prefix {prefix!r} is empty: it would keep every node float (nothing "
                "quantized); give a node-name prefix such as '/semantic_encoder/layers.0'"
            )
    if not exclude:
        return
    names = [n.name for g in GRAPHS for n in schemes.graph_table(source.check_graph(g)).nodes]
    for prefix in exclude:
        if not any(name.startswith(prefix) for name in names):
            scopes = sorted({"/" + n.split("/")[1] for n in names if n.count("/") >= 2})
            examples = ", ".join(scopes[:6]) + (", ..." if len(scopes) > 6 else "")
            raise XyrtError(
                f"exclude prefix {prefix!r} names no node of the {'/'.join(GRAPHS)} graphs, so "
                f"it would keep nothing float; node names start like: {examples}"
            )


def _stage(path: Path, folder: Path) -> Path:
    """A symlink to the source graph (and its external data) in our scratch folder: ORT's
    quantizers write shape-inference files beside their input, never into the user's export."""
    folder.mkdir(exist_ok=True)
    for item in (path, path.with_name(path.name + ".data")):
        link = folder / item.name
        if item.exists() and not link.exists():
            link.symlink_to(item.resolve())
    return folder / path.name


def _openvino_set(
    source, keys, tmp, probe, calib, exclude, facts, info, reports
) -> dict[str, dict]:
    """The ``openvino`` scheme: NNCF-quantized IRs; their manifest entries, by key (their
    measured reports go into ``info`` and ``reports``)."""
    entries = {}
    for graph, key in keys.items():
        probe.say(f"openvino: quantizing {key} with NNCF")
        dst = tmp / f"{key}.xml"
        feeds = probe.calib_feeds(graph, calib)
        src = source.check_graph(graph)
        openvino_ptq.write_openvino_int8(
            src, dst, (*FLOAT_SCOPES, *exclude), feeds, facts, key, transformer=graph == ENCODER
        )
        value = openvino_ptq.score_ir(graph, dst, probe.reference(graph))
        probe.say(f"{key}: {probe.metric(graph)} {value:.4g}")
        report = SensitivityReport(graph, probe.metric(graph), None, value, final=value)
        info["openvino"].setdefault("sensitivity", {})[graph] = report.to_dict()
        reports["openvino"][graph] = report
        info["openvino"].setdefault("kept_float_groups", {})[graph] = []
        entry = source.data["graphs"][graph]
        io = {"inputs": entry["inputs"], "outputs": entry["outputs"]}
        entries[key] = openvino_ptq.ir_entry(dst, io)
    return entries


def _plus(write, base: list[str]):
    """``write`` with ``base`` always kept float (the sensitivity trials add groups to it)."""
    base = list(base)
    return lambda dst, extra: write(dst, base + extra)


def _writer(
    scheme: str, graph: str, src: Path, probe: _Probe, calib: CalibSet | None, attention: str
):
    if scheme == "cpu-dynamic":
        return lambda dst, keep: schemes.write_cpu_dynamic(src, dst, keep, attention)
    if scheme == "fp16":
        return lambda dst, keep: schemes.write_fp16(src, dst, keep)
    return lambda dst, keep: schemes.write_trt_qdq(src, dst, keep, probe.calib_feeds(graph, calib))


class _Probe:
    """FP32 sessions and held-out feeds: calibration inputs and sensitivity scores."""

    graphs = GRAPHS

    def __init__(self, source, say: Callable[[str], None]) -> None:
        from xyrt.data import heldout_speech

        self.ort = require("onnxruntime", "ort", "xyrt quantize")
        self.source, self.say = source, say
        self.heldout = heldout_speech()
        self._fp32: dict[str, object] = {}
        self._reference: dict[str, list] = {}
        self._calib: dict[str, list[dict]] = {}

    def session(self, path: Path):
        return self.ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def fp32(self, graph: str):
        if graph not in self._fp32:
            self._fp32[graph] = self.session(self.source.check_graph(graph))
        return self._fp32[graph]

    def encoder_feed(self, wav: np.ndarray) -> dict:
        return encoder_feed(*pack_windows([wav]))

    def decoder_feed(self, wav: np.ndarray) -> dict:
        codes, n = self.fp32(ENCODER).run(None, self.encoder_feed(wav))
        return decoder_feed(codes[:, :, : min(int(n[0]), CODES_PER_CHUNK)])

    def calib_feeds(self, graph: str, calib: CalibSet) -> list[dict]:
        """Calibration inputs, computed once: decoder feeds run the FP32 encoder, and every
        sensitivity trial of the Q/DQ scheme recalibrates on them."""
        if graph not in self._calib:
            make = self.encoder_feed if graph == ENCODER else self.decoder_feed
            self._calib[graph] = [make(wav[:N_SAMPLES]) for wav in calib.windows]
        return self._calib[graph]

    def reference(self, graph: str) -> list:
        """FP32 outputs on the held-out speech: codes (encoder) or audio (decoder)."""
        if graph not in self._reference:
            make = self.encoder_feed if graph == ENCODER else self.decoder_feed
            feeds = [make(w) for w in self.heldout.values()]
            outs = [self.fp32(graph).run(None, f)[0] for f in feeds]
            self._reference[graph] = list(zip(feeds, outs, strict=True))
        return self._reference[graph]

    def score(self, graph: str, path: Path) -> float:
        with _as_run_here(path) as run:
            session = self.session(run)
        pairs = self.reference(graph)
        if graph == ENCODER:
            same = total = 0
            for feed, ref in pairs:
                got = session.run(None, feed)[0]
                same += int((got[0] == ref[0]).sum())
                total += ref[0].size
            return float(same / total)
        got = [session.run(None, feed)[0] for feed, _ in pairs]
        ref = np.concatenate([r.ravel() for _, r in pairs])
        return float(snr_db(ref, np.concatenate(got, axis=None)))

    def sensitivity(
        self, graph: str, src: Path, keep: list[str], write, options: SensitivityOptions
    ) -> SensitivityReport | None:
        if not options.enabled:
            return None
        groups = quantizable_groups(src, keep, options.granularity)
        return choose_exclusions(
            graph,
            self.metric(graph),
            groups,
            write,
            lambda path: self.score(graph, path),
            self.target(graph, options),
            options.max_groups,
            self.say,
        )

    def measured(self, graph: str, path: Path) -> SensitivityReport:
        value = self.score(graph, path)
        self.say(f"{graph}: {self.metric(graph)} {value:.4g} (no sensitivity pass)")
        return SensitivityReport(graph, self.metric(graph), None, value, final=value)

    @staticmethod
    def metric(graph: str) -> str:
        return "stage-0 agreement" if graph == ENCODER else "SNR dB"

    @staticmethod
    def target(graph: str, options: SensitivityOptions) -> float:
        return options.target_agreement if graph == ENCODER else options.target_snr_db
