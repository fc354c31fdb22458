"""The runtime's metrics: what :meth:`Client.metrics() <topo.runtime.client.Client.metrics>` returns.

Counters since the client opened, as typed values (frozen dataclasses, read at one moment):

- the connection's (:class:`RuntimeMetrics`): messages **published** (sent again after a reconnection
  too), **confirmed**, **nacked** and **returned** by the broker, **unconfirmed** now; deliveries
  **delivered**, **acked**, **rejected** (nack or reject without requeue: the broker dead-letters or
  drops them) and **requeued** (nack or reject with requeue); **reconnections**; **blocked** (the
  broker's reason while it blocks publishers, else None); the open **channels**;
- per queue with a subscription (``subscribe``/``serve``; :class:`QueueMetrics`): messages **handled**
  (the handler returned), **failed** (it raised), and what became of the failed ones: **retried**
  (through a retry queue), **dead_lettered** (rejected to the queue's dead-letter exchange, or
  dead-lettered by the runtime), **requeued** (after a back-off); the handler's **processing** time
  (a histogram, seconds); the **breaker** (:class:`~topo.runtime.breaker.BreakerSnapshot`) when the
  queue has one.

``client.consume()`` streams count in the connection's figures only (the application settles those).
:mod:`topo.runtime.prometheus` exposes the same figures to Prometheus.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field

from topo.runtime.breaker import Breaker, BreakerSnapshot

__all__ = ["BUCKETS", "Histogram", "HistogramSnapshot", "QueueMetrics", "QueueRecorder", "RuntimeMetrics"]

BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the processing-time histogram: prometheus_client's default buckets."""


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    """``buckets``: (upper bound, observations at most that long) pairs, cumulative, the last bound
    ``inf``; ``count`` and ``sum`` (seconds) of every observation."""

    buckets: tuple[tuple[float, int], ...]
    count: int
    sum: float


class Histogram:
    """A processing-time histogram (seconds) with fixed buckets."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...] = BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one: above every bound
        self.count = 0
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1
        self.count += 1
        self.sum += seconds

    def snapshot(self) -> HistogramSnapshot:
        cumulative = 0
        buckets = []
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            cumulative += n
            buckets.append((bound, cumulative))
        return HistogramSnapshot(tuple(buckets), self.count, self.sum)


@dataclass(frozen=True, slots=True)
class QueueMetrics:
    """The figures of one queue's subscriptions (see the module docstring)."""

    queue: str
    handled: int
    failed: int
    retried: int
    dead_lettered: int
    requeued: int
    processing: HistogramSnapshot
    breaker: BreakerSnapshot | None


class QueueRecorder:
    """Where one queue's subscriptions count (the client keeps one per queue)."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.handled = 0
        self.failed = 0
        self.retried = 0
        self.dead_lettered = 0
        self.requeued = 0
        self.processing = Histogram()
        self.breaker: Breaker | None = None  # the latest subscription's, when the queue has one

    def snapshot(self) -> QueueMetrics:
        return QueueMetrics(
            self.queue,
            self.handled,
            self.failed,
            self.retried,
            self.dead_lettered,
            self.requeued,
            self.processing.snapshot(),
            self.breaker.snapshot() if self.breaker is not None else None,
        )


@dataclass(frozen=True, slots=True)
class RuntimeMetrics:
    """The client's figures at one moment (see the module docstring)."""

    published: int
    confirmed: int
    nacked: int
    returned: int
    unconfirmed: int
    delivered: int
    acked: int
    rejected: int
    requeued: int
    reconnections: int
    blocked: str | None
    channels: int
    connected: bool
    queues: Mapping[str, QueueMetrics] = field(default_factory=dict)
