"""Values AMQP cannot carry end in one clear error (a TopoError), never a traceback (issue 13.5).

Before: `topo publish --header n=100000000000000000000000` ended in a bare ValueError's traceback, a
`--body` of bytes that are not UTF-8 in a UnicodeEncodeError, an over-long correlation id in a
ValueError raised half-way through framing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from rt_helpers import declare, depth, make_topology
from rt_helpers import run as run_async

from topo.cli import _register
from topo.cli.common import run
from topo.errors import TopoError, UsageError
from topo.model import Queue
from topo.runtime import EncodingError, Properties, ProtocolError, codec, connect
from topo.runtime.client import encode_body

TOPOLOGY = """
version: 1
vhosts:
  "{vhost}":
    exchanges:
      events: {{type: topic}}
    queues:
      audit:
        bindings:
          - {{exchange: events, routing-key: "order.#"}}
"""


# -- the codec, without a broker ----------------------------------------------------------------------------


def test_a_header_value_out_of_range_is_an_encoding_error_naming_the_header() -> None:
    with pytest.raises(EncodingError, match="n: integer out of the 64-bit range") as info:
        codec.encode_table({"n": 10**23})
    assert isinstance(info.value, TopoError) and isinstance(info.value, ValueError)
    assert info.value.hint


def test_a_header_of_a_type_amqp_cannot_carry_is_an_encoding_error() -> None:
    with pytest.raises(EncodingError, match="key: cannot carry a set"):
        codec.encode_table({"key": {1, 2}})
    with pytest.raises(EncodingError, match="field table keys must be text"):
        codec.encode_table({1: "x"})  # type: ignore[dict-item]


def test_text_that_is_not_utf8_is_an_encoding_error() -> None:
    with pytest.raises(EncodingError, match=r"who: .*not UTF-8"):
        codec.encode_table({"who": "caf\udce9"})  # a byte of a command line that is not UTF-8
    with pytest.raises(EncodingError, match="not UTF-8"):
        codec.encode_table({"caf\udce9": 1})


@pytest.mark.parametrize(
    "field", ["content_type", "content_encoding", "correlation_id", "reply_to", "message_id", "type", "app_id"]
)
def test_an_over_long_short_string_property_is_an_encoding_error_naming_it(field: str) -> None:
    expected = f"the {field} property is 300 bytes of UTF-8; AMQP 0-9-1 carries at most 255"
    with pytest.raises(EncodingError, match=expected):
        codec.encode_properties(Properties(**{field: "x" * 300}))
    codec.encode_properties(Properties(**{field: "x" * 255}))  # the most it carries


def test_out_of_range_and_mistyped_properties_are_encoding_errors() -> None:
    with pytest.raises(EncodingError, match="priority property must be an integer from 0 to 255, not 300"):
        codec.encode_properties(Properties(priority=300))
    with pytest.raises(EncodingError, match="delivery_mode"):
        codec.encode_properties(Properties(delivery_mode=-1))
    with pytest.raises(EncodingError, match="expiration property must be text, not int"):
        codec.encode_properties(Properties(expiration=60000))  # type: ignore[arg-type]


def test_a_body_that_cannot_be_encoded_is_an_encoding_error() -> None:
    with pytest.raises(EncodingError, match="not UTF-8"):
        encode_body("caf\udce9")
    with pytest.raises(EncodingError, match="JSON"):
        encode_body({"s": {1, 2}})


def test_a_method_field_out_of_its_range_is_an_encoding_error_naming_it() -> None:
    from pamqp import commands

    with pytest.raises(EncodingError, match=r"Basic\.Qos: prefetch_count: .*65535"):
        codec.method_frame(1, codec.make_method(commands.Basic.Qos, prefetch_count=70000))
    with pytest.raises(EncodingError, match=r"Queue\.Declare: queue: the queue is 256 bytes of UTF-8"):
        codec.method_frame(1, codec.make_method(commands.Queue.Declare, queue="q" * 256))


def test_a_malformed_field_table_from_the_peer_is_a_protocol_error() -> None:
    good = codec.encode_table({"a": "bcdef"})
    with pytest.raises(ProtocolError):
        codec.decode_table(good[:-3] + b"")  # cut short: the length prefix says more
    with pytest.raises(ProtocolError):
        codec.decode_table(b"\x00\x00\x00\x03\x01aZ")  # an unknown type tag


def test_an_over_long_message_id_is_refused_before_any_io() -> None:
    layout = make_topology("v", queues=[Queue("q")])
    client = connect(layout, vhost="v", url="amqp://guest:guest@127.0.0.1:1/")  # nothing listens there
    with pytest.raises(EncodingError, match="message_id"):
        run_async(client.publisher("").publish("q", b"x", message_id="m" * 256))
    with pytest.raises(EncodingError, match="correlation_id"):
        run_async(client.publisher("").publish("q", b"x", correlation_id="c" * 256))


# -- against the broker ------------------------------------------------------------------------------------


def test_send_refuses_an_over_long_message_id_and_the_channel_stays_usable(amqp_url: str, vhost: str) -> None:
    layout = make_topology(vhost, queues=[Queue("q")])
    run_async(declare(layout, vhost, amqp_url))

    async def main() -> None:
        async with connect(layout, vhost=vhost, url=amqp_url) as client:
            publisher = await client.publisher("").ready()
            with pytest.raises(EncodingError, match="message_id"):
                publisher.send("q", b"x", message_id="m" * 256)
            with pytest.raises(EncodingError, match="header"):
                publisher.send("q", b"x", headers={"n": 10**23})
            await publisher.send("q", b"x", message_id="m" * 255)
            await publisher.publish("q", b"y")
            await asyncio.sleep(0)
        assert await depth(amqp_url, vhost, "q") == 2

    run_async(main())


def test_a_prefetch_out_of_range_fails_alone_and_the_connection_goes_on(amqp_url: str, vhost: str) -> None:
    # before: a TypeError from pamqp half-way through opening the channel, which also left a reply
    # future waiting in the channel's queue
    layout = make_topology(vhost, queues=[Queue("q")])
    run_async(declare(layout, vhost, amqp_url))

    async def main() -> None:
        async with connect(layout, vhost=vhost, url=amqp_url) as client:
            with pytest.raises(EncodingError, match=r"Basic\.Qos: prefetch_count"):
                async with client.consume("q", prefetch=70000):
                    pass
            channel = await client.connection.channel()
            with pytest.raises(EncodingError, match=r"Basic\.Qos"):
                await channel.qos(70000)
            await channel.qos(10)  # the same channel answers the next call: nothing was left waiting
            assert (await channel.queue_declare("q", passive=True))[0] == "q"
            await client.publish("", "q", b"x")
            async with client.consume("q", prefetch=5) as messages:
                message = await messages.get(timeout=10)
                assert message is not None and message.body == b"x"
                await message.ack()

    run_async(main())


@pytest.fixture
def files(tmp_path: Path, vhost: str, amqp_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    from topo.loader import load

    (tmp_path / "t.yaml").write_text(TOPOLOGY.format(vhost=vhost))
    run_async(declare(load([tmp_path]), vhost, amqp_url))
    monkeypatch.setenv("TOPO_AMQP_URL", amqp_url)
    _register()
    return tmp_path


def _publish(files: Path, vhost: str, *extra: str) -> list[str]:
    return ["publish", str(files), "--vhost", vhost, "--exchange", "events", "--routing-key", "order.x", *extra]


def test_cli_publish_with_a_header_out_of_range_is_one_error(
    files: Path, vhost: str, amqp_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(_publish(files, vhost, "--body", "{}", "--header", "n=100000000000000000000000")) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and "Traceback" not in err
    assert "header" in err and "n: integer out of the 64-bit range" in err
    assert "Hint:" in err
    assert run_async(depth(amqp_url, vhost, "audit")) == 0


@pytest.mark.parametrize(
    ("option", "name"),
    [
        ("--correlation-id", "correlation_id"),
        ("--reply-to", "reply_to"),
        ("--type", "type"),
        ("--message-id", "message_id"),
        ("--content-type", "content_type"),
    ],
)
def test_cli_publish_with_an_over_long_property_is_one_error(
    files: Path, vhost: str, option: str, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(_publish(files, vhost, "--body", "{}", option, "é" * 150)) == 1  # 300 bytes
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and "Traceback" not in err
    assert f"Error: the {name} property is 300 bytes of UTF-8; AMQP 0-9-1 carries at most 255" in err


def test_cli_publish_with_a_body_that_is_not_utf8_is_one_error(
    files: Path, vhost: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # on Linux, argv bytes that are not UTF-8 reach Python as lone surrogates (surrogateescape)
    assert run(_publish(files, vhost, "--body", "caf\udce9")) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: --body is not UTF-8 text") and "--file" in err
    assert run(_publish(files, vhost, "--body", "{}", "--header", "who=caf\udce9")) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and "not UTF-8" in err and "who" in err


def test_usage_error_is_still_the_body_error_class() -> None:
    from topo.cli.runtime import read_body

    with pytest.raises(UsageError):
        read_body("caf\udce9", None, None)
