"""The runtime's metrics for Prometheus: the optional extra ``pip install 'topo[prometheus]'``.

``prometheus_client`` is imported when one of these functions is called, never by ``import topo`` or
``topo.runtime``: without the extra, the runtime works the same and only these functions raise
:class:`~topo.errors.UsageError` (saying which package to install).

- :func:`register` adds a client's collector to a registry (prometheus_client's default one unless
  told), so that ``prometheus_client.start_http_server(port)`` (or any exposition of that registry)
  serves its figures, read from :meth:`Client.metrics` at every scrape;
- :func:`exposition` renders one client's figures in the text format (0.0.4), e.g. for a textfile
  collector.

Every metric has the labels ``connection`` (the client's ``name``) and ``vhost``; the per-queue ones
``queue`` too. Names (what each counts: :mod:`topo.runtime.metrics`):

=======================================================  =========  ===========================================
``topo_runtime_messages_published_total``                counter    sent (again after a reconnection too)
``topo_runtime_messages_confirmed_total``                counter    confirmed by the broker
``topo_runtime_messages_nacked_total``                   counter    refused by the broker (Basic.Nack)
``topo_runtime_messages_returned_total``                 counter    returned unroutable (Basic.Return)
``topo_runtime_messages_unconfirmed``                    gauge      sent, not confirmed yet
``topo_runtime_messages_delivered_total``                counter    delivered to consumers
``topo_runtime_messages_acked_total``                    counter    acknowledged
``topo_runtime_messages_rejected_total``                 counter    nacked or rejected without requeue
``topo_runtime_messages_requeued_total``                 counter    nacked or rejected with requeue
``topo_runtime_reconnections_total``                     counter    sessions opened after the first
``topo_runtime_connected``                               gauge      1 while the connection is up
``topo_runtime_blocked``                                 gauge      1 while the broker blocks publishers
``topo_runtime_handler_calls_total{result}``             counter    ``success`` or ``failure`` of the handler
``topo_runtime_failed_messages_total{fate}``             counter    ``retried``, ``dead_lettered``, ``requeued``
``topo_runtime_handler_duration_seconds``                histogram  the handler's processing time
``topo_runtime_circuit_breaker_state``                   gauge      0 closed, 1 half-open, 2 open
``topo_runtime_circuit_breaker_trips_total``             counter    times the breaker opened
``topo_runtime_circuit_breaker_consecutive_failures``    gauge      the handler's failures in a row now
=======================================================  =========  ===========================================
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from topo.errors import UsageError

if TYPE_CHECKING:
    from topo.runtime.client import Client

__all__ = ["BREAKER_STATES", "RuntimeCollector", "exposition", "register"]

BREAKER_STATES = {"closed": 0, "half-open": 1, "open": 2}


def _prometheus() -> Any:
    try:
        import prometheus_client
        import prometheus_client.core
    except ImportError:
        raise UsageError(
            "the runtime's Prometheus metrics need the prometheus-client package",
            hint="install topo's extra: pip install 'topo[prometheus]'",
        ) from None
    return prometheus_client


class RuntimeCollector:
    """A prometheus_client collector of one client's figures (see the module docstring)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.prometheus = _prometheus()

    def describe(self) -> list[Any]:
        return []  # the families are known only by collecting; an empty list lets the registry call collect

    def collect(self) -> Iterator[Any]:
        core = self.prometheus.core
        client = self.client
        metrics = client.metrics()
        base = [client.connection.params.client_name, client.vhost.name]
        names = ["connection", "vhost"]

        def counter(name: str, doc: str, value: float) -> Any:
            family = core.CounterMetricFamily(f"topo_runtime_{name}", doc, labels=names)
            family.add_metric(base, value)
            return family

        def gauge(name: str, doc: str, value: float) -> Any:
            family = core.GaugeMetricFamily(f"topo_runtime_{name}", doc, labels=names)
            family.add_metric(base, value)
            return family

        yield counter("messages_published", "Messages sent (again after a reconnection too).", metrics.published)
        yield counter("messages_confirmed", "Messages the broker confirmed.", metrics.confirmed)
        yield counter("messages_nacked", "Messages the broker refused (Basic.Nack).", metrics.nacked)
        yield counter("messages_returned", "Messages the broker returned unroutable.", metrics.returned)
        yield gauge("messages_unconfirmed", "Messages sent and not confirmed yet.", metrics.unconfirmed)
        yield counter("messages_delivered", "Messages delivered to consumers.", metrics.delivered)
        yield counter("messages_acked", "Deliveries acknowledged.", metrics.acked)
        yield counter("messages_rejected", "Deliveries nacked or rejected without requeue.", metrics.rejected)
        yield counter("messages_requeued", "Deliveries nacked or rejected with requeue.", metrics.requeued)
        yield counter("reconnections", "Sessions opened after the first one.", metrics.reconnections)
        yield gauge("connected", "1 while the connection is up.", 1 if metrics.connected else 0)
        yield gauge("blocked", "1 while the broker blocks publishers.", 1 if metrics.blocked is not None else 0)

        per_queue = [*names, "queue"]
        calls = core.CounterMetricFamily(
            "topo_runtime_handler_calls", "Calls of a subscription's handler.", labels=[*per_queue, "result"]
        )
        fates = core.CounterMetricFamily(
            "topo_runtime_failed_messages",
            "What became of messages whose handler failed.",
            labels=[*per_queue, "fate"],
        )
        duration = core.HistogramMetricFamily(
            "topo_runtime_handler_duration_seconds", "The handler's processing time.", labels=per_queue
        )
        state = core.GaugeMetricFamily(
            "topo_runtime_circuit_breaker_state",
            "The circuit breaker: 0 closed, 1 half-open, 2 open.",
            labels=per_queue,
        )
        trips = core.CounterMetricFamily(
            "topo_runtime_circuit_breaker_trips", "Times the circuit breaker opened.", labels=per_queue
        )
        streak = core.GaugeMetricFamily(
            "topo_runtime_circuit_breaker_consecutive_failures",
            "The handler's failures in a row now.",
            labels=per_queue,
        )
        for queue, figures in metrics.queues.items():
            labels = [*base, queue]
            calls.add_metric([*labels, "success"], figures.handled)
            calls.add_metric([*labels, "failure"], figures.failed)
            fates.add_metric([*labels, "retried"], figures.retried)
            fates.add_metric([*labels, "dead_lettered"], figures.dead_lettered)
            fates.add_metric([*labels, "requeued"], figures.requeued)
            buckets = [("+Inf" if math.isinf(le) else repr(le), n) for le, n in figures.processing.buckets]
            duration.add_metric(labels, buckets, figures.processing.sum)
            if figures.breaker is not None:
                state.add_metric(labels, BREAKER_STATES[figures.breaker.state])
                trips.add_metric(labels, figures.breaker.trips)
                streak.add_metric(labels, figures.breaker.consecutive_failures)
        yield from (calls, fates, duration, state, trips, streak)


def register(client: Client, registry: Any = None) -> RuntimeCollector:
    """Add ``client``'s collector to ``registry`` (prometheus_client's default ``REGISTRY`` unless given)
    and return it (``registry.unregister(collector)`` removes it)."""
    prometheus = _prometheus()
    collector = RuntimeCollector(client)
    (registry if registry is not None else prometheus.REGISTRY).register(collector)
    return collector


def exposition(client: Client) -> str:
    """``client``'s figures alone, in Prometheus's text exposition format (0.0.4)."""
    prometheus = _prometheus()
    registry = prometheus.CollectorRegistry(auto_describe=False)
    registry.register(RuntimeCollector(client))
    text: bytes = prometheus.generate_latest(registry)
    return text.decode()
