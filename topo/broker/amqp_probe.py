"""Exact queue counts over AMQP, for the safety check before a queue is replaced or deleted.

The Management API's ``messages`` and ``consumers`` come from statistics that lag up to ~5 s behind
the queue, so a message published just before an apply may not show. A passive ``queue.declare``
answers with the queue's exact ready-message and consumer counts at that instant; unacknowledged
messages belong to a consumer (or a channel that got them), which the Management count catches.

:func:`check_drops` is the last look before apply deletes queues: for a fenced quorum queue it also
publishes two probes by the default exchange (the first must be taken, the second refused: the fence
holds) and then counts; :func:`remove_probes` takes a probe back out of a queue that stays.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from topo.errors import TopoError

__all__ = [
    "PROBE_HEADER",
    "PROBE_ID_PREFIX",
    "DropCheck",
    "amqp_url_for",
    "check_drops",
    "exact_usage",
    "remove_probes",
]

PROBE_HEADER = "x-topo-fence-probe"
"""The header of the probe messages apply publishes to a fenced queue (see :func:`check_drops`)."""
_PROBE_BODY = b"topo fence probe: checks that the queue refuses new messages before topo deletes it; drop it"


@dataclass(frozen=True)
class DropCheck:
    """What the broker said of a queue apply is about to delete.

    ``exists``: the queue is there. ``ready`` and ``consumers``: its passive declare, after the probes.
    For a fenced queue, ``probe`` is what became of the first probe (``taken``, ``refused`` or
    ``unroutable``) and ``fence_holds`` whether the second one was refused; both ``None`` otherwise.
    """

    exists: bool
    ready: int = 0
    consumers: int = 0
    probe: str | None = None
    fence_holds: bool | None = None


def amqp_url_for(management_url: str) -> str:
    """The AMQP URL every RabbitMQ tool assumes beside a Management API URL: same host and
    credentials, port 5672 (5671 and ``amqps`` for ``https``)."""
    parts = urlsplit(management_url)
    tls = parts.scheme == "https"
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    host = parts.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{userinfo}{host}:{5671 if tls else 5672}"
    return urlunsplit(("amqps" if tls else "amqp", netloc, "/", "", ""))


async def _open(amqp_url: str, vhost: str, timeout: float, cluster: str | None) -> Any:
    """An AMQP connection to ``vhost``, or ``None`` when another cluster answers there."""
    import asyncio

    from topo.runtime.connection import Connection
    from topo.runtime.url import parse_url

    params = replace(parse_url(amqp_url).with_vhost(vhost), connection_timeout=timeout, client_name="topo")
    connection = Connection(params, reconnect=False)
    await asyncio.wait_for(connection.open(), timeout)
    name_of = connection.server_properties.get("cluster_name")
    if isinstance(name_of, bytes | bytearray):
        name_of = name_of.decode()
    if cluster is not None and name_of != cluster:
        await connection.close()
        return None  # another broker answers on that port: its counts say nothing about ours
    return connection


async def _declare(connection: Any, channel: Any, name: str, timeout: float) -> tuple[Any, tuple[int, int] | None]:
    """(channel, (ready, consumers)) of ``name``, or (a new channel, None) when it does not exist."""
    import asyncio

    from topo.runtime.errors import NotFound

    try:
        _, messages, consumers = await asyncio.wait_for(channel.queue_declare(name, passive=True), timeout)
    except NotFound:
        return await connection.channel(), None  # a 404 closes the channel
    return channel, (int(messages), int(consumers))


async def _usage(
    amqp_url: str, vhost: str, queues: list[str], timeout: float, cluster: str | None
) -> dict[str, tuple[int, int]] | None:
    connection = await _open(amqp_url, vhost, timeout, cluster)
    if connection is None:
        return None
    usage: dict[str, tuple[int, int]] = {}
    try:
        channel = await connection.channel()
        for name in queues:
            channel, counted = await _declare(connection, channel, name, timeout)
            if counted is not None:
                usage[name] = counted
    finally:
        await connection.close()
    return usage


def exact_usage(
    amqp_url: str, vhost: str, queues: Iterable[str], *, cluster: str | None = None, timeout: float = 10.0
) -> dict[str, tuple[int, int]] | None:
    """(ready messages, consumers) of each named queue that exists, counted by the broker now; ``None``
    when AMQP cannot be reached, or when ``cluster`` is given and the broker answering there is another
    cluster (the caller then has only the Management API's statistics)."""
    names = list(queues)
    if not names:
        return {}
    usage: dict[str, tuple[int, int]] | None = _run(_usage(amqp_url, vhost, names, timeout, cluster))
    return usage


def _run(coroutine: Any) -> Any:
    """Run ``coroutine`` to its end from synchronous code; ``None`` when AMQP cannot be reached."""
    import asyncio  # here, not at import: most commands never probe

    def run() -> Any:
        try:
            return asyncio.run(coroutine)
        except (OSError, TimeoutError, TopoError):
            return None

    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop running here: the usual, synchronous case
        return run()
    with ThreadPoolExecutor(max_workers=1) as pool:  # called from async code: use a loop of our own
        return pool.submit(run).result()


async def _probe(connection: Any, name: str, probe_id: str, timeout: float) -> str:
    """Publish one probe to ``name`` by the default exchange on a channel of its own (each channel is a new
    publisher to the queue); what became of it: ``taken``, ``refused`` or ``unroutable``."""
    import asyncio

    from topo.runtime.codec import Properties
    from topo.runtime.errors import PublishNacked, UnroutableError

    channel = await connection.channel(confirms=True)
    properties = Properties(message_id=probe_id, headers={PROBE_HEADER: True}, delivery_mode=1)
    try:
        await asyncio.wait_for(channel.publish("", name, _PROBE_BODY, properties, mandatory=True), timeout)
        return "taken"
    except PublishNacked:
        return "refused"
    except UnroutableError:
        return "unroutable"
    finally:
        await channel.close()


async def _check(
    amqp_url: str, vhost: str, queues: Mapping[str, bool], probe_id: str, timeout: float, cluster: str | None
) -> dict[str, DropCheck] | None:
    connection = await _open(amqp_url, vhost, timeout, cluster)
    if connection is None:
        return None
    checks: dict[str, DropCheck] = {}
    try:
        channel = await connection.channel()
        for name, fenced in queues.items():
            probe = holds = None
            if fenced:
                probe = await _probe(connection, name, probe_id, timeout)
                holds = await _probe(connection, name, probe_id, timeout) != "taken"
            channel, counted = await _declare(connection, channel, name, timeout)
            if counted is None:
                checks[name] = DropCheck(exists=False)
            else:
                checks[name] = DropCheck(True, counted[0], counted[1], probe, holds)
    finally:
        await connection.close()
    return checks


def check_drops(
    amqp_url: str,
    vhost: str,
    queues: Mapping[str, bool],
    probe_id: str,
    *,
    cluster: str | None = None,
    timeout: float = 10.0,
) -> dict[str, DropCheck] | None:
    """The last look at each queue before apply deletes it (``queues``: name → whether it is fenced, in
    which case two probes with ``message_id`` ``probe_id`` are published first); ``None`` when AMQP cannot
    be reached (or another cluster answers there)."""
    if not queues:
        return {}
    result: dict[str, DropCheck] | None = _run(_check(amqp_url, vhost, queues, probe_id, timeout, cluster))
    return result


PROBE_ID_PREFIX = "topo-fence-probe:"
"""Every probe's ``message_id`` starts so (then the apply's own id)."""


_REACH = 20
"""How many messages that are not probes :func:`remove_probes` takes out (and puts back) to reach one."""


async def _remove(
    amqp_url: str, vhost: str, name: str, probes: int, probe_id: str | None, timeout: float
) -> tuple[int, int]:
    import asyncio

    connection = await _open(amqp_url, vhost, timeout, None)
    left = probes
    held: list[Any] = []
    try:
        channel = await connection.channel()
        while left and len(held) < _REACH:
            message = await asyncio.wait_for(channel.get(name), timeout)
            if message is None:
                left = 0  # none further back: a consumer took it, nothing of apply's is left in the queue
                break
            ident = message.properties.message_id or ""
            if ident == probe_id or (probe_id is None and ident.startswith(PROBE_ID_PREFIX)):
                await message.ack()
                left -= 1
            else:
                held.append(message)
        for message in held:  # back where they were, in their order (at the head of the queue)
            await message.nack(requeue=True)
        await channel.close()
    finally:
        await connection.close()
    return left, len(held)


def remove_probes(
    amqp_url: str, vhost: str, name: str, probes: int, probe_id: str | None, *, timeout: float = 10.0
) -> tuple[int, int]:
    """Take (up to) ``probes`` probes apply published back out of queue ``name`` (one that stays).

    They are at the head of the queue unless messages got in before them; those (at most 20) are taken out
    to reach the probes and put back in their order, marked redelivered. ``probe_id`` is the apply's own
    (``None``: any apply's, for the probes an interrupted apply left). Returns how many probes are left
    (when they are further back, or AMQP failed) and how many other messages were taken out and put back."""
    result: tuple[int, int] | None = _run(_remove(amqp_url, vhost, name, probes, probe_id, timeout))
    return (probes, 0) if result is None else result
