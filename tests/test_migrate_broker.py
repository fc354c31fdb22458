"""Zero-loss migration (``topo apply --migrate``) on a real node: a classic queue holding thousands of
messages becomes a quorum queue while a publisher keeps publishing through its binding; every message is
counted, in order; the plan without ``--migrate`` stays blocked and names the flag; a migration stopped
half-way is finished by the next apply (see tests/test_migrate_kill.py for a kill at random points)."""

from __future__ import annotations

import asyncio
import itertools
import re
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from topo import engine
from topo.broker.amqp_probe import count_exactly
from topo.broker.client import ManagementClient
from topo.broker.live import LiveBroker
from topo.broker.migrate import migrate_queue
from topo.errors import UnsafeChange
from topo.loader import load
from topo.model import Topology
from topo.plan.render import render_json, render_text
from topo.runtime.codec import Properties
from topo.runtime.connection import Connection
from topo.runtime.url import parse_url

FILES = """\
    version: 1
    vhosts:
      ${var:VHOST}:
        exchanges:
          orders: {type: direct}
        queues:
          work:
            type: %s
            bindings: [{exchange: orders, routing-key: "new"}]
"""


@pytest.fixture
def client(broker: Any) -> Iterator[ManagementClient]:
    with ManagementClient(broker.url, amqp_url=broker.amqp_url) as c:
        yield c


@pytest.fixture
def files(tmp_path: Path, vhost: str) -> Any:
    def write(queue_type: str) -> Topology:
        (tmp_path / "topology.yaml").write_text(textwrap.dedent(FILES % queue_type))
        return load(tmp_path, {"VHOST": vhost})

    return write


async def _connect(amqp_url: str, vhost: str) -> Connection:
    connection = Connection(parse_url(amqp_url).with_vhost(vhost))
    await connection.open()
    return connection


def fill(amqp_url: str, vhost: str, exchange: str, key: str, ids: list[str], size: int = 1024) -> None:
    """Publish one message per id (its ``message_id``), with confirms."""

    async def run() -> None:
        connection = await _connect(amqp_url, vhost)
        channel = await connection.channel(confirms=True)
        body = b"x" * size
        for number, ident in enumerate(ids):
            channel.publish_nowait(exchange, key, body, Properties(message_id=ident, delivery_mode=2))
            if number % 500 == 499:
                await channel.wait_outstanding(0)
        await channel.wait_outstanding(0)
        await connection.close()

    asyncio.run(run())


def read_all(amqp_url: str, vhost: str, queue: str) -> list[str]:
    """The ``message_id`` of every message in ``queue``, in order, taking them (Basic.Get, no ack)."""

    async def run() -> list[str]:
        connection = await _connect(amqp_url, vhost)
        channel = await connection.channel()
        found: list[str] = []
        while True:
            batch = await asyncio.gather(*(channel.get(queue, no_ack=True) for _ in range(200)))
            found += [m.properties.message_id or "" for m in batch if m is not None]
            if any(m is None for m in batch):
                break
        await connection.close()
        return found

    return asyncio.run(run())


class Publisher(threading.Thread):
    """Publishes through ``exchange`` with confirms, one at a time, until stopped: ``confirmed`` are the ids
    the broker took (acked), ``refused`` the ones it nacked or returned."""

    def __init__(self, amqp_url: str, vhost: str, exchange: str, key: str, prefix: str = "new") -> None:
        super().__init__(daemon=True)
        self.args = (amqp_url, vhost, exchange, key)
        self.prefix = prefix
        self.confirmed: list[str] = []
        self.refused: list[str] = []
        self.stop = threading.Event()
        self.started_publishing = threading.Event()

    def run(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        amqp_url, vhost, exchange, key = self.args
        connection = await _connect(amqp_url, vhost)
        channel = await connection.channel(confirms=True)
        number = 0
        while not self.stop.is_set():
            ident = f"{self.prefix}-{number:06d}"
            try:
                await channel.publish(exchange, key, b"y" * 64, Properties(message_id=ident), mandatory=True)
                self.confirmed.append(ident)
            except Exception:
                self.refused.append(ident)
            number += 1
            if number == 20:
                self.started_publishing.set()
            await asyncio.sleep(0.001)
        await connection.close()


def test_classic_to_quorum_with_a_publisher_running_loses_and_reorders_nothing(
    files: Any, client: ManagementClient, broker: Any, vhost: str
) -> None:
    engine.apply(client, files("classic"))
    old = [f"old-{n:06d}" for n in range(5000)]
    fill(broker.amqp_url, vhost, "orders", "new", old)

    desired = files("quorum")
    blocked = engine.plan(client, desired)
    assert blocked.blocked
    [replace] = [c for c in blocked.changes if c.kind == "queue"]
    assert replace.action == "replace" and replace.messages == 5000
    assert "topo apply --migrate" in replace.blockers[0].hint
    with pytest.raises(UnsafeChange):
        engine.apply(client, desired)

    plan = engine.plan(client, desired, migrate=True)
    assert not plan.blocked
    [migration] = [c for c in plan.changes if c.kind == "queue"]
    assert migration.action == "migrate" and migration.messages == 5000
    text = render_text(plan)
    assert f"~> queue vhosts.{vhost}.queues.work (replaced, its messages moved)" in text
    assert "holds 5000 messages (5000 ready, 0 unacknowledged; exact): moved into the new queue" in text
    assert '"migrate": 1' in render_json(plan)

    publisher = Publisher(broker.amqp_url, vhost, "orders", "new")
    publisher.start()
    assert publisher.started_publishing.wait(20)
    notes: list[str] = []
    try:
        engine.apply(client, desired, plan, notes=notes)
    finally:
        publisher.stop.set()
        publisher.join(20)

    assert engine.plan(client, desired).empty  # the holding queues are gone, the queue is quorum and bound
    info = client.get(f"/queues/{vhost}/work", vhost=vhost)
    assert info is not None and info["type"] == "quorum"
    found = read_all(broker.amqp_url, vhost, "work")
    assert found[:5000] == old  # every old message, first, in order
    new = found[5000:]
    assert not publisher.refused
    assert sorted(set(new)) == publisher.confirmed  # every confirmed publish is there, none other
    assert max(Counter(new).values()) <= 2  # a publish racing a move of the binding (added, then deleted) twice
    assert len(publisher.confirmed) > 20
    # what apply says of the publishes that raced the moves of the routes holds: no more came twice, and no
    # more came after a message published after them, than it says
    [note] = notes
    said = re.search(r"at most (\d+) may have come twice, and at most (\d+) after", note)
    twice, late = (int(said[1]), int(said[2])) if said else (0, 0)
    assert said or "none came twice, none out of order" in note, note
    assert len(new) - len(set(new)) <= twice, note
    firsts = list(dict.fromkeys(new))
    overtaken = sum(
        1 for before, ident in zip(itertools.accumulate(firsts, max), firsts[1:], strict=False) if ident < before
    )
    assert overtaken <= late, f"{overtaken} out of order: {note}"
    print(f"\n{note}")


def test_a_migration_stopped_half_way_is_finished_by_the_next_apply(
    files: Any, client: ManagementClient, broker: Any, vhost: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine.apply(client, files("classic"))
    old = [f"old-{n:04d}" for n in range(1500)]
    fill(broker.amqp_url, vhost, "orders", "new", old)
    desired = files("quorum")
    plan = engine.plan(client, desired, migrate=True)

    # stop once the old queue is deleted, before the new one is declared (its messages are held)
    from topo.broker import migrate as protocol

    def declare_fails(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("killed here")

    real = protocol._drop_old

    def drop_then_die(run: Any, change: Any, stash: str) -> int:
        moved = real(run, change, stash)
        monkeypatch.setattr(protocol, "_declare", declare_fails)
        return moved

    monkeypatch.setattr(protocol, "_drop_old", drop_then_die)
    with pytest.raises(RuntimeError, match="killed here"):
        engine.apply(client, desired, plan)
    monkeypatch.undo()

    resumed = engine.plan(client, desired)  # without --migrate: the holding queues say a migration is under way
    [migration] = [c for c in resumed.changes if c.kind == "queue"]
    assert migration.action == "migrate"
    assert "an interrupted migration left its holding queues" in render_text(resumed)
    engine.apply(client, desired, resumed)
    assert engine.plan(client, desired).empty
    assert read_all(broker.amqp_url, vhost, "work") == old


def test_the_protocol_counts_each_step(files: Any, client: ManagementClient, broker: Any, vhost: str) -> None:
    engine.apply(client, files("classic"))
    fill(broker.amqp_url, vhost, "orders", "new", [f"m{n}" for n in range(700)])
    desired = files("quorum")
    plan = engine.plan(client, desired, migrate=True)
    [migration] = [c for c in plan.changes if c.action == "migrate"]
    from topo.broker.executors import Run

    counts = migrate_queue(Run(LiveBroker(client), plan), migration)
    assert (counts.held_old, counts.returned_old, counts.returned_new) == (700, 700, 0)


class Subscriber(threading.Thread):
    """A handler subscribed to ``queue`` with topo's runtime (``Client.subscribe``): ``handled`` are the ids
    it handled (and acked), ``resumed`` how often it subscribed again after the broker cancelled it."""

    def __init__(self, topology: Topology, amqp_url: str, vhost: str, queue: str) -> None:
        super().__init__(daemon=True)
        self.args = (topology, amqp_url, vhost, queue)
        self.handled: list[str] = []
        self.resumed = 0
        self.stop = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        from topo.runtime.client import connect

        topology, amqp_url, vhost, queue = self.args

        async def handle(message: Any) -> None:
            await asyncio.sleep(0.002)
            self.handled.append(message.properties.message_id or "")

        async with connect(topology, vhost=vhost, url=amqp_url) as client:
            subscription = await client.subscribe(queue, handle, prefetch=20, verify=False)
            self.ready.set()
            while not self.stop.is_set():
                await asyncio.sleep(0.05)
            self.resumed = subscription.resumed
            await subscription.cancel()


def test_a_runtime_consumer_of_the_old_queue_resumes_on_the_new_one(
    files: Any, client: ManagementClient, broker: Any, vhost: str
) -> None:
    before = files("classic")
    engine.apply(client, before)
    old = [f"old-{n:05d}" for n in range(3000)]
    fill(broker.amqp_url, vhost, "orders", "new", old)
    subscriber = Subscriber(before, broker.amqp_url, vhost, "work")
    subscriber.start()
    assert subscriber.ready.wait(20)
    desired = files("quorum")
    publisher = Publisher(broker.amqp_url, vhost, "orders", "new")
    publisher.start()
    try:
        engine.apply(client, desired, migrate=True)
        fill(broker.amqp_url, vhost, "orders", "new", ["after-1", "after-2"])
    finally:
        publisher.stop.set()
        publisher.join(20)
    try:  # until the subscriber has taken everything (so that stopping it leaves nothing unacknowledged)
        deadline, last = time.monotonic() + 60, -1
        while time.monotonic() < deadline:
            counted = count_exactly(broker.amqp_url, vhost, ["work"])
            if isinstance(counted, dict) and counted["work"][0] == 0 and len(subscriber.handled) == last:
                break
            last = len(subscriber.handled)
            time.sleep(0.5)
    finally:
        subscriber.stop.set()
        subscriber.join(20)
    assert subscriber.resumed == 1
    assert "after-2" in subscriber.handled  # consumed from the new queue
    left = read_all(broker.amqp_url, vhost, "work")
    seen = subscriber.handled + left
    assert set(seen) == set(old) | set(publisher.confirmed) | {"after-1", "after-2"}  # nothing lost
    twice = {ident for ident, times in Counter(seen).items() if times > 1}
    assert all(ident.startswith("new-") for ident in twice)  # only publishes racing a move of the binding
    assert max(Counter(seen).values()) <= 2


def test_quorum_to_classic_fences_the_old_queue_and_keeps_every_message(
    files: Any, client: ManagementClient, broker: Any, vhost: str
) -> None:
    engine.apply(client, files("quorum"))
    old = [f"old-{n:04d}" for n in range(1200)]
    fill(broker.amqp_url, vhost, "orders", "new", old)
    desired = files("classic")
    plan = engine.plan(client, desired, migrate=True)
    [migration] = [c for c in plan.changes if c.kind == "queue"]
    assert migration.action == "migrate" and migration.messages == 1200
    engine.apply(client, desired, plan)
    assert engine.plan(client, desired).empty  # no fence, no holding queue left
    info = client.get(f"/queues/{vhost}/work", vhost=vhost)
    assert info is not None and info["type"] == "classic"
    assert read_all(broker.amqp_url, vhost, "work") == old  # the fence's probes went with the old queue
