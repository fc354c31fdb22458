"""What a subscription does with a message its handler failed on, against the broker (issue 8.2).

It never relies on a dead-letter exchange or retry queue the broker's queue does not really have: the
queue is checked against the files before anything is consumed; without dead-lettering, failed messages
are requeued after a back-off, never in a tight loop, and never dropped.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from rt_helpers import declare, depth, exists, make_topology, run, vhost_url
from support import build_vhost

from topo.model import Binding, Exchange, Policy, Queue, Topology
from topo.runtime import Backoff, Message, TopologyMismatch, connect

DLX = {"x-dead-letter-exchange": "dlx", "x-dead-letter-routing-key": "orders.failed"}


def files(vhost: str, orders: Queue | None = None, *extra: Queue) -> Topology:
    """The topology the files declare: ``orders`` dead-letters to ``dlx`` -> ``dead-letters``."""
    return make_topology(
        vhost,
        exchanges=[Exchange("dlx", "direct")],
        queues=[orders or Queue("orders", arguments=DLX), Queue("dead-letters"), *extra],
        bindings=[Binding("dlx", "dead-letters", routing_key="orders.failed")],
    )


def failing(calls: list[Any]) -> Any:
    def handler(m: Message) -> None:
        calls.append(m.body)
        raise ValueError("cannot handle it")

    return handler


def test_subscribe_refuses_a_queue_whose_dead_letter_exchange_is_not_on_the_broker(amqp_url: str, vhost: str) -> None:
    """The files say `orders` dead-letters; the broker's `orders` (apply refused to replace it) does not.
    Rejecting to a DLX the queue lacks would drop every failed message: refuse to consume instead."""
    declared = files(vhost)
    run(declare(files(vhost, Queue("orders")), vhost, amqp_url))  # the broker: no DLX

    async def main() -> None:
        calls: list[Any] = []
        async with connect(declared, vhost=vhost, url=amqp_url) as client:
            for i in range(6):
                await client.publish("", "orders", {"n": i})
            with pytest.raises(TopologyMismatch) as info:
                await client.subscribe("orders", failing(calls))
            await asyncio.sleep(0.3)  # deliberate: time for a delivery that must not happen (nothing consumed)
        text = str(info.value)
        assert "queue 'orders'" in text and "x-dead-letter-exchange" in text
        assert "'dlx' in the files" in text and "none on the broker" in text
        assert info.value.hint and "topo plan" in info.value.hint
        assert calls == []
        assert await depth(amqp_url, vhost, "orders") == 6  # nothing consumed, nothing lost

    run(main())


def test_subscribe_refuses_any_argument_that_differs_and_names_both_values(amqp_url: str, vhost: str) -> None:
    declared = files(vhost, Queue("orders", arguments={**DLX, "x-message-ttl": 60000}))
    run(declare(files(vhost, Queue("orders", arguments={**DLX, "x-message-ttl": 120000})), vhost, amqp_url))

    async def main() -> None:
        async with connect(declared, vhost=vhost, url=amqp_url) as client:
            with pytest.raises(TopologyMismatch, match=r"x-message-ttl: 60000 in the files, 120000 on the broker"):
                await client.subscribe("orders", failing([]))

    run(main())


def test_subscribe_refuses_a_missing_queue_and_does_not_create_it(amqp_url: str, vhost: str) -> None:
    declared = files(vhost)
    run(declare(files(vhost, Queue("other")), vhost, amqp_url))  # no `orders` on the broker

    async def main() -> None:
        async with connect(declared, vhost=vhost, url=amqp_url) as client:
            with pytest.raises(TopologyMismatch, match="queue 'orders' does not exist on the broker") as info:
                await client.subscribe("orders", failing([]))
            assert info.value.hint and "topo apply" in info.value.hint
        assert not await exists(amqp_url, vhost, "orders")

    run(main())


def test_subscribe_checks_the_retry_queues(amqp_url: str, vhost: str) -> None:
    retrying = Queue("orders", arguments=DLX, retry_delays=(100,))
    retry_1 = Queue(
        "orders.retry.1",
        arguments={"x-message-ttl": 100, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "orders"},
    )
    declared = files(vhost, retrying, retry_1)
    wrong = Queue("orders.retry.1", arguments={**retry_1.arguments, "x-message-ttl": 5000})
    run(declare(files(vhost, retrying, wrong), vhost, amqp_url))

    async def main() -> None:
        async with connect(declared, vhost=vhost, url=amqp_url) as client:
            with pytest.raises(TopologyMismatch, match=r"queue 'orders.retry.1'.*x-message-ttl: 100 in the files"):
                await client.subscribe("orders", failing([]))

    run(main())


def test_subscribe_checks_that_the_dead_letter_exchange_exists(amqp_url: str, vhost: str) -> None:
    declared = files(vhost)
    run(declare(make_topology(vhost, queues=[Queue("orders", arguments=DLX)]), vhost, amqp_url))  # no `dlx`

    async def main() -> None:
        async with connect(declared, vhost=vhost, url=amqp_url) as client:
            with pytest.raises(TopologyMismatch, match="dead-letter exchange 'dlx' of queue 'orders' does not exist"):
                await client.subscribe("orders", failing([]))

    run(main())


def _count_window(url: str, vhost: str, topology: Topology, queue: str, seconds: float, **options: Any) -> list[Any]:
    """Subscribe a handler that always fails for ``seconds``; the bodies it was called with."""
    calls: list[Any] = []

    async def main() -> None:
        async with connect(topology, vhost=vhost, url=url) as client:
            sub = await client.subscribe(queue, failing(calls), **options)
            await asyncio.sleep(seconds)  # deliberate: the window whose calls are counted
            await sub.cancel()

    run(main())
    return calls


def test_a_failing_handler_without_dead_lettering_backs_off_and_keeps_every_message(
    amqp_url: str, vhost: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: each message was requeued ~9,600 times in 5 s (28,880 log lines). Now each one waits
    0.2, 0.4, 0.8, 1, 1... s before it is requeued: at most 6 attempts each in a 3 s window."""
    topology = make_topology(vhost, queues=[Queue("tasks")])
    run(declare(topology, vhost, amqp_url))

    async def publish() -> None:
        async with connect(topology, vhost=vhost, url=amqp_url) as client:
            for i in range(3):
                await client.publish("", "tasks", {"n": i}, message_id=f"m{i}")

    run(publish())
    caplog.set_level(logging.INFO, logger="topo.runtime")
    calls = _count_window(amqp_url, vhost, topology, "tasks", 3.0, backoff=Backoff(first=0.2, factor=2, cap=1))
    per_message = {body: calls.count(body) for body in set(calls)}
    assert len(per_message) == 3 and all(1 <= n <= 6 for n in per_message.values()), per_message
    lines = [r for r in caplog.records if r.name == "topo.runtime"]
    assert len(lines) <= len(calls) + 1  # one line per failed attempt (and one when it stops)
    assert any("requeued in 0.2 s" in r.getMessage() for r in lines)
    assert run(depth(amqp_url, vhost, "tasks")) == 3  # all three still there


def test_retries_exhausted_without_a_dead_letter_exchange_keep_the_message(amqp_url: str, vhost: str) -> None:
    """Before: after the last retry the message was rejected without requeue, and with no DLX dropped."""
    queue = Queue("jobs", retry_delays=(100, 200))
    retries = [
        Queue(
            f"jobs.retry.{n}",
            arguments={"x-message-ttl": d, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "jobs"},
        )
        for n, d in ((1, 100), (2, 200))
    ]
    topology = make_topology(vhost, queues=[queue, *retries])
    run(declare(topology, vhost, amqp_url))

    async def publish() -> None:
        async with connect(topology, vhost=vhost, url=amqp_url) as client:
            await client.publish("", "jobs", "work")

    calls: list[float] = []

    async def main() -> None:
        async with connect(topology, vhost=vhost, url=amqp_url) as client:
            await client.publish("", "jobs", "work")

            def handler(m: Message) -> None:
                calls.append(asyncio.get_running_loop().time())
                raise ValueError("cannot handle it")

            sub = await client.subscribe("jobs", handler)
            for _ in range(300):  # 1 + 2 retries, then two more failures: requeued in place, not dropped
                if len(calls) >= 5:
                    break
                await asyncio.sleep(0.05)
            await sub.cancel()

    run(main())
    assert len(calls) >= 5
    # in place, each requeue waits the last declared delay (0.2 s): never a tight loop
    assert all(b - a >= 0.18 for a, b in itertools.pairwise(calls[2:])), calls
    assert run(depth(amqp_url, vhost, "jobs")) == 1


def test_a_dead_letter_exchange_that_cannot_be_checked_is_used_by_the_runtime_itself(amqp_url: str, vhost: str) -> None:
    """A DLX from a policy (AMQP cannot read policies) or with verify=False: the runtime publishes the
    failed message to the DLX itself (mandatory, confirmed), then acks: never a reject into the void."""
    policy = Policy("dl", "^orders$", apply_to="queues", definition={"dead-letter-exchange": "dlx"})
    v = build_vhost(
        vhost,
        Exchange("dlx", "direct"),
        Queue("orders"),
        Queue("dead-letters"),
        Binding("dlx", "dead-letters", routing_key="orders"),
        policies=(policy,),
    )
    declared = Topology({vhost: v})
    run(declare(declared, vhost, amqp_url))  # the queues and bindings, but not the policy

    async def main() -> None:
        async with connect(declared, vhost=vhost, url=amqp_url) as client:
            await client.publish("", "orders", {"n": 1})
            sub = await client.subscribe("orders", failing([]))
            async with client.consume("dead-letters") as dead:
                m = await dead.get(10)
                assert m is not None and m.json() == {"n": 1}
                assert m.headers["x-topo-original-exchange"] == ""
                assert m.headers["x-topo-original-routing-key"] == "orders"
                await m.ack()
            assert sub.failed == 1
        assert await depth(amqp_url, vhost, "orders") == 0

    run(main())


def test_verify_false_trusts_nothing_it_could_not_see(amqp_url: str, vhost: str) -> None:
    declared = files(vhost)
    run(declare(files(vhost, Queue("orders")), vhost, amqp_url))  # the broker: no DLX

    async def main() -> None:
        async with connect(declared, vhost=vhost, url=amqp_url) as client:
            await client.publish("", "orders", {"n": 2})
            await client.subscribe("orders", failing([]), verify=False)
            async with client.consume("dead-letters") as dead:
                m = await dead.get(10)
                assert m is not None and m.json() == {"n": 2} and m.routing_key == "orders.failed"
                await m.ack()

    run(main())


def test_a_user_who_may_not_configure_the_queue_gets_a_clear_error(
    broker: Any, mgmt: httpx.Client, amqp_url: str, vhost: str
) -> None:
    """Comparing the arguments needs a (non-passive) declare, which needs the configure permission."""
    declared = files(vhost)
    run(declare(declared, vhost, amqp_url))
    mgmt.put("/api/users/topo-reader", json={"password": "reader", "tags": ""}).raise_for_status()
    try:
        mgmt.put(
            f"/api/permissions/{quote(vhost, safe='')}/topo-reader",
            json={"configure": "^$", "write": ".*", "read": ".*"},
        ).raise_for_status()
        host = amqp_url.split("@", 1)[1].split("/", 1)[0]
        reader = vhost_url(f"amqp://topo-reader:reader@{host}/", vhost)

        async def main() -> None:
            async with connect(declared, vhost=vhost, url=reader) as client:
                with pytest.raises(TopologyMismatch, match="cannot check queue 'orders'") as info:
                    await client.subscribe("orders", failing([]))
                assert info.value.hint and "configure" in info.value.hint and "verify=False" in info.value.hint

        run(main())
    finally:
        mgmt.delete("/api/users/topo-reader")


def test_backoff_delays() -> None:
    b = Backoff(first=1, factor=2, cap=60)
    assert [b.delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert [b.delay(n, declared=(5000, 60000)) for n in (1, 2, 3, 9)] == [5, 60, 60, 60]
    with pytest.raises(ValueError):
        Backoff(first=0)


@pytest.mark.parametrize(
    ("reply_text", "expected"),
    [
        (
            "PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue 'q' in vhost 'v': received the value "
            "'quorum' of type 'longstr' but current is none",
            "x-queue-type: 'quorum' in the files, none on the broker",
        ),
        (
            "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'q' in vhost 'v': received none but "
            "current is the value '1000' of type 'signedint'",
            "x-message-ttl: none in the files, 1000 on the broker",
        ),
        (
            "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'q' in vhost 'v': received 'false' but "
            "current is 'true'",
            "durable: false in the files, true on the broker",
        ),
        ("PRECONDITION_FAILED - something else", "differs from the files: PRECONDITION_FAILED - something else"),
    ],
)
def test_describe_mismatch(reply_text: str, expected: str) -> None:
    """The broker's texts (seen on 3.10.8) become "argument: declared vs on the broker"."""
    from topo.runtime.verify import describe_mismatch

    text = describe_mismatch("q", reply_text)
    assert text.startswith("queue 'q' on the broker differs from the files: ") and text.endswith(expected)
