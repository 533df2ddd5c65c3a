"""Prometheus metrics of one :class:`~edgesched.serve.server.InferenceServer` (ARCHITECTURE §5).

:class:`ServerMetrics` owns its own ``prometheus_client.CollectorRegistry`` (never the global
one), so several servers in one process — tests, benchmarks — keep separate counters. The server
exposes :meth:`ServerMetrics.render` at ``GET /metrics``. Needs ``pip install "edgesched[serve]"``.

========================================  ==================  ===================================
metric                                    labels              meaning
========================================  ==================  ===================================
``edgesched_requests_total``              model, node, code   answered infer requests
``edgesched_request_latency_seconds``     model, node         end to end in the server
``edgesched_execution_seconds``           model, node         executor time in the worker
``edgesched_in_flight``                   node                requests sent to a node, unanswered
``edgesched_batch_size``                  model               samples per answered request
``edgesched_formed_batch_size``           model               samples per batch run on a node
``edgesched_offloads_total``              model               samples offloaded to the cloud
``edgesched_queue_depth``                 model               requests waiting for a batch to form
``edgesched_errors_total``                model, reason       error answers, by short reason
``edgesched_worker_restarts_total``       node                worker child restarts
``edgesched_node_power_watts``            node, source        power, only where a meter is given
                                                              (node ``host``: the serving machine)
========================================  ==================  ===================================

Label values: ``model`` is a served model name, or ``""`` when the request named an unknown one
(so a client cannot grow the label set); ``node`` is a node id, or ``""`` when the request was
refused before being routed; ``code`` is the HTTP status as a string.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from edgesched.errors import DependencyNotInstalled

#: Latency buckets in seconds, 0.1 ms to 10 s in 1-2.5-5 steps (our choice; the span of edge
#: inference, from a tiny classifier on a GPU to a large model on a microcontroller-class CPU).
LATENCY_BUCKETS_S = (
    0.0001, 0.00025, 0.0005,
    0.001, 0.0025, 0.005,
    0.01, 0.025, 0.05,
    0.1, 0.25, 0.5,
    1.0, 2.5, 5.0,
    10.0,
)  # fmt: skip
#: Batch size buckets: powers of two up to 256 (our choice).
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

#: Short error reason per HTTP status (others become ``http_<code>``).
REASONS = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    500: "internal",
    503: "unavailable",
}


def reason_of(code: int) -> str:
    """The short ``reason`` label of an error answer with HTTP status ``code``."""
    return REASONS.get(code) or f"http_{code}"


class ServerMetrics:
    """The metrics of one server, in a registry of its own.

    The server's event loop calls the update methods (one thread; prometheus_client's own locks
    make a scrape from another thread safe too). Labelled children are cached per label tuple, so
    a request costs dict lookups and the metric updates themselves.
    """

    def __init__(self, models: Iterable[str] = (), nodes: Iterable[str] = ()) -> None:
        """Create the registry and the metrics.

        Args:
            models: served model names; their offload counters start at 0.
            nodes: node ids; their in-flight gauges and restart counters start at 0.

        Raises:
            DependencyNotInstalled: prometheus-client is missing.
        """
        try:
            from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
        except ImportError:
            raise DependencyNotInstalled("prometheus-client", "serve") from None
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._requests = Counter(
            "edgesched_requests", "Answered infer requests.", ["model", "node", "code"], registry=r
        )
        self._latency = Histogram(
            "edgesched_request_latency_seconds",
            "Infer latency in the server, from arrival to answer, in seconds.",
            ["model", "node"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self._exec = Histogram(
            "edgesched_execution_seconds",
            "Executor time of a batch, measured in the worker, in seconds.",
            ["model", "node"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self._in_flight = Gauge(
            "edgesched_in_flight", "Requests sent to a node and not yet answered.", ["node"],
            registry=r,
        )  # fmt: skip
        self._batch = Histogram(
            "edgesched_batch_size",
            "Samples per answered infer request.",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self._formed = Histogram(
            "edgesched_formed_batch_size",
            "Samples per batch run on a node (after dynamic batching).",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self._queue = Gauge(
            "edgesched_queue_depth", "Requests waiting for their batch to form.", ["model"],
            registry=r,
        )  # fmt: skip
        self._offloads = Counter(
            "edgesched_offloads", "Samples offloaded to the cloud.", ["model"], registry=r
        )
        self._errors = Counter(
            "edgesched_errors", "Infer error answers, by reason.", ["model", "reason"], registry=r
        )
        self._restarts = Counter(
            "edgesched_worker_restarts", "Worker child restarts.", ["node"], registry=r
        )
        self._power = Gauge(
            "edgesched_node_power_watts",
            "Node power in watts, by meter (nvml, rapl, ina3221, estimate).",
            ["node", "source"],
            registry=r,
        )
        # caches of labelled children (prometheus_client's .labels() takes a lock and validates)
        self._count_c: dict[tuple[str, str, str], Any] = {}
        self._time_c: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._batch_c: dict[str, Any] = {}
        self._formed_c: dict[str, Any] = {}
        self._node_c: dict[str, Any] = {}
        self._error_c: dict[tuple[str, str], Any] = {}
        self._restarts_seen: dict[str, int] = {}
        for m in models:
            self._offloads.labels(m)
            self._queue.labels(m)
        for n in nodes:
            self.set_in_flight(n, 0)
            self._restarts.labels(n)

    def observe_request(
        self,
        model: str,
        node: str,
        code: int,
        latency_s: float,
        exec_s: float | None = None,
        batch: int | None = None,
    ) -> None:
        """Count one answered infer request.

        Args:
            model: model label (``""`` for an unknown model).
            node: node label (``""`` when not routed).
            code: HTTP status of the answer.
            latency_s: arrival to answer in the server, in seconds.
            exec_s: executor time in the worker, in seconds (None: did not run).
            batch: samples in the request (None: not known, e.g. an undecodable body).
        """
        key = (model, node, str(code))
        counter = self._count_c.get(key)
        if counter is None:
            counter = self._count_c[key] = self._requests.labels(*key)
        counter.inc()
        times = self._time_c.get((model, node))
        if times is None:
            times = self._time_c[model, node] = (
                self._latency.labels(model, node),
                self._exec.labels(model, node),
            )
        times[0].observe(latency_s)
        if exec_s is not None:
            times[1].observe(exec_s)
        if batch is not None:
            hist = self._batch_c.get(model)
            if hist is None:
                hist = self._batch_c[model] = self._batch.labels(model)
            hist.observe(batch)

    def error(self, model: str, reason: str) -> None:
        """Count one error answer of ``model`` (label rules as above) with a short ``reason``."""
        child = self._error_c.get((model, reason))
        if child is None:
            child = self._error_c[model, reason] = self._errors.labels(model, reason)
        child.inc()

    def set_in_flight(self, node: str, n: int) -> None:
        """Set the number of requests in flight on ``node``."""
        gauge = self._node_c.get(node)
        if gauge is None:
            gauge = self._node_c[node] = self._in_flight.labels(node)
        gauge.set(n)

    def restart(self, node: str, n: int = 1) -> None:
        """Count ``n`` restarts of the worker of ``node``."""
        self._restarts.labels(node).inc(n)
        self._restarts_seen[node] = self._restarts_seen.get(node, 0) + n

    def sync_restarts(self, node: str, total: int) -> None:
        """Catch the counter of ``node`` up with the worker's own ``total`` restart count."""
        seen = self._restarts_seen.get(node, 0)
        if total > seen:
            self.restart(node, total - seen)

    def offload(self, model: str, samples: int = 1) -> None:
        """Count ``samples`` samples of ``model`` offloaded to the cloud."""
        self._offloads.labels(model).inc(samples)

    def observe_formed_batch(self, model: str, samples: int) -> None:
        """Count one batch of ``samples`` samples of ``model`` run on a node."""
        hist = self._formed_c.get(model)
        if hist is None:
            hist = self._formed_c[model] = self._formed.labels(model)
        hist.observe(samples)

    def set_queue_depth(self, model: str, n: int) -> None:
        """Set the number of requests of ``model`` waiting for their batch to form."""
        self._queue.labels(model).set(n)

    def set_power(self, node: str, watts: float, source: str) -> None:
        """Set the power of ``node`` in watts as read by meter ``source`` (e.g. ``nvml``)."""
        self._power.labels(node, source).set(watts)

    def render(self) -> tuple[bytes, str]:
        """The Prometheus text exposition of every metric, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
