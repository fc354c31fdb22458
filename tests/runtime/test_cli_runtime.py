"""``topo publish``, ``topo consume`` and ``topo bench`` against the broker."""

from __future__ import annotations

import json
from pathlib import Path

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
