"""Figures against levels (pure): each check's state at its boundaries, and the report's three formats.

The figures come from RabbitMQ 3.10.8's own answers (tests/fixtures/monitor/queues-shop-3.10.8.json)
or are built by hand for the boundaries; what users read is pinned in tests/golden/monitor/.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from monitor_support import run_promtool
from support import check_golden

from topo.loader import load
from topo.monitor.evaluate import QueueReport, Report, State, evaluate, evaluate_vhost, format_seconds, worst
from topo.monitor.figures import QueueFigures, Series, VHostFigures, Window
from topo.monitor.render import render_json, render_prometheus, render_text, summary
from topo.monitor.resolve import resolve
from topo.monitor.status import status

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path("tests") / "fixtures" / "monitor"  # relative: the place in the golden files is portable
CAPTURE = json.loads((ROOT / FIXTURES / "queues-shop-3.10.8.json").read_text())
NOW = 1796138137.0  # the capture's time: orders' head message (timestamp 1796138036) is 101 s old


@pytest.fixture(autouse=True)
def _at_the_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


class Captured:
    """RabbitMQ 3.10.8's answers to topo status's two requests for vhost "shop"."""

    def list_queues(self, vhost: str, params: Mapping[str, str]) -> Any:
        assert vhost == "shop"
        return CAPTURE["dead_letter_depths"] if "name" in params else CAPTURE["main"]


def shop_report() -> Report:
    return status(Captured(), load(FIXTURES / "shop.yaml"), window=30, now=NOW)


def results(report: Report) -> dict[tuple[str, str], tuple[str, str]]:
    return {(q.queue, r.check): (r.state.name, r.shown) for q in report.queues for r in q.results}


def test_the_captured_vhost() -> None:
    found = results(shop_report())
    assert found[("orders", "consumers")] == ("WARNING", "1")
    assert found[("orders", "unacked")] == ("OK", "10")
    assert found[("orders", "depth")] == ("OK", "0 ready of max-length 1,000 (0%)")
    assert found[("orders", "publish-rate")] == ("WARNING", "1.33/s")  # 40 in 30 s, above 0.5/s
    assert found[("orders", "message-age")] == ("WARNING", "1m 41s")
    # 10 dead-lettered into orders.dlq, which payments' dead letters reach too: 10 / (40 + 5)
    assert found[("orders", "dead-letter-rate")] == ("CRITICAL", "22.2% (10 dead-lettered of 45 published)")
    assert found[("payments", "consumers")] == ("CRITICAL", "0")
    assert found[("audit", "consumers")] == ("CRITICAL", "0")
    assert ("orders.dlq", "consumers") not in found  # a dead-letter queue
    assert found[("invoices", "exists")] == ("CRITICAL", "missing on the broker")
    assert shop_report().state == State.CRITICAL


def test_a_shared_dead_letter_queue_is_said() -> None:
    report = shop_report()
    orders = next(q for q in report.queues if q.queue == "orders")
    dl = next(r for r in orders.results if r.check == "dead-letter-rate")
    assert dl.note == "'orders.dlq' also collects from 'payments': the share is theirs together"
    assert dl.values == {"ratio": pytest.approx(10 / 45)}


# -- boundaries, built by hand ---------------------------------------------------------------------------


def one(tmp_path: Path, queue_yaml: str, figures: QueueFigures, now: float = 1000.0) -> QueueReport:
    file = tmp_path / "t.yaml"
    file.write_text(f"version: 1\nvhosts:\n  v:\n    queues:\n      q: {queue_yaml}\n", encoding="utf-8")
    (expectations,) = resolve(load(file)).values()
    (report,) = evaluate_vhost(expectations, VHostFigures("v", queues={"q": figures}), now, 60)
    return report


def state(report: QueueReport, check: str) -> str:
    return next(r.state.name for r in report.results if r.check == check)


@pytest.mark.parametrize(
    ("ready", "expected"),
    [(0, "OK"), (500, "OK"), (501, "WARNING"), (800, "WARNING"), (801, "CRITICAL"), (1000, "CRITICAL")],
)
def test_depth_against_max_length_is_strictly_above(tmp_path: Path, ready: int, expected: str) -> None:
    report = one(
        tmp_path,
        "{max-length: 1000, monitor: {consumers: off}}",
        QueueFigures("q", messages=ready + 7, messages_ready=ready, unacked=7, consumers=0, message_bytes_ready=0),
    )
    assert state(report, "depth") == expected


def test_depth_takes_the_fuller_of_two_limits(tmp_path: Path) -> None:
    report = one(
        tmp_path,
        "{max-length: 1000, max-length-bytes: 1000}",
        QueueFigures("q", messages=10, messages_ready=10, message_bytes_ready=900, unacked=0, consumers=2),
    )
    depth = next(r for r in report.results if r.check == "depth")
    assert (depth.state, depth.shown) == (State.CRITICAL, "900 ready bytes of max-length-bytes 1,000 (90%)")


def test_depth_in_messages_counts_unacknowledged_too(tmp_path: Path) -> None:
    report = one(
        tmp_path,
        "{monitor: {depth: {warning: 100, critical: 200}}}",
        QueueFigures("q", messages=150, messages_ready=10, unacked=140, consumers=2),
    )
    assert state(report, "depth") == "WARNING"


@pytest.mark.parametrize(("consumers", "expected"), [(0, "CRITICAL"), (1, "WARNING"), (2, "OK"), (9, "OK")])
def test_consumers_are_minimums(tmp_path: Path, consumers: int, expected: str) -> None:
    report = one(tmp_path, "{}", QueueFigures("q", messages=0, messages_ready=0, unacked=0, consumers=consumers))
    assert state(report, "consumers") == expected


@pytest.mark.parametrize(("unacked", "expected"), [(1000, "OK"), (1001, "WARNING"), (5001, "CRITICAL")])
def test_unacked(tmp_path: Path, unacked: int, expected: str) -> None:
    report = one(tmp_path, "{}", QueueFigures("q", messages=unacked, messages_ready=0, unacked=unacked, consumers=3))
    assert state(report, "unacked") == expected


def test_publish_rate_over_the_window_as_a_share_of_capacity(tmp_path: Path) -> None:
    queue = "{monitor: {publish-rate: {capacity: 100, warning: 80%, critical: 95%}}}"
    fast = QueueFigures("q", consumers=2, unacked=0, has_message_stats=True, published=Window(0, 5100, 0, 60))
    report = one(tmp_path, queue, fast)
    rate = next(r for r in report.results if r.check == "publish-rate")
    assert (rate.state, rate.shown) == (State.WARNING, "85/s")
    assert rate.warning is not None and rate.warning.text == "> 80% (80/s)"
    never = QueueFigures("q", consumers=2, unacked=0, has_message_stats=False)
    assert state(one(tmp_path, queue, never), "publish-rate") == "OK"  # nothing ever published: 0/s
    unknown = QueueFigures("q", consumers=2, unacked=0, has_message_stats=True)
    assert state(one(tmp_path, queue, unknown), "publish-rate") == "UNKNOWN"  # stats, but no history yet


def test_message_age(tmp_path: Path) -> None:
    queue = "{monitor: {message-age: {warning: 1m, critical: 10m}}}"
    base = {"messages": 3, "messages_ready": 3, "unacked": 0, "consumers": 2, "head_reported": True}
    report = one(tmp_path, queue, QueueFigures("q", head_timestamp=1000 - 90, **base))  # type: ignore[arg-type]
    assert state(report, "message-age") == "WARNING"
    no_stamp = one(tmp_path, queue, QueueFigures("q", head_timestamp=None, **base))  # type: ignore[arg-type]
    age = next(r for r in no_stamp.results if r.check == "message-age")
    assert age.state == State.UNKNOWN and age.note is not None and "timestamp property" in age.note
    empty = QueueFigures("q", messages=0, messages_ready=0, unacked=0, consumers=2, head_reported=True)
    assert state(one(tmp_path, queue, empty), "message-age") == "OK"


def test_a_figure_the_broker_has_not_reported_yet_is_unknown(tmp_path: Path) -> None:
    report = one(tmp_path, "{}", QueueFigures("q"))
    assert state(report, "consumers") == "UNKNOWN" and report.state == State.UNKNOWN


def test_a_check_that_cannot_be_measured_is_unknown(tmp_path: Path) -> None:
    report = one(
        tmp_path,
        "{monitor: {depth: {warning: 50%}}}",
        QueueFigures("q", messages=1, messages_ready=1, unacked=0, consumers=2),
    )
    depth = next(r for r in report.results if r.check == "depth")
    assert depth.state == State.UNKNOWN and depth.note is not None and "no max-length" in depth.note


def test_dead_letters_with_nothing_published(tmp_path: Path) -> None:
    file = tmp_path / "t.yaml"
    file.write_text(
        "version: 1\nvhosts:\n  v:\n    exchanges: {dlx: {type: fanout}}\n    queues:\n"
        "      q: {dead-letter-exchange: dlx, monitor: {consumers: off}}\n      d: {bindings: [{exchange: dlx}]}\n",
        encoding="utf-8",
    )
    (expectations,) = resolve(load(file)).values()
    figures = VHostFigures(
        "v",
        queues={
            "q": QueueFigures("q", unacked=0, has_message_stats=False),
            "d": QueueFigures("d", unacked=0, depth=Series(((0, 0), (30, 1), (60, 3)))),
        },
    )
    (q, _d) = sorted(evaluate_vhost(expectations, figures, 0, 60), key=lambda r: r.queue != "q")
    dl = next(r for r in q.results if r.check == "dead-letter-rate")
    assert dl.state == State.CRITICAL and math.isinf(dl.values["ratio"])


def test_a_missing_vhost_makes_every_queue_missing(tmp_path: Path) -> None:
    file = tmp_path / "t.yaml"
    file.write_text("version: 1\nvhosts:\n  v:\n    queues:\n      a: {}\n      b: {}\n", encoding="utf-8")
    report = evaluate(resolve(load(file)), {"v": VHostFigures("v", exists=False)}, 0, 60)
    assert [(q.queue, q.present, q.state) for q in report.queues] == [
        ("a", False, State.CRITICAL),
        ("b", False, State.CRITICAL),
    ]
    assert report.missing_vhosts == ("v",)
    assert report.queues[0].results[0].shown == "missing: vhost 'v' does not exist"


def test_worst_orders_critical_warning_unknown_ok() -> None:
    assert worst([State.OK, State.UNKNOWN]) == State.UNKNOWN
    assert worst([State.UNKNOWN, State.WARNING]) == State.WARNING
    assert worst([State.WARNING, State.CRITICAL, State.UNKNOWN]) == State.CRITICAL
    assert worst([]) == State.OK


def test_format_seconds() -> None:
    assert [format_seconds(s) for s in (0, 0.4, 59, 250, 3600, 90061)] == [
        "0s",
        "0s",
        "59s",
        "4m 10s",
        "1h",
        "1d 1h 1m 1s",
    ]


# -- what users read ----------------------------------------------------------------------------------------


def test_text_golden() -> None:
    check_golden("monitor/status-shop.txt", render_text(shop_report()))


def test_json_golden() -> None:
    text = render_json(shop_report())
    check_golden("monitor/status-shop.json", text)
    data = json.loads(text)
    assert data["format_version"] == 1 and data["state"] == "CRITICAL" and data["exit_code"] == 2


def test_prometheus_golden_passes_promtool() -> None:
    text = render_prometheus(shop_report())
    check_golden("monitor/status-shop.prom", text)
    checked = run_promtool("check", "metrics", stdin=text)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_summary_line() -> None:
    assert summary(shop_report()) == (
        "CRITICAL: 5 critical, 3 warning, 0 unknown, 5 ok checks on 5 queues in 1 vhost; 1 declared queue missing"
    )
