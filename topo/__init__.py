"""topo: RabbitMQ topology as code.

Library entry points::

    topology = topo.load("topologies/")              # files -> validated, normalised Topology
    topo.route(topology, "iot", "sensor-data", "sensor.temperature.line1")
    topo.lint.lint(topology); topo.graph.render(topology, "mermaid"); topo.runtime.connect_sync(...)

``import topo`` stays cheap: the submodules (``topo.lint``, ``topo.graph``, ``topo.runtime``, ...) are
imported on first use of the attribute, so every form above works after a plain ``import topo``.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from topo.errors import TopoError, ValidationError
from topo.model import Binding, Exchange, Policy, Queue, Topology, VHost

if TYPE_CHECKING:  # pragma: no cover
    from topo.loader import load as load

__all__ = [
    "Binding",
    "Exchange",
    "Policy",
    "Queue",
    "TopoError",
    "Topology",
    "VHost",
    "ValidationError",
    "load",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Lazy attributes keep `import topo` cheap and let optional parts (runtime, routing) load on use.
    if name == "load":
        from topo.loader import load

        return load
    if name == "route":
        from topo.routing import route

        return route
    if name == "connect":
        from topo.runtime import connect

        return connect
    if name == "connect_sync":
        from topo.runtime import connect_sync

        return connect_sync
    # A submodule or subpackage (topo.lint, topo.graph, topo.runtime, ...): imported now, on first use.
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'topo' has no attribute {name!r}")
