"""Exchanges of a plugin's type (x-consistent-hash, x-delayed-message, ...): declared, applied, routed.

The test node enables rabbitmq_consistent_hash_exchange (devbroker does for every node it starts);
rabbitmq_delayed_message_exchange is a community plugin that is not installed, which is what the
missing-type case needs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import wait_until

from topo import engine
from topo.broker.client import ManagementClient, enc
from topo.cli import _register
from topo.cli.common import run as cli_run
from topo.errors import MissingExchangeType
from topo.loader import load
from topo.runtime import connect

HASHED = """
version: 1
vhosts:
  "{vhost}":
    exchanges:
      orders: {{type: x-consistent-hash}}
    queues:
      shard-1: {{bindings: [{{exchange: orders, routing-key: "1"}}]}}
      shard-2: {{bindings: [{{exchange: orders, routing-key: "1"}}]}}
"""

DELAYED = """
version: 1
vhosts:
  "{vhost}":
    exchanges:
      later: {{type: x-delayed-message, arguments: {{x-delayed-type: direct}}}}
      now: {{type: direct}}
"""


def _has_type(mgmt: httpx.Client, kind: str) -> bool:
    types = mgmt.get("/api/overview", params={"columns": "exchange_types"}).json().get("exchange_types", [])
    return any(t.get("name") == kind for t in types)


def test_a_consistent_hash_exchange_is_applied_idempotently_and_published_to(
    broker: Any, vhost: str, mgmt: httpx.Client, tmp_path: Path
) -> None:
    if not _has_type(mgmt, "x-consistent-hash"):
        pytest.skip("this broker has no rabbitmq_consistent_hash_exchange plugin enabled")
    (tmp_path / "t.yaml").write_text(HASHED.format(vhost=vhost))
    topology = load(tmp_path)
    with ManagementClient(broker.url, amqp_url=broker.amqp_url) as client:
        engine.apply(client, topology)
        assert engine.plan(client, topology).empty  # no drift on the plugin's type
    assert mgmt.get(f"/api/exchanges/{enc(vhost)}/orders").json()["type"] == "x-consistent-hash"

    async def main() -> None:
        async with connect(topology, vhost=vhost, url=broker.amqp_url) as client:
            orders = client.publisher("orders")
            for i in range(40):  # routed offline as "any binding may be taken": never refused before I/O
                await orders.publish(f"order-{i}", {"i": i})

    asyncio.run(asyncio.wait_for(main(), 30))

    def counts() -> dict[str, int]:
        return {q: mgmt.get(f"/api/queues/{enc(vhost)}/{q}").json().get("messages", 0) for q in ("shard-1", "shard-2")}

    # the Management API's counts lag
    wait_until(lambda: sum(counts().values()) == 40, timeout=20, interval=0.1, what="40 messages in the shards")
    assert all(counts().values()), counts()  # each message went to one shard, and both shards got some


def test_a_type_the_broker_lacks_fails_the_plan_before_any_write(
    broker: Any, vhost: str, mgmt: httpx.Client, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if _has_type(mgmt, "x-delayed-message"):
        pytest.skip("this broker has the delayed-message plugin")
    (tmp_path / "t.yaml").write_text(DELAYED.format(vhost=vhost))
    with ManagementClient(broker.url, amqp_url=broker.amqp_url) as client:
        with pytest.raises(MissingExchangeType, match=r"no exchange type x-delayed-message \(for exchange") as info:
            engine.load_and_plan(client, [tmp_path])
        assert "rabbitmq_delayed_message_exchange" in (info.value.hint or "")
        assert client.writes == 0
    assert mgmt.get(f"/api/exchanges/{enc(vhost)}/now").status_code == 404
    _register()
    assert cli_run(["plan", str(tmp_path), "--url", broker.url]) == 1
    err = capsys.readouterr().err
    assert "the broker has no exchange type x-delayed-message" in err and "Traceback" not in err


def test_publishes_to_a_delayed_message_exchange_are_not_mandatory(tmp_path: Path) -> None:
    """The plugin routes after the delay, so the broker would return every mandatory message at once
    (rabbitmq-delayed-message-exchange#7): topo checks those offline only, with the x-delayed-type."""
    (tmp_path / "t.yaml").write_text(
        DELAYED.format(vhost="v") + "    queues:\n      q: {bindings: [{exchange: later, routing-key: k}]}\n"
    )
    client = connect(load(tmp_path), vhost="v", url="amqp://guest:guest@127.0.0.1:1/")  # no I/O below
    later = client.publisher("later")
    assert later.mandatory is False and client.publisher("now").mandatory is True
    assert later.route("k") == (None, True)
    reason, _ = later.route("other")
    assert reason is not None and "no binding of exchange 'later' matches routing key 'other'" in reason
