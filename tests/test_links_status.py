"""``topo status`` checks every declared shovel: CRITICAL unless the broker's shovel runs (pure: the
listings are RabbitMQ 3.10.8's own answers to ``GET /api/shovels/{vhost}``, seen on a private node; the live
test is in tests/test_links_broker.py). What users read is pinned in tests/golden/monitor/."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from support import check_golden

from topo.loader import load
from topo.monitor.evaluate import State
from topo.monitor.render import render_json, render_prometheus, render_text
from topo.monitor.status import status

NODE = "topo-14399-6d8787@localhost"
# RabbitMQ 3.10.8, GET /api/shovels/a: one running; one whose destination refuses the connection (it stays
# "starting"); one whose source exchange does not exist
LISTED = [
    {
        "node": NODE,
        "timestamp": "2026-12-01 19:56:20",
        "name": "bad",
        "vhost": "a",
        "type": "dynamic",
        "state": "starting",
    },
    {
        "node": NODE,
        "timestamp": "2026-12-01 19:56:21",
        "name": "badx",
        "vhost": "a",
        "type": "dynamic",
        "state": "terminated",
        "reason": '"needed a restart"',
    },
    {
        "node": NODE,
        "timestamp": "2026-12-01 19:56:19",
        "name": "good",
        "vhost": "a",
        "type": "dynamic",
        "state": "running",
        "src_uri": "amqp:///a",
        "src_protocol": "amqp091",
        "dest_protocol": "amqp091",
        "dest_uri": "amqp:///a",
        "src_queue": "src",
        "dest_queue": "dst",
    },
]

FILES = """\
version: 1
vhosts:
  a:
    queues:
      src: {monitor: {consumers: off}}
      dst: {monitor: {consumers: off}}
    shovels:
      good:
        source: {uri: "amqp:///a", queue: src}
        destination: {uri: "amqp:///a", queue: dst}
      bad:
        source: {uri: "amqp:///a", queue: src}
        destination: {uri: "amqp://localhost:1/a", queue: dst}
      badx:
        source: {uri: "amqp:///a", exchange: nope}
        destination: {uri: "amqp:///a", queue: dst}
      one-off:
        source: {uri: "amqp:///a", queue: src, delete-after: queue-length}
        destination: {uri: "amqp:///a", queue: dst}
      never-made:
        source: {uri: "amqp:///a", queue: src}
        destination: {uri: "amqp:///a", queue: dst}
"""


class Listing:
    """The two listings status reads: the queues (none have figures worth checking here) and the shovels."""

    def __init__(self, shovels: Any) -> None:
        self.shovels = shovels

    def list_queues(self, vhost: str, params: Mapping[str, str]) -> Any:
        figures = {"messages": 0, "messages_unacknowledged": 0, "consumers": 0}
        return [{"name": "src", **figures}, {"name": "dst", **figures}]

    def list_shovels(self, vhost: str) -> Any:
        assert vhost == "a"
        return self.shovels


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # the place in the golden files is portable
    Path("links.yaml").write_text(FILES)
    return Path("links.yaml")


def test_a_declared_shovel_is_critical_unless_it_runs(files: Path) -> None:
    report = status(Listing(LISTED), load(files), window=30, now=0)
    found = {s.shovel: (s.state, s.shown, s.note) for s in report.shovels}
    assert found == {
        "bad": (State.CRITICAL, "starting", None),
        "badx": (State.CRITICAL, "terminated", "reason: needed a restart"),
        "good": (State.OK, "running", None),
        "never-made": (State.CRITICAL, "missing on the broker", None),
        "one-off": (State.OK, "gone (done)", "it has delete-after: it deletes itself once done"),
    }
    assert report.state == State.CRITICAL
    text = render_text(report)
    check_golden("monitor/status-shovels.txt", text)
    assert "amqp" not in text  # no URI, even those the listing shows
    data = json.loads(render_json(report))
    assert [(s["shovel"], s["state"]) for s in data["shovels"]][:2] == [("bad", "CRITICAL"), ("badx", "CRITICAL")]
    assert 'topo_shovel_check_state{vhost="a",shovel="good",check="running"} 0' in render_prometheus(report)


def test_without_the_shovel_management_plugin_the_check_is_unknown(files: Path) -> None:
    report = status(Listing(None), load(files), window=30, now=0)
    assert {s.state for s in report.shovels} == {State.UNKNOWN}
    assert "rabbitmq_shovel_management" in (report.shovels[0].note or "")


def test_a_report_without_shovels_says_nothing_of_them(tmp_path: Path) -> None:
    path = tmp_path / "q.yaml"
    path.write_text("version: 1\nvhosts:\n  a:\n    queues:\n      src: {monitor: {consumers: off}}\n")
    report = status(Listing(LISTED), load(path), window=30, now=0)
    assert report.shovels == ()
    assert "shovel" not in render_text(report) and "shovel" not in render_prometheus(report)
