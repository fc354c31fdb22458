"""The declaration methods of a channel (exchanges, queues, bindings): a mixin of :class:`Channel`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pamqp import commands

from topo.runtime import codec

__all__ = ["ChannelMethods"]


class ChannelMethods:
    """Exchange.*, Queue.* methods; each waits for its -Ok or raises the typed ChannelClosed."""

    async def _call(self, method: Any, *replies: type, ready: bool = True) -> Any:
        raise NotImplementedError

    async def exchange_declare(
        self,
        exchange: str,
        exchange_type: str = "direct",
        *,
        durable: bool = True,
        auto_delete: bool = False,
        internal: bool = False,
        passive: bool = False,
        arguments: Mapping[str, Any] | None = None,
    ) -> None:
        method = codec.make_method(
            commands.Exchange.Declare,
            exchange=exchange,
            exchange_type=exchange_type,
            passive=passive,
            durable=durable,
            auto_delete=auto_delete,
            internal=internal,
            arguments=dict(arguments or {}),
        )
        await self._call(method, commands.Exchange.DeclareOk)

    async def exchange_delete(self, exchange: str, *, if_unused: bool = False) -> None:
        method = codec.make_method(commands.Exchange.Delete, exchange=exchange, if_unused=if_unused)
        await self._call(method, commands.Exchange.DeleteOk)

    async def exchange_bind(
        self, destination: str, source: str, routing_key: str = "", arguments: Mapping[str, Any] | None = None
    ) -> None:
        method = codec.make_method(
            commands.Exchange.Bind,
            destination=destination,
            source=source,
            routing_key=routing_key,
            arguments=dict(arguments or {}),
        )
        await self._call(method, commands.Exchange.BindOk)

    async def queue_declare(
        self,
        queue: str = "",
        *,
        durable: bool = True,
        exclusive: bool = False,
        auto_delete: bool = False,
        passive: bool = False,
        arguments: Mapping[str, Any] | None = None,
    ) -> tuple[str, int, int]:
        """Declare (or with ``passive``, check) a queue: (name, message count, consumer count)."""
        method = codec.make_method(
            commands.Queue.Declare,
            queue=queue,
            passive=passive,
            durable=durable,
            exclusive=exclusive,
            auto_delete=auto_delete,
            arguments=dict(arguments or {}),
        )
        ok = await self._call(method, commands.Queue.DeclareOk)
        return ok.queue, ok.message_count, ok.consumer_count

    async def queue_bind(
        self, queue: str, exchange: str, routing_key: str = "", arguments: Mapping[str, Any] | None = None
    ) -> None:
        method = codec.make_method(
            commands.Queue.Bind,
            queue=queue,
            exchange=exchange,
            routing_key=routing_key,
            arguments=dict(arguments or {}),
        )
        await self._call(method, commands.Queue.BindOk)

    async def queue_unbind(
        self, queue: str, exchange: str, routing_key: str = "", arguments: Mapping[str, Any] | None = None
    ) -> None:
        method = codec.make_method(
            commands.Queue.Unbind,
            queue=queue,
            exchange=exchange,
            routing_key=routing_key,
            arguments=dict(arguments or {}),
        )
        await self._call(method, commands.Queue.UnbindOk)

    async def queue_purge(self, queue: str) -> int:
        ok = await self._call(codec.make_method(commands.Queue.Purge, queue=queue), commands.Queue.PurgeOk)
        return int(ok.message_count)

    async def queue_delete(self, queue: str, *, if_unused: bool = False, if_empty: bool = False) -> int:
        method = codec.make_method(commands.Queue.Delete, queue=queue, if_unused=if_unused, if_empty=if_empty)
        ok = await self._call(method, commands.Queue.DeleteOk)
        return int(ok.message_count)

    async def tx_select(self) -> None:
        """Make the channel transactional (``Tx.Select``): its publishes and acks take effect together at
        :meth:`tx_commit`, or never (the channel closes first: the broker drops them and requeues what
        was delivered and not acked)."""
        await self._call(commands.Tx.Select(), commands.Tx.SelectOk)

    async def tx_commit(self) -> None:
        """Commit the publishes and acks sent since the last commit (``Tx.Commit``); the acks go first."""
        await self._call(commands.Tx.Commit(), commands.Tx.CommitOk)

    async def tx_rollback(self) -> None:
        """Drop the publishes and acks sent since the last commit (``Tx.Rollback``)."""
        await self._call(commands.Tx.Rollback(), commands.Tx.RollbackOk)
