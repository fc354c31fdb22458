"""One apply at a time: the stack's lock, an exclusive queue on the apply's own AMQP connection.

RabbitMQ lets one connection own an exclusive queue; another connection's declare of it is refused (405
RESOURCE_LOCKED) for as long as the owner's connection lives, and the broker deletes the queue as soon as
that connection closes, whatever ended it: the apply finished, failed, or its process was killed (the
kernel closes the socket; a host that vanishes is noticed by the heartbeat, 60 s by default). So no lock
outlives its holder and none needs breaking by hand.

The queue is ``topo.lock.<stack>`` for a topology with a ``name:``, else ``topo.lock.<hash of the vhosts
applied>``, in the first of those vhosts (sorted; ``/`` when the apply has none): the vhost the apply
writes to anyway, so its user has the configure permission there. While that vhost does not exist yet (the
first apply of a stack creates it) the lock is in ``/``, and :func:`take` keeps the two places one lock:
see there. Its arguments say who holds it
(``x-topo-lock-host``, ``x-topo-lock-pid``, ``x-topo-lock-since``); a waiting apply reads them through the
Management API to name the holder. ``topo plan`` never takes the lock.

This module and :mod:`topo.broker.amqp_probe` are the only ones of :mod:`topo.broker` that use the AMQP
runtime (tests/test_layers.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from topo.errors import LockHeld, TopoError, UsageError
from topo.model import Topology
from topo.urls import parse_amqp

__all__ = ["ApplyLock", "Holder", "LockUnavailable", "holder_from_arguments", "lock_target", "take"]

_T = TypeVar("_T")

HOST, PID, SINCE = "x-topo-lock-host", "x-topo-lock-pid", "x-topo-lock-since"


class LockUnavailable(UsageError):
    """The lock could not be asked for at all: AMQP did not answer, refused the user, or another cluster
    answers there (the command line then applies without it, with a warning)."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: the host and process of the apply, and since when (UTC, ISO 8601)."""

    host: str
    pid: int
    since: str

    @classmethod
    def me(cls) -> Holder:
        now = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        return cls(socket.gethostname(), os.getpid(), now)

    def arguments(self) -> dict[str, Any]:
        return {HOST: self.host, PID: self.pid, SINCE: self.since}

    def __str__(self) -> str:
        return f"host {self.host}, pid {self.pid}, since {self.since}"


def holder_from_arguments(arguments: Mapping[str, Any]) -> Holder | None:
    """The holder a lock queue's arguments name (None: not a topo lock, or written otherwise)."""
    try:
        return Holder(str(arguments[HOST]), int(arguments[PID]), str(arguments[SINCE]))
    except (KeyError, TypeError, ValueError):
        return None


def lock_target(topology: Topology) -> tuple[str, str]:
    """(vhost, queue name) of the lock of an apply of ``topology``."""
    vhosts = sorted(topology.vhosts)
    if topology.name:
        name = f"topo.lock.{topology.name}"
    else:
        name = "topo.lock." + hashlib.sha256("\n".join(vhosts).encode()).hexdigest()[:16]
    return (vhosts[0] if vhosts else "/"), name


class ApplyLock:
    """The lock of one apply (see the module docstring): :meth:`acquire` waits up to ``timeout`` seconds for
    it (polling every ``poll`` seconds), then raises LockHeld naming the holder (``describe`` reads the lock
    queue's arguments, through the Management API); :meth:`release` (or leaving the ``with``) closes the
    connection, which deletes the queue."""

    def __init__(
        self,
        amqp_url: str,
        vhost: str,
        name: str,
        *,
        timeout: float = 0.0,
        poll: float = 1.0,
        connect_timeout: float = 10.0,
        describe: Callable[[], Mapping[str, Any] | None] | None = None,
        holder: Holder | None = None,
        cluster: str | None = None,
    ) -> None:
        if not amqp_url:
            raise LockUnavailable(
                "apply takes its lock over AMQP, and AMQP is turned off (--amqp-url '')",
                hint="give --amqp-url, or pass --no-lock when nothing else applies this stack",
            )
        self.cluster = cluster
        self.amqp_url, self.vhost, self.name = amqp_url, vhost, name
        self.timeout, self.poll, self.connect_timeout = timeout, poll, connect_timeout
        self.describe = describe
        self.holder = holder or Holder.me()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._connection: Any = None

    def __enter__(self) -> ApplyLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _run(self, coroutine: Coroutine[Any, Any, _T], timeout: float) -> _T:
        if self._loop is None:
            raise RuntimeError("the lock's event loop is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def acquire(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="topo-apply-lock", daemon=True)
        self._thread.start()
        try:
            self._connection = self._run(self._open(), self.connect_timeout + 5)
            deadline = time.monotonic() + self.timeout
            while not self._run(self._declare(), self.connect_timeout + 5):
                if time.monotonic() >= deadline:
                    raise self.held()
                time.sleep(max(0.0, min(self.poll, deadline - time.monotonic())))
        except BaseException as exc:
            self.release()
            if isinstance(exc, LockHeld):
                raise
            if isinstance(exc, OSError | TimeoutError | TopoError):
                raise self._unreachable(exc) from None
            raise

    async def _open(self) -> Any:
        from topo.runtime.connection import Connection
        from topo.runtime.url import parse_url

        params = replace(
            parse_url(self.amqp_url).with_vhost(self.vhost),
            connection_timeout=self.connect_timeout,
            client_name=f"topo apply (lock {self.name})",
        )
        connection = Connection(params, reconnect=False)
        await asyncio.wait_for(connection.open(), self.connect_timeout)
        name = connection.server_properties.get("cluster_name")
        name = name.decode() if isinstance(name, bytes | bytearray) else name
        if self.cluster is not None and name != self.cluster:
            await connection.close()
            raise LockUnavailable(f"another broker (cluster {name!r}) answers there")
        return connection

    async def _declare(self) -> bool:
        """Whether this connection now holds the lock (False: another connection does)."""
        from topo.runtime.errors import ResourceLocked

        channel = await self._connection.channel()
        try:
            await channel.queue_declare(
                self.name, durable=False, exclusive=True, auto_delete=True, arguments=self.holder.arguments()
            )
        except ResourceLocked:
            return False
        await channel.close()
        return True

    def held(self) -> LockHeld:
        """The error of an apply that could not get this lock within its timeout, naming the holder."""
        holder = None
        if self.describe is not None:
            try:
                arguments = self.describe()
            except TopoError:
                arguments = None
            holder = holder_from_arguments(arguments) if arguments is not None else None
        who = str(holder) if holder else "a holder that did not say who it is"
        waited = f"waited {self.timeout:g} s" if self.timeout else "did not wait (--lock-timeout 0)"
        return LockHeld(
            f"another apply holds the lock {self.name} (vhost {self.vhost!r}): {who}; {waited}",
            hint="wait for it to finish (the lock goes with its connection), or pass --lock-timeout SECONDS to wait",
            holder=str(holder) if holder else None,
        )

    def _unreachable(self, exc: BaseException) -> LockUnavailable:
        try:
            where = parse_amqp(self.amqp_url).display()
        except TopoError:
            where = "the AMQP URL"
        if isinstance(exc, TopoError):
            detail = exc.message
        elif isinstance(exc, TimeoutError):
            detail = f"no answer within {self.connect_timeout:g} s"
        else:
            detail = str(exc).split(": ")[-1][:120] or type(exc).__name__
        return LockUnavailable(
            f"cannot take the apply lock over AMQP at {where} (vhost {self.vhost!r}): {detail}",
            hint="check --amqp-url (or TOPO_AMQP_URL); pass --no-lock when nothing else applies this stack",
        )

    def release(self) -> None:
        loop, connection = self._loop, self._connection
        self._connection = None
        if loop is None:
            return
        if connection is not None:
            with contextlib.suppress(Exception):  # the broker drops the queue with the connection anyway
                self._run(connection.close(), 10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        loop.close()
        self._loop, self._thread = None, None


def take(
    vhost: str,
    *,
    exists: Callable[[str], bool],
    held_in_default: Callable[[], bool],
    make: Callable[[str, float], ApplyLock],
    timeout: float,
    poll: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[ApplyLock]:
    """Take the lock of a stack whose lock lives in ``vhost`` (:func:`lock_target`), also while that
    vhost does not exist yet; the locks now held (release them all). ``exists(vhost)`` asks the broker,
    ``held_in_default()`` whether the lock's queue is in ``/`` (held there), ``make(vhost, timeout)`` makes the
    :class:`ApplyLock` of that vhost (not acquired: this function acquires it, which raises LockHeld after
    ``timeout`` seconds).

    Why more than one place: the first apply of a stack takes its lock in ``/`` (its vhost is not there to
    hold it) and then creates the vhost; an apply started after that finds the vhost and would take the lock
    there, and both would run. So:

    - the vhost is missing: take the lock in ``/``; if the vhost exists by then (another apply created it
      meanwhile), take the lock in it too, and hold both;
    - the vhost exists: take the lock in it, then look at ``/``: if an apply holds the lock there, let go of
      the vhost's lock, wait until ``/``'s is gone, and start again.

    Two applies can then never both run: each holds the vhost's lock, or ``/``'s while the vhost was missing
    and the other comes after it and sees ``/``'s held. Nobody waits for ``/``'s lock while holding the vhost's
    (it lets go first), so two applies never wait for each other. ``timeout`` bounds the whole wait."""
    deadline = clock() + timeout

    def left() -> float:
        return max(0.0, deadline - clock())

    def acquired(where: str) -> ApplyLock:
        lock = make(where, left())
        lock.acquire()
        return lock

    if vhost == "/":
        return [acquired("/")]
    while True:
        if not exists(vhost):
            first = acquired("/")
            if not exists(vhost):
                return [first]
            try:
                return [first, acquired(vhost)]
            except BaseException:
                first.release()
                raise
        lock = acquired(vhost)
        if not held_in_default():
            return [lock]
        lock.release()
        while held_in_default():
            if clock() >= deadline:
                raise make("/", timeout).held()
            sleep(max(0.0, min(poll, left())))
