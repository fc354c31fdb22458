"""Checking, over AMQP, that the broker's queue is the one the files declare, before relying on it.

A subscription decides a failed message's fate from what the files declare (dead-letter exchange,
retry queues). If the broker's queue differs (say ``apply`` refused to replace it because it held
messages), a reject meant for a dead-letter exchange the queue does not have drops the message. So
before consuming, :func:`check_queue`:

1. declares the queue **passively** (it exists? a passive declare never creates it, and needs no
   configure permission);
2. declares it again with the declared ``durable``, ``auto_delete`` and arguments. The queue exists, so
   this creates nothing; the broker answers ``406 PRECONDITION_FAILED - inequivalent arg`` when one
   differs, naming it (the first one it finds). It needs the configure permission on the queue (403
   otherwise). Should the queue be deleted between the two declares, the second one creates it exactly
   as the files declare it, which is what ``topo apply`` would do;
3. does the same for the queue's retry queues (``<queue>.retry.<n>``), and declares its dead-letter
   exchange passively (it exists?).

What AMQP cannot show is not checked: policies (a dead-letter exchange set by a policy is therefore
used by the runtime itself, see :mod:`topo.runtime.failures`), bindings, and the arguments the broker
does not compare on a redeclare.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from topo.model import Queue
from topo.runtime.contracts import ClientPort
from topo.runtime.errors import AccessRefused, NotFound, PreconditionFailed, RuntimeClientError, TopologyMismatch

__all__ = ["check_queue", "declared_arguments", "describe_mismatch", "retry_queues"]

_APPLY_HINT = "`topo plan` shows the difference and `topo apply` converges the broker"
_INEQUIVALENT = re.compile(
    r"inequivalent arg '(?P<arg>[^']+)' for \w+ '.*' in vhost '.*': received (?P<ours>.+?)"
    r" but current is (?P<theirs>.+)$"
)
_VALUE = re.compile(r"^(?:the value )?'(?P<value>.*?)'(?: of type '[^']+')?$")


def declared_arguments(queue: Queue) -> dict[str, Any]:
    """The arguments a declare of ``queue`` sends: its arguments, plus ``x-queue-type`` unless classic
    (for RabbitMQ a missing ``x-queue-type`` and ``classic`` are the same)."""
    arguments = dict(queue.arguments)
    if queue.type != "classic":
        arguments["x-queue-type"] = queue.type
    return arguments


def retry_queues(client: ClientPort, queue: Queue) -> list[Queue]:
    """The retry queues of ``queue`` as the topology declares them (as the loader builds them if absent)."""
    from topo.runtime.failures import retry_queue_name

    result = []
    for attempt, delay in enumerate(queue.retry_delays, start=1):
        name = retry_queue_name(queue.name, attempt)
        declared = client.vhost.queues.get(name)
        if declared is None:
            declared = Queue(
                name,
                arguments={
                    "x-message-ttl": delay,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": queue.name,
                },
            )
        result.append(declared)
    return result


def _value(text: str) -> str:
    """``the value 'dlx' of type 'longstr'`` -> ``'dlx'``; ``'2000'`` -> ``2000``; ``none`` -> ``none``."""
    text = text.strip()
    match = _VALUE.match(text)
    if match is None:
        return text
    value = match.group("value")
    return value if value.lstrip("-").isdigit() or value in ("true", "false") else repr(value)


def describe_mismatch(queue: str, reply_text: str) -> str:
    """The broker's ``inequivalent arg`` text as "which argument: declared vs on the broker"."""
    match = _INEQUIVALENT.search(reply_text)
    if match is None:
        return f"queue {queue!r} on the broker differs from the files: {reply_text}"
    ours, theirs = _value(match.group("ours")), _value(match.group("theirs"))
    return (
        f"queue {queue!r} on the broker differs from the files: {match.group('arg')}: {ours} in the files, "
        f"{theirs} on the broker"
    )


async def check_queue(client: ClientPort, queue: Queue, dead_letter_exchange: str | None) -> None:
    """Raise :class:`TopologyMismatch` unless the broker's ``queue``, its retry queues and its dead-letter
    exchange are as declared (see the module docstring)."""
    channel = await client.connection.channel()
    try:
        for declared in (queue, *retry_queues(client, queue)):
            try:
                await channel.queue_declare(declared.name, passive=True)
            except NotFound:
                raise TopologyMismatch(
                    f"queue {declared.name!r} does not exist on the broker (vhost {client.vhost.name!r})",
                    hint=f"run `topo apply` to declare it; {_APPLY_HINT}",
                ) from None
            try:
                await channel.queue_declare(
                    declared.name,
                    durable=declared.durable,
                    auto_delete=declared.auto_delete,
                    arguments=declared_arguments(declared),
                )
            except PreconditionFailed as exc:
                raise TopologyMismatch(
                    describe_mismatch(declared.name, exc.reply_text),
                    hint=f"{_APPLY_HINT} (changing a queue's arguments replaces it); until then the runtime "
                    "will not consume from it, because what happens to a failed message depends on them",
                ) from None
            except AccessRefused:
                raise TopologyMismatch(
                    f"cannot check queue {declared.name!r} against the files: the user may not configure it "
                    "(comparing its arguments takes a declare with them)",
                    hint="grant the user configure permission on the queue (a declare with the same arguments "
                    "changes nothing), or subscribe with verify=False: the runtime then dead-letters failed "
                    "messages itself (confirmed) rather than rely on the broker's queue",
                ) from None
        if dead_letter_exchange:
            try:
                await channel.exchange_declare(dead_letter_exchange, passive=True)
            except NotFound:
                raise TopologyMismatch(
                    f"dead-letter exchange {dead_letter_exchange!r} of queue {queue.name!r} does not exist on "
                    "the broker: dead letters would be dropped",
                    hint=f"run `topo apply` to declare it; {_APPLY_HINT}",
                ) from None
    finally:
        with contextlib.suppress(RuntimeClientError):
            await channel.close()
