"""Errors of the AMQP runtime, all under :class:`topo.errors.RuntimeClientError`.

::

    RuntimeClientError                  (topo.errors) anything the runtime reports
    ├── ConnectionFailed                could not open a connection (refused, DNS, TLS, handshake)
    │   ├── AuthenticationError         the broker refused the credentials or the mechanism
    │   └── VhostAccessRefused          the broker refused the user access to the vhost (530)
    ├── ConnectionClosed                the connection is gone: closed by the broker (reply code and
    │   │                               text) or lost; ``reply_code`` 0 means lost without a Close
    │   └── ConnectionLost              lost while a call waited, before reconnection (retry it)
    ├── ChannelClosed                   the broker closed a channel (Channel.Close): reply code, text
    │   │                               and the method that failed
    │   ├── AccessRefused               403 ACCESS_REFUSED
    │   ├── NotFound                    404 NOT_FOUND
    │   ├── ResourceLocked              405 RESOURCE_LOCKED
    │   └── PreconditionFailed          406 PRECONDITION_FAILED (e.g. ``inequivalent arg``)
    ├── NotDeclared                     an exchange or queue is not in the topology (before any I/O)
    ├── TopologyMismatch                the broker's queue (or exchange) is not what the files declare,
    │                                   or the runtime may not check it (before consuming)
    ├── UnroutableError                 the declared layout, or the broker (Basic.Return), drops it
    ├── InvalidRoutingKey               a routing key AMQP cannot carry (over 255 bytes, not UTF-8)
    ├── EncodingError                   a value AMQP cannot carry: a header, a property, a body, a
    │                                   method's field (also a ``ValueError``; before any I/O)
    ├── PublishNacked                   the broker refused a publish (Basic.Nack)
    ├── PublishTimeout                  no confirm in time (says when the broker blocks publishers;
    │                                   also a ``TimeoutError``)
    ├── ConsumerCancelled               the broker cancelled a consumer (queue deleted, ...)
    ├── RpcTimeout                      no RPC reply in time (also a ``TimeoutError``)
    ├── RemoteError                     the RPC server's handler raised (its reply says what)
    ├── ProtocolError                   the peer sent something AMQP 0-9-1 does not allow
    └── ClientClosed                    the client was closed while an operation was pending
"""

from __future__ import annotations

from pamqp import commands

from topo.errors import RuntimeClientError

__all__ = [
    "AccessRefused",
    "AuthenticationError",
    "ChannelClosed",
    "ClientClosed",
    "ConnectionClosed",
    "ConnectionFailed",
    "ConnectionLost",
    "ConsumerCancelled",
    "EncodingError",
    "InvalidRoutingKey",
    "NotDeclared",
    "NotFound",
    "PreconditionFailed",
    "ProtocolError",
    "PublishNacked",
    "PublishTimeout",
    "RemoteError",
    "ResourceLocked",
    "RpcTimeout",
    "RuntimeClientError",
    "TopologyMismatch",
    "UnroutableError",
    "VhostAccessRefused",
    "channel_error",
    "method_name",
]


def method_name(class_id: int, method_id: int) -> str | None:
    """``Queue.Declare`` for (50, 10); None for (0, 0) or an unknown pair."""
    if not class_id:
        return None
    cls = commands.INDEX_MAPPING.get((class_id << 16) | method_id)
    return str(getattr(cls, "name", cls)) if cls is not None else f"method {class_id}.{method_id}"


class ConnectionFailed(RuntimeClientError):
    """The connection could not be opened."""


class AuthenticationError(ConnectionFailed):
    """The broker refused the credentials (or the SASL mechanism)."""


class VhostAccessRefused(ConnectionFailed):
    """The broker accepted the login but refused the user the vhost (530 NOT_ALLOWED: no permission on it,
    or no such vhost). A reconnecting client stops on it rather than retrying."""

    def __init__(self, user: str, vhost: str, reply_code: int, reply_text: str) -> None:
        self.user = user
        self.vhost = vhost
        self.reply_code = reply_code
        self.reply_text = reply_text
        super().__init__(
            f"the broker refused user {user!r} access to vhost {vhost!r}: {reply_code} {reply_text}",
            hint=f"give the user a permission on the vhost (rabbitmqctl set_permissions -p {vhost!r} {user!r} "
            "'.*' '.*' '.*'), check that the vhost exists, or connect as another user",
        )


class _Closed(RuntimeClientError):
    def __init__(self, reply_code: int, reply_text: str, class_id: int = 0, method_id: int = 0, *, what: str) -> None:
        self.reply_code = reply_code
        self.reply_text = reply_text
        self.method = method_name(class_id, method_id)
        text = f"{what}: {reply_code} {reply_text}" if reply_code else f"{what}: {reply_text}"
        if self.method:
            text += f" (in {self.method})"
        hint = None
        if "inequivalent arg" in reply_text:
            hint = "the broker has it with other settings: `topo plan` shows the difference"
        super().__init__(text, hint=hint)


class ConnectionClosed(_Closed):
    """The broker closed the connection, or it was lost (``reply_code`` 0)."""

    def __init__(self, reply_code: int, reply_text: str, class_id: int = 0, method_id: int = 0) -> None:
        super().__init__(reply_code, reply_text, class_id, method_id, what="connection closed")


class ConnectionLost(ConnectionClosed):
    """The connection was lost while a call waited for its answer; the call may be retried."""

    def __init__(self, reason: str = "connection lost") -> None:
        super().__init__(0, reason)


class ChannelClosed(_Closed):
    """The broker closed a channel with ``reply_code``/``reply_text`` while running ``method``."""

    def __init__(self, reply_code: int, reply_text: str, class_id: int = 0, method_id: int = 0) -> None:
        super().__init__(reply_code, reply_text, class_id, method_id, what="channel closed")


class AccessRefused(ChannelClosed):
    """403 ACCESS_REFUSED."""


class NotFound(ChannelClosed):
    """404 NOT_FOUND."""


class ResourceLocked(ChannelClosed):
    """405 RESOURCE_LOCKED."""


class PreconditionFailed(ChannelClosed):
    """406 PRECONDITION_FAILED."""


_CHANNEL_ERRORS: dict[int, type[ChannelClosed]] = {
    403: AccessRefused,
    404: NotFound,
    405: ResourceLocked,
    406: PreconditionFailed,
}


def channel_error(reply_code: int, reply_text: str, class_id: int = 0, method_id: int = 0) -> ChannelClosed:
    """The typed :class:`ChannelClosed` for a broker's Channel.Close."""
    return _CHANNEL_ERRORS.get(reply_code, ChannelClosed)(reply_code, reply_text, class_id, method_id)


class NotDeclared(RuntimeClientError):
    """An exchange or queue the call names is not declared in the topology's vhost."""


class TopologyMismatch(RuntimeClientError):
    """The broker's queue (or exchange) differs from the declared one, or is missing, or the runtime has
    no permission to compare them: a subscription refuses to start rather than rely on what it declares."""


class UnroutableError(RuntimeClientError):
    """A message would be (or was) dropped: no binding routes it to any queue."""

    def __init__(
        self, exchange: str, routing_key: str, reason: str, *, returned: bool = False, hint: str | None = None
    ) -> None:
        self.exchange = exchange
        self.routing_key = routing_key
        self.reason = reason
        self.returned = returned
        where = "the broker returned" if returned else "the declared topology drops"
        super().__init__(
            f"unroutable: {where} the message to exchange {exchange!r} with routing key {routing_key!r}: {reason}",
            hint=hint,
        )


class InvalidRoutingKey(RuntimeClientError, ValueError):
    """A routing key AMQP 0-9-1 cannot carry: longer than a short string (255 bytes of UTF-8), or not UTF-8
    text. Raised before any I/O."""


class EncodingError(RuntimeClientError, ValueError):
    """A value AMQP 0-9-1 cannot carry: a header (an integer beyond 64 bits, a set, text that is not
    UTF-8), a property (a short string over 255 bytes, a priority over 255), a body that is not UTF-8 text
    or JSON, a method's field out of its range. Raised before the message (or method) is written."""


class PublishNacked(RuntimeClientError):
    """The broker answered Basic.Nack: it could not take responsibility for the message."""


class PublishTimeout(RuntimeClientError, TimeoutError):
    """The broker did not confirm a publish in time; ``blocked`` is its Connection.Blocked reason, when it
    was blocking publishers (a memory or disk alarm), else None."""

    def __init__(self, waited: float, blocked: str | None) -> None:
        self.waited = waited
        self.blocked = blocked
        message = f"the broker did not confirm the message within {waited:g} s"
        if blocked is not None:
            message += f": it is blocking publishers (Connection.Blocked: {blocked})"
            hint = (
                "RabbitMQ blocks publishers while a resource alarm is on (memory or disk space): free some on "
                "the broker (`rabbitmq-diagnostics alarms` shows which), or wait longer with --timeout SECONDS"
            )
        else:
            hint = "the broker may be overloaded: try again, or wait longer with --timeout SECONDS"
        super().__init__(message, hint=hint)


class ConsumerCancelled(RuntimeClientError):
    """The broker cancelled the consumer (its queue was deleted, or the node holding it went away)."""


class RpcTimeout(RuntimeClientError, TimeoutError):
    """No reply to an RPC request within the timeout."""


class RemoteError(RuntimeClientError):
    """The RPC server's handler raised an exception; the message says which."""


class ProtocolError(RuntimeClientError):
    """The peer broke the AMQP 0-9-1 protocol (an unexpected frame or method)."""


class ClientClosed(RuntimeClientError):
    """The client (or channel) was closed while an operation was pending or was started after closing."""
