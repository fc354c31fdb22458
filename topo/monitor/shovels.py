"""``topo status``'s check of the declared shovels: each must be ``running`` on the broker.

RabbitMQ lists a vhost's shovels and their state at ``GET /api/shovels/{vhost}`` (the
``rabbitmq_shovel_management`` plugin): ``running``; ``starting`` (also while it cannot connect: seen on
3.10.8, a shovel whose destination refuses the connection stays ``starting``); ``terminated`` with a
``reason``. A declared shovel in any state but ``running`` is CRITICAL, one missing from the list too,
except a shovel with ``delete-after`` (it deletes itself once done: OK, said so). Without the plugin the
listing answers 404: the check is UNKNOWN. The listing shows URIs without credentials; topo shows none
of them anyway, and the broker's reason only redacted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from topo.model import Topology
from topo.monitor.evaluate import ShovelReport, State
from topo.urls import redact

__all__ = ["ShovelSource", "evaluate_shovels", "read_shovels"]

_NO_LISTING = (
    "the broker does not list shovels (GET /api/shovels answers 404): enable rabbitmq_shovel_management on the node"
)


@runtime_checkable
class ShovelSource(Protocol):
    """A broker that lists a vhost's shovels (decoded JSON; None when the listing answers 404)."""

    def list_shovels(self, vhost: str) -> Any: ...


def read_shovels(source: object, topology: Topology) -> dict[str, list[Mapping[str, Any]] | None]:
    """The broker's shovels of every vhost that declares some (None: not listed), when ``source`` can list
    them; ``{}`` otherwise."""
    if not isinstance(source, ShovelSource):
        return {}
    out: dict[str, list[Mapping[str, Any]] | None] = {}
    for name in sorted(topology.vhosts):
        if topology.vhosts[name].shovels:
            listed = source.list_shovels(name)
            out[name] = [item for item in listed if isinstance(item, Mapping)] if isinstance(listed, list) else None
    return out


def evaluate_shovels(
    topology: Topology, listings: Mapping[str, list[Mapping[str, Any]] | None], missing_vhosts: tuple[str, ...] = ()
) -> tuple[ShovelReport, ...]:
    """One report per declared shovel of the vhosts in ``listings``."""
    reports = []
    for vname in sorted(listings):
        listed = listings[vname]
        found = {str(item.get("name")): item for item in listed or () if item.get("type", "dynamic") == "dynamic"}
        for name in sorted(topology.vhosts[vname].shovels):
            shovel = topology.vhosts[vname].shovels[name]
            origin = shovel.origin
            if vname in missing_vhosts:
                reports.append(
                    ShovelReport(vname, name, State.CRITICAL, f"missing: vhost {vname!r} does not exist", None, origin)
                )
            elif listed is None:
                reports.append(ShovelReport(vname, name, State.UNKNOWN, "—", _NO_LISTING, origin))
            elif name not in found:
                if shovel.setting("src-delete-after") not in (None, "never"):
                    done = "it has delete-after: it deletes itself once done"
                    reports.append(ShovelReport(vname, name, State.OK, "gone (done)", done, origin))
                else:
                    reports.append(ShovelReport(vname, name, State.CRITICAL, "missing on the broker", None, origin))
            else:
                item = found[name]
                state = str(item.get("state", "unknown"))
                reason = item.get("reason")
                note = f"reason: {redact(str(reason)).strip(chr(34))}" if reason else None
                # the reason is the broker's Erlang term as text; a URI in it is shown without credentials
                reports.append(
                    ShovelReport(vname, name, State.OK if state == "running" else State.CRITICAL, state, note, origin)
                )
    return tuple(reports)
