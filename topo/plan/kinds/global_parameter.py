"""Global parameters (``cluster_name``, a document a team keeps on the broker, ...): broker-wide, by name,
any JSON value; created or updated in place, compared when the files declare some. Those no file declares
are not managed, and the broker's own (``internal_cluster_id``) and topo's (``topo.*``) are not even listed."""

from __future__ import annotations

from topo.definitions import global_parameter_definition
from topo.model import GlobalParameter, canonical_json, reserved_parameter
from topo.plan.kinds.base import BrokerScope, Kind, Outcomes, as_json
from topo.plan.model import Change, Unmanaged

__all__ = ["GLOBAL_PARAMETER"]


def _common(scope: BrokerScope, name: str, want: GlobalParameter, have: GlobalParameter) -> Outcomes:
    if canonical_json(want.value) == canonical_json(have.value):
        return ()
    address = scope.address("global-parameter", name)
    return (Change("update", address, have, want, ("global parameters change in place",)),)


def _removed(scope: BrokerScope, name: str, have: GlobalParameter) -> Outcomes:
    if reserved_parameter(name) is not None:
        return ()
    return (Unmanaged(scope.address("global-parameter", name)),)


def _details(change: Change) -> list[str]:
    before, after = change.before, change.after
    if change.action == "create" and isinstance(after, GlobalParameter):
        return [f"value: {as_json(after.value)}"]
    if change.action == "update" and isinstance(before, GlobalParameter) and isinstance(after, GlobalParameter):
        return [f"value: {as_json(before.value)} → {as_json(after.value)}"]
    if change.action == "delete" and isinstance(before, GlobalParameter):
        return [f"value: {as_json(before.value)}"]
    return []


GLOBAL_PARAMETER = Kind(
    name="global-parameter",
    scope="broker",
    declared=lambda topology: bool(topology.global_parameters),
    actions=("create", "update", "delete"),  # delete: no plan makes one (no stack owns a global parameter)
    items=lambda topology: topology.global_parameters,
    common=_common,
    removed=_removed,
    details=_details,
    to_json=global_parameter_definition,
)
