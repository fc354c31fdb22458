"""The codec against pamqp's own encoder and decoder (no broker)."""

from __future__ import annotations

import datetime as dt
import decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pamqp import commands, decode, frame, header

from topo.runtime import codec
from topo.runtime.codec import Properties

EVERY_TYPE = {
    "str": "héllo",
    "int8": 7,
    "int32": -100000,
    "int64": 2**40,
    "bool": True,
    "false": False,
    "double": 1.1,
    "decimal": decimal.Decimal("3.14"),
    "ts": dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC),
    "table": {"nested": {"deep": [1, "two", {"three": 3}]}},
    "array": [1, "a", True, None, [2, 3]],
    "bytes": b"\x00\xffraw",
    "void": None,
}


def test_field_table_round_trip_keeps_every_type() -> None:
    data = codec.encode_table(EVERY_TYPE)
    decoded, end = codec.decode_table(data)
    assert end == len(data)
    assert decoded == EVERY_TYPE
    assert isinstance(decoded["double"], float) and decoded["double"] == 1.1  # 64-bit, not pamqp's 32-bit


def test_field_table_is_readable_by_pamqp() -> None:
    data = codec.encode_table(EVERY_TYPE)
    _, decoded = decode.field_table(data)
    assert decoded["str"] == "héllo"
    assert decoded["int64"] == 2**40
    assert decoded["decimal"] == decimal.Decimal("3.14")
    assert decoded["table"] == {"nested": {"deep": [1, "two", {"three": 3}]}}
    assert bytes(decoded["bytes"]) == b"\x00\xffraw"


def test_decodes_the_integer_tags_other_clients_send() -> None:
    # pamqp picks the smallest tag (b, s, u, i, ...); all of them must decode to the same ints
    values = {"a": 5, "b": 300, "c": 60000, "d": 70000, "e": 3_000_000_000, "f": -(2**50)}
    from pamqp import encode

    decoded, _ = codec.decode_table(encode.field_table(values))
    assert decoded == values


def test_bad_values_are_named() -> None:
    from topo.runtime import EncodingError

    with pytest.raises(EncodingError, match="key: cannot carry a set"):
        codec.encode_table({"key": {1, 2}})


def test_properties_round_trip_through_pamqp() -> None:
    props = Properties(
        content_type="application/json",
        content_encoding="utf-8",
        headers={"x": 1, "y": "z"},
        delivery_mode=2,
        priority=5,
        correlation_id="c1",
        reply_to="amq.rabbitmq.reply-to",
        expiration="60000",
        message_id="m1",
        timestamp=dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        type="t",
        user_id="guest",
        app_id="app",
    )
    flags, encoded = codec.encode_properties(props)
    payload = codec._HDR.pack(60, 0, 10, flags) + encoded
    ch = header.ContentHeader()
    ch.unmarshal(payload)
    assert ch.body_size == 10
    assert ch.properties.message_id == "m1"
    assert ch.properties.headers == {"x": 1, "y": "z"}
    assert ch.properties.priority == 5
    size, back = codec.decode_header(payload)
    assert size == 10 and back == props
    # and what pamqp encodes, we decode
    theirs = header.ContentHeader(0, 3, commands.Basic.Properties(message_id="p", delivery_mode=1, app_id="a"))
    size, mine = codec.decode_header(theirs.marshal())
    assert (size, mine.message_id, mine.delivery_mode, mine.app_id) == (3, "p", 1, "a")


def test_body_is_split_to_fit_frame_max_and_parsed_back_by_pamqp() -> None:
    body = bytes(range(256)) * 100  # 25,600 bytes
    data = codec.content_frames(1, body, 0, b"", 4096)
    frames = []
    while data:
        used, _channel, value = frame.unmarshal(data)
        frames.append(value)
        data = data[used:]
        assert used <= 4096
    assert isinstance(frames[0], header.ContentHeader) and frames[0].body_size == len(body)
    assert b"".join(f.value for f in frames[1:]) == body
    assert len(frames) == 1 + -(-len(body) // (4096 - 8))


def test_empty_body_has_no_body_frame() -> None:
    data = codec.content_frames(1, b"", 0, b"", 131072)
    used, _, value = frame.unmarshal(data)
    assert used == len(data) and value.body_size == 0


def test_method_frames_match_pamqp_and_accept_names_pamqp_refuses() -> None:
    method = commands.Queue.Declare(queue="orders", durable=True, arguments={"x-queue-type": "quorum"})
    assert codec.method_frame(3, method) == frame.marshal(method, 3)
    method = commands.Queue.Declare(queue="orders", arguments={"x-max-length": 10})  # pamqp: b, we: I
    _, _, back = frame.unmarshal(codec.method_frame(3, method))
    assert back.arguments == {"x-max-length": 10}
    unicode_name = codec.make_method(commands.Queue.Declare, queue="commandes-été", durable=True)
    _, _, back = frame.unmarshal(codec.method_frame(1, unicode_name))
    assert back.queue == "commandes-été" and back.durable is True
    with pytest.raises(ValueError):
        commands.Queue.Declare(queue="commandes-été")  # why make_method exists


def test_hot_frames_match_pamqp() -> None:
    assert codec.publish_frame(2, "x", "k.1", True) == frame.marshal(
        commands.Basic.Publish(exchange="x", routing_key="k.1", mandatory=True), 2
    )
    assert codec.ack_frame(1, 99, True) == frame.marshal(commands.Basic.Ack(99, True), 1)
    assert codec.nack_frame(1, 5, False, True) == frame.marshal(commands.Basic.Nack(5, False, True), 1)
    assert codec.reject_frame(1, 5, False) == frame.marshal(commands.Basic.Reject(5, False), 1)
    deliver = frame.marshal(commands.Basic.Deliver("ctag", 42, True, "ex", "rk"), 1)
    assert codec.parse_deliver(deliver[7:-1]) == ("ctag", 42, True, "ex", "rk")
    ret = frame.marshal(commands.Basic.Return(312, "NO_ROUTE", "ex", "rk"), 1)
    assert codec.parse_return(ret[7:-1]) == (312, "NO_ROUTE", "ex", "rk")


_scalars = (
    st.text(max_size=20)
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.booleans()
    | st.none()
    | st.binary(max_size=20)
    | st.floats(allow_nan=False)
    | st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-(10**6), max_value=10**6)
    | st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2200, 1, 1)).map(
        lambda d: d.replace(microsecond=0, tzinfo=dt.UTC)
    )
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=30), _values, max_size=6))
def test_any_table_round_trips(table: dict[str, object]) -> None:
    data = codec.encode_table(table)
    decoded, end = codec.decode_table(data)
    assert decoded == table and end == len(data)
