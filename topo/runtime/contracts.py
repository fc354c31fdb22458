"""The contracts between the runtime's objects, declared as :class:`typing.Protocol` (as aiormq's
``abc.py`` declares its channel and connection), so that no object reaches into another's private state::

    Session ─────────▶ SessionOwner   (the Connection) channel 0's methods, a lost socket, write pauses,
                                      the channels frames go to
    Connection ──────▶ ChannelPort    (each Channel)   open, restore after a reconnection, frames in,
                                      a lost session, a final failure, acks to write, counters
    Channel ─────────▶ ChannelHost    (the Connection) write frames, write acks at the next flush,
                                      retire a closed channel, wait for a session or for writes
    Message ─────────▶ Settler        (its Channel)    ack, nack, reject; which session it is on
    consume, failures,
    verify, dlq ─────▶ ClientPort     (the Client)     the declared vhost, the connection, the shared
                                      publishing channel, message ids, per-queue metrics

This module imports no other module of the runtime at run time (only for types), so any of them may
import it: the protocols are what break the ``client`` ↔ ``consume`` and ``channel`` ↔ ``connection``
import cycles.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from topo.model import Queue, VHost
    from topo.runtime.channel import Channel
    from topo.runtime.codec import Properties
    from topo.runtime.connection import Connection
    from topo.runtime.metrics import QueueRecorder

__all__ = ["AckWriter", "ChannelHost", "ChannelPort", "ClientPort", "PublisherPort", "SessionOwner", "Settler"]


class AckWriter(Protocol):
    """A channel whose coalesced acks the connection writes at its next flush."""

    def write_acks(self) -> None:
        """Write the acks waiting since the last flush (runs of them as one multiple ack)."""


class ChannelPort(AckWriter, Protocol):
    """What a :class:`~topo.runtime.connection.Connection` needs from each of its channels."""

    number: int
    # counters since the channel opened (see Client.metrics)
    published: int
    confirmed: int
    nacked: int
    returned: int
    delivered: int
    acked: int
    rejected: int
    requeued: int

    async def open(self) -> None:
        """Channel.Open on the current session, then QoS and confirm mode as configured."""

    async def restore(self) -> None:
        """Reopen on a new session: channel, QoS, confirms, consumers, then unconfirmed publishes."""

    def handle_frame(self, frame_type: int, payload: bytes) -> None:
        """One frame the broker sent on this channel."""

    def session_lost(self, error: Exception) -> None:
        """The session is gone and the connection reconnects: fail pending calls, forget delivery tags."""

    def fail(self, error: Exception, *, final: bool) -> None:
        """Fail every pending call, publish and consumer with ``error``; ``final``: the channel is closed."""


class ChannelHost(Protocol):
    """What a :class:`~topo.runtime.channel.Channel` needs from its connection."""

    frame_max: int

    @property
    def is_open(self) -> bool:
        """A session is open and the connection is not closing."""

    @property
    def writes_paused(self) -> bool:
        """The broker blocks publishers (Connection.Blocked) or the socket's buffer is full."""

    def send(self, data: bytes) -> None:
        """Queue frames for the current session; they go out with the next flush (same loop iteration)."""

    def schedule_acks(self, channel: AckWriter) -> None:
        """Have ``channel.write_acks()`` run at the next flush."""

    def retire(self, channel: ChannelPort) -> None:
        """Forget a closed channel (its number is free again), keeping its counters."""

    async def wait_ready(self) -> None:
        """Wait until a session is open."""

    async def wait_publishable(self) -> None:
        """Wait while writes are paused (see :attr:`writes_paused`)."""


class SessionOwner(Protocol):
    """What a :class:`~topo.runtime.protocol.Session` (one socket) needs from its connection."""

    @property
    def channels(self) -> Mapping[int, ChannelPort]:
        """The open channels by number, where the session hands their frames."""

    def pause_writing(self) -> None:
        """The socket's write buffer is full."""

    def resume_writing(self) -> None:
        """The socket's write buffer drained."""

    def connection_method(self, session: Any, method: Any) -> None:
        """A method on channel 0 after the handshake (Close, CloseOk, Blocked, Unblocked)."""

    def session_lost(self, session: Any, exc: Exception | None) -> None:
        """The session's socket closed (``exc``: why, when it was not a clean close)."""


class Settler(Protocol):
    """What a received :class:`~topo.runtime.message.Message` needs from the channel it came on."""

    generation: int  # which session of the connection the channel is on: tags of another one are void

    @property
    def is_open(self) -> bool:
        """The channel is open on a live session."""

    def ack(self, delivery_tag: int, multiple: bool = False) -> None: ...

    def nack(self, delivery_tag: int, *, multiple: bool = False, requeue: bool = True) -> None: ...

    def reject(self, delivery_tag: int, *, requeue: bool = False) -> None: ...


class PublisherPort(Protocol):
    """What dead-letter replay needs from a publisher (:class:`~topo.runtime.client.Publisher`)."""

    def route(self, routing_key: str, headers: Mapping[str, Any] | None = None) -> tuple[str | None, bool]:
        """Offline: (why the declared layout drops the message or None, whether it is persistent)."""

    async def publish(self, routing_key: str, body: Any, *, properties: Properties | None = None) -> None:
        """Publish and return once the broker has confirmed it."""


class ClientPort(Protocol):
    """What consumers, subscriptions, failure handling, checks and replays need from the client
    (:class:`~topo.runtime.client.Client`): they are given the client, not its module."""

    vhost: VHost  # the declared vhost the client works in
    connection: Connection

    async def open(self) -> Any:
        """Open the connection if it is not open yet."""

    async def publishing_channel(self) -> Channel:
        """The shared channel (with publisher confirms) every publisher of the client uses."""

    def new_message_id(self) -> str:
        """A fresh ``message_id``."""

    def queue(self, name: str) -> Queue:
        """The declared queue ``name`` (:class:`~topo.runtime.errors.NotDeclared` when it is not)."""

    def publisher(self, exchange: str, *, check_routing: bool = True) -> PublisherPort:
        """A publisher to a declared exchange."""

    def queue_recorder(self, queue: str) -> QueueRecorder:
        """Where the subscriptions of ``queue`` count their metrics (made on first use)."""
