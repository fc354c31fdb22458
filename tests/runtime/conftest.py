"""Fixtures of the runtime tests: the AMQP URL of the test vhost, and declaring a Topology on it."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from rt_helpers import declare, vhost_url

from topo.model import Topology


@pytest.fixture
def amqp_url(broker: Any, vhost: str) -> str:
    """The AMQP URL of the test's fresh vhost."""
    return vhost_url(broker.amqp_url, vhost)


@pytest.fixture
def declared(amqp_url: str, vhost: str) -> Callable[[Topology], Coroutine[Any, Any, Topology]]:
    async def _declare(topology: Topology) -> Topology:
        await declare(topology, vhost, amqp_url)
        return topology

    return _declare
