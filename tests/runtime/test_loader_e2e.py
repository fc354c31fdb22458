"""End to end with the loader: a YAML topology's prefetch and retry policy drive the runtime."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rt_helpers import declare, run

import topo
from topo.runtime import Message

YAML = """
version: 1
vhosts:
  "{vhost}":
    exchanges:
      tasks: {{type: direct}}
      dlx: {{type: direct}}
    queues:
      jobs:
        type: quorum
        dead-letter-exchange: dlx
        dead-letter-routing-key: jobs.failed
        prefetch: 5
        retry: {{delays: [100ms, 300ms]}}
        bindings:
          - {{exchange: tasks, routing-key: job}}
      failed:
        bindings:
          - {{exchange: dlx, routing-key: jobs.failed}}
"""


def test_yaml_retry_policy_and_prefetch(tmp_path: Path, vhost: str, amqp_url: str) -> None:
    (tmp_path / "t.yaml").write_text(YAML.format(vhost=vhost))
    topology = topo.load(tmp_path)
    assert set(topology.vhost(vhost).queues) == {"jobs", "jobs.retry.1", "jobs.retry.2", "failed"}
    run(declare(topology, vhost, amqp_url))

    async def main() -> None:
        attempts: list[object] = []

        def handler(m: Message) -> None:
            attempts.append(m.headers.get("x-retry-count"))
            if m.json()["ok"]:
                return
            raise RuntimeError("boom")

        async with topo.connect(topology, vhost=vhost, url=amqp_url) as client:
            sub = await client.subscribe("jobs", handler)
            assert sub._stream.channel is not None and sub._stream.channel.prefetch == 5
            await client.publish("tasks", "job", {"ok": False})
            async with client.consume("failed") as failed:
                m = await failed.get(15)
                assert m is not None and m.json() == {"ok": False} and m.headers["x-retry-count"] == 2
                await m.ack()
            await client.publish("tasks", "job", {"ok": True})
            for _ in range(100):
                if sub.handled:
                    break
                await asyncio.sleep(0.05)
            assert sub.handled == 1
        assert attempts == [None, 1, 2, None]

    run(main())
