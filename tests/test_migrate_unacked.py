"""A migration (``topo apply --migrate``) while a consumer of the old queue holds messages it has not
acknowledged, on a real node: apply deletes the old queue only once the consumer holds none, moving what
it requeues into the new queue (a), finishing when it acknowledges them (b), and stopping before the
delete with a clear error when it holds them past ``--migrate-wait`` (c): nothing is lost, and the same
apply run again finishes the migration."""

from __future__ import annotations

import asyncio
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from test_migrate_broker import FILES, fill, read_all

from topo import engine
from topo.broker.client import ManagementClient
from topo.cli import _register
from topo.cli.common import run
from topo.runtime.connection import Connection
from topo.runtime.message import Message
from topo.runtime.url import parse_url

MESSAGES = 200
HELD = 5


@pytest.fixture
def client(broker: Any) -> Iterator[ManagementClient]:
    with ManagementClient(broker.url, amqp_url=broker.amqp_url) as c:
        yield c


class Holder(threading.Thread):
    """A plain AMQP consumer of ``queue`` (prefetch ``HELD``) that takes messages and does not acknowledge
    them until told: ``settle("ack")`` acks them, ``settle("requeue")`` cancels the consumer and requeues
    them (a consumer shutting down), ``settle("nack")`` requeues them and goes on consuming (a consumer
    that failed to handle them), holding whatever it gets again until ``settle("close")``."""

    def __init__(self, amqp_url: str, vhost: str, queue: str) -> None:
        super().__init__(daemon=True)
        self.args = (amqp_url, vhost, queue)
        self.held: list[Message] = []
        self.ids: list[str] = []
        self.ready = threading.Event()
        self.done = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._order: asyncio.Queue[str] | None = None

    def run(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        amqp_url, vhost, queue = self.args
        self._loop, self._order = asyncio.get_running_loop(), asyncio.Queue()
        connection = Connection(parse_url(amqp_url).with_vhost(vhost))
        await connection.open()
        channel = await connection.channel()
        await channel.qos(HELD)
        tag = await channel.consume(queue, self._take)
        self.ready.set()
        order = await self._order.get()
        if order == "nack":
            for message in self.held:
                await message.nack(requeue=True)
            await channel.qos(HELD)  # a round trip: the broker has the nacks
            self.done.set()
            order = await self._order.get()
        elif order == "requeue":
            await channel.cancel(tag)
            for message in self.held:
                await message.nack(requeue=True)
        elif order == "ack":
            for message in self.held:
                await message.ack()
        await channel.close()  # a round trip: the broker has the settlements
        await connection.close()
        self.done.set()

    def _take(self, message: Message) -> None:
        self.held.append(message)
        self.ids.append(message.properties.message_id or "")

    def settle(self, how: str) -> None:
        assert self._loop is not None and self._order is not None
        self.done.clear()
        self._loop.call_soon_threadsafe(self._order.put_nowait, how)
        assert self.done.wait(20)


class Apply(threading.Thread):
    def __init__(self, target: Any) -> None:
        super().__init__(daemon=True)
        self.target = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.target()
        except BaseException as exc:
            self.error = exc


def _holding(client: ManagementClient, broker: Any, vhost: str, tmp_path: Any) -> tuple[Holder, list[str], Any]:
    """The queue ``work`` (classic) with ``MESSAGES`` messages, ``HELD`` of them held by a consumer."""
    from topo.loader import load

    (tmp_path / "topology.yaml").write_text(textwrap.dedent(FILES % "classic"))
    engine.apply(client, load(tmp_path, {"VHOST": vhost}))
    holder = Holder(broker.amqp_url, vhost, "work")
    holder.start()
    assert holder.ready.wait(20)
    old = [f"old-{n:04d}" for n in range(MESSAGES)]
    fill(broker.amqp_url, vhost, "orders", "new", old)
    deadline = time.monotonic() + 20
    while len(holder.held) < HELD and time.monotonic() < deadline:
        time.sleep(0.05)
    assert holder.ids == old[:HELD]
    (tmp_path / "topology.yaml").write_text(textwrap.dedent(FILES % "quorum"))
    return holder, old, load(tmp_path, {"VHOST": vhost})


def _waiting(client: ManagementClient, vhost: str, apply: Apply) -> None:
    """Until the migration waits for the consumer: the old queue fenced (its other messages held)."""
    deadline = time.monotonic() + 60
    while apply.is_alive() and time.monotonic() < deadline:
        fence = client.get(f"/policies/{vhost}/topo.fence.work", vhost=vhost, ok_missing=True)
        if fence is not None:
            return
        time.sleep(0.05)
    raise AssertionError(f"the migration did not fence the old queue ({apply.error!r})")


def test_what_a_consumer_requeues_during_the_migration_ends_in_the_new_queue(
    client: ManagementClient, broker: Any, vhost: str, tmp_path: Any
) -> None:
    holder, old, desired = _holding(client, broker, vhost, tmp_path)
    apply = Apply(lambda: engine.apply(client, desired, migrate=True, migrate_wait=120))
    apply.start()
    _waiting(client, vhost, apply)
    holder.settle("requeue")
    apply.join(180)
    assert not apply.is_alive() and apply.error is None, apply.error
    assert engine.plan(client, desired).empty  # the queue is quorum; no fence, no holding queue left
    found = read_all(broker.amqp_url, vhost, "work")
    assert sorted(found) == old  # every message once: the requeued ones too
    assert found[: MESSAGES - HELD] == old[HELD:]  # the others in their order, the requeued ones after them


def test_what_a_consumer_requeues_and_would_get_again_goes_to_the_new_queue_instead(
    client: ManagementClient, broker: Any, vhost: str, tmp_path: Any
) -> None:
    holder, old, desired = _holding(client, broker, vhost, tmp_path)
    apply = Apply(lambda: engine.apply(client, desired, migrate=True, migrate_wait=120))
    apply.start()
    _waiting(client, vhost, apply)
    holder.settle("nack")  # still subscribed, with room for them again: apply's own consumer comes first
    apply.join(180)
    assert not apply.is_alive() and apply.error is None, apply.error
    holder.settle("close")
    assert holder.ids == old[:HELD]  # it got none of them again
    assert engine.plan(client, desired).empty
    found = read_all(broker.amqp_url, vhost, "work")
    assert sorted(found) == old
    assert found[: MESSAGES - HELD] == old[HELD:]


def test_what_a_consumer_acknowledges_during_the_migration_is_not_moved(
    client: ManagementClient, broker: Any, vhost: str, tmp_path: Any
) -> None:
    holder, old, desired = _holding(client, broker, vhost, tmp_path)
    apply = Apply(lambda: engine.apply(client, desired, migrate=True, migrate_wait=120))
    apply.start()
    _waiting(client, vhost, apply)
    holder.settle("ack")
    apply.join(180)
    assert not apply.is_alive() and apply.error is None, apply.error
    assert engine.plan(client, desired).empty
    assert read_all(broker.amqp_url, vhost, "work") == old[HELD:]  # the acknowledged ones are done with


def test_a_consumer_holding_messages_too_long_stops_the_migration_before_the_delete(
    client: ManagementClient, broker: Any, vhost: str, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    holder, old, desired = _holding(client, broker, vhost, tmp_path)
    _register()  # the CLI's commands
    files = str(tmp_path / "topology.yaml")
    urls = ["--url", broker.url, "--amqp-url", broker.amqp_url]
    code = run(["apply", files, "--var", f"VHOST={vhost}", *urls, "--migrate", "--yes", "--migrate-wait", "12"])
    out, err = capsys.readouterr()
    assert code == 1, (out, err)
    [error] = [line for line in err.splitlines() if line.startswith("Error:")]
    assert "apply stopped before it deleted queue 'work'" in error
    assert f"its consumers still hold {HELD} unacknowledged messages" in error
    assert "consumers' connections: '127.0.0.1:" in error  # as the broker names the connection
    assert "Hint: nothing was lost" in err and "run the same `topo apply --migrate` again" in err
    assert "Traceback" not in err
    info = client.get(f"/queues/{vhost}/work", vhost=vhost)
    assert info is not None and info["type"] == "classic"  # the old queue stays
    assert client.get(f"/policies/{vhost}/topo.fence.work", vhost=vhost, ok_missing=True) is None

    holder.settle("requeue")
    resumed = engine.plan(client, desired)  # without --migrate: the holding queues say a migration is under way
    assert [c.action for c in resumed.changes if c.kind == "queue"] == ["migrate"]
    engine.apply(client, desired, resumed)
    assert engine.plan(client, desired).empty
    assert sorted(read_all(broker.amqp_url, vhost, "work")) == old  # nothing lost, nothing twice
