"""Exact queue counts over AMQP, for the safety check before a queue is replaced or deleted.

The Management API's ``messages`` and ``consumers`` come from statistics that lag up to ~5 s behind
the queue, so a message published just before an apply may not show. A passive ``queue.declare``
answers with the queue's exact ready-message and consumer counts at that instant; unacknowledged
messages belong to a consumer (or a channel that got them), which the Management count catches.

:func:`check_drops` is the last look before apply deletes queues: for a fenced quorum queue it also
publishes two probes by the default exchange (the first must be taken, the second refused: the fence
holds) and then counts; :func:`delete_if_counted` counts each queue again and deletes it on the same
connection, keeping the count the broker's ``Queue.DeleteOk`` gives; :func:`remove_probes` takes a probe
back out of a queue that stays.

Where AMQP cannot count, :func:`count_exactly` and :func:`check_drops` return why
(:class:`~topo.broker.port.NoExactCount`, from :func:`why_no_count`): the broker refused the user (a wrong
password, no permission on the vhost), did not answer, or another cluster answers there. The reason
travels with the count (``QueueUsage.why_inexact``); nothing is kept on the client.

:class:`LiveAmqp` is the :class:`~topo.broker.port.Amqp` side of :class:`~topo.broker.live.LiveBroker`.
This is the one module of :mod:`topo.broker` that uses the AMQP runtime (:mod:`topo.runtime`), and only
inside its functions: the Management API layer never imports it (tests/test_layers.py).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from types import TracebackType
from typing import Any, TypeVar

from topo.broker.port import (
    CATCH_TAG_PREFIX,
    NO_AMQP_URL,
    PROBE_HEADER,
    PROBE_ID_PREFIX,
    Catching,
    Deleted,
    DropCheck,
    Moved,
    NoExactCount,
)
from topo.errors import TopoError
from topo.urls import parse_amqp

__all__ = [
    "LiveAmqp",
    "RequeueCatcher",
    "check_drops",
    "count_exactly",
    "delete_if_counted",
    "exact_usage",
    "move_messages",
    "remove_probes",
    "why_no_count",
]

_T = TypeVar("_T")

_PROBE_BODY = b"topo fence probe: checks that the queue refuses new messages before topo deletes it; drop it"


class _OtherCluster(Exception):
    def __init__(self, name: object) -> None:
        super().__init__(name)
        self.name = name


async def _open(amqp_url: str, vhost: str, timeout: float, cluster: str | None) -> Any:
    """An AMQP connection to ``vhost``; raises ``_OtherCluster`` when ``cluster`` is given and another
    cluster answers there."""
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
        raise _OtherCluster(name_of)  # another broker answers on that port: its counts say nothing about ours
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
) -> dict[str, tuple[int, int]]:
    connection = await _open(amqp_url, vhost, timeout, cluster)
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


def count_exactly(
    amqp_url: str, vhost: str, queues: Iterable[str], *, cluster: str | None = None, timeout: float = 10.0
) -> dict[str, tuple[int, int]] | NoExactCount:
    """(ready messages, consumers) of each named queue that exists, counted by the broker now; or why not
    (:class:`NoExactCount`): AMQP refused the user or did not answer, or, when ``cluster`` is given,
    another cluster answers there (the caller then has only the Management API's statistics)."""
    names = list(queues)
    if not names:
        return {}
    return _run(_usage(amqp_url, vhost, names, timeout, cluster), amqp_url, vhost, timeout)


def exact_usage(
    amqp_url: str, vhost: str, queues: Iterable[str], *, cluster: str | None = None, timeout: float = 10.0
) -> dict[str, tuple[int, int]] | None:
    """:func:`count_exactly`, with ``None`` where it says why there is no exact count."""
    counted = count_exactly(amqp_url, vhost, queues, cluster=cluster, timeout=timeout)
    return None if isinstance(counted, NoExactCount) else counted


def _run(coroutine: Coroutine[Any, Any, _T], amqp_url: str, vhost: str, timeout: float) -> _T | NoExactCount:
    """Run ``coroutine`` (which talks to ``amqp_url``, ``vhost``) to its end from synchronous code; why not
    (:func:`why_no_count`) when AMQP refused the user, did not answer, or another cluster answered."""
    import asyncio  # here, not at import: most commands never probe

    def run() -> _T | NoExactCount:
        try:
            return asyncio.run(coroutine)
        except (OSError, TimeoutError, TopoError, _OtherCluster) as exc:
            return why_no_count(exc, amqp_url, vhost, timeout)

    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop running here: the usual, synchronous case
        return run()
    with ThreadPoolExecutor(max_workers=1) as pool:  # called from async code: use a loop of our own
        return pool.submit(run).result()


def why_no_count(exc: BaseException, amqp_url: str, vhost: str, timeout: float) -> NoExactCount:
    """What to tell a user of a failed count (``exc``: what talking to AMQP at ``amqp_url``, ``vhost``,
    raised)."""
    from topo.runtime.errors import AccessRefused, AuthenticationError, VhostAccessRefused

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
    if isinstance(exc, AccessRefused):  # a permission on the vhost's resources (configure, write, read)
        return NoExactCount(f"AMQP refused user {user!r} at {where}: {exc.reply_code} {exc.reply_text}", True)
    if isinstance(exc, _OtherCluster):
        return NoExactCount(f"another broker (cluster {exc.name!r}) answers AMQP at {where}")
    if isinstance(exc, TimeoutError):
        return NoExactCount(f"AMQP did not answer at {where} within {timeout:g} s")
    detail = exc.message if isinstance(exc, TopoError) else str(exc)
    if "Connect call failed" in detail or "Connection refused" in detail:
        detail = "connection refused"
    return NoExactCount(f"AMQP did not answer at {where} ({detail.split(': ')[-1][:120] or type(exc).__name__})")


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
) -> dict[str, DropCheck]:
    connection = await _open(amqp_url, vhost, timeout, cluster)
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
) -> dict[str, DropCheck] | NoExactCount:
    """The last look at each queue before apply deletes it (``queues``: name → whether it is fenced, in
    which case two probes with ``message_id`` ``probe_id`` are published first); or why AMQP could not
    look (:class:`NoExactCount`: it refused the user or did not answer, or another cluster answers there)."""
    if not queues:
        return {}
    return _run(_check(amqp_url, vhost, queues, probe_id, timeout, cluster), amqp_url, vhost, timeout)


async def _delete(
    amqp_url: str,
    vhost: str,
    expected: Mapping[str, int],
    timeout: float,
    cluster: str | None,
    done: list[Deleted],
    in_use: bool = False,
) -> None:
    import asyncio

    connection = await _open(amqp_url, vhost, timeout, cluster)
    try:
        channel = await connection.channel()
        for name, messages in expected.items():
            channel, counted = await _declare(connection, channel, name, timeout)
            if counted is None:
                done.append(Deleted(name, None))
                continue
            if counted[0] != messages or (counted[1] and not in_use):
                done.append(Deleted(name, counted))  # something arrived: stop here, delete nothing more
                return
            # no if-empty / if-unused: RabbitMQ refuses both for a quorum queue (not_implemented)
            message_count = await asyncio.wait_for(channel.queue_delete(name), timeout)
            done.append(Deleted(name, counted, True, int(message_count)))
    finally:
        await connection.close()


def delete_if_counted(
    amqp_url: str,
    vhost: str,
    expected: Mapping[str, int],
    *,
    cluster: str | None = None,
    timeout: float = 10.0,
    in_use: bool = False,
) -> tuple[list[Deleted], NoExactCount | None]:
    """Delete each queue of ``expected`` (name → the ready messages it may hold: apply's own probes) over
    AMQP, in order, on one connection: count it (passive declare) and, when it holds exactly that and has no consumer
    (``in_use``: whatever its consumers, whom the delete cancels), delete it at once (``queue.delete``), keeping what
    ``Queue.DeleteOk`` counted. A queue that counts otherwise stops the run before it is deleted.

    Returns what was done, queue by queue (the last one not deleted when the run stopped), and why AMQP
    failed part-way (:class:`NoExactCount`), if it did: a queue whose delete got no answer is not listed."""
    done: list[Deleted] = []
    if not expected:
        return done, None
    failed = _run(_delete(amqp_url, vhost, expected, timeout, cluster, done, in_use), amqp_url, vhost, timeout)
    return done, failed if isinstance(failed, NoExactCount) else None


MOVE_BATCH = 1000
"""How many messages :func:`move_messages` moves in one transaction."""


async def _commit_moved(
    channel: Any, taken: list[Any], moving: list[Any], target: str, returned: list[Any], timeout: float
) -> None:
    """One transaction of a move, on a channel in ``tx.select`` mode: publish ``moving`` to ``target`` (by
    the default exchange, ``mandatory``), ack every message ``taken``, commit; or, when the broker returned
    a publish (``returned``, the channel's ``on_return`` list), roll back and raise :class:`_Unroutable`."""
    import asyncio

    for message in moving:  # in their order, on this one channel: the target keeps it
        channel.publish_nowait("", target, message.body, message.properties, mandatory=True)
    # a round trip after the publishes: a Basic.Return of any of them comes before its answer
    await asyncio.wait_for(channel.queue_declare(target, passive=True), timeout)
    if returned:
        await asyncio.wait_for(channel.tx_rollback(), timeout)
        raise _Unroutable(target)
    for message in taken:
        message.ack_nowait()
    await asyncio.wait_for(channel.tx_commit(), timeout * 6)


async def _move(
    amqp_url: str,
    vhost: str,
    source: str,
    target: str,
    batch: int,
    timeout: float,
    cluster: str | None,
    counts: list[int],
    exact: bool,
) -> None:
    import asyncio

    from topo.runtime.message import Message

    connection = await _open(amqp_url, vhost, timeout, cluster)
    returned: list[Message] = []
    try:
        channel = await connection.channel()
        channel.on_return = returned.append
        await asyncio.wait_for(channel.tx_select(), timeout)
        while True:
            _, ready, _ = await asyncio.wait_for(channel.queue_declare(source, passive=True), timeout)
            if not ready:
                break
            _, before, _ = await asyncio.wait_for(channel.queue_declare(target, passive=True), timeout)
            wanted = min(batch, ready)
            got = await asyncio.wait_for(asyncio.gather(*(channel.get(source) for _ in range(wanted))), timeout)
            messages = [m for m in got if m is not None]
            await _commit_moved(channel, messages, messages, target, returned, timeout)
            counts[0] += len(messages)
            if exact:  # nothing else publishes to the target: it must hold exactly the batch more
                _, after, _ = await asyncio.wait_for(channel.queue_declare(target, passive=True), timeout)
                if after != before + len(messages):
                    raise _Miscounted(target, before, len(messages), after)
        _, counts[1], _ = await asyncio.wait_for(channel.queue_declare(target, passive=True), timeout)
        await channel.close()
    finally:
        await connection.close()


class _Miscounted(TopoError):
    def __init__(self, target: str, before: int, moved: int, after: int) -> None:
        super().__init__(f"queue {target!r} counted {after} after taking {moved} messages onto {before}")


class _Unroutable(TopoError):
    def __init__(self, target: str) -> None:
        super().__init__(f"queue {target!r} was not there to take the messages (returned unroutable)")


def move_messages(
    amqp_url: str,
    vhost: str,
    source: str,
    target: str,
    *,
    cluster: str | None = None,
    batch: int = MOVE_BATCH,
    timeout: float = 10.0,
    exact: bool = False,
) -> Moved | NoExactCount:
    """Move every ready message of queue ``source`` to queue ``target`` (by the default exchange), in
    their order, ``batch`` at a time, each batch in one AMQP transaction (``Tx.Select``): the batch's
    ``Basic.Get``s, its publishes to ``target`` and its acks take effect together at ``Tx.Commit``, or not
    at all (a connection that dies before the commit: the broker drops the publishes and requeues the
    messages), so a move killed at any point neither loses nor duplicates a message. With ``exact`` (nothing
    else publishes to ``target``), each batch must raise the target's count by exactly the batch. Until
    ``source`` counts 0 (an AMQP passive declare). Returns how many moved and what ``target`` counts at the end; or
    why AMQP could not (``target`` missing: nothing of that batch is committed)."""
    counts = [0, 0]
    failed = _run(
        _move(amqp_url, vhost, source, target, batch, timeout, cluster, counts, exact), amqp_url, vhost, timeout
    )
    if isinstance(failed, NoExactCount):
        return failed
    return Moved(counts[0], counts[1])


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
    result = _run(_remove(amqp_url, vhost, name, probes, probe_id, timeout), amqp_url, vhost, timeout)
    return (probes, 0) if isinstance(result, NoExactCount) else result


_TOP_PRIORITY = 2_147_483_647
"""The consumer priority (``x-priority``) of apply's catcher: above every consumer a client can declare."""


class RequeueCatcher:
    """A consumer of ``source`` above every other (``x-priority``), in a thread of its own for a ``with``
    block: a message that becomes ready in ``source`` (one its consumers requeued) is delivered to it first,
    not back to them, and it moves each to ``target`` (by the default exchange, ``mandatory``) with its ack in
    one AMQP transaction, as :func:`move_messages` does: a catcher that dies before a commit leaves the
    message in ``source``, requeued. A fence probe of apply (``message_id`` starting with
    :data:`~topo.broker.port.PROBE_ID_PREFIX`) that got in before the fence held is acked, not moved. At the
    end it cancels its consumer and moves what was delivered before the cancel. :attr:`caught` says how many
    it moved and why it stopped early, if it did."""

    def __init__(
        self, amqp_url: str, vhost: str, source: str, target: str, *, cluster: str | None, timeout: float
    ) -> None:
        self.args = (amqp_url, vhost, source, target, cluster, timeout)
        self.caught = Catching()
        self._stop = threading.Event()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    def __enter__(self) -> Catching:
        self._thread.start()
        self._started.wait(self.args[5] * 2)
        return self.caught

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(self.args[5] * 8)

    def _main(self) -> None:
        amqp_url, vhost, _, _, _, timeout = self.args
        try:
            failed = _run(self._consume(), amqp_url, vhost, timeout)
        finally:
            self._started.set()
        if isinstance(failed, NoExactCount):
            self.caught.failed = failed

    async def _consume(self) -> None:
        import asyncio

        from topo.runtime.message import Message

        amqp_url, vhost, source, target, cluster, timeout = self.args
        connection = await _open(amqp_url, vhost, timeout, cluster)
        inbox: asyncio.Queue[Message] = asyncio.Queue()
        returned: list[Message] = []
        try:
            channel = await connection.channel()
            channel.on_return = returned.append
            await asyncio.wait_for(channel.tx_select(), timeout)
            tag = f"{CATCH_TAG_PREFIX}{uuid.uuid4()}"
            arguments = {"x-priority": _TOP_PRIORITY}
            await asyncio.wait_for(
                channel.consume(source, inbox.put_nowait, arguments=arguments, consumer_tag=tag), timeout
            )
            self._started.set()
            while not self._stop.is_set():
                try:
                    first = await asyncio.wait_for(inbox.get(), 0.1)
                except TimeoutError:
                    continue
                await self._commit(channel, [first, *_drain(inbox)], target, returned, timeout)
            await asyncio.wait_for(channel.cancel(tag), timeout)
            left = _drain(inbox)
            if left:
                await self._commit(channel, left, target, returned, timeout)
            await channel.close()
        finally:
            await connection.close()

    async def _commit(
        self, channel: Any, messages: list[Any], target: str, returned: list[Any], timeout: float
    ) -> None:

        # (apply's own fence probes are only acked: dropped, as remove_probes does)
        moving = [m for m in messages if not (m.properties.message_id or "").startswith(PROBE_ID_PREFIX)]
        await _commit_moved(channel, messages, moving, target, returned, timeout)
        self.caught.moved += len(moving)


def _drain(inbox: Any) -> list[Any]:
    """What waits in ``inbox`` (an ``asyncio.Queue``) now."""
    found = []
    while not inbox.empty():
        found.append(inbox.get_nowait())
    return found


class LiveAmqp:
    """The AMQP side of a real broker at ``url`` (``None`` or ``""``: exact counts are off, and every step
    says so as a :class:`~topo.broker.port.NoExactCount`)."""

    def __init__(self, url: str | None, *, timeout: float = 10.0) -> None:
        self.url = url or ""
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"<LiveAmqp available={self.available}>"  # never the URL: it may hold a password

    @property
    def available(self) -> bool:
        return bool(self.url)

    def count(
        self, vhost: str, queues: Sequence[str], *, cluster: str | None = None
    ) -> dict[str, tuple[int, int]] | NoExactCount:
        if not self.url:
            return NoExactCount(NO_AMQP_URL)
        return count_exactly(self.url, vhost, queues, cluster=cluster, timeout=self.timeout)

    def check_drops(
        self, vhost: str, queues: Mapping[str, bool], probe_id: str, *, cluster: str | None = None
    ) -> dict[str, DropCheck] | NoExactCount:
        if not self.url:
            return NoExactCount(NO_AMQP_URL)
        return check_drops(self.url, vhost, queues, probe_id, cluster=cluster, timeout=self.timeout)

    def delete_if_counted(
        self, vhost: str, expected: Mapping[str, int], *, cluster: str | None = None, in_use: bool = False
    ) -> tuple[list[Deleted], NoExactCount | None]:
        if not self.url:
            return [], NoExactCount(NO_AMQP_URL)
        return delete_if_counted(self.url, vhost, expected, cluster=cluster, timeout=self.timeout, in_use=in_use)

    def remove_probes(self, vhost: str, queue: str, probes: int, probe_id: str | None) -> tuple[int, int]:
        if not self.url:
            return probes, 0
        return remove_probes(self.url, vhost, queue, probes, probe_id, timeout=self.timeout)

    def catch_requeues(self, vhost: str, source: str, target: str, *, cluster: str | None = None) -> RequeueCatcher:
        return RequeueCatcher(self.url, vhost, source, target, cluster=cluster, timeout=self.timeout)

    def move(
        self,
        vhost: str,
        source: str,
        target: str,
        *,
        cluster: str | None = None,
        exact: bool = False,
    ) -> Moved | NoExactCount:
        if not self.url:
            return NoExactCount(NO_AMQP_URL)
        return move_messages(self.url, vhost, source, target, cluster=cluster, timeout=self.timeout, exact=exact)
