"""`ServeOptions`: what ``xyrt serve`` runs (the model and its backend options) and the limits
of the service (batching, queue delay, body size, open streams), checked before Ray starts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from xyrt.checks import finite, positive_int, threads
from xyrt.errors import XyrtError


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
    device: str | None = None
    precision: str | None = None
    providers: tuple[str, ...] | None = None
    threads: int | None = None  # CPU threads of each replica's backend
    replicas: int = 1
    gpus_per_replica: float | None = None  # default: 1 where the backend uses a GPU, else 0
    max_batch: int | None = None
    max_delay_ms: float = 10.0
    max_body_mb: float = 64.0
    max_streams: int = 64
    drain_seconds: float = 30.0
    identity: dict[str, Any] = field(default_factory=dict)  # filled by `check` (GET /v1/info)

    def __post_init__(self) -> None:
        threads(self.threads, "--threads")
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

    @property
    def uses_gpu(self) -> bool:
        from xyrt.runtime.backends.registry import uses_gpu

        return uses_gpu(self.backend, self.device, self.providers)

    @property
    def gpus(self) -> float:
        """GPUs each replica asks Ray for."""
        if self.gpus_per_replica is not None:
            return self.gpus_per_replica
        return 1.0 if self.uses_gpu else 0.0

    @property
    def cpus(self) -> float:
        """CPUs each replica asks Ray for: its backend's threads (1 by default)."""
        return float(self.threads or 1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check(options: ServeOptions, address: str | None = None) -> ServeOptions:
    """``options`` with the model's identity (sha256, precision, backend) filled in; a model or
    backend option that cannot work fails here, in the ``xyrt serve`` process, not in a replica."""
    from dataclasses import replace

    from xyrt.corpus.pipeline import TokenizeOptions, model_identity  # one home: tokenize's

    model = Path(options.model)
    if not model.exists():
        raise XyrtError(
            f"model not found: {model} (an export or engine directory, or a checkpoint)"
        )
    identity = model_identity(
        model,
        TokenizeOptions(
            backend=options.backend,
            providers=options.providers,
            device=options.device,
            precision=options.precision,
            address=address,  # a local Ray: a GPU the backend needs must be here
        ),
    )
    return replace(options, model=str(model.resolve()), identity=identity)
