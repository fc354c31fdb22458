"""Exact queue counts over AMQP, for the safety check before a queue is replaced or deleted.

The Management API's ``messages`` and ``consumers`` come from statistics that lag up to ~5 s behind
the queue, so a message published just before an apply may not show. A passive ``queue.declare``
answers with the queue's exact ready-message and consumer counts at that instant; unacknowledged
messages belong to a consumer (or a channel that got them), which the Management count catches.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from topo.errors import TopoError
from topo.urls import parse_amqp

__all__ = ["NoExactCount", "count_exactly", "exact_usage", "why_no_count"]


@dataclass(frozen=True)
class NoExactCount:
    """Why no exact count could be had: ``reason`` for people (no secret in it: URLs redacted), and whether
    the broker ``refused`` the user (a wrong password, no permission on the vhost) rather than not answering."""

    reason: str
    refused: bool = False


class _OtherCluster(Exception):
    def __init__(self, name: object) -> None:
        super().__init__(name)
        self.name = name


async def _usage(
    amqp_url: str, vhost: str, queues: list[str], timeout: float, cluster: str | None
) -> dict[str, tuple[int, int]]:
    from topo.runtime.connection import Connection
    from topo.runtime.errors import NotFound
    from topo.runtime.url import parse_url

    params = replace(parse_url(amqp_url).with_vhost(vhost), connection_timeout=timeout, client_name="topo")
    connection = Connection(params, reconnect=False)
    import asyncio

    await asyncio.wait_for(connection.open(), timeout)
    usage: dict[str, tuple[int, int]] = {}
    try:
        name_of = connection.server_properties.get("cluster_name")
        if isinstance(name_of, bytes | bytearray):
            name_of = name_of.decode()
        if cluster is not None and name_of != cluster:
            raise _OtherCluster(name_of)  # another broker answers on that port: its counts say nothing of ours
        channel = await connection.channel()
        for name in queues:
            try:
                _, messages, consumers = await asyncio.wait_for(channel.queue_declare(name, passive=True), timeout)
            except NotFound:
                channel = await connection.channel()  # a 404 closes the channel
                continue
            usage[name] = (int(messages), int(consumers))
    finally:
        await connection.close()
    return usage


def count_exactly(
    amqp_url: str, vhost: str, queues: Iterable[str], *, cluster: str | None = None, timeout: float = 10.0
) -> dict[str, tuple[int, int]] | NoExactCount:
    """(ready messages, consumers) of each named queue that exists, counted by the broker now; or why not
    (:class:`NoExactCount`): AMQP refused the user or did not answer, or, when ``cluster`` is given,
    another cluster answers there (the caller then has only the Management API's statistics)."""
    import asyncio  # here, not at import: most commands never probe

    names = list(queues)
    if not names:
        return {}
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop running here: the usual, synchronous case
        return _run(amqp_url, vhost, names, timeout, cluster)
    with ThreadPoolExecutor(max_workers=1) as pool:  # called from async code: use a loop of our own
        return pool.submit(_run, amqp_url, vhost, names, timeout, cluster).result()


def exact_usage(
    amqp_url: str, vhost: str, queues: Iterable[str], *, cluster: str | None = None, timeout: float = 10.0
) -> dict[str, tuple[int, int]] | None:
    """:func:`count_exactly`, with ``None`` where it says why there is no exact count."""
    counted = count_exactly(amqp_url, vhost, queues, cluster=cluster, timeout=timeout)
    return None if isinstance(counted, NoExactCount) else counted


def _run(
    amqp_url: str, vhost: str, names: list[str], timeout: float, cluster: str | None
) -> dict[str, tuple[int, int]] | NoExactCount:
    import asyncio

    try:
        return asyncio.run(_usage(amqp_url, vhost, names, timeout, cluster))
    except (OSError, TimeoutError, TopoError, _OtherCluster) as exc:
        return why_no_count(exc, amqp_url, vhost, timeout)


def why_no_count(exc: BaseException, amqp_url: str, vhost: str, timeout: float) -> NoExactCount:
    """What to tell a user of a failed count (``exc``: what opening AMQP at ``amqp_url`` raised)."""
    from topo.runtime.errors import AuthenticationError, VhostAccessRefused

    try:
        url = parse_amqp(amqp_url)
        where, user = url.display(), url.username or "guest"
    except TopoError:
        where, user = "the AMQP URL", "guest"
    if isinstance(exc, VhostAccessRefused):
        return NoExactCount(f"AMQP refused user {exc.user!r} access to vhost {exc.vhost!r} ({exc.reply_code})", True)
    if isinstance(exc, AuthenticationError):
        if "does not offer" in exc.message:  # the SASL mechanism, not the credentials
            return NoExactCount(f"AMQP refused the login at {where}: {exc.message}", True)
        return NoExactCount(f"AMQP refused the login of user {user!r} at {where}", True)
    if isinstance(exc, _OtherCluster):
        return NoExactCount(f"another broker (cluster {exc.name!r}) answers AMQP at {where}")
    if isinstance(exc, TimeoutError):
        return NoExactCount(f"AMQP did not answer at {where} within {timeout:g} s")
    detail = exc.message if isinstance(exc, TopoError) else str(exc)
    if "Connect call failed" in detail or "Connection refused" in detail:
        detail = "connection refused"
    return NoExactCount(f"AMQP did not answer at {where} ({detail.split(': ')[-1][:120] or type(exc).__name__})")
