"""Settling deliveries (ack, nack, reject) with ack coalescing: a mixin of :class:`Channel`.

Single acks are not written at once: they wait for the connection's next write (the same event-loop
iteration), where the run of them starting at the oldest unsettled delivery becomes one
``Basic.Ack(multiple=True)``; acks outside that run go out one by one. A multiple ack never covers a
delivery the application has not settled, because only tracked, acked deliveries form the run.
"""

from __future__ import annotations

import contextlib
from collections import deque

from topo.runtime import codec
from topo.runtime.contracts import ChannelHost

__all__ = ["Settling"]


class Settling:
    connection: ChannelHost
    number: int
    _unacked: deque[int]  # delivered, not settled, in delivery order
    _ack_pending: set[int]  # acked, not written yet
    # deliveries settled (see Client.metrics): acked, rejected (nack/reject without requeue: dropped or
    # dead-lettered by the broker), requeued (nack/reject with requeue)
    acked: int
    rejected: int
    requeued: int

    def ack(self, delivery_tag: int, multiple: bool = False) -> None:
        """Acknowledge; single acks wait for the next write, where runs of them are coalesced."""
        if multiple:
            self.write_acks()
            unacked = self._unacked
            before = len(unacked)
            while unacked and unacked[0] <= delivery_tag:
                unacked.popleft()
            self.acked += before - len(unacked)
            self.connection.send(codec.ack_frame(self.number, delivery_tag, True))
            return
        if not self._ack_pending:
            self.connection.schedule_acks(self)
        self._ack_pending.add(delivery_tag)
        self.acked += 1

    def _forget(self, delivery_tag: int) -> None:
        with contextlib.suppress(ValueError):
            self._unacked.remove(delivery_tag)

    def nack(self, delivery_tag: int, *, multiple: bool = False, requeue: bool = True) -> None:
        self.write_acks()
        count = 1
        if multiple:
            before = len(self._unacked)
            while self._unacked and self._unacked[0] <= delivery_tag:
                self._unacked.popleft()
            count = before - len(self._unacked)
        else:
            self._forget(delivery_tag)
        self._count_refusal(count, requeue)
        self.connection.send(codec.nack_frame(self.number, delivery_tag, multiple, requeue))

    def reject(self, delivery_tag: int, *, requeue: bool = False) -> None:
        self.write_acks()
        self._forget(delivery_tag)
        self._count_refusal(1, requeue)
        self.connection.send(codec.reject_frame(self.number, delivery_tag, requeue))

    def _count_refusal(self, count: int, requeue: bool) -> None:
        if requeue:
            self.requeued += count
        else:
            self.rejected += count

    def write_acks(self) -> None:
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
            self.connection.send(codec.ack_frame(self.number, last, True))
        for tag in sorted(pending):
            self._forget(tag)
            self.connection.send(codec.ack_frame(self.number, tag, False))
        pending.clear()
