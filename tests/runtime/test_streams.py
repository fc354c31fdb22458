"""Consuming a declared stream: where to start reading (``offset``), and misuse caught before any I/O."""

from __future__ import annotations

import asyncio
import datetime
import json
from pathlib import Path
from typing import Any

import pytest
from rt_helpers import declare, force_close, make_topology, run

from topo.cli import _register
from topo.cli.common import run as cli_run
from topo.errors import UsageError
from topo.model import Queue, Topology
from topo.runtime import connect, connect_sync


def stream_layout(vhost: str) -> Topology:
    return make_topology(vhost, queues=[Queue("events", type="stream"), Queue("jobs")])


@pytest.fixture
def topology(amqp_url: str, vhost: str) -> Topology:
    t = stream_layout(vhost)
    run(declare(t, vhost, amqp_url))
    return t


async def _fill(topology: Topology, vhost: str, amqp_url: str, count: int) -> None:
    async with connect(topology, vhost=vhost, url=amqp_url) as client:
        publisher = client.publisher("")
        for i in range(count):
            await publisher.publish("events", {"i": i})


async def _read(client: Any, count: int, **options: Any) -> list[Any]:
    got = []
    async with client.consume("events", prefetch=10, **options) as messages:
        while len(got) < count:
            message = await messages.get(3)
            if message is None:
                break
            got.append(message)
            await message.ack()
    return got


def test_offsets_first_number_last_and_the_default_next(topology: Topology, amqp_url: str, vhost: str) -> None:
    run(_fill(topology, vhost, amqp_url, 5))

    async def main() -> None:
        async with connect(topology, vhost=vhost, url=amqp_url) as client:
            first = await _read(client, 5, offset="first")
            assert [m.json()["i"] for m in first] == [0, 1, 2, 3, 4]
            assert [m.headers["x-stream-offset"] for m in first] == [0, 1, 2, 3, 4]
            from_two = await _read(client, 3, offset=2)
            assert [m.json()["i"] for m in from_two] == [2, 3, 4]
            past = await _read(client, 5, offset=datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1))
            assert [m.json()["i"] for m in past] == [0, 1, 2, 3, 4]
            # "next", the broker's default: only what is published from now on
            assert await _read(client, 1) == []

    run(main())


def test_a_failing_handler_on_a_stream_is_acked_not_rejected(topology: Topology, amqp_url: str, vhost: str) -> None:
    # RabbitMQ answers a reject or nack on a stream by closing the connection (540 NOT_IMPLEMENTED).
    run(_fill(topology, vhost, amqp_url, 3))

    async def main() -> None:
        async with connect(topology, vhost=vhost, url=amqp_url) as client:
            seen = []

            def handler(message: Any) -> None:
                seen.append(message.json()["i"])
                if message.json()["i"] == 1:
                    raise ValueError("boom")

            subscription = await client.subscribe("events", handler, offset="first", prefetch=5)
            for _ in range(100):
                if len(seen) == 3:
                    break
                await asyncio.sleep(0.05)
            await subscription.cancel()
            assert seen == [0, 1, 2] and subscription.failed == 1 and subscription.handled == 2
            (message,) = await _read(client, 1, offset="last")  # the same connection still works
            assert message.from_stream
            with pytest.raises(UsageError, match="cannot be rejected or requeued"):
                await message.nack()
            with pytest.raises(UsageError, match="cannot be rejected or requeued"):
                await message.reject()
            assert client.connection.is_open

    run(main())


def test_sync_consume_takes_an_offset(topology: Topology, amqp_url: str, vhost: str) -> None:
    run(_fill(topology, vhost, amqp_url, 3))
    with connect_sync(topology, vhost=vhost, url=amqp_url) as client:
        got = []
        for message in client.consume("events", count=3, timeout=3, offset="first", prefetch=10):
            got.append(message.json()["i"])
            message.ack()
    assert got == [0, 1, 2]


def test_misuse_fails_before_any_io(topology: Topology) -> None:
    vhost = next(iter(topology.vhosts))
    client = connect(topology, vhost=vhost, url="amqp://guest:guest@127.0.0.1:1/")  # nothing listens there
    with pytest.raises(UsageError, match="offset applies to streams, and queue 'jobs' is a classic queue"):
        client.consume("jobs", offset="first")
    with pytest.raises(UsageError, match="'yesterday' is not one RabbitMQ reads") as info:
        client.consume("events", offset="yesterday")
    assert info.value.hint and "7D" in info.value.hint
    with pytest.raises(UsageError, match="-1 is not an offset"):
        client.consume("events", offset=-1)
    with pytest.raises(UsageError, match="cannot be consumed with no_ack"):
        client.consume("events", no_ack=True)
    client.consume("events", offset="7D")  # an interval: accepted


def test_cli_consume_offset(
    topology: Topology, amqp_url: str, vhost: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run(_fill(topology, vhost, amqp_url, 3))
    (tmp_path / "t.yaml").write_text(f"version: 1\nvhosts:\n  {vhost}:\n    queues:\n      events: {{type: stream}}\n")
    _register()
    base = ["consume", str(tmp_path), "--vhost", vhost, "--queue", "events", "--amqp-url", amqp_url, "--timeout", "3"]
    assert cli_run([*base, "--offset", "1", "--count", "2"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["body"] for line in lines] == [{"i": 1}, {"i": 2}]
    assert cli_run([*base, "--offset", "2026-13-01T00:00:00"]) == 1
    err = capsys.readouterr().err
    assert "--offset '2026-13-01T00:00:00' is not a date-time" in err and "Traceback" not in err
    assert cli_run([*base, "--offset", "first", "--requeue"]) == 1
    assert "--requeue does not apply to stream 'events'" in capsys.readouterr().err


def test_a_stream_consumer_resumes_after_the_last_delivery_when_reconnected(
    topology: Topology, amqp_url: str, vhost: str, mgmt: Any
) -> None:
    """An operator closes the connection (320) mid-read; messages published meanwhile are not skipped
    (the default offset is "next") and none comes twice (the offset first given was "first")."""
    run(_fill(topology, vhost, amqp_url, 10))

    async def main() -> None:
        async with connect(topology, vhost=vhost, url=amqp_url, name="stream-reader") as client:
            got: list[int] = []
            async with client.consume("events", prefetch=10, offset="first") as messages:
                while len(got) < 5:
                    message = await messages.get(5)
                    assert message is not None
                    got.append(message.headers["x-stream-offset"])
                    await message.ack()
                await force_close(mgmt, vhost, "stream-reader")
                for _ in range(200):
                    if client.connection.is_open and client.connection.reconnects == 1:
                        break
                    await asyncio.sleep(0.05)
                assert client.connection.reconnects == 1
                await _fill(topology, vhost, amqp_url, 5)  # offsets 10-14, published after the loss
                while len(got) < 15:
                    message = await messages.get(5)
                    assert message is not None, f"stopped after {got}"
                    got.append(message.headers["x-stream-offset"])
                    await message.ack()
                assert await messages.get(1) is None  # nothing more: no repeats
            assert got == list(range(15))

    run(main())
