"""``topo publish`` while the broker blocks publishers (a memory alarm): it gives up after ``--timeout``
and says how long it waited and why, instead of waiting forever."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from topo.cli import _register
from topo.cli.common import run

TOPOLOGY = """
version: 1
vhosts:
  "{vhost}":
    queues:
      jobs: {{}}
"""


def _wait_alarm(mgmt: httpx.Client, on: bool) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        nodes = [n for n in mgmt.get("/api/nodes").json() if isinstance(n, dict) and "mem_alarm" in n]
        if nodes and any(n["mem_alarm"] for n in nodes) == on:  # (no statistics yet in a node's first seconds)
            return
        time.sleep(0.1)
    raise AssertionError(f"the memory alarm did not turn {'on' if on else 'off'}")


@pytest.fixture
def memory_alarm(broker: Any, mgmt: httpx.Client) -> Any:
    if broker.node is None:
        pytest.skip("needs a private test node to raise a memory alarm on")
    broker.node.ctl("set_vm_memory_high_watermark", "0.0000001")
    try:
        _wait_alarm(mgmt, True)
        yield
    finally:
        broker.node.ctl("set_vm_memory_high_watermark", "0.4")
        _wait_alarm(mgmt, False)


def test_publish_under_a_memory_alarm_stops_after_timeout(
    tmp_path: Path,
    vhost: str,
    amqp_url: str,
    memory_alarm: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "t.yaml").write_text(TOPOLOGY.format(vhost=vhost))
    monkeypatch.setenv("TOPO_AMQP_URL", amqp_url)
    _register()
    args = ["publish", str(tmp_path), "--vhost", vhost, "--exchange", "", "--routing-key", "jobs", "--body", "x"]
    assert run([*args, "--timeout", "3"]) == 1
    err = capsys.readouterr().err
    assert "did not confirm the message within 3 s" in err, err
    assert "blocking publishers" in err and "Connection.Blocked" in err and "memory" in err, err
    hint = err.split("Hint:")[1]
    assert "alarm" in hint and "--timeout" in hint, err
    assert "Traceback" not in err
