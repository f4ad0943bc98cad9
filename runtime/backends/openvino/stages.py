"""Stage times of the OpenVINO backend for ``xyrt bench``, from OpenVINO's per-node performance
counters (``PERF_COUNT``).

Two facts about those counters decide how they are read (OpenVINO 2024-2026, CPU plugin):

- A node's counter is the *mean* over every inference since the model was compiled, each
  inference truncated to whole microseconds. Read after a few cases of different lengths it
  mixes them (a 30 s case came out at 0.37 of its run, after 1-10 s cases), and it keeps the
  first inference's one-time costs (the tiny model's stages summed to 1.3x its run). So each
  case gets a model of its own, compiled fresh, warmed up once, and its node time is the
  difference of the counters' totals (mean x inferences) before and after its timed runs.
- OpenVINO renames the nodes it fuses or creates (``TopK_11180``, ``MVN_10118``); the module
  scope survives in the runtime model's ``originalLayersNames``. A node whose original layers
  have no scope (one OpenVINO made up) counts in the stage of the node feeding it, else of the
  node it feeds; a fused node spanning two stages counts once, in the stage most of its
  layers come from.

What the nodes do not cover (per-inference shape inference and memory of a dynamic-shape
graph, copying inputs and outputs, the Python call) is left to the bench's "unattributed" row.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from xyrt.errors import require
from xyrt.runtime import graph_io
from xyrt.runtime.backends.base import StageProfiler, StageTimes

if TYPE_CHECKING:  # the backend imports this module when asked for its profiler
    from xyrt.runtime.backends.openvino.backend import OpenVinoBackend

OTHER = "other"


def _own_stage(original: str, graph: str) -> str | None:
    """The stage most of a runtime node's original layers belong to; None when none has one."""
    stages = Counter(graph_io.stage_of(name, graph) for name in original.split(",") if name)
    stages.pop(OTHER, None)
    return stages.most_common(1)[0][0] if stages else None


def runtime_node_stages(runtime_model, graph: str) -> dict[str, str]:
    """Runtime node name -> stage, for a compiled model's ``get_runtime_model()``: by the
    scopes of its original layers, else inherited from the nodes feeding it (topological
    order), else from the nodes it feeds, else "other"."""
    ops = list(runtime_model.get_ordered_ops())
    stage: dict[str, str | None] = {}
    for op in ops:
        info = op.get_rt_info()
        original = info["originalLayersNames"].astype(str) if "originalLayersNames" in info else ""
        own = _own_stage(original, graph) or _own_stage(op.get_friendly_name(), graph)
        if own is None:  # made up by OpenVINO: the stage of what feeds it
            feeders = (
                stage.get(i.get_source_output().get_node().get_friendly_name()) for i in op.inputs()
            )
            own = next((s for s in feeders if s), None)
        stage[op.get_friendly_name()] = own
    for op in reversed(ops):  # still none (fed by the graph's inputs only): what it feeds
        name = op.get_friendly_name()
        if stage[name] is None:
            users = (
                stage.get(t.get_node().get_friendly_name())
                for out in op.outputs()
                for t in out.get_target_inputs()
            )
            stage[name] = next((s for s in users if s), None)
    return {name: s or OTHER for name, s in stage.items()}


def _counter_means_us(request) -> dict[str, int]:
    """Node name -> its counter: mean microseconds per inference since compilation."""
    return {
        n.node_name: round(n.real_time.total_seconds() * 1e6) for n in request.get_profiling_info()
    }


class OpenVinoStageProfiler(StageProfiler):
    """`StageProfiler` of an `OpenVinoBackend`: per case a freshly compiled ``PERF_COUNT``
    model, one warm-up inference, then the counters' growth over the timed runs, by stage."""

    method = (
        "OpenVINO performance counters, fresh per case, warm-up excluded; node time by module "
        "scope of the node's original layers (a fused node counts once)"
    )
    backend: OpenVinoBackend

    def profile(
        self, graph: str, jobs: Sequence[tuple[dict[str, np.ndarray], int]]
    ) -> list[list[StageTimes]]:
        """For each (feed, runs): per run, stage -> node ms (the mean over the job's runs:
        the counters give no single run) and that run's ms."""
        ov = require("openvino", "openvino", "OpenVINO stage profiling")
        from xyrt.runtime.backends.openvino.backend import ov_feed

        compiled = self.backend.encoder if graph == graph_io.ENCODER else self.backend.decoder
        core = ov.Core()
        model = core.read_model(str(self.backend.manifest.graph_path(compiled.graph)))
        out = []
        # a private cache beside the backend's own (on its disk, not a RAM-backed /tmp: a
        # full-size blob is GBs), removed after: the first case compiles, the later ones
        # import (a fresh graph, fresh counters, without a second compilation); a backend
        # without a cache compiles each case
        where = self.backend.cache_dir
        private = (
            tempfile.TemporaryDirectory(prefix="profile-", dir=where)
            if where is not None
            else contextlib.nullcontext(None)
        )
        with private as cache:
            config = {k: v for k, v in compiled.config.items() if k != "CACHE_DIR"}
            config["PERF_COUNT"] = True
            if cache is not None:
                config["CACHE_DIR"] = cache
            for feed, runs in jobs:
                fresh = core.compile_model(model, "CPU", config)
                stage_of = runtime_node_stages(fresh.get_runtime_model(), graph)
                request = fresh.create_infer_request()
                feed = ov_feed(feed)
                request.infer(feed)  # warm-up: its one-time costs stay out of the counters' growth
                before = _counter_means_us(request)
                totals = []
                for _ in range(runs):
                    t0 = time.perf_counter()
                    request.infer(feed)
                    totals.append((time.perf_counter() - t0) * 1e3)
                after = _counter_means_us(request)
                stages: dict[str, float] = defaultdict(float)
                for name, mean_us in after.items():
                    grown_us = mean_us * (runs + 1) - before.get(name, 0)
                    if grown_us > 0:
                        stage = stage_of.get(name) or graph_io.stage_of(name, graph)
                        stages[stage] += grown_us / 1e3 / runs
                out.append([StageTimes(dict(stages), total) for total in totals])
                del request, fresh
        return out
