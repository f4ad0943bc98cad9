"""`ServeOptions`: what ``xyrt serve`` runs (the model and its backend options) and the limits
of the service (batching, queue delay, body size, open streams), checked before Ray starts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xyrt.checks import finite, positive_int, threads
from xyrt.errors import XyrtError
from xyrt.runtime.backends.registry import Options

if TYPE_CHECKING:
    from xyrt.corpus.pipeline import TokenizeOptions


@dataclass(frozen=True)
class ServeOptions:
    """The model (``model`` and the `xyrt.runtime.load` options) and the service's limits.

    ``max_batch``: requests (windows) per model run (None: the backend's preferred batch, within
    its ``max_batch``); ``max_delay_ms``: longest a request waits for others to fill a batch;
    ``max_body_mb``: largest request body; ``max_streams``: open WebSocket streams per replica;
    ``drain_seconds``: how long SIGTERM/Ctrl-C waits for requests in flight (and open streams).
    """

    model: str
    backend: str = "auto"
    load: Options = field(default_factory=Options)  # the backend options (threads: per replica)
    replicas: int = 1
    gpus_per_replica: float | None = None  # default: 1 where the backend uses a GPU, else 0
    max_batch: int | None = None
    max_delay_ms: float = 10.0
    max_body_mb: float = 64.0
    max_streams: int = 64
    drain_seconds: float = 30.0
    identity: dict[str, Any] = field(default_factory=dict)  # filled by `check` (GET /v1/info)
    gpu: bool | None = None  # filled by `check`: whether the resolved backend runs on a GPU

    def __post_init__(self) -> None:
        if isinstance(self.load, dict):  # `to_dict` sent to a replica: the Options again
            object.__setattr__(self, "load", Options.of(**self.load))
        threads(self.load.threads, "--threads")
        positive_int(self.replicas, "--replicas")
        positive_int(self.max_streams, "--max-streams")
        if self.max_batch is not None:
            positive_int(self.max_batch, "--batch-size")
        finite(self.max_delay_ms, "--max-delay-ms", low=0)
        finite(self.max_body_mb, "--max-body-mb", low=0, strict_low=True)
        finite(self.drain_seconds, "--drain-seconds", low=0)
        if self.gpus_per_replica is not None:
            finite(self.gpus_per_replica, "--gpus-per-replica", low=0)

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 2**20)

    def tokenize_options(self, address: str | None = None) -> TokenizeOptions:
        """The model's options as tokenize's (one home for resolving and the identity);
        ``address``: the Ray cluster (None: a local Ray, so a GPU the backend needs must be
        here)."""
        from xyrt.corpus.pipeline import TokenizeOptions

        return TokenizeOptions(backend=self.backend, options=self.load, address=address)

    @property
    def uses_gpu(self) -> bool:
        """Whether the resolved backend runs on a GPU (`registry.resolve`: ``--backend auto``
        on an engine directory is TensorRT, on the GPU)."""
        if self.gpu is not None:  # resolved by `check`
            return self.gpu
        from xyrt.runtime.backends.registry import resolve

        return resolve(self.model, self.backend, here=False, options=self.load).gpu

    @property
    def gpus(self) -> float:
        """GPUs each replica asks Ray for."""
        if self.gpus_per_replica is not None:
            return self.gpus_per_replica
        return 1.0 if self.uses_gpu else 0.0

    @property
    def cpus(self) -> float:
        """CPUs each replica asks Ray for: its backend's threads (1 by default)."""
        return float(self.load.threads or 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check(options: ServeOptions, address: str | None = None) -> ServeOptions:
    """``options`` with the model's identity (sha256, precision, backend) filled in; a model or
    backend option that cannot work fails here, in the ``xyrt serve`` process, not in a replica."""
    from dataclasses import replace

    model = Path(options.model)
    if not model.exists():
        raise XyrtError(
            f"model not found: {model} (an export or engine directory, or a checkpoint)"
        )
    resolved = options.tokenize_options(address).resolve(model)
    return replace(
        options, model=str(model.resolve()), identity=resolved.identity(), gpu=resolved.gpu
    )
