"""Reading a vhost's figures: the requests sent (bounded per vhost), and the broker's answers parsed.

The answers are RabbitMQ 3.10.8's own (tests/fixtures/monitor/queues-shop-3.10.8.json, captured from a
real node); the listing is served by a small fake that pages and filters by name as the Management API
does, so the number and shape of requests is checked here without a broker. The same code runs against
a real node in tests/test_status_broker.py.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from topo.monitor.figures import (
    COLUMNS,
    DEAD_LETTER_COLUMNS,
    Series,
    Window,
    parse_dead_letter_queue,
    parse_queue,
    read_depths,
    read_vhost,
    sampling,
)

CAPTURE = json.loads((Path(__file__).parent / "fixtures" / "monitor" / "queues-shop-3.10.8.json").read_text())


class FakeBroker:
    """``GET /api/queues/{vhost}``: the whole list, or with ``page`` a page of the name-sorted list,
    filtered by ``name`` (a regex with ``use_regex=true``), as RabbitMQ pages and filters."""

    def __init__(self, vhosts: Mapping[str, list[dict[str, Any]]]) -> None:
        self.vhosts = vhosts
        self.calls: list[tuple[str, dict[str, str]]] = []

    def list_queues(self, vhost: str, params: Mapping[str, str]) -> Any:
        self.calls.append((vhost, dict(params)))
        if vhost not in self.vhosts:
            return None
        items = sorted(self.vhosts[vhost], key=lambda q: q["name"])
        if "page" not in params:
            return items
        if "name" in params:
            assert params.get("use_regex") == "true"
            items = [q for q in items if re.search(params["name"], q["name"])]
        size = int(params["page_size"])
        page = int(params["page"])
        return {
            "items": items[(page - 1) * size : page * size],
            "page": page,
            "page_count": max(1, math.ceil(len(items) / size)),
            "page_size": size,
            "filtered_count": len(items),
        }


def test_a_real_item_is_parsed() -> None:
    orders = next(q for q in CAPTURE["main"] if q["name"] == "orders")
    f = parse_queue(orders, 30)
    assert (f.messages, f.messages_ready, f.unacked, f.consumers) == (10, 0, 10, 1)
    assert f.head_timestamp == 1796138036 and f.head_reported and f.has_message_stats
    assert f.published == Window(0, 40, 1796138105.0, 1796138135.0)  # the newest sample, and 30 s before
    assert f.removed is None and f.depth is None  # only read for dead-letter queues


def test_a_dead_letter_queue_item_is_parsed() -> None:
    (item,) = CAPTURE["dead_letter_depths"]["items"]
    depth, removed = parse_dead_letter_queue(item)
    assert depth is not None and depth.points[0] == (1796138110.0, 0) and depth.points[-1] == (1796138140.0, 10)
    # the same two samples as the publish counter's window: the dead letters fell between them
    assert depth.change(1796138105.0, 1796138135.0) == 10
    assert removed is None  # nobody consumed from it: no message_stats at all
    consumed = {
        "name": "d",
        "message_stats": {
            key: {"samples": [{"sample": n, "timestamp": 100_000}, {"sample": 0, "timestamp": 70_000}]}
            for key, n in (("ack_details", 5), ("deliver_no_ack_details", 2), ("get_no_ack_details", 1))
        },
    }
    assert parse_dead_letter_queue(consumed)[1] == Series(((70.0, 0.0), (100.0, 8.0)))


def test_a_series_between_two_times_takes_the_nearest_samples() -> None:
    series = Series(((40, 1), (69, 3), (70, 4), (99, 8), (100, 9)))
    assert series.at(71) == 4 and series.change(70, 100) == 5
    assert series.window(30) == Window(4, 9, 70.0, 100.0)
    assert Series(((1, 1),)).window(30) is None


def test_quorum_queues_and_streams_report_no_head_timestamp() -> None:
    payments = parse_queue(next(q for q in CAPTURE["main"] if q["name"] == "payments"))
    audit = parse_queue(next(q for q in CAPTURE["main"] if q["name"] == "audit"))
    assert not payments.head_reported and payments.message_bytes_ready == 5
    assert not audit.head_reported and audit.message_bytes_ready is None and audit.messages == 5


def test_a_dead_letter_queue_has_no_publish_statistics() -> None:
    # RabbitMQ does not count dead-lettered messages as published: what reaches a dead-letter queue is
    # seen only in its depth (hence the second request)
    dlq = parse_queue(next(q for q in CAPTURE["main"] if q["name"] == "orders.dlq"))
    assert not dlq.has_message_stats and dlq.published is None and dlq.messages == 10


def test_one_request_per_vhost_with_the_columns_and_the_window() -> None:
    broker = FakeBroker({"shop": CAPTURE["main"]})
    figures = read_vhost(broker, "shop", 30)
    assert figures.requests == 1 and figures.exists
    assert sorted(figures.queues) == ["audit", "orders", "orders.dlq", "payments"]
    ((vhost, params),) = broker.calls
    assert vhost == "shop"
    assert params == {"columns": ",".join(COLUMNS), "msg_rates_age": "30", "msg_rates_incr": "5"}
    assert sampling(300) == (300, 50) and sampling(10) == (10, 2) and sampling(3600) == (3600, 600)


def test_a_vhost_the_broker_lacks() -> None:
    figures = read_vhost(FakeBroker({}), "nowhere", 30)
    assert not figures.exists and figures.queues == {} and figures.requests == 1


def _many(n: int) -> list[dict[str, Any]]:
    return [{"name": f"q{i:05d}", "messages": i} for i in range(n)]


@pytest.mark.parametrize(("queues", "size", "requests"), [(1, 500, 1), (500, 500, 1), (501, 500, 2), (1200, 100, 12)])
def test_pages_cost_one_request_each(queues: int, size: int, requests: int) -> None:
    broker = FakeBroker({"v": _many(queues)})
    figures = read_vhost(broker, "v", 60, declared=[f"q{i:05d}" for i in range(queues)], page_size=size)
    assert figures.requests == requests == len(broker.calls)
    assert len(figures.queues) == queues


def test_a_queue_missed_between_pages_is_asked_for_by_name() -> None:
    items = _many(10)

    class Shifting(FakeBroker):
        def list_queues(self, vhost: str, params: Mapping[str, str]) -> Any:
            body = super().list_queues(vhost, params)
            if params.get("page") == "1" and "name" not in params:
                del self.vhosts["v"][0]  # q00000 deleted after page 1 was read: page 2 starts one later
            return body

    broker = Shifting({"v": items})
    figures = read_vhost(broker, "v", 60, declared=[q["name"] for q in _many(10)], page_size=5)
    assert "q00005" in figures.queues  # shifted out of page 2, found by name
    last = broker.calls[-1][1]
    assert last["name"] == "^(q00005)$" and last["use_regex"] == "true"


def test_dead_letter_depths_in_one_filtered_request() -> None:
    items = [*CAPTURE["main"], {"name": "ordersXdlq", "messages": 1}]
    broker = FakeBroker({"shop": items})
    figures = read_vhost(broker, "shop", 30)

    def answer(vhost: str, params: Mapping[str, str]) -> Any:
        broker.calls.append((vhost, dict(params)))
        matched = [q for q in items if re.search(params["name"], q["name"])]
        assert [q["name"] for q in matched] == ["orders.dlq"]  # the dot is escaped
        return CAPTURE["dead_letter_depths"]

    broker.list_queues = answer  # type: ignore[method-assign]
    read_depths(broker, figures, ["orders.dlq"], 30)
    assert figures.requests == 2
    params = broker.calls[-1][1]
    assert params["columns"] == ",".join(DEAD_LETTER_COLUMNS) and params["page_size"] == "500"
    assert (params["lengths_age"], params["lengths_incr"]) == ("30", "5")
    assert (params["msg_rates_age"], params["msg_rates_incr"]) == ("30", "5")
    depth = figures.queues["orders.dlq"].depth
    assert depth is not None and len(depth.points) == 7 and depth.change(1796138105, 1796138135) == 10


def test_many_dead_letter_queues_are_asked_for_in_a_few_requests() -> None:
    names = [f"dead-letters-of-a-long-queue-name-{i:04d}" for i in range(400)]
    broker = FakeBroker({"v": [{"name": n} for n in names]})
    figures = read_vhost(broker, "v", 60)
    read_depths(broker, figures, names, 60)
    filtered = [p for _, p in broker.calls if "name" in p]
    assert 2 <= len(filtered) <= 6  # bounded by the length of a request line, not one per queue
    assert all(len(p["name"]) < 3200 for p in filtered)
    seen = {n for n in names for p in filtered if re.search(p["name"], n)}
    assert seen == set(names)
