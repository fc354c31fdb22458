"""The runtime's metrics, `client.health()`, `topo health` and the Prometheus exposition, against the
broker (issue 12.4). Every count is checked against what the test did."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from rt_helpers import declare, make_topology, run, settled_depth

from topo.cli import _register
from topo.cli.common import run as run_cli
from topo.errors import UsageError
from topo.model import Binding, Exchange, Queue, Topology
from topo.runtime import Message, UnroutableError, connect
from topo.runtime.metrics import RuntimeMetrics


def layout(vhost: str) -> Topology:
    return make_topology(
        vhost,
        exchanges=[Exchange("events", "topic"), Exchange("dlx", "fanout")],
        queues=[
            Queue("orders", arguments={"x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": "orders"}),
            Queue("orders.dead"),  # a dead-letter queue: needs no consumer
            Queue("audit"),
        ],
        bindings=[
            Binding("events", "orders", routing_key="order.*"),
            Binding("events", "audit", routing_key="order.#"),
            Binding("dlx", "orders.dead"),
        ],
    )


def test_the_counters_are_what_the_client_did(amqp_url: str, vhost: str) -> None:
    topology = layout(vhost)
    run(declare(topology, vhost, amqp_url))

    async def main() -> RuntimeMetrics:
        async with connect(topology, vhost=vhost, url=amqp_url) as client:
            assert client.metrics() == RuntimeMetrics(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, None, 0, True, {})
            for n in range(5):
                await client.publish("events", "order.new", {"n": n})  # to orders and audit
            # the files say it routes; the broker lacks the binding: returned
            client.topology.vhost(vhost).add_binding(Binding("events", "orders", routing_key="x.*"))
            with pytest.raises(UnroutableError):
                await client.publisher("events", check_routing=False).publish("x.y", {})
            async with client.consume("orders", prefetch=10) as messages:
                got: list[Message] = []
                while len(got) < 5:
                    message = await messages.get(timeout=10)
                    assert message is not None
                    got.append(message)
                for m in got[:3]:
                    await m.ack()
                await got[3].reject(requeue=False)  # dead-lettered by the broker
                await got[4].nack(requeue=True)
                again = await messages.get(timeout=10)
                assert again is not None and again.redelivered
                await again.ack()
            metrics = client.metrics()
            assert metrics.queues == {}  # no subscription: per-queue figures are the handlers'
            return metrics

    metrics = run(main())
    assert (metrics.published, metrics.confirmed, metrics.returned, metrics.nacked) == (6, 5, 1, 0)
    assert metrics.unconfirmed == 0
    assert (metrics.delivered, metrics.acked, metrics.rejected, metrics.requeued) == (6, 4, 1, 1)
    assert metrics.reconnections == 0 and metrics.blocked is None
    assert run(settled_depth(amqp_url, vhost, "orders.dead", 1)) == 1


def test_a_subscription_counts_per_queue(amqp_url: str, vhost: str) -> None:
    topology = layout(vhost)
    run(declare(topology, vhost, amqp_url))

    def handler(message: Message) -> None:
        if message.json()["n"] % 3 == 0:
            raise ValueError("multiple of three")

    async def main() -> None:
        async with connect(topology, vhost=vhost, url=amqp_url) as client:
            for n in range(9):
                await client.publish("events", "order.new", {"n": n})
            await client.subscribe("orders", handler)
            deadline = asyncio.get_running_loop().time() + 20
            while client.metrics().queues.get("orders") is None or client.metrics().queues["orders"].handled < 6:
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.02)
            assert await settled_depth(amqp_url, vhost, "orders.dead", 3) == 3
            orders = client.metrics().queues["orders"]
            assert (orders.handled, orders.failed, orders.dead_lettered, orders.retried) == (6, 3, 3, 0)
            assert orders.processing.count == 9 and orders.breaker is None

    run(main())


def test_health_says_which_queue_lacks_consumers_and_which_is_missing(amqp_url: str, vhost: str) -> None:
    topology = layout(vhost)
    run(declare(make_topology(vhost, queues=[Queue("orders"), Queue("orders.dead")]), vhost, amqp_url))  # no audit

    async def main() -> None:
        async with connect(topology, vhost=vhost, url=amqp_url) as client:
            health = await client.health()
            assert not health.healthy and health.connected
            by_name = {q.queue: q for q in health.queues}
            assert set(by_name) == {"orders", "orders.dead", "audit"}
            assert by_name["audit"].problem == "missing on the broker" and not by_name["audit"].exists
            assert by_name["orders"].problem == "0 consumers, needs at least 1"
            assert by_name["orders.dead"].healthy and by_name["orders.dead"].required_consumers is None
            assert "queue 'orders': 0 consumers, needs at least 1" in health.problems

            await client.subscribe("orders", lambda m: None, verify=False)
            health = await client.health(["orders", "orders.dead"])
            assert health.healthy, health.problems
            assert [q.consumers for q in health.queues] == [1, 0]

    run(main())


@pytest.fixture
def files(tmp_path: Path, vhost: str, amqp_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "t.yaml").write_text(
        f"""version: 1
vhosts:
  "{vhost}":
    exchanges:
      dlx: {{type: fanout}}
    queues:
      work:
        dead-letter-exchange: dlx
      work.dead:
        bindings: [{{exchange: dlx}}]
      quiet:
        monitor: {{consumers: off}}
""",
        encoding="utf-8",
    )
    from topo.loader import load

    run(declare(load([tmp_path]), vhost, amqp_url))
    monkeypatch.setenv("TOPO_AMQP_URL", amqp_url)
    _register()
    return tmp_path


def test_topo_health_exit_codes(files: Path, vhost: str, amqp_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["health", str(files), "--vhost", vhost]
    assert run_cli(base) == 1  # `work` has no consumer
    out = capsys.readouterr().out
    assert out.startswith("UNHEALTHY: amqp://***@") and "queue 'work': 0 consumers, needs at least 1" in out
    assert "guest" not in out

    from topo.loader import load

    topology = load([files])

    async def with_a_consumer() -> None:
        async with connect(topology, vhost=vhost, url=amqp_url) as client:
            await client.subscribe("work", lambda m: None)
            code = await asyncio.to_thread(run_cli, base)
            assert code == 0
            code = await asyncio.to_thread(run_cli, [*base, "--format", "json"])
            assert code == 0

    run(with_a_consumer())
    captured = capsys.readouterr().out
    assert captured.startswith("HEALTHY: ")
    report = json.loads(captured[captured.index("{") :])
    assert report["healthy"] is True and report["problems"] == []
    assert {q["queue"]: q["required_consumers"] for q in report["queues"]} == {
        "quiet": None,
        "work": 1,
        "work.dead": None,
    }
    assert run_cli([*base, "--queue", "quiet"]) == 0  # no consumers needed there
    capsys.readouterr()
    assert run_cli([*base, "--queue", "nope"]) == 1  # not declared: an error, exit 1
    assert "queue 'nope' is not declared" in capsys.readouterr().err
    refused = ["health", str(files), "--vhost", vhost, "--amqp-url", "amqp://guest:guest@127.0.0.1:1/"]
    assert run_cli(refused) == 1
    assert capsys.readouterr().out.startswith("UNHEALTHY: amqp://***@127.0.0.1:1/")


def test_topo_health_as_a_process_never_exits_2(files: Path, vhost: str) -> None:
    """Docker's HEALTHCHECK reserves 2: a usage error exits 1 too."""
    topo = Path(sys.executable).parent / "topo"
    done = subprocess.run([str(topo), "health", str(files)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "--vhost" in done.stderr


def test_prometheus_exposition_passes_promtool(amqp_url: str, vhost: str, tmp_path: Path) -> None:
    pytest.importorskip("prometheus_client")
    from topo.model import CircuitBreaker
    from topo.runtime.prometheus import exposition, register

    topology = make_topology(vhost, queues=[Queue("jobs", circuit_breaker=CircuitBreaker(5, 30_000))])
    run(declare(topology, vhost, amqp_url))

    async def main() -> str:
        async with connect(topology, vhost=vhost, url=amqp_url, name="worker-1") as client:
            for n in range(3):
                await client.publish("", "jobs", {"n": n})
            handled: list[int] = []
            await client.subscribe("jobs", lambda m: handled.append(1))
            while len(handled) < 3:
                await asyncio.sleep(0.02)
            from prometheus_client import CollectorRegistry, generate_latest

            registry = CollectorRegistry()
            register(client, registry)
            assert b"topo_runtime_messages_published_total" in generate_latest(registry)
            return exposition(client)

    text = run(main())
    from prometheus_client.parser import text_string_to_metric_families

    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted({"connection": "worker-1", "vhost": vhost, **labels}.items())))]

    assert value("topo_runtime_messages_published_total") == 3
    assert value("topo_runtime_messages_confirmed_total") == 3
    assert value("topo_runtime_connected") == 1
    assert value("topo_runtime_handler_calls_total", queue="jobs", result="success") == 3
    assert value("topo_runtime_handler_calls_total", queue="jobs", result="failure") == 0
    assert value("topo_runtime_handler_duration_seconds_count", queue="jobs") == 3
    assert value("topo_runtime_handler_duration_seconds_bucket", queue="jobs", le="+Inf") == 3
    assert value("topo_runtime_circuit_breaker_state", queue="jobs") == 0
    assert value("topo_runtime_circuit_breaker_trips_total", queue="jobs") == 0
    promtool = "/usr/bin/promtool"
    if not Path(promtool).exists():
        pytest.skip("promtool is not installed (Debian package prometheus)")
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_without_prometheus_client_the_runtime_works_and_the_exporter_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # `import prometheus_client` fails
    from topo.runtime import prometheus

    client = connect(make_topology("v", queues=[Queue("q")]), vhost="v", url="amqp://guest:guest@127.0.0.1:1/")
    assert client.metrics().published == 0  # the metrics API needs nothing more
    with pytest.raises(UsageError, match="prometheus-client") as info:
        prometheus.exposition(client)
    assert info.value.hint == "install topo's extra: pip install 'topo[prometheus]'"


def test_importing_the_runtime_does_not_import_prometheus_client() -> None:
    code = "import sys, topo.runtime, topo.runtime.prometheus; print('prometheus_client' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr
