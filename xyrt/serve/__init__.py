"""``xyrt serve``: one codec shared by many clients on Ray Serve.

HTTP (``/v1/encode``, ``/v1/decode``, ``/v1/health``, ``/v1/info``) with requests batched
across clients, and WebSocket streams (``/v1/stream/encode``, ``/v1/stream/decode``) stepped
together on each replica. The parts: `options` (what to serve, the limits), `requests`
(parsing, validation, error statuses), `batching` (dynamic batching), `streams` (sessions and
their stepping), `app` (the deployment), `server` (Ray, Serve, signals, draining). The client is
`xyrt.client`. Only `options` is imported here; the rest needs ``ray[serve]`` (``xyrt[serve]``).
"""

from __future__ import annotations

from xyrt.serve.options import ServeOptions

__all__ = ["ServeOptions"]
