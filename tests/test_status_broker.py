"""``topo status`` and ``topo alerts`` against a real RabbitMQ node.

The node is this module's own (the session's broker has neither the Prometheus plugin nor fast
statistics): ``rabbitmq_prometheus`` on a free loopback port, statistics collected every second and
sampled every second (``collect_statistics_interval``, ``management.sample_retention_policies``), so a
condition shows within seconds. Every test waits on the condition it needs with a deadline (the
statistics lag), never a fixed sleep.

Scenarios, as the production checklist's table says: a queue filled past its warning and critical
levels of ``max-length`` (also from a policy), consumers dropping below the minimums, unacknowledged
messages, messages dead-lettered (and a queue whose messages are not), a message older than its level,
a publish rate, queues and vhosts missing; each with its state, figure and exit code.
"""

from __future__ import annotations

import json
import os
import pty
import secrets
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pika
import pytest
from monitor_support import promtool_test, run_promtool, scraped_series, series_selector

import devbroker
from topo.broker.client import ManagementClient
from topo.cli import _register
from topo.cli.common import run
from topo.loader import load
from topo.monitor.alerts import FAMILIES, render_rules
from topo.monitor.figures import ManagementQueues
from topo.monitor.status import status

pytestmark = pytest.mark.timeout(300)

DEADLINE = 40.0  # seconds to wait for the statistics to show a condition


class Node:
    def __init__(self, node: devbroker.Node, prometheus_port: int) -> None:
        self.node = node
        self.url = node.url
        self.prometheus = f"http://127.0.0.1:{prometheus_port}"
        self.http = httpx.Client(base_url=node.url.replace("guest:guest@", ""), auth=("guest", "guest"), timeout=30)

    def amqp(self, vhost: str) -> pika.BlockingConnection:
        return pika.BlockingConnection(pika.URLParameters(self.node.amqp_url.rstrip("/") + "/" + quote(vhost, safe="")))


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    try:
        devbroker.find_executable("rabbitmq-server")
    except devbroker.DevBrokerError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"no test broker: {exc.message}", pytrace=False)
        pytest.skip(f"no test broker: {exc.message}")
    port = devbroker.free_port()
    extra = (
        "collect_statistics_interval = 1000\n"
        "management.sample_retention_policies.global.minute = 1\n"
        "management.sample_retention_policies.basic.minute = 1\n"
        "management.sample_retention_policies.detailed.10 = 1\n"
        f"prometheus.tcp.port = {port}\n"
        "prometheus.tcp.ip = 127.0.0.1\n"
    )
    started = devbroker.start(
        tmp_path_factory.mktemp("monitor-node"),
        extra_config=extra,
        plugins=["rabbitmq_prometheus"],
        owner_pid=os.getpid(),
    )
    wrapper = Node(started, port)
    try:
        yield wrapper
    finally:
        wrapper.http.close()
        started.stop()


@pytest.fixture(autouse=True)
def _commands(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TOPO_URL", "TOPO_DEBUG", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    _register()


@pytest.fixture
def vhost(request: pytest.FixtureRequest) -> str:
    return f"m-{request.node.name[5:25].replace('[', '-').replace(']', '')}-{secrets.token_hex(3)}"


Status = Callable[..., tuple[int, dict[str, Any]]]


@pytest.fixture
def apply_and_status(
    node: Node, vhost: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Iterator[Callable[[str], Status]]:
    """``apply_and_status(queues_yaml)`` applies a topology of one vhost and returns ``status(window)``:
    (exit code, the JSON report) of ``topo status --format json``."""
    created: list[str] = []

    def setup(body: str) -> Status:
        file = tmp_path / "topology.yaml"
        file.write_text(f"version: 1\nvhosts:\n  {vhost}:\n{body}", encoding="utf-8")
        assert run(["apply", str(file), "--url", node.url, "--yes"]) == 0, capsys.readouterr()
        capsys.readouterr()
        created.append(vhost)

        def check(window: str = "30s", *extra: str) -> tuple[int, dict[str, Any]]:
            code = run(["status", str(file), "--url", node.url, "--format", "json", "--window", window, *extra])
            out, err = capsys.readouterr()
            assert err == "", err
            return code, json.loads(out)

        return check

    yield setup
    for name in created:
        node.http.delete(f"/api/vhosts/{quote(name, safe='')}")


def result(report: dict[str, Any], queue: str, check: str) -> dict[str, Any]:
    q = next(q for q in report["queues"] if q["queue"] == queue)
    return next(c for c in q["checks"] if c["check"] == check)


def wait(
    check: Status, queue: str, name: str, state: str, *args: str, figure: str | None = None
) -> tuple[int, dict[str, Any]]:
    """Poll status until the check is in ``state`` (and shows ``figure``): the statistics lag, and what
    the broker counts in different processes shows up a sample apart. Fail with the last report."""
    deadline = time.monotonic() + DEADLINE
    while True:
        code, report = check(*args)
        found = result(report, queue, name)
        if found["state"] == state and figure in (None, found["figure"]):
            return code, report
        if time.monotonic() > deadline:
            pytest.fail(f"{queue} {name} never became {state}: {json.dumps(result(report, queue, name))}")
        time.sleep(0.5)


def publish(node: Node, vhost: str, queue: str, count: int, **properties: Any) -> None:
    connection = node.amqp(vhost)
    channel = connection.channel()
    channel.confirm_delivery()
    for _ in range(count):
        channel.basic_publish("", queue, b"m", pika.BasicProperties(**properties))
    connection.close()


# -- the table's rows ---------------------------------------------------------------------------------------


def test_depth_against_max_length_and_a_policy(node: Node, vhost: str, apply_and_status: Any) -> None:
    check = apply_and_status(
        """    queues:
      work:
        max-length: 10
        overflow: reject-publish
        monitor: {consumers: off, unacked: off}
      capped:
        monitor: {consumers: off, unacked: off}
    policies:
      cap: {pattern: "^capped$", apply-to: queues, definition: {max-length: 4, overflow: reject-publish}}
"""
    )
    code, report = wait(check, "work", "depth", "OK")
    assert code == 0 and report["state"] == "OK"
    assert result(report, "capped", "depth")["figure"] == "0 ready of max-length 4 (0%)"
    publish(node, vhost, "work", 6)
    code, report = wait(check, "work", "depth", "WARNING")
    assert code == 1 and result(report, "work", "depth")["figure"] == "6 ready of max-length 10 (60%)"
    publish(node, vhost, "work", 3)
    publish(node, vhost, "capped", 4)
    code, report = wait(check, "work", "depth", "CRITICAL")
    assert code == 2 and result(report, "work", "depth")["figure"] == "9 ready of max-length 10 (90%)"
    _, report = wait(check, "capped", "depth", "CRITICAL")
    assert result(report, "capped", "depth")["figure"] == "4 ready of max-length 4 (100%)"


def test_consumers_below_the_minimums(node: Node, vhost: str, apply_and_status: Any) -> None:
    check = apply_and_status("    queues:\n      jobs: {monitor: {unacked: off}}\n")
    connections = []
    for _ in range(2):
        connection = node.amqp(vhost)
        connection.channel().basic_consume("jobs", lambda *args: None)
        connections.append(connection)
    code, report = wait(check, "jobs", "consumers", "OK")
    assert code == 0 and result(report, "jobs", "consumers")["figure"] == "2"
    connections.pop().close()
    code, report = wait(check, "jobs", "consumers", "WARNING")
    assert code == 1 and result(report, "jobs", "consumers")["warning"]["text"] == "< 2"
    connections.pop().close()
    code, report = wait(check, "jobs", "consumers", "CRITICAL")
    assert code == 2 and result(report, "jobs", "consumers")["figure"] == "0"


def test_unacknowledged_messages(node: Node, vhost: str, apply_and_status: Any) -> None:
    check = apply_and_status(
        "    queues:\n      slow: {monitor: {consumers: off, unacked: {warning: 10, critical: 100}}}\n"
    )
    publish(node, vhost, "slow", 15)
    connection = node.amqp(vhost)
    channel = connection.channel()
    channel.basic_qos(prefetch_count=50)
    channel.basic_consume("slow", lambda *args: None)  # never acks
    try:
        code, report = wait(check, "slow", "unacked", "WARNING")
        assert code == 1 and result(report, "slow", "unacked")["figure"] == "15"
    finally:
        connection.close()


def test_dead_letters_against_published(node: Node, vhost: str, apply_and_status: Any) -> None:
    check = apply_and_status(
        """    exchanges:
      dlx: {type: fanout}
      dlx2: {type: fanout}
    queues:
      orders: {dead-letter-exchange: dlx, monitor: {consumers: off, unacked: off}}
      orders.dlq: {bindings: [{exchange: dlx}]}
      clean: {dead-letter-exchange: dlx2, monitor: {consumers: off, unacked: off}}
      clean.dlq: {bindings: [{exchange: dlx2}]}
"""
    )
    publish(node, vhost, "orders", 20)
    publish(node, vhost, "clean", 20)
    connection = node.amqp(vhost)
    channel = connection.channel()
    for n in range(20):
        method, _props, _body = channel.basic_get("orders")
        assert method is not None
        if n < 5:
            channel.basic_reject(method.delivery_tag, requeue=False)
        else:
            channel.basic_ack(method.delivery_tag)
        method, _props, _body = channel.basic_get("clean")
        assert method is not None
        channel.basic_ack(method.delivery_tag)
    connection.close()
    figure = "25% (5 dead-lettered of 20 published)"
    code, report = wait(check, "orders", "dead-letter-rate", "CRITICAL", figure=figure)
    assert code == 2
    _, report = wait(check, "clean", "dead-letter-rate", "OK", figure="0% (0 dead-lettered of 20 published)")
    clean = result(report, "clean", "dead-letter-rate")
    assert clean["state"] == "OK" and clean["figure"] == "0% (0 dead-lettered of 20 published)", clean
    dlq = next(q for q in report["queues"] if q["queue"] == "orders.dlq")
    assert dlq["role"] == "dead-letter" and [c["check"] for c in dlq["checks"]] == ["unacked"]


def test_message_age_and_publish_rate(node: Node, vhost: str, apply_and_status: Any) -> None:
    check = apply_and_status(
        """    queues:
      aged:
        monitor:
          consumers: off
          message-age: {warning: 1m, critical: 1h}
          publish-rate: {warning: 0.1, critical: 100}
      untimed: {monitor: {consumers: off, message-age: {warning: 1m}}}
"""
    )
    publish(node, vhost, "aged", 6, timestamp=int(time.time()) - 120)
    publish(node, vhost, "untimed", 1)
    code, report = wait(check, "aged", "message-age", "WARNING")
    assert result(report, "aged", "message-age")["figure"].startswith("2m")
    _, report = wait(check, "aged", "publish-rate", "WARNING")
    assert result(report, "aged", "publish-rate")["figure"] == "0.2/s"  # 6 messages over the last 30 s
    untimed = result(report, "untimed", "message-age")
    assert untimed["state"] == "UNKNOWN" and "timestamp property" in untimed["note"]
    assert code == 1 and report["state"] == "WARNING"  # WARNING outranks UNKNOWN


def test_missing_queues_and_vhosts(node: Node, vhost: str, apply_and_status: Any, tmp_path: Path) -> None:
    check = apply_and_status("    queues:\n      here: {monitor: {consumers: off}}\n      gone: {}\n")
    node.http.delete(f"/api/queues/{quote(vhost, safe='')}/gone").raise_for_status()
    code, report = check()
    assert code == 2
    gone = next(q for q in report["queues"] if q["queue"] == "gone")
    assert not gone["present"] and gone["checks"][0] == {
        "check": "exists",
        "state": "CRITICAL",
        "figure": "missing on the broker",
        "values": {},
        "warning": None,
        "critical": None,
        "note": None,
    }
    nowhere = tmp_path / "nowhere.yaml"
    nowhere.write_text("version: 1\nvhosts:\n  never-created:\n    queues: {a: {}, b: {}}\n")
    assert run(["status", str(nowhere), "--url", node.url]) == 2


def test_text_and_prometheus_formats_live(
    node: Node, vhost: str, apply_and_status: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check = apply_and_status("    queues:\n      q: {}\n")
    wait(check, "q", "consumers", "CRITICAL")  # a new queue's figures come with the next statistics
    file = str(tmp_path / "topology.yaml")
    assert run(["status", file, "--url", node.url]) == 2  # no consumers
    text = capsys.readouterr().out
    assert text.startswith("CRITICAL: 1 critical, 0 warning, 0 unknown, 1 ok checks on 1 queue in 1 vhost\n")
    assert run(["status", file, "--url", node.url, "--format", "prometheus"]) == 2
    exposition = capsys.readouterr().out
    checked = run_promtool("check", "metrics", stdin=exposition)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f'topo_queue_check_state{{vhost="{vhost}",queue="q",check="consumers"}} 2' in exposition


def test_requests_stay_bounded_whatever_the_number_of_queues(node: Node, vhost: str, tmp_path: Path) -> None:
    names = [f"q{i:04d}" for i in range(1200)]
    node.http.put(f"/api/vhosts/{vhost}").raise_for_status()
    try:
        node.http.post(
            f"/api/definitions/{vhost}",
            json={"queues": [{"name": n, "durable": True, "auto_delete": False, "arguments": {}} for n in names]},
        ).raise_for_status()
        file = tmp_path / "many.yaml"
        body = "".join(f"      {n}: {{}}\n" for n in names)
        file.write_text(f"version: 1\nvhosts:\n  {vhost}:\n    queues:\n{body}", encoding="utf-8")
        topology = load(file)
        with ManagementClient(node.url, amqp_url="") as client:
            report = status(ManagementQueues(client), topology, window=30)
            assert client.requests == 1
            assert len(report.queues) == 1200 and all(q.present for q in report.queues)
            before = client.requests
            paged = status(ManagementQueues(client), topology, window=30, page_size=500)
            assert client.requests - before == 3  # ceil(1200 / 500)
            assert all(q.present for q in paged.queues)
    finally:
        node.http.delete(f"/api/vhosts/{vhost}")


# -- the alert rules against the real plugin's metrics -------------------------------------------------------


def test_alert_rules_fire_on_the_node_s_own_series(
    node: Node, vhost: str, apply_and_status: Any, tmp_path: Path
) -> None:
    """The rules evaluated by promtool on series named and labelled exactly as this node exposes them
    (scraped from /metrics/detailed), with values set for the scenario."""
    apply_and_status(
        """    exchanges:
      dlx: {type: fanout}
    queues:
      work: {max-length: 100, dead-letter-exchange: dlx}
      work.dlq: {bindings: [{exchange: dlx}]}
"""
    )
    connection = node.amqp(vhost)
    # Published from a channel that stays open until the scrape: RabbitMQ drops a channel's
    # per-queue publish counters (channel_queue_exchange_metrics) when the channel closes.
    publisher = connection.channel()
    publisher.confirm_delivery()
    for _ in range(90):
        publisher.basic_publish("", "work", b"m")
    channel = connection.channel()
    method, _props, _body = channel.basic_get("work")
    channel.basic_reject(method.delivery_tag, requeue=False)
    channel.basic_consume("work.dlq", lambda *args: None)  # a consumer channel: its counters are scraped
    params = [("vhost", vhost)] + [("family", f) for f in FAMILIES]
    deadline = time.monotonic() + DEADLINE
    while True:  # until every metric family the rules read shows this vhost's queues
        scrape = httpx.get(f"{node.prometheus}/metrics/detailed", params=params, timeout=30).text
        names = {name for name, labels, _ in scraped_series(scrape) if vhost in labels.values()}
        wanted = {
            "rabbitmq_detailed_queue_messages_ready",
            "rabbitmq_detailed_queue_consumers",
            "rabbitmq_detailed_queue_messages_published_total",
            "rabbitmq_detailed_channel_messages_acked_total",
        }
        if wanted <= names:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"the node never exposed {sorted(wanted - names)} for {vhost}")
        time.sleep(0.5)
    connection.close()
    checked = run_promtool("check", "metrics", stdin=scrape)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    def values(name: str, labels: dict[str, str], value: str) -> str:
        """The scenario, whatever the figures were at the scrape: work holds 89 ready messages of 100
        and has no consumer; 10 messages a minute are published to it and 1 reaches work.dlq (10 %)."""
        queue = labels.get("queue")
        scenario = {
            ("queue_messages_ready", "work"): "89x20",
            ("queue_consumers", "work"): "0x20",
            ("queue_messages_published_total", "work"): "0+10x20",
            ("queue_messages", "work.dlq"): "0+1x20",
        }
        for (suffix, name_of_queue), values in scenario.items():
            if name.endswith(suffix) and queue == name_of_queue:
                return values
        return "_x20" if value == "NaN" else f"{value}x20"

    series = [
        {"series": series_selector(name, labels), "values": values(name, labels, value)}
        for name, labels, value in scraped_series(scrape)
        if name.startswith("rabbitmq_detailed_") and vhost in labels.values()
    ]
    expected = {
        "TopoQueueDepth": [
            {"vhost": vhost, "queue": "work", "severity": "warning", "check": "depth"},
            {"vhost": vhost, "queue": "work", "severity": "critical", "check": "depth"},
        ],
        "TopoQueueConsumers": [
            {"vhost": vhost, "queue": "work", "severity": "warning", "check": "consumers"},
            {"vhost": vhost, "queue": "work", "severity": "critical", "check": "consumers"},
        ],
        "TopoQueueDeadLetterRate": [
            {
                "vhost": vhost,
                "queue": "work",
                "severity": s,
                "check": "dead-letter-rate",
                "dead_letter_queue": "work.dlq",
            }
            for s in ("warning", "critical")
        ],
        "TopoQueuesMissing": [],
    }
    rules_text = render_rules(load(tmp_path / "topology.yaml"))
    done = promtool_test(tmp_path, rules_text, series, expected)
    assert done.returncode == 0, done.stdout + done.stderr


# -- --watch, as a process ---------------------------------------------------------------------------------


def _watch(node: Node, file: Path, terminal: bool) -> tuple[int, str]:
    """Run `topo status FILE --watch --interval 1s` until two whole rounds are shown, then Ctrl-C (SIGINT).

    A round is whole once its table's last row (the `unacked` check) is out: a round's screen-clear and
    header come first, so counting those would interrupt the second round before its table is printed.
    """
    command = [sys.executable, "-c", "from topo.cli import main; main()", "status", str(file), "--url", node.url]
    command += ["--watch", "--interval", "1s"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOPO_") and k != "NO_COLOR"}
    main_fd, secondary = pty.openpty() if terminal else os.pipe()
    process = subprocess.Popen(command, stdout=secondary, stderr=subprocess.DEVNULL, env=env)
    os.close(secondary)
    seen = b""
    marker = b"\x1b[H\x1b[2J" if terminal else b"--- "
    deadline = time.monotonic() + DEADLINE
    try:
        while (seen.count(marker) < 2 or seen.count(b"unacked") < 2) and time.monotonic() < deadline:
            ready, _, _ = select.select([main_fd], [], [], 1)
            if ready:
                try:
                    chunk = os.read(main_fd, 65536)
                except OSError:  # the pty closes with the process
                    break
                if not chunk:
                    break
                seen += chunk
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(main_fd)
    return code, seen.decode(errors="replace")


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "pipe"])
def test_watch_refreshes_until_interrupted(
    node: Node, vhost: str, apply_and_status: Any, tmp_path: Path, terminal: bool
) -> None:
    check = apply_and_status("    queues:\n      q: {}\n")
    wait(check, "q", "consumers", "CRITICAL")
    code, output = _watch(node, tmp_path / "topology.yaml", terminal)
    assert code == 2  # the last round's state: no consumers
    rounds = output.count("CRITICAL: 1 critical")
    assert rounds >= 2, output
    if terminal:
        assert output.count("\x1b[H\x1b[2J(every 1 s; ") >= 2
    else:
        assert "\x1b" not in output and output.startswith("--- ")
