"""Retries keep a message's original route, and dead letters are replayed to it (issue 9.9).

Against the broker, with the example topologies/work-queue.yaml (its retry delays shortened from 5 s and
1 min to 100 ms and 200 ms, its vhost renamed to the test's).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from rt_helpers import declare, depth, run, settled_depth

import topo
from topo.cli import _register
from topo.cli.common import run as cli
from topo.model import Topology
from topo.runtime import Client, Message, connect
from topo.runtime.dlq import original_route

EXAMPLE = Path(__file__).resolve().parents[2] / "topologies" / "work-queue.yaml"

OTHER = """
version: 1
vhosts:
  "{vhost}":
    exchanges:
      tasks: {{type: direct}}
      dlx: {{type: direct}}
    queues:
      jobs:
        dead-letter-exchange: dlx
        dead-letter-routing-key: jobs
        bindings:
          - {{exchange: tasks, routing-key: job}}
      failed:
        bindings:
          - {{exchange: dlx, routing-key: jobs}}
"""


def work_queue(tmp_path: Path, vhost: str, amqp_url: str) -> Topology:
    text = EXAMPLE.read_text()
    shortened = text.replace("\n  jobs:\n", f'\n  "{vhost}":\n').replace("[5s, 1m]", "[100ms, 200ms]")
    assert shortened.count(vhost) == 1 and "100ms" in shortened
    (tmp_path / "work-queue.yaml").write_text(shortened)
    topology = topo.load(tmp_path / "work-queue.yaml")
    run(declare(topology, vhost, amqp_url))
    return topology


async def fail_until_dead(client: Client, queue: str, dead_queue: str, n: int, url: str, vhost: str) -> None:
    """Subscribe a handler that always fails until ``n`` messages reached ``dead_queue``."""

    def handler(m: Message) -> None:
        raise RuntimeError("cannot make a thumbnail")

    sub = await client.subscribe(queue, handler)
    for _ in range(300):
        if await depth(url, vhost, dead_queue) >= n:
            break
        await asyncio.sleep(0.05)
    await sub.cancel()
    assert await depth(url, vhost, dead_queue) == n


async def peek(client: Client, queue: str, n: int) -> list[Message]:
    """``n`` messages of ``queue``, put back (requeued) when done."""
    async with client.consume(queue, prefetch=n) as messages:
        got = [m for m in [await messages.get(5) for _ in range(n)] if m is not None]
        for m in got:
            await m.nack(requeue=True)
    return got


def test_retries_keep_the_original_route_on_the_message(tmp_path: Path, vhost: str, amqp_url: str) -> None:
    topology = work_queue(tmp_path, vhost, amqp_url)

    async def main() -> None:
        async with connect(topology, vhost=vhost, url=amqp_url) as client:
            await client.publish("", "thumbnails", {"job": 7}, message_id="job-7")
            await fail_until_dead(client, "thumbnails", "thumbnails.failed", 1, amqp_url, vhost)
            [dead] = await peek(client, "thumbnails.failed", 1)
        headers = dead.headers
        # what the broker says: the first death is the retry queue's expiry, through the default exchange
        assert headers["x-first-death-queue"] == "thumbnails.retry.1" and headers["x-first-death-exchange"] == ""
        assert headers["x-retry-count"] == 2
        # what the runtime kept: the route the message first came by
        assert headers["x-topo-original-exchange"] == ""
        assert headers["x-topo-original-routing-key"] == "thumbnails"
        assert headers["x-topo-original-queue"] == "thumbnails"
        assert original_route(dead) == ("", "thumbnails", "x-topo-original headers")

    run(main())


def test_replay_dry_run_then_count_then_all(tmp_path: Path, vhost: str, amqp_url: str) -> None:
    topology = work_queue(tmp_path, vhost, amqp_url)
    jobs = {"job-0", "job-1", "job-2"}

    async def main() -> set[str]:
        async with connect(topology, vhost=vhost, url=amqp_url) as client:
            for i in range(3):
                await client.publish("", "thumbnails", {"job": i}, message_id=f"job-{i}", priority=3)
            await fail_until_dead(client, "thumbnails", "thumbnails.failed", 3, amqp_url, vhost)

            dry = await client.replay_dead_letters("thumbnails.failed", dry_run=True)
            assert {(i.status, i.exchange, i.routing_key) for i in dry.items} == {("would replay", "", "thumbnails")}
            assert {i.message_id for i in dry.items} == jobs
            assert dry.replayed == 0 and dry.skipped == 0 and dry.error is None
            # (thumbnails.failed is a quorum queue: its count catches up with requeues and acks)
            assert await settled_depth(amqp_url, vhost, "thumbnails.failed", 3) == 3  # nothing moved
            assert await depth(amqp_url, vhost, "thumbnails") == 0

            two = await client.replay_dead_letters("thumbnails.failed", count=2)
            assert two.replayed == 2 and len(two.items) == 2
            replayed = {i.message_id or "" for i in two.items}
            assert await settled_depth(amqp_url, vhost, "thumbnails.failed", 1) == 1
            assert await depth(amqp_url, vhost, "thumbnails") == 2
            back = await peek(client, "thumbnails", 2)
        for m in back:
            assert "x-death" not in m.headers and "x-first-death-queue" not in m.headers
            assert "x-retry-count" not in m.headers  # a replayed message gets its retries again
            assert m.properties.priority == 3 and m.exchange == "" and m.routing_key == "thumbnails"
        assert {m.message_id for m in back} == replayed and {f"job-{m.json()['job']}" for m in back} == replayed
        return jobs - replayed

    [left] = run(main())

    _register()
    base = [str(tmp_path), "--vhost", vhost, "--amqp-url", amqp_url, "--queue", "thumbnails.failed"]
    code, out = _cli(["dlq", "replay", *base, "--dry-run"])
    assert code == 0, out
    assert f"would replay  {left}  -> (default exchange) 'thumbnails'" in out
    assert "Dry run: would replay 1 dead letter from 'thumbnails.failed'; nothing was moved." in out
    code, out = _cli(["dlq", "replay", *base])
    assert code == 0 and "Replayed 1 dead letter from 'thumbnails.failed'" in out, out
    assert run(settled_depth(amqp_url, vhost, "thumbnails.failed", 0)) == 0
    assert run(depth(amqp_url, vhost, "thumbnails")) == 3
    code, out = _cli(["dlq", "replay", *base])
    assert code == 0 and "No dead letters in 'thumbnails.failed'." in out


def _cli(args: list[str]) -> tuple[int, str]:
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli(args)
    return code, out.getvalue() + err.getvalue()


def test_replay_falls_back_to_x_death_and_skips_unknown_or_undeclared_routes(
    tmp_path: Path, vhost: str, amqp_url: str
) -> None:
    (tmp_path / "t.yaml").write_text(OTHER.format(vhost=vhost))
    topology = topo.load(tmp_path / "t.yaml")
    run(declare(topology, vhost, amqp_url))

    async def main() -> None:
        async with connect(topology, vhost=vhost, url=amqp_url) as client:
            await client.publish("tasks", "job", "from-tasks", message_id="routed")
            await fail_until_dead(client, "jobs", "failed", 1, amqp_url, vhost)  # dead-lettered by the broker
            [dead] = await peek(client, "failed", 1)
            assert "x-topo-original-exchange" not in dead.headers
            assert original_route(dead) == ("tasks", "job", "x-death")
            # no route at all; a route to an exchange the files no longer declare; one the layout drops
            await client.publish("", "failed", "lost", message_id="unknown")
            await client.publish(
                "",
                "failed",
                "gone",
                message_id="gone",
                headers={"x-topo-original-exchange": "gone", "x-topo-original-routing-key": "job"},
            )
            await client.publish(
                "",
                "failed",
                "dropped",
                message_id="dropped",
                headers={"x-topo-original-exchange": "tasks", "x-topo-original-routing-key": "nothing"},
            )
            for _ in range(2):  # the same dead letter twice (as if it came back meanwhile)
                await client.publish(
                    "",
                    "failed",
                    "twice",
                    message_id="twice",
                    headers={"x-topo-original-exchange": "tasks", "x-topo-original-routing-key": "job"},
                )
            report = await client.replay_dead_letters("failed")
            by_id = {i.message_id: i for i in report.items}
            assert by_id["routed"].status == "replayed" and by_id["routed"].source == "x-death"
            assert by_id["unknown"].status == "skipped" and "original route unknown" in (by_id["unknown"].reason or "")
            assert by_id["gone"].status == "skipped" and "exchange 'gone' is not declared" in (
                by_id["gone"].reason or ""
            )
            assert by_id["dropped"].status == "skipped" and "no binding" in (by_id["dropped"].reason or "")
            twice = [i for i in report.items if i.message_id == "twice"]
            assert [i.status for i in twice] == ["replayed", "skipped"]
            assert "came back during this replay" in (twice[1].reason or "")  # each at most once per run
            assert report.replayed == 2 and report.skipped == 4
            assert await depth(amqp_url, vhost, "failed") == 4  # the skipped ones stay
            assert await depth(amqp_url, vhost, "jobs") == 2
            again = await peek(client, "jobs", 2)
            assert {(m.exchange, m.routing_key, m.body) for m in again} == {
                ("tasks", "job", b"from-tasks"),
                ("tasks", "job", b"twice"),
            }

    run(main())
    _register()
    code, out = _cli(["dlq", "replay", str(tmp_path), "--vhost", vhost, "--amqp-url", amqp_url, "--queue", "failed"])
    assert code == 1
    assert "skipped       unknown  original route unknown" in out
    # a new run: the second copy of "twice" is replayed now
    assert "Replayed 1 dead letter from 'failed'; 3 skipped (left in the queue)." in out


def test_replay_stops_without_losing_a_dead_letter_when_the_broker_refuses(
    tmp_path: Path, vhost: str, amqp_url: str
) -> None:
    """The exchange is in the files but not on the broker: the republish fails (404), the replay stops,
    the dead letter stays: it is acked only once its copy is confirmed."""
    (tmp_path / "t.yaml").write_text(OTHER.format(vhost=vhost))
    topology = topo.load(tmp_path / "t.yaml")
    run(declare(topology, vhost, amqp_url))

    async def main() -> Any:
        async with connect(topology, vhost=vhost, url=amqp_url) as client:
            for i in range(2):
                await client.publish("tasks", "job", {"n": i})
            await fail_until_dead(client, "jobs", "failed", 2, amqp_url, vhost)
            channel = await client.connection.channel()
            await channel.exchange_delete("tasks")
            await channel.close()
            report = await client.replay_dead_letters("failed")
            assert report.replayed == 0 and report.error is not None
            assert "404" in str(report.error)
        assert await depth(amqp_url, vhost, "failed") == 2

    run(main())
    _register()
    code, out = _cli(["dlq", "replay", str(tmp_path), "--vhost", vhost, "--amqp-url", amqp_url, "--queue", "failed"])
    assert code == 1 and "Error: " in out and "404 NOT_FOUND" in out and "stopped" in out, out
    assert run(depth(amqp_url, vhost, "failed")) == 2


def test_cli_refuses_an_undeclared_queue_and_a_count_below_one(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(OTHER.format(vhost="v"))
    _register()
    code, out = _cli(["dlq", "replay", str(tmp_path), "--vhost", "v", "--queue", "nope"])
    assert code == 1 and "queue 'nope' is not declared" in out
    code, out = _cli(["dlq", "replay", str(tmp_path), "--vhost", "v", "--queue", "failed", "--count", "0"])
    assert code == 1 and "--count" in out
