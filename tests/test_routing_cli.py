"""``topo route`` on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from topo.cli import _register
from topo.cli.analyze import parse_header
from topo.cli.common import run
from topo.errors import UsageError

IOT = str(Path(__file__).parent.parent / "topologies" / "iot.yaml")


def topo(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    _register()
    code = run(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_route_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = topo(
        capsys, "route", IOT, "--vhost", "iot", "--exchange", "sensor-data", "--routing-key", "sensor.t.1"
    )
    assert code == 0
    assert out == (
        'Message to sensor-data in vhost iot with routing key "sensor.t.1":\n'
        "  Routed to 2 queues:\n"
        "    analytics\n"
        '      via sensor-data -["sensor.#"]-> analytics\n'
        "    audit-log\n"
        '      via sensor-data -["#"]-> audit -[""]-> audit-log\n'
    )


def test_route_dead_letter_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = topo(
        capsys,
        "route",
        IOT,
        "--vhost",
        "iot",
        "--exchange",
        "sensor-data",
        "--routing-key",
        "sensor.t.1",
        "--dead-letter",
    )
    assert code == 0
    assert out.endswith(
        "  If a queue dead-letters it (rejected, expired, over a limit):\n"
        '    analytics -> dlx with "analytics.failed": dead-letters\n'
        "    audit-log: no dead-letter exchange: the message is discarded\n"
    )


def test_route_dropped_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = topo(capsys, "route", IOT, "--vhost", "iot", "--exchange", "dlx", "--routing-key", "nope")
    assert code == 1
    assert "Dropped: no binding of exchange 'dlx' matches routing key 'nope'." in out


def test_route_headers_and_alternate_exchange(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["route", IOT, "--vhost", "iot", "--exchange", "uploads", "--format", "json"]
    code, out, _ = topo(capsys, *argv, "--header", "format=pdf", "--header", "kind=report")
    assert code == 0 and json.loads(out)["queues"] == ["pdf-jobs"]
    code, out, _ = topo(capsys, *argv, "--header", "format=doc")
    data = json.loads(out)
    assert data["queues"] == ["unrouted"]
    assert [h["kind"] for h in data["paths"][0]["hops"]] == ["alternate-exchange", "binding"]


def test_route_unknown_vhost_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = topo(capsys, "route", IOT, "--vhost", "nope", "--exchange", "x")
    assert code == 1
    assert "Error: vhost 'nope' is not declared in the topology" in err


def test_route_refuses_a_routing_key_no_client_can_publish(capsys: pytest.CaptureFixture[str]) -> None:
    # "sensor.#" would match it, but AMQP 0-9-1 carries a routing key in at most 255 bytes of UTF-8
    key = "sensor." + "t" * 249  # 256 bytes
    code, out, err = topo(capsys, "route", IOT, "--vhost", "iot", "--exchange", "sensor-data", "--routing-key", key)
    assert code == 1 and out == ""
    assert "Error: the routing key is 256 bytes of UTF-8; AMQP 0-9-1 carries at most 255 (a short string)" in err
    code, out, _ = topo(capsys, "route", IOT, "--vhost", "iot", "--exchange", "sensor-data", "--routing-key", key[:-1])
    assert code == 0 and "Routed to 2 queues" in out


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("n=1", ("n", 1)),
        ("n=-2", ("n", -2)),
        ("f=1.5", ("f", 1.5)),
        ("b=true", ("b", True)),
        ("b=false", ("b", False)),
        ("v=null", ("v", None)),
        ('s="1"', ("s", "1")),
        ("s=pdf", ("s", "pdf")),
        ("s=", ("s", "")),
        ("s=a=b", ("s", "a=b")),
        ('CC=["a","b"]', ("CC", ["a", "b"])),
        ('t={"a":1}', ("t", '{"a":1}')),
    ],
)
def test_parse_header(item: str, expected: tuple[str, object]) -> None:
    assert parse_header(item) == expected


def test_parse_header_needs_a_name() -> None:
    with pytest.raises(UsageError):
        parse_header("=1")
