"""Benchmark 5: a zero-loss migration of a classic queue holding 100,000 messages of 1 KiB to a quorum queue.

Every contender, in every repetition, starts from a fresh vhost holding a durable classic queue ``work``
(bound from a direct exchange) with the same messages (persistent, 1 KiB, a ``message_id`` each), published
before the clock starts; both end with every message in a durable quorum queue, checked by count.

* **topo apply --migrate**: ``topo.engine.apply(client, desired, migrate=True)``: the plan (read, diff,
  exact counts), the migration (holding queues, the binding moved, the messages moved twice in batches of
  1,000 in AMQP transactions: old queue → holding queue → new quorum queue ``work``; each step counted)
  and the confirming re-read.
* **baseline: drain and re-publish (aiormq)**: a plain AMQP client consumes the classic queue (prefetch
  1,000) and publishes the messages to an existing quorum queue with publisher confirms, 1,000 at a time,
  acking them at once when their copies are confirmed (the usual hand-written move; it moves each message
  once, keeps neither the queue's name nor its binding, and a crash part-way leaves duplicates).

Reported: both times, messages/s, and the ratio topo / baseline.
"""

from __future__ import annotations

import asyncio
import gc
import tempfile
import time
from pathlib import Path
from typing import Any

import aiormq
import httpx
from common import Bench, arguments, broker_urls, broker_versions, create_vhost, delete_vhost, raw_client, unique_vhost

from topo import engine
from topo.broker.amqp_probe import count_exactly
from topo.broker.client import ManagementClient
from topo.loader import load
from topo.runtime.codec import Properties
from topo.runtime.connection import Connection
from topo.runtime.url import parse_url

TOPO = "topo apply --migrate (engine.apply)"
BASELINE = "drain and re-publish (aiormq, confirms)"

FILES = """\
version: 1
vhosts:
  %s:
    exchanges:
      orders: {type: direct}
    queues:
      work:
        type: %s
        bindings: [{exchange: orders, routing-key: "new"}]
"""


def main() -> None:
    args = arguments(__doc__.splitlines()[0], queues=100_000, repeat=3, small_queues=5_000)
    messages = args.queues  # --queues: the number of messages here
    bench = Bench("migrate", params={"messages": messages, "size": 1024})
    bench.start()
    with (
        broker_urls() as (url, amqp),
        raw_client(url) as http,
        tempfile.TemporaryDirectory(prefix="topo-bench-") as tmp,
    ):
        bench.context.update(broker_versions(http))
        for rep in range(args.repeat):
            contenders = [migrate_with_topo, drain_and_republish]
            contenders = contenders[rep % 2 :] + contenders[: rep % 2]
            for contender in contenders:
                vhost = unique_vhost("migrate")
                create_vhost(http, vhost)
                try:
                    gc.collect()
                    contender(bench, url, amqp, http, vhost, messages, Path(tmp) / vhost)
                finally:
                    delete_vhost(http, vhost)
    for label in bench.samples:
        rate = messages / bench.median(label)
        bench.report(label, f"{rate:,.0f} messages/s")
    bench.ratio(TOPO, BASELINE)
    bench.finish()
    bench.dump(args.json)


def _files(directory: Path, vhost: str, queue_type: str) -> Any:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "topology.yaml").write_text(FILES % (vhost, queue_type))
    return load(directory)


def _fill(amqp: str, vhost: str, messages: int) -> None:
    async def run() -> None:
        connection = Connection(parse_url(amqp).with_vhost(vhost))
        await connection.open()
        channel = await connection.channel(confirms=True)
        body = b"m" * 1024
        for number in range(messages):
            channel.publish_nowait("orders", "new", body, Properties(message_id=str(number), delivery_mode=2))
            if number % 2000 == 1999:
                await channel.wait_outstanding(0)
        await channel.wait_outstanding(0)
        await connection.close()

    asyncio.run(run())


def _check(amqp: str, vhost: str, queue: str, messages: int) -> None:
    counted = count_exactly(amqp, vhost, [queue])
    if not isinstance(counted, dict) or counted.get(queue, (0, 0))[0] != messages:
        raise SystemExit(f"{queue!r} in {vhost!r} counts {counted}, not {messages}")


def migrate_with_topo(bench: Bench, url: str, amqp: str, http: httpx.Client, vhost: str, n: int, tmp: Path) -> None:
    with ManagementClient(url, amqp_url=amqp) as client:
        engine.apply(client, _files(tmp / "before", vhost, "classic"))
        _fill(amqp, vhost, n)
        desired = _files(tmp / "after", vhost, "quorum")
        started = time.perf_counter()
        engine.apply(client, desired, migrate=True)
        bench.add(TOPO, time.perf_counter() - started)
    _check(amqp, vhost, "work", n)


def drain_and_republish(bench: Bench, url: str, amqp: str, http: httpx.Client, vhost: str, n: int, tmp: Path) -> None:
    with ManagementClient(url, amqp_url=amqp) as client:
        engine.apply(client, _files(tmp / "before", vhost, "classic"))
    _fill(amqp, vhost, n)

    async def run() -> None:
        connection = await aiormq.connect(amqp.rstrip("/") + "/" + vhost.replace("/", "%2F"))
        source = await connection.channel()
        target = await connection.channel(publisher_confirms=True)
        await target.queue_declare("work.new", durable=True, arguments={"x-queue-type": "quorum"})
        await source.basic_qos(prefetch_count=1000)
        done = asyncio.get_running_loop().create_future()
        moved = 0
        batch: list[aiormq.abc.DeliveredMessage] = []

        async def consume(message: aiormq.abc.DeliveredMessage) -> None:
            # a batch of up to 1,000: publish each (confirms awaited together), then ack them all at once
            nonlocal moved
            batch.append(message)
            if len(batch) < min(1000, n - moved):
                return
            taken = batch[:]
            batch.clear()
            moved += len(taken)
            await asyncio.gather(
                *(target.basic_publish(m.body, routing_key="work.new", properties=m.header.properties) for m in taken)
            )
            await source.basic_ack(taken[-1].delivery_tag, multiple=True)
            if moved == n and not done.done():
                done.set_result(None)

        started = time.perf_counter()
        await source.basic_consume("work", consume)
        await done
        bench.add(BASELINE, time.perf_counter() - started)
        await connection.close()

    asyncio.run(run())
    _check(amqp, vhost, "work.new", n)


if __name__ == "__main__":
    main()
