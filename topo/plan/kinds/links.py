"""The links of a vhost: dynamic shovels, federation upstreams and upstream sets (runtime parameters of the
shovel and federation plugins). Each is created, or updated in place (a PUT of its whole value; a changed
shovel restarts) when its settings or its URIs differ; those no file declares are not managed.

URIs carry credentials and the broker returns them in clear: they are compared by value (both resolved)
and never shown: ``(sensitive)`` stands in their place, with where the files take them from
(``${env:NAME}``, ``uri-file PATH``, or the URI redacted).

A shovel with ``delete-after`` (not ``never``) deletes itself once done: the plan says so when it creates
one, since every later apply would create it again. Whether the broker has the plugins these need is known
only by asking it: :func:`plugin_blockers` blocks the changes a broker without them would refuse (before any
write: a standing refusal), from what :meth:`topo.broker.port.Broker.enabled_plugins` says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from topo.definitions import federation_upstream_json, federation_upstream_set_json, shovel_json
from topo.model import SENSITIVE, FederationUpstream, FederationUpstreamSet, Secret, Shovel, canonical_json, same_uris
from topo.plan.kinds.base import Kind, Outcomes, Scope, as_json
from topo.plan.model import Blocker, Change, Plan

__all__ = [
    "FEDERATION_UPSTREAM",
    "FEDERATION_UPSTREAM_SET",
    "PLUGIN_MISSING",
    "PLUGIN_UNKNOWN",
    "SHOVEL",
    "needed_plugins",
    "plugin_blockers",
]

PLUGIN_MISSING = "plugin-missing"
PLUGIN_UNKNOWN = "plugin-unknown"
SHOVEL_PLUGIN = "rabbitmq_shovel"
FEDERATION_PLUGIN = "rabbitmq_federation"
_FEDERATION_KEYS = ("federation-upstream", "federation-upstream-set", "federation-upstream-pattern")


def _uris_line(key: str, uris: Iterable[Secret]) -> str:
    sources = ", ".join(u.source for u in uris)
    return f"{key}: {SENSITIVE}, from {sources}"


def _settings_lines(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> list[str]:
    if before is None:
        return [f"{k}: {as_json(v)}" for k, v in sorted(after.items())]
    lines = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if canonical_json(old) != canonical_json(new):
            shown_old = "(default)" if old is None else as_json(old)
            shown_new = "(default)" if new is None else as_json(new)
            lines.append(f"{key}: {shown_old} → {shown_new}")
    return lines


# -- shovels ---------------------------------------------------------------------------------------------


def _shovel_uris_differ(want: Shovel, have: Shovel) -> list[str]:
    found = []
    if not same_uris(want.source_uris, have.source_uris):
        found.append("src-uri")
    if not same_uris(want.destination_uris, have.destination_uris):
        found.append("dest-uri")
    return found


def _shovel_added(scope: Scope, name: str, want: Shovel) -> Outcomes:
    change = Change("create", scope.address("shovel", name), after=want)
    after = want.setting("src-delete-after")
    if after is not None and after != "never":
        warning = (
            f"it has delete-after {as_json(after)}: the broker deletes it once done, and every apply after that "
            "creates it again; take it out of the files once it has run"
        )
        change = replace(change, warnings=(warning,))
    return (change,)


def _shovel_common(scope: Scope, name: str, want: Shovel, have: Shovel) -> Outcomes:
    uris = _shovel_uris_differ(want, have)
    if want == have and not uris:
        return ()
    reasons = ["shovels change in place (the broker restarts the shovel)"]
    reasons += [f"its {key} differs from the broker's (neither is shown)" for key in uris]
    return (Change("update", scope.address("shovel", name), have, want, tuple(reasons)),)


def _shovel_details(change: Change) -> list[str]:
    before, after = change.before, change.after
    if change.action == "create" and isinstance(after, Shovel):
        return [
            _uris_line("src-uri", after.source_uris),
            _uris_line("dest-uri", after.destination_uris),
            *_settings_lines(None, after.settings),
        ]
    if change.action == "update" and isinstance(before, Shovel) and isinstance(after, Shovel):
        lines = []
        for key in _shovel_uris_differ(after, before):
            uris = after.source_uris if key == "src-uri" else after.destination_uris
            lines.append(f"{key}: {SENSITIVE} → {_uris_line(key, uris).split(': ', 1)[1]}")
        return lines + _settings_lines(before.settings, after.settings)
    return []


SHOVEL = Kind(
    name="shovel",
    actions=("create", "update", "delete"),  # delete: only a prune plans it
    items=lambda vhost: vhost.shovels,
    added=_shovel_added,
    common=_shovel_common,
    details=_shovel_details,
    to_json=shovel_json,
)

# -- federation upstreams and upstream sets --------------------------------------------------------------


def _upstream_common(scope: Scope, name: str, want: FederationUpstream, have: FederationUpstream) -> Outcomes:
    uri_differs = not same_uris(want.uris, have.uris)
    if want == have and not uri_differs:
        return ()
    reasons = ["federation upstreams change in place (the broker restarts their links)"]
    if uri_differs:
        reasons.append("its uri differs from the broker's (neither is shown)")
    return (Change("update", scope.address("federation-upstream", name), have, want, tuple(reasons)),)


def _upstream_details(change: Change) -> list[str]:
    before, after = change.before, change.after
    if change.action == "create" and isinstance(after, FederationUpstream):
        return [_uris_line("uri", after.uris), *_settings_lines(None, after.settings)]
    if change.action == "update" and isinstance(before, FederationUpstream) and isinstance(after, FederationUpstream):
        lines = []
        if not same_uris(after.uris, before.uris):
            lines.append(f"uri: {SENSITIVE} → {_uris_line('uri', after.uris).split(': ', 1)[1]}")
        return lines + _settings_lines(before.settings, after.settings)
    return []


FEDERATION_UPSTREAM = Kind(
    name="federation-upstream",
    actions=("create", "update", "delete"),  # delete: only a prune plans it
    items=lambda vhost: vhost.federation_upstreams,
    common=_upstream_common,
    details=_upstream_details,
    to_json=federation_upstream_json,
)


def _set_common(scope: Scope, name: str, want: FederationUpstreamSet, have: FederationUpstreamSet) -> Outcomes:
    if canonical_json(list(want.members)) == canonical_json(list(have.members)):
        return ()
    reason = "federation upstream sets change in place"
    return (Change("update", scope.address("federation-upstream-set", name), have, want, (reason,)),)


def _set_details(change: Change) -> list[str]:
    after, before = change.after, change.before
    if not isinstance(after, FederationUpstreamSet):
        return []
    shown = as_json(federation_upstream_set_json(after)["upstreams"])
    if change.action == "update" and isinstance(before, FederationUpstreamSet):
        return [f"upstreams: {as_json(federation_upstream_set_json(before)['upstreams'])} → {shown}"]
    return [f"upstreams: {shown}"]


FEDERATION_UPSTREAM_SET = Kind(
    name="federation-upstream-set",
    actions=("create", "update", "delete"),  # delete: only a prune plans it
    items=lambda vhost: vhost.federation_upstream_sets,
    common=_set_common,
    details=_set_details,
    to_json=federation_upstream_set_json,
)

# -- the plugins they need -------------------------------------------------------------------------------


def needed_plugin(change: Change) -> str | None:
    """The plugin the broker needs to make ``change`` (None: none)."""
    if change.action not in ("create", "update", "replace"):
        return None
    if change.kind == "shovel":
        return SHOVEL_PLUGIN
    if change.kind in ("federation-upstream", "federation-upstream-set"):
        return FEDERATION_PLUGIN
    definition = getattr(change.after, "definition", None)
    federates = isinstance(definition, Mapping) and any(key in definition for key in _FEDERATION_KEYS)
    if change.kind in ("policy", "operator-policy") and federates:
        return FEDERATION_PLUGIN
    return None


def needed_plugins(plan: Plan) -> frozenset[str]:
    """The plugins the broker needs to make ``plan``'s changes."""
    return frozenset(p for p in (needed_plugin(c) for c in plan.changes) if p is not None)


def has_plugin(enabled: Iterable[str], plugin: str) -> bool:
    """Whether ``plugin`` runs, given the plugins enabled (its management plugin brings it along)."""
    return any(name == plugin or name == f"{plugin}_management" for name in enabled)


def plugin_blockers(plan: Plan, enabled: frozenset[str] | None) -> Plan:
    """``plan`` with a blocker on each change the broker would refuse for lack of a plugin. ``enabled``: the
    plugins enabled on every node (None: not known, and then each such change is blocked as unknown: apply
    refuses before any write rather than have the broker refuse it half-way)."""
    changes = []
    for change in plan.changes:
        plugin = needed_plugin(change)
        if plugin is not None and enabled is None:
            blocker = Blocker(
                PLUGIN_UNKNOWN,
                f"cannot tell whether the broker has the {plugin} plugin enabled: its node lists no "
                "enabled_plugins yet (GET /api/nodes, some seconds after it starts): plan again in a few seconds",
                f"plan again once the node lists its plugins; enable {plugin}_management to make it known at once",
            )
            change = replace(change, blockers=(*change.blockers, blocker))
        elif plugin is not None and enabled is not None and not has_plugin(enabled, plugin):
            blocker = Blocker(
                PLUGIN_MISSING,
                f"the broker does not have the {plugin} plugin enabled: it refuses {change.kind}s without it",
                f"enable it on every node (rabbitmq-plugins enable {plugin} {plugin}_management), then plan again",
            )
            change = replace(change, blockers=(*change.blockers, blocker))
        changes.append(change)
    return replace(plan, changes=changes)
