"""``topo publish``, ``consume``, ``rpc`` and ``bench`` against the broker."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from topo.cli import _register
from topo.cli.common import run

TOPOLOGY = """
version: 1
vhosts:
  "{vhost}":
    exchanges:
      events: {{type: topic}}
    queues:
      audit:
        prefetch: 10
        bindings:
          - {{exchange: events, routing-key: "order.#"}}
"""


@pytest.fixture
def files(tmp_path: Path, vhost: str, amqp_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    from rt_helpers import declare
    from rt_helpers import run as run_async

    from topo.loader import load

    (tmp_path / "t.yaml").write_text(TOPOLOGY.format(vhost=vhost))
    run_async(declare(load([tmp_path]), vhost, amqp_url))
    monkeypatch.setenv("TOPO_AMQP_URL", amqp_url)
    _register()
    return tmp_path


def test_publish_then_consume_as_json_lines(files: Path, vhost: str, capsys: pytest.CaptureFixture[str]) -> None:
    base = [str(files), "--vhost", vhost]
    assert (
        run(
            [
                "publish",
                *base,
                "--exchange",
                "events",
                "--routing-key",
                "order.new",
                "--body",
                '{"id": 7}',
                "--header",
                "n=3",
                "--header",
                "who=cli",
            ]
        )
        == 0
    )
    assert "Published 9 bytes to events 'order.new'" in capsys.readouterr().out
    body = files / "body.bin"
    body.write_bytes(b"\xff\x00")
    assert run(["publish", *base, "--exchange", "events", "--routing-key", "order.raw", "--file", str(body)]) == 0
    capsys.readouterr()
    assert run(["consume", *base, "--queue", "audit", "--count", "1", "--requeue"]) == 0
    peeked = json.loads(capsys.readouterr().out)
    assert run(["consume", *base, "--queue", "audit", "--count", "5", "--timeout", "1"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2
    first, second = lines
    assert peeked["body"] == first["body"] == {"id": 7}
    assert first["routing_key"] == "order.new" and first["redelivered"] is True
    assert first["properties"]["headers"] == {"n": 3, "who": "cli"}
    assert first["properties"]["content_type"] == "application/json"
    assert first["properties"]["delivery_mode"] == 2
    assert second["body_base64"] == "/wA="


def test_publish_refuses_what_the_layout_drops(files: Path, vhost: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = run(
        ["publish", str(files), "--vhost", vhost, "--exchange", "events", "--routing-key", "user.x", "--body", "hi"]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "Error: unroutable: the declared topology drops" in err and "--no-check-routing" in err
    code = run(["publish", str(files), "--vhost", vhost, "--exchange", "nope", "--body", "hi"])
    assert code == 1 and "exchange 'nope' is not declared" in capsys.readouterr().err


def test_bench(files: Path, vhost: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = run(
        [
            "bench",
            str(files),
            "--vhost",
            vhost,
            "--exchange",
            "events",
            "--routing-key",
            "order.b",
            "--queue",
            "audit",
            "-n",
            "2000",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "publish:" in out and "consume:" in out


def test_publish_refuses_a_routing_key_longer_than_255_bytes(
    files: Path, vhost: str, capsys: pytest.CaptureFixture[str]
) -> None:
    key = "order." + "x" * 250  # matches "order.#" offline; 256 bytes
    base = [str(files), "--vhost", vhost, "--exchange", "events", "--body", "{}"]
    assert run(["publish", *base, "--routing-key", key]) == 1
    err = capsys.readouterr().err
    assert "Error: the routing key is 256 bytes of UTF-8; AMQP 0-9-1 carries at most 255" in err
    assert run(["publish", *base, "--routing-key", key[:-1]]) == 0  # 255 bytes is fine


EXAMPLES = Path(__file__).resolve().parents[2] / "topologies"


def example(tmp_path: Path, name: str, declared_vhost: str, vhost: str, amqp_url: str) -> Path:
    """An example topology with its vhost renamed to the test's, declared on the broker; its directory."""
    from rt_helpers import declare
    from rt_helpers import run as run_async

    from topo.loader import load

    text = (EXAMPLES / name).read_text().replace(f"\n  {declared_vhost}:\n", f'\n  "{vhost}":\n')
    assert vhost in text
    folder = tmp_path / name.removesuffix(".yaml")
    folder.mkdir()
    (folder / name).write_text(text)
    run_async(declare(load([folder]), vhost, amqp_url))
    return folder


def consumed(capsys: pytest.CaptureFixture[str], args: list[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert run(["consume", *args]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_publish_priority_orders_delivery_on_a_max_priority_queue(
    tmp_path: Path, vhost: str, amqp_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = example(tmp_path, "work-queue.yaml", "jobs", vhost, amqp_url)  # thumbnails: max-priority 5
    monkeypatch.setenv("TOPO_AMQP_URL", amqp_url)
    _register()
    base = [str(folder), "--vhost", vhost]
    for body, priority in (
        ("p1", ["--priority", "1"]),
        ("p5", ["--priority", "5"]),
        ("none", []),
        ("p3", ["--priority", "3"]),
    ):
        assert run(["publish", *base, "--exchange", "", "--routing-key", "thumbnails", "--body", body, *priority]) == 0
    got = consumed(capsys, [*base, "--queue", "thumbnails", "--count", "4", "--prefetch", "1"])
    assert [m["body"] for m in got] == ["p5", "p3", "p1", "none"]
    assert [m["properties"].get("priority") for m in got] == [5, 3, 1, None]
    assert (
        run(["publish", *base, "--exchange", "", "--routing-key", "thumbnails", "--body", "x", "--priority", "256"])
        == 1
    )
    assert "--priority" in capsys.readouterr().err


def test_publish_expiration_really_expires(files: Path, vhost: str, capsys: pytest.CaptureFixture[str]) -> None:
    base = [str(files), "--vhost", vhost]
    to_audit = ["--exchange", "events", "--routing-key", "order.x"]
    assert run(["publish", *base, *to_audit, "--body", "short", "--expiration", "200ms"]) == 0
    assert run(["publish", *base, *to_audit, "--body", "shorter", "--expiration", "100"]) == 0
    assert run(["publish", *base, *to_audit, "--body", "kept", "--expiration", "1h"]) == 0
    time.sleep(0.8)  # deliberate: the two short expirations (200 ms, 100 ms) pass
    got = consumed(capsys, [*base, "--queue", "audit", "--count", "5", "--timeout", "1"])
    assert [m["body"] for m in got] == ["kept"]
    assert got[0]["properties"]["expiration"] == "3600000"
    assert run(["publish", *base, *to_audit, "--body", "x", "--expiration", "soon"]) == 1
    assert "--expiration" in capsys.readouterr().err


def test_publish_sets_the_other_properties(files: Path, vhost: str, capsys: pytest.CaptureFixture[str]) -> None:
    base = [str(files), "--vhost", vhost]
    options = ["--reply-to", "replies", "--correlation-id", "c-1", "--type", "order.created", "--message-id", "m-1"]
    to_audit = ["--exchange", "events", "--routing-key", "order.x"]
    assert run(["publish", *base, *to_audit, "--body", "a", *options, "--transient"]) == 0
    assert "(message id m-1)" in capsys.readouterr().out
    assert run(["publish", *base, *to_audit, "--body", "b"]) == 0
    [first, second] = consumed(capsys, [*base, "--queue", "audit", "--count", "2", "--timeout", "2"])
    props = first["properties"]
    assert props["reply_to"] == "replies" and props["correlation_id"] == "c-1" and props["type"] == "order.created"
    assert props["message_id"] == "m-1" and props["delivery_mode"] == 1  # --transient, to a durable queue
    assert second["properties"]["delivery_mode"] == 2  # the default: persistent, as the queue is durable


def test_rpc_prints_the_reply_and_fails_on_timeout(
    tmp_path: Path, vhost: str, amqp_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from topo.loader import load
    from topo.runtime import Message, connect_sync

    folder = example(tmp_path, "rpc.yaml", "rpc", vhost, amqp_url)
    monkeypatch.setenv("TOPO_AMQP_URL", amqp_url)
    _register()
    base = ["rpc", str(folder), "--vhost", vhost, "--queue", "rpc_queue"]

    def fib(m: Message) -> Any:
        n = m.json()["n"]
        if n < 0:
            raise ValueError("negative")
        a, b = 0, 1
        for _ in range(n):
            a, b = b, a + b
        return {"fib": a, "type": m.properties.type}

    with connect_sync(load([folder]), vhost=vhost, url=amqp_url) as server:
        server.serve("rpc_queue", fib)
        assert run([*base, "--body", '{"n": 10}']) == 0
        assert json.loads(capsys.readouterr().out) == {"fib": 55, "type": None}
        assert run([*base, "--body", '{"n": -1}']) == 1
        assert "the RPC handler on 'rpc_queue' failed: ValueError: negative" in capsys.readouterr().err
    assert run([*base, "--body", '{"n": 1}', "--timeout", "0.5"]) == 1  # nobody serves now
    err = capsys.readouterr().err
    assert "Error: no reply from 'rpc_queue' within 0.5 s" in err
