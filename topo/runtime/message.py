"""A message received from the broker, and how to settle it (ack, nack, reject)."""

from __future__ import annotations

import json
from typing import Any

from topo.errors import UsageError
from topo.runtime.codec import Properties
from topo.runtime.contracts import Settler
from topo.runtime.errors import EncodingError

__all__ = ["Message", "encode_body"]

_NOT_UTF8 = "pass bytes to send a body as it is (or encode it yourself)"


def encode_body(body: Any, content_type: str | None = None) -> tuple[bytes, str | None]:
    """Bytes as they are; ``str`` as UTF-8 text; anything else (dict, list, numbers...) as JSON.

    :class:`EncodingError` for text that is not UTF-8 or a value JSON cannot carry."""
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body), content_type
    if isinstance(body, str):
        return _utf8(body, "the body"), content_type or "text/plain; charset=utf-8"
    try:
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise EncodingError(
            f"cannot send the body as JSON: {exc}", hint="pass bytes, str, or what json.dumps takes"
        ) from None
    return _utf8(text, "the body's JSON"), content_type or "application/json"


def _utf8(text: str, what: str) -> bytes:
    """``text`` as UTF-8, or :class:`EncodingError` naming ``what`` and where it is not UTF-8 (a lone surrogate)."""
    try:
        return text.encode()
    except UnicodeEncodeError as exc:
        raise EncodingError(
            f"{what} is not UTF-8 text ({exc.object[exc.start : exc.end]!r} at position {exc.start})", hint=_NOT_UTF8
        ) from None


class Message:
    """A delivered (or returned, or fetched) message.

    Settle it once with :meth:`ack`, :meth:`nack` or :meth:`reject`. After a reconnection, settling a
    message delivered on the lost connection does nothing: the broker has requeued it and delivers it
    again (``redelivered`` is then true), so consumers must tolerate duplicates (use ``message_id``).
    """

    __slots__ = (
        "_channel",
        "_generation",
        "body",
        "consumer_tag",
        "delivery_tag",
        "exchange",
        "from_stream",
        "properties",
        "redelivered",
        "routing_key",
        "settled",
    )

    def __init__(
        self,
        body: bytes,
        properties: Properties,
        exchange: str,
        routing_key: str,
        delivery_tag: int = 0,
        redelivered: bool = False,
        consumer_tag: str = "",
        channel: Settler | None = None,
        generation: int = 0,
    ) -> None:
        self.body = body
        self.properties = properties
        self.exchange = exchange
        self.routing_key = routing_key
        self.delivery_tag = delivery_tag
        self.redelivered = redelivered
        self.consumer_tag = consumer_tag
        self._channel = channel
        self._generation = generation
        self.settled = channel is None
        self.from_stream = False  # delivered by a stream: ack only (RabbitMQ closes the connection on a nack)

    def __repr__(self) -> str:
        return (
            f"<Message {self.exchange or '(default)'}/{self.routing_key} tag={self.delivery_tag} "
            f"{len(self.body)} bytes>"
        )

    # -- content ----------------------------------------------------------------------------------------

    @property
    def headers(self) -> dict[str, Any]:
        return self.properties.headers or {}

    @property
    def message_id(self) -> str | None:
        return self.properties.message_id

    @property
    def correlation_id(self) -> str | None:
        return self.properties.correlation_id

    @property
    def reply_to(self) -> str | None:
        return self.properties.reply_to

    @property
    def text(self) -> str:
        return self.body.decode(self.properties.content_encoding or "utf-8")

    def json(self) -> Any:
        return json.loads(self.body)

    def decoded(self) -> Any:
        """The body as JSON when ``content_type`` says so, as text for ``text/*``, else the bytes."""
        ctype = (self.properties.content_type or "").split(";")[0].strip()
        if ctype == "application/json" or ctype.endswith("+json"):
            return self.json()
        if ctype.startswith("text/"):
            return self.text
        return self.body

    # -- settling -----------------------------------------------------------------------------------------

    def _settle(self) -> Settler | None:
        if self.settled:
            return None
        self.settled = True
        channel = self._channel
        if channel is None or channel.generation != self._generation or not channel.is_open:
            return None  # delivered on a lost connection: the broker redelivers it
        return channel

    def _check_rejectable(self) -> None:
        if self.from_stream:
            raise UsageError(
                "a stream's message cannot be rejected or requeued: RabbitMQ would close the connection",
                hint="ack it (a stream keeps every message; read it again from its offset)",
            )

    def ack_nowait(self) -> None:
        channel = self._settle()
        if channel is not None:
            channel.ack(self.delivery_tag)

    async def ack(self) -> None:
        """Acknowledge: the broker forgets the message."""
        self.ack_nowait()

    def nack_nowait(self, requeue: bool = True) -> None:
        self._check_rejectable()
        channel = self._settle()
        if channel is not None:
            channel.nack(self.delivery_tag, requeue=requeue)

    async def nack(self, requeue: bool = True) -> None:
        """Negative acknowledge: requeue it, or (``requeue=False``) dead-letter or drop it."""
        self.nack_nowait(requeue)

    async def reject(self, requeue: bool = False) -> None:
        """Reject: dead-letter it (when the queue has a dead-letter exchange) or drop it; or requeue."""
        self._check_rejectable()
        channel = self._settle()
        if channel is not None:
            channel.reject(self.delivery_tag, requeue=requeue)
