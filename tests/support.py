"""Helpers several test modules share (importable as ``from support import ...``): golden files, waiting
on a condition, building a VHost from resources, and publishing or counting through the Management API."""

from __future__ import annotations

import difflib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from topo.model import Binding, Exchange, Policy, Queue, VHost

T = TypeVar("T")

GOLDEN = Path(__file__).parent / "golden"


def check_golden(name: str, text: str) -> None:
    """``text`` must be the golden file ``tests/golden/<name>`` (``plan/plan.txt``), byte for byte.

    With ``TOPO_UPDATE_GOLDEN=1`` the file is (re)written with ``text`` instead: review the diff, as a user
    would read the output, before committing it.
    """
    path = GOLDEN / name
    if os.environ.get("TOPO_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no golden file tests/golden/{name}: run with TOPO_UPDATE_GOLDEN=1 to create it"
    expected = path.read_text(encoding="utf-8")
    if text != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True), text.splitlines(keepends=True), f"golden/{name}", "now"
            )
        )
        raise AssertionError(
            f"the output differs from tests/golden/{name}; if the change is deliberate, run with "
            f"TOPO_UPDATE_GOLDEN=1 and review the diff:\n{diff}"
        )


def wait_until(condition: Callable[[], T], *, timeout: float = 20, interval: float = 0.05, what: str = "") -> T:
    """Poll ``condition`` until it returns something true (returned), failing after ``timeout`` seconds.

    For a test that waits for something to happen (a node to stop, statistics to show a message, a
    process to print): it returns as soon as it has, and says what never happened when it did not.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what or getattr(condition, '__name__', condition)}")
        time.sleep(interval)


def build_vhost(
    name: str,
    *items: Exchange | Queue | Binding,
    policies: tuple[Policy, ...] = (),
    operator_policies: tuple[Policy, ...] = (),
    **meta: Any,
) -> VHost:
    """A VHost holding ``items`` (exchanges, queues, bindings) and the policies; ``meta`` goes to VHost."""
    result = VHost(name, **meta)
    for item in items:
        if isinstance(item, Exchange):
            result.exchanges[item.name] = item
        elif isinstance(item, Queue):
            result.queues[item.name] = item
        else:
            result.add_binding(item)
    result.policies = {p.name: p for p in policies}
    result.operator_policies = {p.name: p for p in operator_policies}
    return result


def _q(name: str) -> str:
    return quote(name, safe="")


def publish(
    mgmt: httpx.Client,
    vhost: str,
    exchange: str,
    routing_key: str,
    *,
    headers: dict[str, Any] | None = None,
    body: str = "m",
) -> bool:
    """Publish one message through the Management API (``""`` is the default exchange); whether it routed."""
    response = mgmt.post(
        f"/api/exchanges/{_q(vhost)}/{_q(exchange or 'amq.default')}/publish",
        json={
            "properties": {"headers": headers} if headers else {},
            "routing_key": routing_key,
            "payload": body,
            "payload_encoding": "string",
        },
    )
    response.raise_for_status()
    return bool(response.json()["routed"])


def drain(mgmt: httpx.Client, vhost: str, queue: str) -> list[str]:
    """The payloads of the messages taken (and acked) from ``queue`` right now: no statistics lag."""
    response = mgmt.post(
        f"/api/queues/{_q(vhost)}/{_q(queue)}/get",
        json={"count": 100, "ackmode": "ack_requeue_false", "encoding": "auto"},
    )
    response.raise_for_status()
    return [m["payload"] for m in response.json()]


def wait_for_messages(mgmt: httpx.Client, vhost: str, queue: str, timeout: float = 20) -> int:
    """Poll until the Management API's message count of ``queue`` (it lags up to ~5 s) shows some."""
    deadline = time.monotonic() + timeout
    while True:
        count = int(mgmt.get(f"/api/queues/{_q(vhost)}/{_q(queue)}").json().get("messages") or 0)
        if count or time.monotonic() > deadline:
            return count
        time.sleep(0.2)


def take(mgmt: httpx.Client, vhost: str, queue: str) -> int:
    """How many messages were taken (and acked) from ``queue`` right now."""
    return len(drain(mgmt, vhost, queue))
