"""Figures against expectations: each check's state, figure and levels (pure).

States follow the monitoring-plugins (Nagios) convention, which ``topo status`` also uses as its exit
code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. A queue's state, and the report's, is the worst of its
checks, in the order CRITICAL > WARNING > UNKNOWN > OK (monitoring-plugins' ``max_state_alt``): a
known problem outranks a figure that could not be read.

How each check compares (levels are maximums, except ``consumers``, whose levels are minimums):

* ``depth``: a level in messages against the queue's messages (ready + unacknowledged); a percentage
  against the fill of its length limit: ready messages over ``max-length`` and ready bytes over
  ``max-length-bytes``, whichever is fuller (RabbitMQ counts ready messages only against its limits);
* ``consumers``: WARNING below the warning level, CRITICAL below the critical one;
* ``unacked``: messages delivered and not acknowledged;
* ``publish-rate``: messages published into the queue per second over the window (a percentage is of
  ``capacity``);
* ``dead-letter-rate``: what the queue's dead-letter queue(s) received over the window, over what was
  published into the queues that dead-letter there (when several queues share a dead-letter queue, the
  share is theirs together, and the result says so); with dead letters and nothing published, the
  share is infinite (it can only be CRITICAL);
* ``message-age``: now minus the head message's timestamp (RabbitMQ's head is the oldest message,
  ready or unacknowledged; 0 for an empty queue).

A declared queue that the broker does not have is CRITICAL (``exists``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from functools import lru_cache
from typing import Literal

from topo.model import Origin
from topo.monitor.figures import QueueFigures, VHostFigures
from topo.monitor.resolve import Check, Expectation, VHostExpectations
from topo.monitor.spec import MAXIMUM_CHECKS, Threshold

__all__ = [
    "QueueReport",
    "Report",
    "Result",
    "ShovelReport",
    "State",
    "evaluate",
    "evaluate_vhost",
    "format_count",
    "format_seconds",
    "worst",
]

Unit = Literal["messages", "ratio", "consumers", "messages_per_second", "seconds"]


class State(IntEnum):
    """A check's state; the value is its exit code in the monitoring-plugins convention."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


_SEVERITY = {State.OK: 0, State.UNKNOWN: 1, State.WARNING: 2, State.CRITICAL: 3}


def worst(states: Iterable[State]) -> State:
    """The worst state: CRITICAL > WARNING > UNKNOWN > OK (OK when there is none)."""
    return max(states, key=lambda s: _SEVERITY[s], default=State.OK)


@dataclass(frozen=True, slots=True)
class Bound:
    """One level as compared: its unit, its value in that unit, and how it reads (``> 80%``)."""

    unit: Unit
    value: float
    text: str


@dataclass(frozen=True, slots=True)
class Result:
    """One check of one queue."""

    check: str  # a CheckName, or "exists"
    state: State
    shown: str  # the figure, as a person reads it ("812 ready of max-length 1000 (81%)")
    values: Mapping[str, float] = field(default_factory=dict)  # unit -> the figure compared in that unit
    warning: Bound | None = None
    critical: Bound | None = None
    note: str | None = None  # why UNKNOWN, or what else to know (a shared dead-letter queue)


@dataclass(frozen=True, slots=True)
class QueueReport:
    vhost: str
    queue: str
    role: str
    present: bool
    results: tuple[Result, ...]
    origin: Origin | None = None

    @property
    def state(self) -> State:
        return worst([r.state for r in self.results])


@dataclass(frozen=True, slots=True)
class ShovelReport:
    """A declared shovel's one check, ``running``: its state on the broker (``GET /api/shovels/{vhost}``)."""

    vhost: str
    shovel: str
    state: State
    shown: str  # "running", "starting", "terminated", "missing on the broker", "—"
    note: str | None = None  # the broker's reason, or why UNKNOWN
    origin: Origin | None = None


@dataclass(frozen=True, slots=True)
class Report:
    """Every declared queue's state, by vhost and name (and every declared shovel's); ``window`` in seconds."""

    queues: tuple[QueueReport, ...]
    window: float
    missing_vhosts: tuple[str, ...] = ()
    shovels: tuple[ShovelReport, ...] = ()

    @property
    def state(self) -> State:
        return worst([*(q.state for q in self.queues), *(s.state for s in self.shovels)])

    def counts(self) -> dict[State, int]:
        """How many checks are in each state."""
        out = dict.fromkeys(State, 0)
        for queue in self.queues:
            for result in queue.results:
                out[result.state] += 1
        for shovel in self.shovels:
            out[shovel.state] += 1
        return out


# -- formatting ------------------------------------------------------------------------------------------


def format_count(value: float) -> str:
    """``1234`` → ``1,234``; ``12.5`` → ``12.5``."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _percent(ratio: float) -> str:
    if math.isinf(ratio):
        return "∞%"
    text = f"{ratio * 100:.1f}".rstrip("0").rstrip(".")
    return f"{text}%"


def format_seconds(seconds: float) -> str:
    """``250`` → ``4m 10s``; ``0.4`` → ``0s``."""
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    parts.append(f"{secs}s" if secs or not any(parts) else "")
    return " ".join(p for p in parts if p)


# -- levels ----------------------------------------------------------------------------------------------


def _bound(check: Check, level: Threshold | None) -> Bound | None:
    if level is None:
        return None
    return _bound_of(check.name, level, check.capacity)


@lru_cache(maxsize=4096)
def _bound_of(name: str, level: Threshold, capacity: float | None) -> Bound:
    """How a level compares (cached: most queues share the same levels)."""
    sign = ">" if name in MAXIMUM_CHECKS else "<"
    if name == "depth":
        if level.relative:
            return Bound("ratio", level.value, f"{sign} {level.text}")
        return Bound("messages", level.value, f"{sign} {format_count(level.value)}")
    if name == "consumers":
        return Bound("consumers", level.value, f"{sign} {format_count(level.value)}")
    if name == "unacked":
        return Bound("messages", level.value, f"{sign} {format_count(level.value)}")
    if name == "publish-rate":
        if level.relative:
            capacity = capacity or 0.0
            per_second = level.value * capacity
            return Bound("messages_per_second", per_second, f"{sign} {level.text} ({format_count(per_second)}/s)")
        return Bound("messages_per_second", level.value, f"{sign} {format_count(level.value)}/s")
    if name == "dead-letter-rate":
        return Bound("ratio", level.value, f"{sign} {level.text}")
    return Bound("seconds", level.value, f"{sign} {format_seconds(level.value)}")


def _crossed(check: Check, bound: Bound | None, values: Mapping[str, float]) -> bool | None:
    """Whether the figure is past the level (None: the figure in that unit is not known)."""
    if bound is None:
        return False
    value = values.get(bound.unit)
    if value is None:
        return None
    return value > bound.value if check.name in MAXIMUM_CHECKS else value < bound.value


def _result(check: Check, shown: str, values: Mapping[str, float], note: str | None = None) -> Result:
    warning, critical = _bound(check, check.warning), _bound(check, check.critical)
    if check.problem is not None:
        return Result(check.name, State.UNKNOWN, "—", {}, warning, critical, check.problem)
    crit, warn = _crossed(check, critical, values), _crossed(check, warning, values)
    if crit:
        state = State.CRITICAL
    elif crit is None:
        state = State.UNKNOWN
    elif warn:
        state = State.WARNING
    elif warn is None:
        state = State.UNKNOWN
    else:
        state = State.OK
    if state == State.UNKNOWN and note is None:
        note = "the broker reports no figure for it yet"
    used = {b.unit for b in (warning, critical) if b is not None}
    return Result(check.name, state, shown, {u: v for u, v in values.items() if u in used}, warning, critical, note)


# -- the figures of each check ---------------------------------------------------------------------------


def _depth(expectation: Expectation, q: QueueFigures) -> tuple[str, dict[str, float]]:
    values: dict[str, float] = {}
    shown: list[str] = []
    fills = []
    for limit in expectation.limits:
        have = q.messages_ready if limit.key == "max-length" else q.message_bytes_ready
        if have is None or limit.value <= 0:
            continue
        unit = "ready" if limit.key == "max-length" else "ready bytes"
        fills.append((have / limit.value, f"{format_count(have)} {unit} of {limit.key} {format_count(limit.value)}"))
    if fills:
        ratio, text = max(fills, key=lambda f: f[0])
        values["ratio"] = ratio
        shown.append(f"{text} ({_percent(ratio)})")
    if q.messages is not None:
        values["messages"] = q.messages
        if not fills:
            shown.append(f"{format_count(q.messages)} messages")
    return "; ".join(shown) or "—", values


def _age(q: QueueFigures, now: float) -> tuple[str, dict[str, float], str | None]:
    """The broker's head timestamp is the oldest of the ready and the unacknowledged messages."""
    if q.head_timestamp is not None:
        age = max(0.0, now - q.head_timestamp)
        return format_seconds(age), {"seconds": age}, None
    if q.messages == 0:
        return "empty", {"seconds": 0.0}, None
    if q.head_reported and q.messages is not None:
        return "—", {}, "the head message has no timestamp: publish with the AMQP timestamp property"
    return "—", {}, None


def _dead_letters(
    expectation: Expectation, figures: VHostFigures, sources: Mapping[str, tuple[str, ...]], window: float
) -> tuple[str, dict[str, float], str | None]:
    """The share of what was published into the dead-lettering queues that their dead-letter queues
    received, between the same two samples (the publish counters' window); the fullest dead-letter queue
    counts."""
    best: tuple[float, str, str | None] | None = None
    for dlq in expectation.dead_letter_queues:
        d = figures.queues.get(dlq)
        if d is None:
            return "—", {}, f"its dead-letter queue {dlq!r} is missing on the broker"
        if d.depth is None:
            return "—", {}, f"no depth history of dead-letter queue {dlq!r} over the window yet"
        feeders = sources.get(dlq, (expectation.queue,))
        windows = [f.published for n in feeders if (f := figures.queues.get(n)) is not None and f.published]
        span = windows[0] if windows else d.depth.window(window)
        if span is None:
            return "—", {}, f"no depth history of dead-letter queue {dlq!r} over the window yet"
        received = d.depth.change(span.t_first, span.t_last)
        if d.removed is not None:
            received += d.removed.change(span.t_first, span.t_last)
        received = max(0.0, received)
        published = sum(max(0.0, w.delta) for w in windows)
        ratio = received / published if published > 0 else (math.inf if received > 0 else 0.0)
        text = f"{_percent(ratio)} ({format_count(received)} dead-lettered of {format_count(published)} published)"
        others = [n for n in feeders if n != expectation.queue]
        note = (
            f"{dlq!r} also collects from {', '.join(map(repr, others))}: the share is theirs together"
            if others
            else None
        )
        if best is None or ratio > best[0]:
            best = (ratio, text, note)
    if best is None:
        return "—", {}, None
    return best[1], {"ratio": best[0]}, best[2]


def evaluate_vhost(
    expectations: VHostExpectations, figures: VHostFigures, now: float, window: float
) -> list[QueueReport]:
    """Every declared queue of one vhost against what the broker reports."""
    reports = []
    for e in expectations.queues:
        q = figures.queues.get(e.queue)
        if q is None:
            where = "missing on the broker" if figures.exists else f"missing: vhost {e.vhost!r} does not exist"
            reports.append(
                QueueReport(e.vhost, e.queue, e.role, False, (Result("exists", State.CRITICAL, where),), e.origin)
            )
            continue
        results = []
        for check in e.checks:
            note: str | None = None
            if check.name == "depth":
                shown, values = _depth(e, q)
            elif check.name == "consumers":
                shown = format_count(q.consumers) if q.consumers is not None else "—"
                values = {"consumers": float(q.consumers)} if q.consumers is not None else {}
            elif check.name == "unacked":
                shown = format_count(q.unacked) if q.unacked is not None else "—"
                values = {"messages": float(q.unacked)} if q.unacked is not None else {}
            elif check.name == "publish-rate":
                if q.published is not None:
                    rate = max(0.0, q.published.delta) / q.published.seconds
                    shown, values = f"{format_count(round(rate, 2))}/s", {"messages_per_second": rate}
                elif not q.has_message_stats:
                    shown, values = "0/s", {"messages_per_second": 0.0}  # nothing ever published
                else:
                    shown, values, note = "—", {}, f"no publish history over the last {format_seconds(window)} yet"
            elif check.name == "dead-letter-rate":
                shown, values, note = _dead_letters(e, figures, expectations.dead_letter_sources, window)
            else:
                shown, values, note = _age(q, now)
            results.append(_result(check, shown, values, note))
        reports.append(QueueReport(e.vhost, e.queue, e.role, True, tuple(results), e.origin))
    return reports


def evaluate(
    expectations: Mapping[str, VHostExpectations], figures: Mapping[str, VHostFigures], now: float, window: float
) -> Report:
    """The report over every vhost (in name order)."""
    queues: list[QueueReport] = []
    for name in sorted(expectations):
        queues += evaluate_vhost(expectations[name], figures[name], now, window)
    missing = tuple(sorted(n for n, f in figures.items() if not f.exists))
    return Report(tuple(queues), window, missing)
