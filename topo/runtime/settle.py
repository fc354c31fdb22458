"""Settling deliveries (ack, nack, reject) with ack coalescing: a mixin of :class:`Channel`.

Single acks are not written at once: they wait for the connection's next write (the same event-loop
iteration), where the run of them starting at the oldest unsettled delivery becomes one
``Basic.Ack(multiple=True)``; acks outside that run go out one by one. A multiple ack never covers a
delivery the application has not settled, because only tracked, acked deliveries form the run.
"""

from __future__ import annotations

import contextlib
from collections import deque
from typing import TYPE_CHECKING

from topo.runtime import codec

if TYPE_CHECKING:
    from topo.runtime.connection import Connection

__all__ = ["Settling"]


class Settling:
    connection: Connection
    number: int
    _unacked: deque[int]  # delivered, not settled, in delivery order
    _ack_pending: set[int]  # acked, not written yet

    def ack(self, delivery_tag: int, multiple: bool = False) -> None:
        """Acknowledge; single acks wait for the next write, where runs of them are coalesced."""
        if multiple:
            self._emit_acks()
            unacked = self._unacked
            while unacked and unacked[0] <= delivery_tag:
                unacked.popleft()
            self.connection._send(codec.ack_frame(self.number, delivery_tag, True))
            return
        if not self._ack_pending:
            self.connection._want_flush(self)
        self._ack_pending.add(delivery_tag)

    def _forget(self, delivery_tag: int) -> None:
        with contextlib.suppress(ValueError):
            self._unacked.remove(delivery_tag)

    def nack(self, delivery_tag: int, *, multiple: bool = False, requeue: bool = True) -> None:
        self._emit_acks()
        if multiple:
            while self._unacked and self._unacked[0] <= delivery_tag:
                self._unacked.popleft()
        else:
            self._forget(delivery_tag)
        self.connection._send(codec.nack_frame(self.number, delivery_tag, multiple, requeue))

    def reject(self, delivery_tag: int, *, requeue: bool = False) -> None:
        self._emit_acks()
        self._forget(delivery_tag)
        self.connection._send(codec.reject_frame(self.number, delivery_tag, requeue))

    def _emit_acks(self) -> None:
        """Write the waiting acks: the run of them from the oldest unsettled delivery as one multiple ack."""
        pending = self._ack_pending
        if not pending:
            return
        unacked = self._unacked
        last = 0
        while unacked and unacked[0] in pending:
            last = unacked.popleft()
            pending.discard(last)
        if last:
            self.connection._send(codec.ack_frame(self.number, last, True))
        for tag in sorted(pending):
            self._forget(tag)
            self.connection._send(codec.ack_frame(self.number, tag, False))
        pending.clear()
