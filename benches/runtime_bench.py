"""Runtime throughput against aiormq and pika, on the same broker in the same run.

    python benches/runtime_bench.py                       # starts a private node (devbroker)
    python benches/runtime_bench.py --amqp-url amqp://guest:guest@localhost:5672/ -n 50000
    python benches/runtime_bench.py --memory 1000000      # RSS while 1,000,000 messages go through

Every scenario: 256-byte persistent messages to a durable queue (fresh per scenario, deleted after),
publisher confirms on; the whole set runs once against a classic queue and once against a quorum queue
(``--queue-type``). Publishing: topo (``Publisher.send`` with a confirm window), topo's low-level
``Channel``, a raw client writing pre-marshalled frames (``raw_client.py``: the broker's ceiling for one
publisher; once with aiormq's frames, once with topo's: ``mandatory`` and a ``message_id``), aiormq
(pipelined: ``basic_publish`` calls gathered in batches, its fastest pattern), pika
(``BlockingConnection`` + ``confirm_delivery``, one round trip per message: what most code does).
Consuming: prefetch 200, one ack per message (topo ``client.consume`` vs aiormq ``basic_consume``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # the repository's root: devbroker/
from raw_client import raw_publish  # a sibling file; benches/ is not a package

BODY = b"x" * 256
PREFETCH = 200


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- helpers ---------------------------------------------------------------------------------------------


def topology_for(vhost: str, queue: str) -> Any:
    from topo.model import Queue, Topology, VHost

    v = VHost(vhost)
    v.queues[queue] = Queue(queue)
    return Topology({vhost: v})


QUEUE_TYPES = ("classic", "quorum")


async def reset_queue(url: str, queue: str, queue_type: str = "classic") -> None:
    from topo.runtime import Connection, parse_url

    conn = await Connection(parse_url(url), reconnect=False).open()
    ch = await conn.channel()
    await ch.queue_delete(queue)
    await ch.queue_declare(queue, durable=True, arguments={"x-queue-type": queue_type})
    await conn.close()


async def fill(url: str, vhost: str, queue: str, n: int) -> None:
    from topo.runtime import connect

    async with connect(topology_for(vhost, queue), vhost=vhost, url=url) as client:
        pub = await client.publisher("").ready()
        for i in range(n):
            pub.send(queue, BODY)
            if i % 1000 == 0:
                await pub.wait_outstanding(4000)
        await pub.flush()


# -- publishers ------------------------------------------------------------------------------------------


async def topo_publish(url: str, vhost: str, queue: str, n: int) -> float:
    from topo.runtime import connect

    async with connect(topology_for(vhost, queue), vhost=vhost, url=url) as client:
        pub = await client.publisher("").ready()
        start = time.perf_counter()
        for i in range(n):
            pub.send(queue, BODY)
            if i % 500 == 0:
                await pub.wait_outstanding(4000)
        await pub.flush()
        return n / (time.perf_counter() - start)


async def channel_publish(url: str, vhost: str, queue: str, n: int) -> float:
    """The low-level Channel with one pre-built Properties: the ceiling of this client, no topology layer."""
    from topo.runtime import Connection, Properties, parse_url

    conn = await Connection(parse_url(url), reconnect=False).open()
    ch = await conn.channel(confirms=True)
    props = Properties(delivery_mode=2)
    start = time.perf_counter()
    for i in range(n):
        ch.publish_nowait("", queue, BODY, props)
        if i % 500 == 0:
            await ch.wait_outstanding(4000)
    await ch.wait_outstanding(0)
    rate = n / (time.perf_counter() - start)
    await conn.close()
    return rate


async def aiormq_publish(url: str, vhost: str, queue: str, n: int, batch: int = 1000) -> float:
    import aiormq
    from aiormq.abc import ExceptionType  # noqa: F401  (import check)

    conn = await aiormq.connect(url)
    ch = await conn.channel(publisher_confirms=True)
    props = aiormq.spec.Basic.Properties(delivery_mode=2)
    start = time.perf_counter()
    sent = 0
    while sent < n:
        size = min(batch, n - sent)
        await asyncio.gather(
            *(ch.basic_publish(BODY, exchange="", routing_key=queue, properties=props) for _ in range(size))
        )
        sent += size
    rate = n / (time.perf_counter() - start)
    await conn.close()
    return rate


def pika_publish(url: str, queue: str, n: int) -> float:
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    ch.confirm_delivery()
    props = pika.BasicProperties(delivery_mode=2)
    start = time.perf_counter()
    for _ in range(n):
        ch.basic_publish("", queue, BODY, props, mandatory=True)
    rate = n / (time.perf_counter() - start)
    conn.close()
    return rate


# -- consumers -------------------------------------------------------------------------------------------


async def topo_consume(url: str, vhost: str, queue: str, n: int) -> float:
    from topo.runtime import connect

    async with connect(topology_for(vhost, queue), vhost=vhost, url=url) as client:
        got = 0
        start = time.perf_counter()
        async with client.consume(queue, prefetch=PREFETCH) as messages:
            async for m in messages:
                await m.ack()
                got += 1
                if got == n:
                    break
        return n / (time.perf_counter() - start)


async def aiormq_consume(url: str, vhost: str, queue: str, n: int) -> float:
    import aiormq

    conn = await aiormq.connect(url)
    ch = await conn.channel()
    await ch.basic_qos(prefetch_count=PREFETCH)
    done = asyncio.get_running_loop().create_future()
    got = 0

    async def on_message(message: Any) -> None:
        nonlocal got
        await message.channel.basic_ack(message.delivery.delivery_tag)
        got += 1
        if got == n and not done.done():
            done.set_result(None)

    start = time.perf_counter()
    await ch.basic_consume(queue, on_message, no_ack=False)
    await done
    rate = n / (time.perf_counter() - start)
    await conn.close()
    return rate


# -- memory ----------------------------------------------------------------------------------------------


async def memory_run(url: str, vhost: str, queue: str, total: int) -> list[tuple[int, float]]:
    """Publish and consume ``total`` messages at once through topo; RSS (MB) every 5 %."""
    from topo.runtime import connect

    samples: list[tuple[int, float]] = []
    async with connect(topology_for(vhost, queue), vhost=vhost, url=url) as client:
        pub = await client.publisher("").ready()
        consumed = 0
        done = asyncio.Event()

        async def consume() -> None:
            nonlocal consumed
            async with client.consume(queue, prefetch=PREFETCH) as messages:
                async for m in messages:
                    m.ack_nowait()
                    consumed += 1
                    if consumed % (total // 20) == 0:
                        gc.collect()
                        samples.append((consumed, rss_mb()))
                    if consumed == total:
                        done.set()
                        return

        task = asyncio.ensure_future(consume())
        for i in range(total):
            pub.send(queue, BODY)
            if i % 500 == 0:
                await pub.wait_outstanding(4000)
                while i - consumed > 20000:  # keep the queue short: this measures the client, not the broker
                    await asyncio.sleep(0.005)
        await pub.flush()
        await done.wait()
        await task
    return samples


# -- driver ----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def broker(amqp_url: str | None) -> Iterator[str]:
    if amqp_url:
        yield amqp_url
        return
    import devbroker

    with tempfile.TemporaryDirectory() as tmp:
        node = devbroker.start(Path(tmp))
        try:
            yield node.amqp_url
        finally:
            node.stop()


PAIRS = {
    "publish topo/aiormq": ("publish topo", "publish aiormq"),
    "publish topo/pika": ("publish topo", "publish pika"),
    "publish channel/aiormq": ("publish channel", "publish aiormq"),
    "publish raw/aiormq": ("publish raw", "publish aiormq"),  # the most any client could show on this queue
    "publish topo/raw": ("publish topo", "publish raw"),  # how close topo comes to the broker's ceiling
    # the same frames as topo sends (mandatory, message_id): what is left is topo's own overhead
    "publish topo/raw-as-topo": ("publish topo", "publish raw-as-topo"),
    "consume topo/aiormq": ("consume topo", "consume aiormq"),
}


def run_rounds(scenarios: dict[str, Callable[[], float]], runs: int, label: str) -> dict[str, Any]:
    """Every scenario once per round (a shared machine's load hits them alike); medians and ratios."""
    rates: dict[str, list[float]] = {name: [] for name in scenarios}
    for round_ in range(runs):
        for name, fn in scenarios.items():
            rates[name].append(fn())
            print(f"{label} round {round_ + 1}: {name:19} {rates[name][-1]:>9,.0f} msg/s", flush=True)
    results: dict[str, Any] = {}
    for name, values in rates.items():
        median = statistics.median(values)
        results[name] = {"median": round(median), "runs": [round(r) for r in values]}
        print(f"{label} {name:19} {median:>9,.0f} msg/s   runs: {', '.join(f'{r:,.0f}' for r in values)}")
    results["ratios"] = {}
    for pair, (a, b) in PAIRS.items():
        if a in rates and b in rates:
            per_round = [x / y for x, y in zip(rates[a], rates[b], strict=True)]
            median = statistics.median(per_round)
            results["ratios"][pair] = {"median": round(median, 2), "rounds": [round(r, 2) for r in per_round]}
            print(f"{label} {pair:26} {median:5.2f}x   rounds: " + ", ".join(f"{r:.2f}" for r in per_round))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--amqp-url", help="use this broker (default: start a private node)")
    parser.add_argument("-n", type=int, default=50_000, help="messages per publish/consume run")
    parser.add_argument("--pika-n", type=int, default=5_000, help="messages per pika run (slow)")
    parser.add_argument("--runs", type=int, default=3, help="runs per scenario (the median is reported)")
    parser.add_argument("--memory", type=int, default=0, metavar="N", help="also run N messages for memory")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--only", nargs="*", help="run only the scenarios whose name has one of these words")
    parser.add_argument(
        "--queue-type", nargs="+", choices=QUEUE_TYPES, default=list(QUEUE_TYPES), help="the durable queue's types"
    )
    args = parser.parse_args(argv)
    queue = "bench"
    results: dict[str, Any] = {"n": args.n, "pika_n": args.pika_n, "python": sys.version.split()[0]}
    with broker(args.amqp_url) as url:
        from topo.runtime import parse_url

        vhost = parse_url(url).vhost

        def scenarios_for(queue_type: str) -> dict[str, Callable[[], float]]:
            def reset() -> None:
                asyncio.run(reset_queue(url, queue, queue_type))

            def run(coro_fn: Callable[[], Awaitable[float]]) -> float:
                reset()
                return asyncio.run(coro_fn())  # type: ignore[arg-type]

            def consume_with(fn: Callable[[], Awaitable[float]]) -> float:
                reset()
                asyncio.run(fill(url, vhost, queue, args.n))
                return asyncio.run(fn())  # type: ignore[arg-type]

            scenarios: dict[str, Callable[[], float]] = {
                "publish topo": lambda: run(lambda: topo_publish(url, vhost, queue, args.n)),
                "publish channel": lambda: run(lambda: channel_publish(url, vhost, queue, args.n)),
                "publish raw": lambda: run(lambda: raw_publish(url, queue, args.n, BODY)),
                "publish raw-as-topo": lambda: run(lambda: raw_publish(url, queue, args.n, BODY, like_topo=True)),
                "publish aiormq": lambda: run(lambda: aiormq_publish(url, vhost, queue, args.n)),
                "publish pika": lambda: (reset(), pika_publish(url, queue, args.pika_n))[1],
                "consume topo": lambda: consume_with(lambda: topo_consume(url, vhost, queue, args.n)),
                "consume aiormq": lambda: consume_with(lambda: aiormq_consume(url, vhost, queue, args.n)),
            }
            if args.only:
                scenarios = {k: v for k, v in scenarios.items() if any(word in k for word in args.only)}
            return scenarios

        for queue_type in args.queue_type:
            results[queue_type] = run_rounds(scenarios_for(queue_type), args.runs, f"[{queue_type}]")
        if args.memory:
            asyncio.run(reset_queue(url, queue))
            samples = asyncio.run(memory_run(url, vhost, queue, args.memory))
            results["memory_mb"] = [(n, round(mb, 1)) for n, mb in samples]
            print("RSS (MB) by messages consumed: " + ", ".join(f"{n:,}: {mb:.1f}" for n, mb in samples))
        asyncio.run(reset_queue(url, queue))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
