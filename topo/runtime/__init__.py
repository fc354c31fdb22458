"""The companion runtime: an asyncio AMQP 0-9-1 client on pamqp that knows the declared topology.

Low level: :class:`Connection` and :class:`Channel`. Topology-aware: :func:`connect`.
"""

from __future__ import annotations

from topo.model import CircuitBreaker
from topo.runtime import prometheus as prometheus  # imports prometheus_client (the extra) only when called
from topo.runtime.channel import Channel
from topo.runtime.client import Client, Publisher, connect
from topo.runtime.codec import Properties
from topo.runtime.connection import Connection
from topo.runtime.consume import MessageStream, RpcClient, Subscription
from topo.runtime.errors import *  # noqa: F403
from topo.runtime.errors import __all__ as _errors
from topo.runtime.failures import Backoff
from topo.runtime.health import Health, QueueHealth
from topo.runtime.message import Message
from topo.runtime.metrics import QueueMetrics, RuntimeMetrics
from topo.runtime.sync import SyncClient, SyncMessage, connect_sync
from topo.runtime.url import ConnectionParams, parse_url

__all__ = [
    "Backoff",
    "Channel",
    "CircuitBreaker",
    "Client",
    "Connection",
    "ConnectionParams",
    "Health",
    "Message",
    "MessageStream",
    "Properties",
    "Publisher",
    "QueueHealth",
    "QueueMetrics",
    "RpcClient",
    "RuntimeMetrics",
    "Subscription",
    "SyncClient",
    "SyncMessage",
    "connect",
    "connect_sync",
    "parse_url",
    *_errors,
]
