"""Replaying dead letters to the route they came by: ``client.replay_dead_letters(queue)``, ``topo dlq replay``.

Each dead letter's original route is read from the headers the runtime sets when it first retries (or
itself dead-letters) a message, ``x-topo-original-exchange`` and ``x-topo-original-routing-key``
(:mod:`topo.runtime.failures`); without them, from the broker's ``x-death`` entry of the first death
(``x-first-death-queue``): its exchange and first routing key.

Dead letters are taken one at a time (``Basic.Get``) until the queue has none left that this run has not
seen: one that comes back meanwhile (say its copy was dead-lettered again at once) is recognised by its
``message_id`` (else exchange, routing key and body) and left for the next run, so each dead letter is
replayed at most once per run and a run always ends. (Not bounded by the queue's message count: a quorum
queue's count lags behind requeues and acks.) Each is republished to its
route through the declared topology (``mandatory``, with publisher confirms) and acked only once the
broker has confirmed the copy: stopped half-way (an error, Ctrl-C, a lost connection), every dead letter
not yet acked stays in the queue. The one in flight at that moment may exist twice (republished and
confirmed, not yet acked): replay is at-least-once, like any redelivery.

A dead letter is skipped, and stays in the queue, when its route is unknown, or names an exchange the
files no longer declare, or one whose declared bindings drop it, or when the broker returns it.
Skipped (and, in a dry run, all) dead letters are put back with a requeue when the replay ends; on a
quorum queue that counts as a delivery (mind its ``delivery-limit``).

The republished message keeps its body and properties; the headers of its previous life go
(``x-death``, ``x-first-death-*``, ``x-last-death-*``, ``x-retry-count``: it gets its retries again);
the ``x-topo-original-*`` headers stay.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Literal

from topo.errors import UsageError
from topo.runtime.codec import Properties
from topo.runtime.contracts import ClientPort
from topo.runtime.errors import NotDeclared, RuntimeClientError, UnroutableError
from topo.runtime.failures import ORIGINAL_EXCHANGE, ORIGINAL_ROUTING_KEY, RETRY_HEADER, message_key
from topo.runtime.message import Message

__all__ = ["DeadLetter", "ReplayReport", "original_route", "replay_dead_letters"]

Status = Literal["replayed", "would replay", "skipped"]
_DEATH_HEADERS = ("x-death", RETRY_HEADER)
_DEATH_PREFIXES = ("x-first-death-", "x-last-death-")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """What became of one dead letter: its route (None when unknown), where that came from, the status,
    and why it was skipped."""

    message_id: str | None
    exchange: str | None
    routing_key: str | None
    source: str | None  # "x-topo-original headers" or "x-death"
    status: Status
    reason: str | None = None


@dataclass(slots=True)
class ReplayReport:
    """The dead letters a replay looked at, in order, and the error that stopped it (if one did)."""

    queue: str
    dry_run: bool
    items: list[DeadLetter] = field(default_factory=list)
    error: RuntimeClientError | None = None

    @property
    def replayed(self) -> int:
        return sum(1 for i in self.items if i.status == "replayed")

    @property
    def would_replay(self) -> int:
        return sum(1 for i in self.items if i.status == "would replay")

    @property
    def skipped(self) -> int:
        return sum(1 for i in self.items if i.status == "skipped")


def _text(value: Any) -> str | None:
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode()
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) else None


def original_route(message: Message) -> tuple[str, str, str] | None:
    """(exchange, routing key, where that came from) of a dead letter, or None when nothing says."""
    headers = message.headers
    exchange, key = _text(headers.get(ORIGINAL_EXCHANGE)), _text(headers.get(ORIGINAL_ROUTING_KEY))
    if exchange is not None and key is not None:
        return exchange, key, "x-topo-original headers"
    deaths = [d for d in headers.get("x-death") or [] if isinstance(d, dict)]
    if not deaths:
        return None
    first_queue = _text(headers.get("x-first-death-queue"))
    entry = next((d for d in deaths if _text(d.get("queue")) == first_queue), deaths[-1])  # newest first
    exchange = _text(entry.get("exchange"))
    keys = entry.get("routing-keys")
    key = _text(keys[0]) if isinstance(keys, list) and keys else None
    if exchange is None or key is None:
        return None
    return exchange, key, "x-death"


def _replay_properties(message: Message) -> Properties:
    props = Properties(**{f: getattr(message.properties, f) for f in Properties.__slots__})
    headers = {
        k: v for k, v in message.headers.items() if k not in _DEATH_HEADERS and not k.startswith(_DEATH_PREFIXES)
    }
    props.headers = headers or None
    return props


async def replay_dead_letters(
    client: ClientPort,
    queue: str,
    *,
    count: int | None = None,
    dry_run: bool = False,
    on_item: Callable[[DeadLetter], None] | None = None,
) -> ReplayReport:
    """Replay (at most ``count``) dead letters of ``queue`` to their original routes; see the module
    docstring. ``dry_run`` moves nothing and says what would go where. ``on_item`` sees each one as it
    is decided. A broker error stops the replay: it is in ``ReplayReport.error`` (nothing is lost)."""
    declared = client.queue(queue)
    if declared.type == "stream":
        raise UsageError(f"{queue!r} is a stream: it keeps its messages, there is nothing to take out of it")
    if count is not None and count < 1:
        raise UsageError(f"count must be at least 1, got {count}")
    report = ReplayReport(queue, dry_run)
    await client.open()
    channel = await client.connection.channel()
    held: list[Message] = []

    def note(item: DeadLetter) -> None:
        report.items.append(item)
        if on_item is not None:
            on_item(item)

    seen: set[Hashable] = set()
    try:
        while count is None or report.replayed + report.would_replay < count:
            message = await channel.get(queue)
            if message is None:
                break
            key = message_key(message)
            if key in seen:
                held.append(message)
                note(
                    DeadLetter(
                        message.message_id,
                        None,
                        None,
                        None,
                        "skipped",
                        "came back during this replay (dead-lettered again?): left for the next run",
                    )
                )
                continue
            seen.add(key)
            route = original_route(message)
            if route is None:
                held.append(message)
                note(
                    DeadLetter(
                        message.message_id,
                        None,
                        None,
                        None,
                        "skipped",
                        "original route unknown: no x-topo-original-* headers and no x-death",
                    )
                )
                continue
            exchange, key, source = route
            props = _replay_properties(message)
            reason: str | None = None
            try:
                publisher = client.publisher(exchange)
                dropped, _ = publisher.route(key, props.headers)
                if dropped is not None:
                    reason = f"the declared layout drops it now: {dropped}"
            except NotDeclared as exc:
                reason = f"no longer declared: {exc.message}"
            if reason is not None or dry_run:
                held.append(message)
                note(
                    DeadLetter(
                        message.message_id, exchange, key, source, "skipped" if reason else "would replay", reason
                    )
                )
                continue
            try:
                await publisher.publish(key, message.body, properties=props)
            except UnroutableError as exc:  # the broker returned it: its bindings differ from the files
                held.append(message)
                note(DeadLetter(message.message_id, exchange, key, source, "skipped", exc.message))
                continue
            except RuntimeClientError as exc:
                held.append(message)
                report.error = exc
                break
            message.ack_nowait()  # only now: the copy is confirmed
            note(DeadLetter(message.message_id, exchange, key, source, "replayed"))
    except RuntimeClientError as exc:
        report.error = exc
    finally:
        for message in held:
            with contextlib.suppress(RuntimeClientError):
                message.nack_nowait(requeue=True)
        with contextlib.suppress(RuntimeClientError):
            await channel.close()
    return report
