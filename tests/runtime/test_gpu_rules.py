"""The PyTorch backend's GPU rules, checked without a GPU: the few torch.cuda calls involved are
faked (`xyrt.runtime.backends.pytorch.device`, `torch_graphs`, `torch_staging`). Each test fails
without its rule: "cuda" as the current device, bf16 by compute capability, precision auto, the
float32 mode shared across threads, JetPack's legacy TF32 flags, capture under the backend's own
device and stream, an empty captured graph never replayed, bounded caches."""

from __future__ import annotations

import contextlib
import threading
import warnings
from types import SimpleNamespace

import pytest

from xyrt.errors import XyrtError

torch = pytest.importorskip("torch", reason="the PyTorch backend's rules need torch")

from xyrt.runtime.backends.pytorch import device as torch_device  # noqa: E402
from xyrt.runtime.backends.pytorch import graphs as torch_graphs  # noqa: E402
from xyrt.runtime.backends.pytorch import staging as torch_staging  # noqa: E402


@pytest.fixture
def gpus(monkeypatch):
    """Two fake GPUs: device 1 current, capabilities per index (default Hopper)."""
    state = SimpleNamespace(current=1, capability={0: (9, 0), 1: (9, 0)})
    cuda = torch.cuda
    monkeypatch.setattr(cuda, "is_available", lambda: True)
    monkeypatch.setattr(cuda, "device_count", lambda: 2)
    monkeypatch.setattr(cuda, "current_device", lambda: state.current)
    monkeypatch.setattr(cuda, "is_bf16_supported", lambda *a, **k: True)  # counts emulation
    monkeypatch.setattr(
        cuda, "get_device_capability", lambda d=None: state.capability[torch.device(d).index]
    )
    monkeypatch.setattr(cuda, "get_device_name", lambda d=None: f"Fake GPU {torch.device(d)}")
    return state


def test_cuda_means_the_current_device(gpus) -> None:
    assert torch_device.parse_device("cuda") == torch.device("cuda", 1)
    gpus.current = 0
    assert torch_device.parse_device("cuda") == torch.device("cuda", 0)
    assert torch_device.parse_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(XyrtError, match="has 2 CUDA device"):
        torch_device.parse_device("cuda:2")


@pytest.mark.parametrize(
    ("capability", "auto"), [((7, 0), "fp16"), ((7, 5), "fp16"), ((8, 0), "bf16"), ((8, 7), "bf16")]
)
def test_bf16_only_where_the_gpu_computes_it(gpus, capability, auto) -> None:
    gpus.capability[1] = capability
    dev = torch_device.parse_device("cuda")
    assert torch_device.resolve_precision("auto", dev) == auto
    assert torch_device.resolve_precision(None, dev) == auto  # auto is the default on CUDA
    assert torch_device.resolve_precision("fp32", dev) == "fp32"
    if auto == "fp16":  # a T4/V100: is_bf16_supported() says yes (emulated); xyrt refuses
        with pytest.raises(XyrtError, match=r"compute capability 8\.0 .* is 7\.\d.*use fp16"):
            torch_device.resolve_precision("bf16", dev)
    else:
        assert torch_device.resolve_precision("bf16", dev) == "bf16"


def test_auto_is_fp32_on_a_cpu() -> None:
    cpu = torch.device("cpu")
    assert torch_device.resolve_precision("auto", cpu) == "fp32"
    assert torch_device.resolve_precision(None, cpu) == "fp32"
    with pytest.raises(XyrtError, match="fp16' needs a CUDA device"):
        torch_device.resolve_precision("fp16", cpu)


def test_a_bf16_backend_moved_to_an_older_gpu_is_refused(gpus) -> None:
    from helpers import FIXTURES
    from xyrt.runtime.backends.pytorch.backend import TorchBackend
    from xyrt.runtime.network.checkpoint import load_model

    backend = TorchBackend(load_model(FIXTURES / "tiny_16k" / "model.ckpt"), "cpu", "bf16")
    gpus.capability[0] = (7, 5)
    with pytest.raises(XyrtError, match="bf16' needs a GPU of compute capability 8.0"):
        backend.to("cuda:0")


@pytest.fixture(params=["new", "legacy"])
def flags(request, monkeypatch):
    """PyTorch's TF32 flags, as 2.9+ (fp32_precision) or JetPack's older PyTorch has them."""
    if request.param == "new":
        matmul = SimpleNamespace(fp32_precision="tf32")
        cudnn = SimpleNamespace(conv=SimpleNamespace(fp32_precision="tf32"))

        def read():
            return matmul.fp32_precision, cudnn.conv.fp32_precision

        ieee, caller = ("ieee", "ieee"), ("tf32", "tf32")
    else:  # no fp32_precision attribute: the legacy allow_tf32 branch must run
        matmul, cudnn = SimpleNamespace(allow_tf32=True), SimpleNamespace(allow_tf32=True)

        def read():
            return matmul.allow_tf32, cudnn.allow_tf32

        ieee, caller = (False, False), (True, True)
    monkeypatch.setattr(torch.backends.cuda, "matmul", matmul)
    monkeypatch.setattr(torch.backends, "cudnn", cudnn)
    return SimpleNamespace(read=read, ieee=ieee, caller=caller)


def test_fp32_mode_sets_and_restores_the_flags(flags) -> None:
    cuda = torch.device("cuda", 0)
    with torch_device.ieee_fp32(cuda):
        assert flags.read() == flags.ieee
    assert flags.read() == flags.caller
    with torch_device.fp32_mode(torch.device("cpu")):
        assert flags.read() == flags.caller  # nothing to set on a CPU


def test_fp32_mode_is_safe_across_threads(flags) -> None:
    cuda = torch.device("cuda", 0)
    entered, release, seen = threading.Event(), threading.Event(), []

    def model_thread() -> None:  # xyrt serve's model thread, say
        with torch_device.ieee_fp32(cuda):
            entered.set()
            release.wait(10)
            seen.append(flags.read())

    worker = threading.Thread(target=model_thread)
    worker.start()
    assert entered.wait(10)
    with torch_device.ieee_fp32(cuda):  # a caller's thread, overlapping
        pass
    # the caller's block ended first: the model thread must still run with TF32 off
    release.set()
    worker.join(10)
    assert seen == [flags.ieee]
    assert flags.read() == flags.caller  # restored once the last block ended


def test_the_other_mode_waits_and_a_nested_one_is_refused(flags) -> None:
    cuda = torch.device("cuda", 0)
    order = []

    def tf32_user() -> None:  # a benchmark asking for TF32 meanwhile
        with torch_device.fp32_mode(cuda, "tf32"):
            order.append(("tf32", flags.read()))

    with torch_device.ieee_fp32(cuda):
        other = threading.Thread(target=tf32_user)
        other.start()
        other.join(0.3)
        assert other.is_alive() and not order  # waits for the ieee block to end
        order.append("ieee done")
        with pytest.raises(XyrtError, match="same thread"), torch_device.fp32_mode(cuda, "tf32"):
            pass
    other.join(10)
    tf32 = ("tf32", "tf32") if flags.ieee == ("ieee", "ieee") else (True, True)
    assert order == ["ieee done", ("tf32", tf32)]
    assert flags.read() == flags.caller


class FakeStream:
    def __init__(self, device=None) -> None:
        self.device, self.waits = device, []

    def wait_stream(self, other) -> None:
        self.waits.append(other)

    def synchronize(self) -> None:
        pass


@pytest.fixture
def fake_graphs(monkeypatch):
    """torch.cuda's stream/device/graph calls, recording where each capture happened."""
    state = SimpleNamespace(device=0, stream=None, captured_on=[], empty=False)
    caller = FakeStream("caller")

    @contextlib.contextmanager
    def device(dev):
        before, state.device = state.device, torch.device(dev).index
        yield
        state.device = before

    @contextlib.contextmanager
    def stream(s):
        before, state.stream = state.stream, s
        yield
        state.stream = before

    class Graph:
        def capture_begin(self, pool=None) -> None:
            state.captured_on.append((state.device, state.stream))

        def capture_end(self) -> None:
            if state.empty:  # what PyTorch does when the kernels went to another stream
                warnings.warn(
                    "The CUDA Graph is empty. This usually means that the graph was attempted "
                    "to be captured on wrong device or stream.",
                    UserWarning,
                    stacklevel=2,
                )

        def replay(self) -> None:  # a replay recomputes nothing here: outputs stay as captured
            pass

    cuda = torch.cuda
    monkeypatch.setattr(cuda, "device", device)
    monkeypatch.setattr(cuda, "stream", stream)
    monkeypatch.setattr(cuda, "Stream", FakeStream)
    monkeypatch.setattr(cuda, "current_stream", lambda d=None: caller)
    monkeypatch.setattr(cuda, "graph_pool_handle", lambda: object())
    monkeypatch.setattr(cuda, "CUDAGraph", Graph)
    monkeypatch.setattr(cuda, "synchronize", lambda d=None: None)
    return state


def _double(x):
    return (x * 2,)


def test_capture_runs_on_the_backends_device_and_own_stream(fake_graphs) -> None:
    runner = torch_graphs.GraphRunner(_double, "cuda:1", warmup=1)
    x = torch.ones(3)
    runner(x)  # eager warm-up
    runner(x)  # capture
    assert runner.stats.captures == 1
    assert fake_graphs.captured_on == [(1, runner.stream)]  # device 1, the runner's stream
    assert runner.stream is not None and runner.stream.device == torch.device("cuda", 1)
    runner(torch.full((3,), 5.0))  # replay (the capturing call replayed too)
    assert runner.stats.replays == 2
    static = next(iter(runner.graphs.values())).inputs[0]
    assert torch.equal(static, torch.full((3,), 5.0)), "the static input was refreshed"


def test_an_empty_captured_graph_runs_eagerly(fake_graphs) -> None:
    fake_graphs.empty = True
    runner = torch_graphs.GraphRunner(_double, "cuda:1", warmup=1)
    for value in (1.0, 2.0, 3.0, 4.0):
        out = runner(torch.full((3,), value))[0]
        assert torch.equal(out, torch.full((3,), 2 * value)), "stale outputs replayed"
    assert runner.stats.captures == 0 and runner.stats.replays == 0
    assert "empty" in next(iter(runner.stats.failures.values()))


def test_remembered_shapes_and_graphs_are_bounded(fake_graphs) -> None:
    runner = torch_graphs.GraphRunner(_double, "cuda:0", warmup=1, max_graphs=2)
    for n in range(1, 40):
        x = torch.ones(n)
        runner(x)
        runner(x)
    assert len(runner.graphs) <= 2 and len(runner.seen) <= 8


def test_pinned_staging_is_bounded(monkeypatch) -> None:
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self: _Pinned(self))
    staging = torch_staging.HostStaging(torch.device("cpu"), max_pinned_bytes=4096)
    for n in range(1, 300, 7):  # a server seeing ever new batch sizes
        buf = staging._buffer("in", 0, torch.zeros(n))
        assert buf.numel() == n
    assert len(staging.buffers) == 1  # one buffer per (tag, slot, dtype), grown
    staging._buffer("out0", 0, torch.zeros(2000))  # would pass the cap: pageable instead
    assert staging.pinned_bytes <= 4096


class _Pinned(torch.Tensor):
    """A CPU tensor that says it is pinned (CPU-only torch cannot pin)."""

    @staticmethod
    def __new__(cls, t):
        return torch.Tensor._make_subclass(cls, t)

    def is_pinned(self, *a, **k) -> bool:
        return True
