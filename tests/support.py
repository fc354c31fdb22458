"""Helpers several test modules share (importable as ``from support import ...``): building a VHost from
resources, and publishing or counting through the Management API."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import httpx

from topo.model import Binding, Exchange, Policy, Queue, VHost


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
