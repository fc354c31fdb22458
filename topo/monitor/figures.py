"""The live figures of a vhost's queues, read through the Management API in a bounded number of requests.

**The requests.** One ``GET /api/queues/{vhost}`` per vhost, whatever the number of queues, with
``columns=`` naming only the fields the checks use, and the publish counter sampled over the window
(``msg_rates_age`` = the window, ``msg_rates_incr`` = a sixth of it: seven samples). When some queue of
the vhost has a dead-letter rate to measure, one more request, filtered to the dead-letter queues by a
name regex (``page_size`` 500: one page per 500 dead-letter queues), reads their depth and what their
consumers removed over the same window. With ``page_size`` the main listing is paged instead
(``ceil(n / page_size)`` requests); the broker then lists every queue once per page, which cost 1.7x
one request for 10,000 queues (benches/RESULTS.md), so the default is one request.

**What the numbers mean** (RabbitMQ 3.10.8, checked on a real node):

* ``messages_ready`` and ``message_bytes_ready`` are what ``max-length`` and ``max-length-bytes`` count;
  ``messages`` adds the unacknowledged ones (``messages_unacknowledged``);
* ``message_stats.publish`` counts the messages channels published into the queue; messages a queue
  receives by dead-lettering are *not* counted there (nor in any exchange's statistics), so what a
  dead-letter queue received over the window is its depth's change plus what its consumers removed
  (``ack`` + ``deliver_no_ack`` + ``get_no_ack``); what it dropped itself (its own TTL or limit) is not
  seen;
* ``head_message_timestamp`` is the AMQP ``timestamp`` property (seconds) of the oldest message, ready
  or unacknowledged; null when that message has none; absent for quorum queues and streams;
* samples are aligned on multiples of ``msg_rates_incr``: the window ends at the newest one, at most a
  sixth of the window ago; statistics lag behind the queue by up to ``collect_statistics_interval``
  (5 s by default) and are kept at the retention policy's granularity (5 s for the last 10 minutes,
  then 1 minute for the last hour, by default): windows longer than an hour find no samples.

:class:`QueueSource` is the port this module needs from a broker (one method); :class:`ManagementQueues`
is the live adapter on :class:`~topo.broker.client.ManagementClient`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from topo.broker.client import ManagementClient, enc

__all__ = [
    "COLUMNS",
    "DEAD_LETTER_COLUMNS",
    "ManagementQueues",
    "QueueFigures",
    "QueueSource",
    "Series",
    "VHostFigures",
    "Window",
    "main_params",
    "parse_dead_letter_queue",
    "parse_queue",
    "read_depths",
    "read_vhost",
    "sampling",
]

COLUMNS = (
    "name",
    "messages",
    "messages_ready",
    "message_bytes_ready",
    "messages_unacknowledged",
    "consumers",
    "head_message_timestamp",
    "message_stats.publish_details.samples",
)
"""The fields ``topo status`` reads of every queue."""

DEAD_LETTER_COLUMNS = (
    "name",
    "messages_details.samples",
    "message_stats.ack_details.samples",
    "message_stats.deliver_no_ack_details.samples",
    "message_stats.get_no_ack_details.samples",
)
"""What the second request reads of the dead-letter queues: their depth and what consumers removed."""

MAX_PAGE_SIZE = 500  # the Management API's own limit
_REGEX_CHARS = 3000  # names per filtered request: keeps the request line far below the broker's limit
_REMOVED = ("ack", "deliver_no_ack", "get_no_ack")
_PCRE_META = frozenset("\\^$.|?*+()[]{}")


class QueueSource(Protocol):
    """What the figures need from a broker: a vhost's queue listing with query parameters, as decoded
    JSON (a list, or a page object when ``page`` is given), or None when the vhost does not exist."""

    def list_queues(self, vhost: str, params: Mapping[str, str]) -> Any: ...


class ManagementQueues:
    """The live :class:`QueueSource`: ``GET /api/queues/{vhost}`` through a ManagementClient."""

    def __init__(self, client: ManagementClient) -> None:
        self.client = client

    def list_queues(self, vhost: str, params: Mapping[str, str]) -> Any:
        return self.client.get(f"/queues/{enc(vhost)}", params=params, vhost=vhost, ok_missing=True)

    def list_shovels(self, vhost: str) -> Any:
        """``GET /api/shovels/{vhost}`` (rabbitmq_shovel_management): the vhost's shovels and their state."""
        return self.client.get(f"/shovels/{enc(vhost)}", vhost=vhost, ok_missing=True)


@dataclass(frozen=True, slots=True)
class Window:
    """A counter or a gauge at the two ends of the window (values, and their times in seconds)."""

    first: float
    last: float
    t_first: float
    t_last: float

    @property
    def delta(self) -> float:
        return self.last - self.first

    @property
    def seconds(self) -> float:
        return self.t_last - self.t_first


@dataclass(frozen=True, slots=True)
class Series:
    """Samples of a counter or gauge, oldest first: (seconds since the epoch, value)."""

    points: tuple[tuple[float, float], ...]

    def at(self, t: float) -> float:
        """The value of the sample nearest ``t``."""
        return min(self.points, key=lambda p: abs(p[0] - t))[1]

    def change(self, t_first: float, t_last: float) -> float:
        """How much it changed between the samples nearest ``t_first`` and ``t_last``."""
        return self.at(t_last) - self.at(t_first)

    def window(self, seconds: float) -> Window | None:
        """The newest sample and the one nearest ``seconds`` before it."""
        if len(self.points) < 2:
            return None
        t_last, last = self.points[-1]
        t_first, first = min(self.points[:-1], key=lambda p: abs(t_last - seconds - p[0]))
        return Window(first, last, t_first, t_last) if t_last > t_first else None


@dataclass(frozen=True, slots=True)
class QueueFigures:
    """One queue as the broker reports it. None where the broker reported nothing (yet)."""

    name: str
    messages: int | None = None
    messages_ready: int | None = None
    message_bytes_ready: int | None = None
    unacked: int | None = None
    consumers: int | None = None
    head_timestamp: float | None = None  # seconds since the epoch
    head_reported: bool = False  # the broker has the field (classic queues), even if null
    has_message_stats: bool = False  # any channel ever published to, or consumed from, the queue
    published: Window | None = None
    depth: Series | None = None  # dead-letter queues only (the second request)
    removed: Series | None = None  # dead-letter queues only: acked + delivered without ack + got without ack


@dataclass(slots=True)
class VHostFigures:
    vhost: str
    exists: bool = True
    queues: dict[str, QueueFigures] = field(default_factory=dict)
    requests: int = 0


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _series(samples: Any) -> Series | None:
    """The samples of one ``*_details`` (None when there are none)."""
    if not isinstance(samples, list):
        return None
    points = sorted(
        (float(s["timestamp"]) / 1000, float(s["sample"]))
        for s in samples
        if isinstance(s, dict)
        and isinstance(s.get("timestamp"), int | float)
        and isinstance(s.get("sample"), int | float)
    )
    return Series(tuple(points)) if points else None


def _window(samples: Any, window: float | None = None) -> Window | None:
    """The newest sample and the oldest one (or, with ``window``, the one nearest ``window`` seconds
    before the newest); None with fewer than two samples. (Called for every queue: plain loops.)"""
    if not isinstance(samples, list) or len(samples) < 2:
        return None
    try:
        newest = max(samples, key=lambda s: s["timestamp"])
        t_last = newest["timestamp"]
        if window is None:
            oldest = min(samples, key=lambda s: s["timestamp"])
        else:
            target = t_last - window * 1000
            oldest = min((s for s in samples if s is not newest), key=lambda s: abs(s["timestamp"] - target))
        t_first = oldest["timestamp"]
        first, last = float(oldest["sample"]), float(newest["sample"])
    except (KeyError, TypeError, ValueError):
        return None
    if not t_last > t_first:
        return None
    return Window(first, last, t_first / 1000, t_last / 1000)


def _details(stats: Mapping[str, Any], key: str) -> Any:
    details = stats.get(f"{key}_details")
    return details.get("samples") if isinstance(details, dict) else None


def _stats(item: Mapping[str, Any]) -> Mapping[str, Any]:
    stats = item.get("message_stats")
    return stats if isinstance(stats, dict) else {}


def parse_queue(item: Mapping[str, Any], window: float | None = None) -> QueueFigures:
    """One item of ``GET /api/queues/{vhost}`` (with :data:`COLUMNS`) as figures (pure); the publish
    counter over ``window`` seconds (the whole span of the samples without it)."""
    stats = _stats(item)
    head = item.get("head_message_timestamp")
    return QueueFigures(
        name=str(item.get("name", "")),
        messages=_int(item.get("messages")),
        messages_ready=_int(item.get("messages_ready")),
        message_bytes_ready=_int(item.get("message_bytes_ready")),
        unacked=_int(item.get("messages_unacknowledged")),
        consumers=_int(item.get("consumers")),
        head_timestamp=float(head) if isinstance(head, int | float) and not isinstance(head, bool) else None,
        head_reported="head_message_timestamp" in item,
        has_message_stats=bool(stats),
        published=_window(_details(stats, "publish"), window),
    )


def sampling(window: float) -> tuple[int, int]:
    """(age, increment) of the samples for a window of ``window`` seconds: seven samples."""
    age = max(1, math.ceil(window))
    return age, max(1, round(age / 6))


def main_params(window: float) -> dict[str, str]:
    """The query of the main listing: :data:`COLUMNS`, the publish counter sampled over the window."""
    age, incr = sampling(window)
    return {"columns": ",".join(COLUMNS), "msg_rates_age": str(age), "msg_rates_incr": str(incr)}


def _name_filters(names: Iterable[str]) -> Iterator[str]:
    """Anchored regexes (PCRE, as the broker reads them) matching exactly ``names``, a few at a time."""
    chunk: list[str] = []
    size = 0
    for name in sorted(set(names)):
        escaped = "".join("\\" + c if c in _PCRE_META else c for c in name)
        if chunk and size + len(escaped) > _REGEX_CHARS:
            yield "^(" + "|".join(chunk) + ")$"
            chunk, size = [], 0
        chunk.append(escaped)
        size += len(escaped) + 1
    if chunk:
        yield "^(" + "|".join(chunk) + ")$"


def _pages(source: QueueSource, vhost: str, params: Mapping[str, str], page_size: int) -> Iterator[Any]:
    """Every item of a paged listing; stops at the first page that says the vhost is gone (None)."""
    page = 1
    while True:
        body = source.list_queues(vhost, {**params, "page": str(page), "page_size": str(page_size)})
        yield body
        if not isinstance(body, dict) or page >= int(body.get("page_count") or 1):
            return
        page += 1


def read_vhost(
    source: QueueSource,
    vhost: str,
    window: float,
    *,
    declared: Iterable[str] = (),
    page_size: int | None = None,
) -> VHostFigures:
    """The figures of every queue of ``vhost``: one request (see the module's docstring), or with
    ``page_size`` one per page; then declared queues missing from the pages (a queue deleted between
    two pages shifts the next page by one) are asked for again by name before they are called missing."""
    figures = VHostFigures(vhost)
    params = main_params(window)
    if not page_size:
        body = source.list_queues(vhost, params)
        figures.requests += 1
        if body is None:
            figures.exists = False
            return figures
        for item in body if isinstance(body, list) else []:
            figures.queues[str(item.get("name"))] = parse_queue(item, window)
        return figures
    for body in _pages(source, vhost, params, min(page_size, MAX_PAGE_SIZE)):
        figures.requests += 1
        if body is None:
            figures.exists = False
            return figures
        for item in body.get("items") or [] if isinstance(body, dict) else []:
            figures.queues[str(item.get("name"))] = parse_queue(item, window)
    unseen = [name for name in declared if name not in figures.queues]
    for item in _filtered(source, vhost, unseen, params, figures):
        figures.queues[str(item.get("name"))] = parse_queue(item, window)
    return figures


def read_depths(source: QueueSource, figures: VHostFigures, names: Iterable[str], window: float) -> None:
    """Add what the queues ``names`` (the dead-letter queues whose rate is measured) held and lost to
    consumers over the window to ``figures``: one filtered request per 500 of them."""
    wanted = [name for name in names if name in figures.queues]
    if not wanted:
        return
    age, incr = sampling(window)
    params = {
        "columns": ",".join(DEAD_LETTER_COLUMNS),
        "lengths_age": str(age),
        "lengths_incr": str(incr),
        "msg_rates_age": str(age),
        "msg_rates_incr": str(incr),
    }
    for item in _filtered(source, figures.vhost, wanted, params, figures):
        name = str(item.get("name"))
        if name in figures.queues:
            depth, removed = parse_dead_letter_queue(item)
            figures.queues[name] = replace(figures.queues[name], depth=depth, removed=removed)


def parse_dead_letter_queue(item: Mapping[str, Any]) -> tuple[Series | None, Series | None]:
    """(depth, removed by consumers) as samples, from one item of the dead-letter request (pure). The
    three counters of what consumers removed are summed sample by sample (one request: one alignment)."""
    details = item.get("messages_details")
    depth = _series(details.get("samples") if isinstance(details, dict) else None)
    stats = _stats(item)
    totals: dict[float, float] = {}
    for key in _REMOVED:
        series = _series(_details(stats, key))
        for t, value in series.points if series is not None else ():
            totals[t] = totals.get(t, 0.0) + value
    removed = Series(tuple(sorted(totals.items()))) if totals else None
    return depth, removed


def _filtered(
    source: QueueSource, vhost: str, names: list[str], params: Mapping[str, str], figures: VHostFigures
) -> Iterator[Mapping[str, Any]]:
    """The items of the queues called ``names`` (paged listings filtered by an anchored name regex)."""
    for regex in _name_filters(names):
        for body in _pages(source, vhost, {**params, "name": regex, "use_regex": "true"}, MAX_PAGE_SIZE):
            figures.requests += 1
            if isinstance(body, dict):
                yield from body.get("items") or []
