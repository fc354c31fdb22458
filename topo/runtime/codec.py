"""Encoding and decoding of what AMQP 0-9-1 carries, on top of pamqp.

pamqp gives us the method classes and their layout; this module adds what the runtime needs beyond it:

* **Field tables** with a mapping that round-trips with other clients (pika, the Java client, the
  broker): ``bool`` → ``t``, ``int`` → ``I`` (32-bit signed) or ``l`` (64-bit signed), ``float`` → ``d``
  (64-bit, pamqp would use 32-bit ``f``), ``Decimal`` → ``D``, ``str`` → ``S``, ``bytes``/``bytearray``
  → ``x``, ``datetime`` → ``T`` (seconds, UTC), ``dict`` → ``F``, ``list``/``tuple`` → ``A``,
  ``None`` → ``V``. Every tag RabbitMQ sends is decoded (``b B s u I i l L f d D S x A T F V``).
* **Method frames without pamqp's name check** (pamqp rejects queue names RabbitMQ accepts, such as
  non-ASCII ones): :func:`method_frame` builds the frame from a pamqp method object without validating.
* **Content frames**: :func:`content_frames` writes the header and the body split into frames of at most
  ``frame_max - 8`` bytes; :func:`encode_properties` / :func:`decode_header` are a fast, complete codec
  for ``Basic.Properties``.
* **Hot frames** (Basic.Publish, Basic.Ack, Basic.Deliver) are built and parsed with :mod:`struct`
  directly: they happen once per message and pamqp's generic path costs 10-30 µs per frame.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import functools
import inspect
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pamqp import commands, decode, encode

from topo.runtime.errors import EncodingError, ProtocolError
from topo.shortstr import too_long_message

__all__ = [
    "FRAME_BODY",
    "FRAME_END",
    "FRAME_HEADER",
    "FRAME_HEARTBEAT",
    "FRAME_METHOD",
    "HEARTBEAT_FRAME",
    "Properties",
    "ack_frame",
    "content_frames",
    "decode_header",
    "decode_table",
    "encode_properties",
    "encode_table",
    "make_method",
    "method_frame",
    "nack_frame",
    "publish_frame",
    "reject_frame",
    "shortstr_error",
    "unmarshal_method",
]

FRAME_METHOD = 1
FRAME_HEADER = 2
FRAME_BODY = 3
FRAME_HEARTBEAT = 8
FRAME_END = 0xCE
_END = b"\xce"
HEARTBEAT_FRAME = b"\x08\x00\x00\x00\x00\x00\x00\xce"

_FRAME_HEAD = struct.Struct(">BHI")
_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_U64 = struct.Struct(">Q")
_F64 = struct.Struct(">d")
_HDR = struct.Struct(">HHQH")

_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


# ---------------------------------------------------------------------------------------------------------
# Field tables


def _shortstr(value: str, what: str = "short string") -> bytes:
    try:
        raw = value.encode()
        return bytes((len(raw),)) + raw  # ValueError past 255 bytes
    except (AttributeError, ValueError):
        raise shortstr_error(what, value) from None


def shortstr_error(what: str, value: Any) -> EncodingError:
    """Why ``value`` is not an AMQP short string (text, at most 255 bytes of UTF-8), as an EncodingError."""
    if not isinstance(value, str):
        return EncodingError(f"the {what} must be text, not {type(value).__name__} {value!r}")
    try:
        size = len(value.encode())
    except UnicodeEncodeError:
        return EncodingError(f"the {what} {_shown(value)} is not UTF-8 text", hint=_UTF8_HINT)
    return EncodingError(too_long_message(what, size), hint="shorten it")


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "...")


_UTF8_HINT = "AMQP carries text as UTF-8 (on a command line, a byte that is not UTF-8 cannot be sent as text)"
_TABLE_TYPES = "text, integers (64-bit), floats, booleans, bytes, decimals, datetimes, lists, tables and None"


def _encode_value(value: Any) -> bytes:
    if isinstance(value, str):
        raw = value.encode()
        return b"S" + _U32.pack(len(raw)) + raw
    if isinstance(value, bool):
        return b"t\x01" if value else b"t\x00"
    if isinstance(value, int):
        if _I32_MIN <= value <= _I32_MAX:
            return b"I" + _I32.pack(value)
        if _I64_MIN <= value <= _I64_MAX:
            return b"l" + _I64.pack(value)
        raise EncodingError(
            f"integer out of the 64-bit range of an AMQP field: {value}",
            hint="send a larger number as text (with `topo publish --header`, quote it as JSON: n='\"123...\"')",
        )
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        return b"x" + _U32.pack(len(raw)) + raw
    if isinstance(value, float):
        return b"d" + _F64.pack(value)
    if isinstance(value, decimal.Decimal):
        return b"D" + encode.decimal(value)
    if isinstance(value, _dt.datetime):
        return b"T" + encode.timestamp(value)
    if isinstance(value, Mapping):
        return b"F" + encode_table(value)
    if isinstance(value, (list, tuple)):
        body = b"".join(_encode_value(item) for item in value)
        return b"A" + _U32.pack(len(body)) + body
    if value is None:
        return b"V"
    raise EncodingError(
        f"cannot carry a {type(value).__name__} in an AMQP field table: {value!r}",
        hint=f"AMQP field tables carry {_TABLE_TYPES}",
    )


def encode_table(table: Mapping[str, Any] | None) -> bytes:
    """A field table with its 4-byte length prefix."""
    if not table:
        return b"\x00\x00\x00\x00"
    parts = []
    for key, value in table.items():
        if not isinstance(key, str):
            raise EncodingError(f"field table keys must be text, not {type(key).__name__} {key!r}")
        try:
            parts.append(_shortstr(key, "field name") + _encode_value(value))
        except EncodingError as exc:
            raise EncodingError(f"{key}: {exc.message}", hint=exc.hint) from None
        except UnicodeEncodeError as exc:  # a str value (or one inside a list or table) that is not UTF-8
            raise EncodingError(f"{key}: {_shown(exc.object)} is not UTF-8 text", hint=_UTF8_HINT) from None
        except (TypeError, ValueError, OverflowError, struct.error) as exc:  # pamqp's decimal, timestamp
            raise EncodingError(f"{key}: {exc}", hint=f"AMQP field tables carry {_TABLE_TYPES}") from None
    body = b"".join(parts)
    return _U32.pack(len(body)) + body


def _decode_value(data: bytes, pos: int) -> tuple[Any, int]:
    tag = data[pos]
    pos += 1
    if tag == 0x53:  # S
        (n,) = _U32.unpack_from(data, pos)
        raw = data[pos + 4 : pos + 4 + n]
        try:
            return raw.decode(), pos + 4 + n
        except UnicodeDecodeError:
            return bytes(raw), pos + 4 + n
    if tag == 0x49:  # I
        return _I32.unpack_from(data, pos)[0], pos + 4
    if tag == 0x74:  # t
        return data[pos] != 0, pos + 1
    if tag in (0x6C, 0x4C):  # l L
        return _I64.unpack_from(data, pos)[0], pos + 8
    if tag == 0x46:  # F
        (n,) = _U32.unpack_from(data, pos)
        return _decode_table_body(data, pos + 4, pos + 4 + n), pos + 4 + n
    if tag == 0x41:  # A
        (n,) = _U32.unpack_from(data, pos)
        end = pos + 4 + n
        pos += 4
        items = []
        while pos < end:
            item, pos = _decode_value(data, pos)
            items.append(item)
        return items, end
    if tag == 0x78:  # x
        (n,) = _U32.unpack_from(data, pos)
        return bytes(data[pos + 4 : pos + 4 + n]), pos + 4 + n
    if tag == 0x62:  # b
        return struct.unpack_from(">b", data, pos)[0], pos + 1
    if tag == 0x42:  # B
        return data[pos], pos + 1
    if tag in (0x73, 0x55):  # s U
        return struct.unpack_from(">h", data, pos)[0], pos + 2
    if tag == 0x75:  # u
        return _U16.unpack_from(data, pos)[0], pos + 2
    if tag == 0x69:  # i
        return _U32.unpack_from(data, pos)[0], pos + 4
    if tag == 0x64:  # d
        return _F64.unpack_from(data, pos)[0], pos + 8
    if tag == 0x66:  # f
        return struct.unpack_from(">f", data, pos)[0], pos + 4
    if tag == 0x44:  # D
        _, value = decode.decimal(bytes(data[pos : pos + 5]))
        return value, pos + 5
    if tag == 0x54:  # T
        (seconds,) = _U64.unpack_from(data, pos)
        return _dt.datetime.fromtimestamp(seconds, _dt.UTC), pos + 8
    if tag in (0x56, 0x00):  # V
        return None, pos
    raise ProtocolError(f"unknown field-table type tag {chr(tag)!r}")


def _decode_table_body(data: bytes, pos: int, end: int) -> dict[str, Any]:
    table: dict[str, Any] = {}
    while pos < end:
        n = data[pos]
        key = data[pos + 1 : pos + 1 + n].decode(errors="replace")
        table[key], pos = _decode_value(data, pos + 1 + n)
    if pos != end:
        raise ProtocolError("a field table's entries overrun its length")
    return table


def decode_table(data: bytes, pos: int = 0) -> tuple[dict[str, Any], int]:
    """A field table at ``pos`` (with its length prefix) and the position after it.

    :class:`ProtocolError` when it is malformed (cut short, an unknown type tag)."""
    try:
        (n,) = _U32.unpack_from(data, pos)
        end = pos + 4 + n
        if end > len(data):
            raise ProtocolError(f"a field table of {n} bytes in {len(data) - pos - 4}")
        return _decode_table_body(data, pos + 4, end), end
    except (struct.error, IndexError, ValueError, decimal.InvalidOperation, OverflowError, OSError) as exc:
        raise ProtocolError(f"malformed field table: {exc}") from None


# ---------------------------------------------------------------------------------------------------------
# Basic.Properties


@dataclass(slots=True)
class Properties:
    """A message's properties (AMQP ``Basic.Properties``); None means absent."""

    content_type: str | None = None
    content_encoding: str | None = None
    headers: dict[str, Any] | None = None
    delivery_mode: int | None = None  # 1 transient, 2 persistent
    priority: int | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    expiration: str | None = None  # per-message TTL in ms, as a string (AMQP's type)
    message_id: str | None = None
    timestamp: _dt.datetime | None = None
    type: str | None = None
    user_id: str | None = None
    app_id: str | None = None

    @property
    def persistent(self) -> bool:
        return self.delivery_mode == 2


_SHORTSTR_FIELDS = {
    "content_type": 1 << 15,
    "content_encoding": 1 << 14,
    "correlation_id": 1 << 10,
    "reply_to": 1 << 9,
    "expiration": 1 << 8,
    "message_id": 1 << 7,
    "type": 1 << 5,
    "user_id": 1 << 4,
    "app_id": 1 << 3,
}


def encode_properties(p: Properties) -> tuple[int, bytes]:
    """The property flags and the encoded property list (in the protocol's order).

    :class:`EncodingError` naming the property when one cannot be carried."""
    try:
        return _encode_properties(p)
    except (EncodingError, TypeError, ValueError, AttributeError, OverflowError, struct.error):
        raise _property_error(p) from None


_OCTETS = ("delivery_mode", "priority")


def _property_error(p: Properties) -> EncodingError:
    """The first property of ``p`` that cannot be encoded, as an :class:`EncodingError` naming it."""
    for name in _SHORTSTR_FIELDS:
        value = getattr(p, name)
        if value is not None:
            try:
                _shortstr(value, f"{name} property")
            except EncodingError as exc:
                return exc
    for name in _OCTETS:
        value = getattr(p, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255):
            return EncodingError(f"the {name} property must be an integer from 0 to 255, not {value!r}")
    if p.headers is not None:
        if not isinstance(p.headers, Mapping):
            return EncodingError(f"the headers must be a mapping, not {type(p.headers).__name__}")
        try:
            encode_table(p.headers)
        except EncodingError as exc:
            return EncodingError(f"header {exc.message}", hint=exc.hint)
    if p.timestamp is not None and not isinstance(p.timestamp, _dt.datetime):
        return EncodingError(f"the timestamp property must be a datetime, not {type(p.timestamp).__name__}")
    return EncodingError(f"cannot encode the message properties {p!r}")


def _encode_properties(p: Properties) -> tuple[int, bytes]:
    flags = 0
    parts: list[bytes] = []
    if p.content_type is not None:
        flags |= 1 << 15
        parts.append(_shortstr(p.content_type))
    if p.content_encoding is not None:
        flags |= 1 << 14
        parts.append(_shortstr(p.content_encoding))
    if p.headers is not None:
        flags |= 1 << 13
        parts.append(encode_table(p.headers))
    if p.delivery_mode is not None:
        flags |= 1 << 12
        parts.append(_U8.pack(p.delivery_mode))
    if p.priority is not None:
        flags |= 1 << 11
        parts.append(_U8.pack(p.priority))
    if p.correlation_id is not None:
        flags |= 1 << 10
        parts.append(_shortstr(p.correlation_id))
    if p.reply_to is not None:
        flags |= 1 << 9
        parts.append(_shortstr(p.reply_to))
    if p.expiration is not None:
        flags |= 1 << 8
        parts.append(_shortstr(p.expiration))
    if p.message_id is not None:
        flags |= 1 << 7
        parts.append(_shortstr(p.message_id))
    if p.timestamp is not None:
        flags |= 1 << 6
        parts.append(encode.timestamp(p.timestamp))
    if p.type is not None:
        flags |= 1 << 5
        parts.append(_shortstr(p.type))
    if p.user_id is not None:
        flags |= 1 << 4
        parts.append(_shortstr(p.user_id))
    if p.app_id is not None:
        flags |= 1 << 3
        parts.append(_shortstr(p.app_id))
    return flags, b"".join(parts)


def _short(data: bytes, pos: int) -> tuple[str, int]:
    n = data[pos]
    return data[pos + 1 : pos + 1 + n].decode(errors="replace"), pos + 1 + n


def decode_header(payload: bytes) -> tuple[int, Properties]:
    """A content-header frame's payload: (body size, properties); :class:`ProtocolError` when malformed."""
    try:
        return _decode_header(payload)
    except (struct.error, IndexError, ValueError, OverflowError, OSError) as exc:
        raise ProtocolError(f"malformed content header: {exc}") from None


def _decode_header(payload: bytes) -> tuple[int, Properties]:
    _, _, body_size, flags = _HDR.unpack_from(payload, 0)
    pos = 14  # Basic's 14 properties fit one flag word: no continuation words
    p = Properties()
    if not flags:
        return body_size, p
    if flags & (1 << 15):
        p.content_type, pos = _short(payload, pos)
    if flags & (1 << 14):
        p.content_encoding, pos = _short(payload, pos)
    if flags & (1 << 13):
        p.headers, pos = decode_table(payload, pos)
    if flags & (1 << 12):
        p.delivery_mode = payload[pos]
        pos += 1
    if flags & (1 << 11):
        p.priority = payload[pos]
        pos += 1
    if flags & (1 << 10):
        p.correlation_id, pos = _short(payload, pos)
    if flags & (1 << 9):
        p.reply_to, pos = _short(payload, pos)
    if flags & (1 << 8):
        p.expiration, pos = _short(payload, pos)
    if flags & (1 << 7):
        p.message_id, pos = _short(payload, pos)
    if flags & (1 << 6):
        p.timestamp = _dt.datetime.fromtimestamp(_U64.unpack_from(payload, pos)[0], _dt.UTC)
        pos += 8
    if flags & (1 << 5):
        p.type, pos = _short(payload, pos)
    if flags & (1 << 4):
        p.user_id, pos = _short(payload, pos)
    if flags & (1 << 3):
        p.app_id, pos = _short(payload, pos)
    return body_size, p


# ---------------------------------------------------------------------------------------------------------
# Frames


def frame(frame_type: int, channel: int, payload: bytes) -> bytes:
    return _FRAME_HEAD.pack(frame_type, channel, len(payload)) + payload + _END


@functools.cache
def _defaults(cls: type) -> tuple[tuple[str, Any], ...]:
    params = inspect.signature(cls).parameters
    return tuple((name, None if p.default is inspect.Parameter.empty else p.default) for name, p in params.items())


def make_method(cls: type, **fields: Any) -> Any:
    """A pamqp method object built without pamqp's validation (its name rules are stricter than
    RabbitMQ's); unknown field names raise TypeError."""
    obj: Any = object.__new__(cls)
    known = set()
    for name, default in _defaults(cls):
        known.add(name)
        setattr(obj, name, fields.get(name, default))
    unknown = set(fields) - known
    if unknown:
        raise TypeError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
    return obj


def _marshal_args(method: Any) -> bytes:
    out: list[bytes] = []
    bits = -1
    offset = 0
    for name in method.__slots__:
        kind = method.amqp_type(name)
        value = getattr(method, name, None)
        if kind == "bit":
            if bits < 0:
                bits, offset = 0, 0
            if value:
                bits |= 1 << offset
            offset += 1
            if offset == 8:
                out.append(_U8.pack(bits))
                bits = -1
            continue
        if bits >= 0:
            out.append(_U8.pack(bits))
            bits = -1
        try:
            if kind == "table":
                out.append(encode_table(value))
            elif kind == "shortstr":
                out.append(_shortstr(value or "", name.replace("_", " ")))
            else:
                out.append(encode.by_type(0 if value is None else value, kind))
        except EncodingError as exc:
            raise EncodingError(f"{method.name}: {name}: {exc.message}", hint=exc.hint) from None
        except (TypeError, ValueError, OverflowError, struct.error) as exc:  # pamqp: range and type checks
            raise EncodingError(f"{method.name}: {name}: {exc}") from None
    if bits >= 0:
        out.append(_U8.pack(bits))
    return b"".join(out)


def method_frame(channel: int, method: Any) -> bytes:
    """The frame for a pamqp method object (no name validation; field tables through :func:`encode_table`).

    :class:`EncodingError` naming the method and the field when a value cannot be carried."""
    return frame(FRAME_METHOD, channel, _U32.pack(method.index) + _marshal_args(method))


def unmarshal_method(payload: bytes) -> Any:
    """A method frame's payload as a pamqp method object."""
    (index,) = _U32.unpack_from(payload, 0)
    cls = commands.INDEX_MAPPING.get(index)
    if cls is None:
        raise ProtocolError(f"unknown AMQP method {index >> 16}.{index & 0xFFFF}")
    method: Any = object.__new__(cls)
    try:
        method.unmarshal(bytes(payload[4:]))
    except Exception as exc:  # pamqp raises struct.error/ValueError/... on malformed input
        raise ProtocolError(f"malformed {getattr(cls, 'name', cls)}: {exc}") from exc
    return method


def publish_frame(channel: int, exchange: str, routing_key: str, mandatory: bool) -> bytes:
    """A Basic.Publish method frame (cache it per exchange and key: it repeats)."""
    payload = (
        b"\x00\x3c\x00\x28\x00\x00"
        + _shortstr(exchange, "exchange name")
        + _shortstr(routing_key, "routing key")
        + (b"\x01" if mandatory else b"\x00")
    )
    return frame(FRAME_METHOD, channel, payload)


def content_frames(channel: int, body: bytes, flags: int, props: bytes, frame_max: int) -> bytes:
    """The content header and body frames of one message, the body split to fit ``frame_max``."""
    size = len(body)
    header = _HDR.pack(60, 0, size, flags) + props
    out = _FRAME_HEAD.pack(FRAME_HEADER, channel, len(header)) + header + _END
    if not size:
        return out
    chunk = frame_max - 8
    if size <= chunk:
        return out + _FRAME_HEAD.pack(FRAME_BODY, channel, size) + body + _END
    parts = [out]
    for start in range(0, size, chunk):
        piece = body[start : start + chunk]
        parts.append(_FRAME_HEAD.pack(FRAME_BODY, channel, len(piece)) + piece + _END)
    return b"".join(parts)


_ACKLIKE = struct.Struct(">BHIHHQB")


def ack_frame(channel: int, delivery_tag: int, multiple: bool = False) -> bytes:
    return _ACKLIKE.pack(1, channel, 13, 60, 80, delivery_tag, 1 if multiple else 0) + _END


def reject_frame(channel: int, delivery_tag: int, requeue: bool) -> bytes:
    return _ACKLIKE.pack(1, channel, 13, 60, 90, delivery_tag, 1 if requeue else 0) + _END


def nack_frame(channel: int, delivery_tag: int, multiple: bool, requeue: bool) -> bytes:
    bits = (1 if multiple else 0) | (2 if requeue else 0)
    return _ACKLIKE.pack(1, channel, 13, 60, 120, delivery_tag, bits) + _END


def parse_deliver(payload: bytes) -> tuple[str, int, bool, str, str]:
    """Basic.Deliver's (consumer_tag, delivery_tag, redelivered, exchange, routing_key)."""
    consumer_tag, pos = _short(payload, 4)
    (tag,) = _U64.unpack_from(payload, pos)
    redelivered = bool(payload[pos + 8] & 1)
    exchange, pos = _short(payload, pos + 9)
    routing_key, _ = _short(payload, pos)
    return consumer_tag, tag, redelivered, exchange, routing_key


def parse_return(payload: bytes) -> tuple[int, str, str, str]:
    """Basic.Return's (reply_code, reply_text, exchange, routing_key)."""
    (code,) = _U16.unpack_from(payload, 4)
    text, pos = _short(payload, 6)
    exchange, pos = _short(payload, pos)
    routing_key, _ = _short(payload, pos)
    return code, text, exchange, routing_key
