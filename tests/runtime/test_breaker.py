"""A subscription's circuit breaker against the broker (issue 12.4): a handler that keeps failing stops
the consumer (the messages stay in the queue), and after `open-for` one message is tried again.

Each test waits for conditions (the broker's exact depth, the handler's calls), never for fixed times.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from rt_helpers import declare, make_topology, run, settled_depth

from topo.model import Binding, CircuitBreaker, Exchange, Queue, Topology
from topo.runtime import Backoff, Message, connect

N = 10


async def until(condition: Callable[[], bool], timeout: float = 20, what: str = "") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.02)


class Handler:
    """Fails while ``failing`` is set; counts its calls."""

    def __init__(self) -> None:
        self.failing = True
        self.calls: list[int] = []
        self.done: list[int] = []

    def __call__(self, message: Message) -> None:
        n = message.json()["n"]
        self.calls.append(n)
        if self.failing:
            raise RuntimeError("the database is down")
        self.done.append(n)


def jobs(vhost: str, breaker: CircuitBreaker, *, dead_letters: bool = False) -> Topology:
    if dead_letters:
        return make_topology(
            vhost,
            exchanges=[Exchange("dlx", "fanout")],
            queues=[
                Queue("jobs", arguments={"x-dead-letter-exchange": "dlx"}, prefetch=5, circuit_breaker=breaker),
                Queue("jobs.dead"),
            ],
            bindings=[Binding("dlx", "jobs.dead")],
        )
    return make_topology(vhost, queues=[Queue("jobs", prefetch=5, circuit_breaker=breaker)])


def test_a_failing_handler_trips_the_breaker_then_recovers(amqp_url: str, vhost: str) -> None:
    # open-for is long enough to look at the open state; the back-off short, so that the failed
    # messages are back in the queue quickly (held, then requeued, while the consumer is stopped)
    topology = jobs(vhost, CircuitBreaker(failures=3, open_for_ms=3000))
    run(declare(topology, vhost, amqp_url))
    handler = Handler()

    async def main() -> None:
        async with connect(topology, vhost=vhost, url=amqp_url) as client:
            for n in range(N):
                await client.publish("", "jobs", {"n": n})
            subscription = await client.subscribe("jobs", handler, backoff=Backoff(first=0.05, cap=0.05))
            await until(lambda: client.metrics().queues["jobs"].breaker.state == "open", what="the breaker to open")
            # consumption stopped: every message is back in the queue, ready, and no more calls
            assert await settled_depth(amqp_url, vhost, "jobs", N) == N
            assert not subscription.consuming
            metrics = client.metrics().queues["jobs"]
            assert metrics.breaker is not None and metrics.breaker.state == "open"
            assert len(handler.calls) == 3 and metrics.failed == 3 and metrics.handled == 0
            assert metrics.requeued == 3 and metrics.breaker.trips == 1
            health = await client.health()
            assert health.breakers[0][0] == "jobs" and health.breakers[0][1].state == "open"

            handler.failing = False  # the database is back: after open-for, one trial, then the rest
            await until(lambda: len(handler.done) == N, what="every message handled")
            await until(lambda: client.metrics().queues["jobs"].breaker.state == "closed")
            assert sorted(handler.done) == list(range(N))
            assert await settled_depth(amqp_url, vhost, "jobs", 0) == 0
            metrics = client.metrics().queues["jobs"]
            assert (metrics.handled, metrics.failed, metrics.requeued) == (N, 3, 3)
            assert metrics.breaker is not None and metrics.breaker.trips == 1
            assert metrics.breaker.consecutive_failures == 0
            assert metrics.processing.count == N + 3  # every call, failed or not
            await until(lambda: subscription.consuming, what="the consumer restarted with its prefetch")
            connection = client.metrics()
            assert connection.acked == N  # the failures were requeued (held, then nacked), never acked
            assert connection.rejected == 0

    run(main(), timeout=120)


def test_a_failed_trial_opens_it_again_and_the_messages_stay(amqp_url: str, vhost: str) -> None:
    topology = jobs(vhost, CircuitBreaker(failures=2, open_for_ms=300))
    run(declare(topology, vhost, amqp_url))
    handler = Handler()

    async def main() -> None:
        async with connect(topology, vhost=vhost, url=amqp_url) as client:
            for n in range(N):
                await client.publish("", "jobs", {"n": n})
            await client.subscribe("jobs", handler, backoff=Backoff(first=0.05, cap=0.05))
            await until(lambda: client.metrics().queues["jobs"].breaker.trips >= 3, what="three trips")
            metrics = client.metrics().queues["jobs"]
            # two failures opened it, then each half-open trial was one message, which failed
            assert metrics.failed == 2 + (metrics.breaker.trips - 1)
            assert len(handler.calls) == metrics.failed and handler.done == []
        assert await settled_depth(amqp_url, vhost, "jobs", N) == N  # nothing lost, nothing dead-lettered

    run(main(), timeout=120)


def test_failed_messages_dead_letter_as_before_and_the_rest_wait(amqp_url: str, vhost: str) -> None:
    """The breaker does not change what happens to a failed message (here: the broker dead-letters it);
    it stops the others from failing (and being dead-lettered) too while the handler cannot work."""
    topology = jobs(vhost, CircuitBreaker(failures=3, open_for_ms=60_000), dead_letters=True)
    run(declare(topology, vhost, amqp_url))
    handler = Handler()

    async def main() -> None:
        async with connect(topology, vhost=vhost, url=amqp_url) as client:
            for n in range(N):
                await client.publish("", "jobs", {"n": n})
            await client.subscribe("jobs", handler)
            await until(lambda: client.metrics().queues["jobs"].breaker.state == "open")
            assert await settled_depth(amqp_url, vhost, "jobs.dead", 3) == 3
            assert await settled_depth(amqp_url, vhost, "jobs", N - 3) == N - 3
            metrics = client.metrics()
            assert metrics.queues["jobs"].dead_lettered == 3 and metrics.queues["jobs"].failed == 3
            assert metrics.rejected == 3  # rejected without requeue: the broker dead-lettered them
            assert len(handler.calls) == 3

    run(main(), timeout=120)


def test_subscribe_takes_a_breaker_of_its_own(amqp_url: str, vhost: str) -> None:
    topology = make_topology(vhost, queues=[Queue("jobs", prefetch=5)])  # none in the files
    run(declare(topology, vhost, amqp_url))
    handler = Handler()

    async def main() -> Any:
        async with connect(topology, vhost=vhost, url=amqp_url) as client:
            for n in range(4):
                await client.publish("", "jobs", {"n": n})
            await client.subscribe(
                "jobs",
                handler,
                backoff=Backoff(first=30, cap=30),
                circuit_breaker=CircuitBreaker(failures=1, open_for_ms=60_000),
            )
            await until(lambda: client.metrics().queues["jobs"].breaker.state == "open")
            assert len(handler.calls) == 1
            assert await settled_depth(amqp_url, vhost, "jobs", 3) == 3  # one held (30 s back-off), three back

    run(main(), timeout=120)
