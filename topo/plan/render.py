"""Rendering a plan for people and programs: text (Terraform's symbols), JSON (versioned), Markdown.

The JSON form is documented in docs/plan-json.md; ``format_version`` changes only when a field changes
meaning or disappears (new fields may be added within a version).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from topo import __version__
from topo.access.render import details as access_details
from topo.access.render import resource_json as access_json
from topo.arguments import POLICY_KEYS, ArgSpec, queue_argument
from topo.definitions import binding_definition, exchange_definition, policy_definition
from topo.model import Binding, Exchange, Policy, Queue
from topo.plan.model import Change, Plan, Resource
from topo.units import format_duration, format_size

__all__ = [
    "FORMAT_VERSION",
    "blocked_line",
    "render_json",
    "render_markdown",
    "render_text",
    "resource_json",
    "summary_line",
]

FORMAT_VERSION = 1
SYMBOLS = {"create": "+", "update": "~", "replace": "-/+", "delete": "-"}
COLOURS = {"create": "green", "update": "yellow", "replace": "magenta", "delete": "red"}
Styler = Callable[[str, str], str]


def _plain(text: str, _colour: str) -> str:
    return text


def resource_json(resource: Resource | None) -> Any:
    """A resource as JSON with the broker's field names (what the broker has or will have)."""
    if resource is None:
        return None
    if isinstance(resource, Exchange):
        return exchange_definition(resource)
    if isinstance(resource, Queue):  # the type as a field of its own, as the plan compares it
        return {
            "name": resource.name,
            "type": resource.type,
            "durable": resource.durable,
            "auto_delete": resource.auto_delete,
            "arguments": dict(resource.arguments),
        }
    if isinstance(resource, Binding):
        return binding_definition(resource)
    if isinstance(resource, Policy):
        return policy_definition(resource)
    if isinstance(resource, dict):
        return dict(resource)
    return access_json(resource)  # users, permissions, global parameters: never a password or a hash


def summary_line(plan: Plan) -> str:
    if plan.empty:
        return "No changes. The broker matches the files."
    return (
        f"Plan: {plan.count('create')} to create, {plan.count('update')} to update, "
        f"{plan.count('replace')} to replace, {plan.count('delete')} to delete."
    )


def _v(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _readable(spec: ArgSpec | None, value: Any) -> str:
    """A value as the files write it: a duration or size number in its unit form (``86400000`` → ``1d``,
    unquoted, as in replace reasons), anything else as JSON."""
    if spec is not None and isinstance(value, int) and not isinstance(value, bool) and value:
        if spec.kind == "duration":
            return str(format_duration(value))
        if spec.kind == "size":
            return str(format_size(value))
    return _v(value)


def _arg(name: str, value: Any) -> str:
    return _readable(queue_argument(name), value)


def _policy_value(key: str, value: Any) -> str:
    return "(none)" if value is None else _readable(POLICY_KEYS.get(key), value)


def _details(change: Change) -> list[str]:
    """Indented lines under a change: attributes of what is created, what changes, why."""
    lines: list[str] = []
    after, before = change.after, change.before
    access = access_details(change)
    if access is not None:
        lines += access
    elif change.action == "create":
        if isinstance(after, Exchange):
            flags = [f"type: {after.type}"]
            flags += [w for w, on in (("internal", after.internal), ("auto-delete", after.auto_delete)) if on]
            if not after.durable:
                flags.append("transient")
            lines.append(", ".join(flags))
            lines += [f"{k}: {_arg(k, v)}" for k, v in sorted(after.arguments.items())]
        elif isinstance(after, Queue):
            flags = [f"type: {after.type}"]
            if after.auto_delete:
                flags.append("auto-delete")
            if not after.durable:
                flags.append("transient")
            lines.append(", ".join(flags))
            lines += [f"{k}: {_arg(k, v)}" for k, v in sorted(after.arguments.items())]
        elif isinstance(after, Policy):
            lines.append(f"pattern: {_v(after.pattern)}, apply-to: {after.apply_to}, priority: {after.priority}")
            lines += [f"{k}: {_policy_value(k, v)}" for k, v in sorted(after.definition.items())]
        elif isinstance(after, dict):
            lines += [f"{k}: {_v(v)}" for k, v in after.items()]
    elif change.action == "update":
        if isinstance(before, Policy) and isinstance(after, Policy):
            for field in ("pattern", "apply_to", "priority"):
                old, new = getattr(before, field), getattr(after, field)
                if old != new:
                    lines.append(f"{field.replace('_', '-')}: {_v(old)} → {_v(new)}")
            for key in sorted(set(before.definition) | set(after.definition)):
                old, new = before.definition.get(key), after.definition.get(key)
                if old != new or type(old) is not type(new):
                    lines.append(f"{key}: {_policy_value(key, old)} → {_policy_value(key, new)}")
        elif isinstance(before, dict) and isinstance(after, dict):
            lines += [f"{k}: {_v(before.get(k))} → {_v(v)}" for k, v in after.items()]
    elif change.action == "replace":
        lines += [f"# {reason}" for reason in change.reasons]
    if change.action in ("create", "delete") and change.reasons and access is None:
        lines += [f"# {reason}" for reason in change.reasons]
    lines += [f"! blocked: {blocker.message}" for blocker in change.blockers]
    lines += [f"! {warning}" for warning in change.warnings]
    return lines


def blocked_line(plan: Plan, marked: str = ' (marked "! blocked")') -> str:
    """The last line of a blocked plan: apply refuses it."""
    count = len(plan.blocked_changes)
    what = "1 change is" if count == 1 else f"{count} changes are"
    return f"Blocked: {what} blocked{marked}: `topo apply` refuses this plan."


_KEPT_HEAD = "bindings no file declares, left alone because of keep-bindings"


def _kept_lines(plan: Plan) -> list[str]:
    """The bindings ``keep-bindings`` leaves alone (text form), after the changes."""
    if not plan.kept:
        return []
    out = ["", f"Kept ({len(plan.kept)}): {_KEPT_HEAD}:"]
    out += [f"      {k.address}  (matches {k.pattern.describe()})" for k in plan.kept]
    return out


def render_text(plan: Plan, style: Styler = _plain) -> str:
    """The plan as a person reads it in a terminal (``style`` colours it when given)."""
    out: list[str] = []
    if plan.empty:
        out.append(style(summary_line(plan), "green"))
    else:
        out.append("topo will perform these actions:")
        current = None
        for change in plan.changes:
            if change.vhost != current:
                current = change.vhost
                out.append("")
                out.append(f"  in vhost {_v(current)}:" if current else "  broker-wide:")
            symbol = SYMBOLS[change.action]
            tail = {"replace": " (forces replacement)", "delete": " (will be deleted)"}.get(change.action, "")
            head = f"{symbol:>3} {change.kind} {change.address}{tail}"
            out.append("  " + style(head, COLOURS[change.action]))
            out += ["          " + line for line in _details(change)]
    if plan.unmanaged:
        out.append("")
        out.append(f"Not managed ({len(plan.unmanaged)}): no file declares these; topo leaves them alone:")
        out += [f"      {u.address}" for u in plan.unmanaged]
    out += _kept_lines(plan)
    if not plan.empty:
        out.append("")
        out.append(style(summary_line(plan), "bold"))
        if plan.blocked:
            out.append(style(blocked_line(plan), "red"))
    return "\n".join(out) + "\n"


def _count_json(change: Change) -> dict[str, Any] | None:
    usage = change.usage
    if usage is None:
        return None
    return {"ready": usage.ready, "unacknowledged": usage.unacked, "consumers": usage.consumers, "exact": usage.exact}


def plan_json(plan: Plan) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "topo_version": __version__,
        "vhosts": list(plan.vhosts),
        "summary": {a: plan.count(a) for a in ("create", "update", "replace", "delete")},
        "blocked": plan.blocked,
        "broker": {"cluster_name": plan.broker.cluster_name, "url": plan.broker.url} if plan.broker else None,
        "changes": [
            {
                "action": c.action,
                "kind": c.kind,
                "vhost": c.vhost or None,  # None: a broker-wide kind (a user, a global parameter)
                "address": str(c.address),
                "reasons": list(c.reasons),
                "warnings": list(c.warnings),
                "messages": c.messages,
                "before": resource_json(c.before),
                "after": resource_json(c.after),
                "blockers": [{"code": b.code, "message": b.message, "hint": b.hint} for b in c.blockers],
                "count": _count_json(c),
            }
            for c in plan.changes
        ],
        "not_managed": [
            {"kind": u.address.kind, "vhost": u.address.vhost or None, "address": str(u.address)}
            for u in plan.unmanaged
        ],
        "kept_bindings": [
            {
                "kind": k.address.kind,
                "vhost": k.address.vhost,
                "address": str(k.address),
                "pattern": k.pattern.to_json(),
            }
            for k in plan.kept
        ],
    }


def render_json(plan: Plan) -> str:
    return json.dumps(plan_json(plan), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def render_markdown(plan: Plan, graph: str | None = None) -> str:
    """For a pull-request comment: summary first, the plan in a diff block, unmanaged in a fold, and
    ``graph`` (a Mermaid chart of what the plan touches; GitHub draws it) in a fold of its own."""
    out = ["### topo plan", ""]
    if plan.broker is not None:
        cluster = f"`{plan.broker.cluster_name}` at " if plan.broker.cluster_name else ""
        out += [f"Made against the broker {cluster}{plan.broker.url}", ""]
    out.append(f"**{summary_line(plan)}**")
    if plan.blocked:
        out += ["", f"> :no_entry: **{blocked_line(plan, marked='')}**", ">"]
        for change in plan.blocked_changes:
            out += [f"> - `{change.address}` {blocker.message}" for blocker in change.blockers]
    if not plan.empty:
        # GitHub colours a diff block's lines by their first character: + green, - red, ! orange;
        # a line starting with a blank is context (details, reasons, warnings).
        out += ["", "```diff"]
        for change in plan.changes:
            symbol = {"create": "+", "update": "!", "replace": "!", "delete": "-"}[change.action]
            word = {
                "update": " (update in place)",
                "replace": " (forces replacement)",
                "delete": " (will be deleted)",
            }.get(change.action, "")
            out.append(f"{symbol} {change.kind} {change.address}{word}")
            out += [f"      {line}" for line in _details(change)]
        out.append("```")
    if plan.unmanaged:
        count = len(plan.unmanaged)
        what = "1 resource" if count == 1 else f"{count} resources"
        out += ["", f"<details><summary>Not managed: {what} no file declares</summary>", ""]
        out += [f"- `{u.address}`" for u in plan.unmanaged]
        out += ["", "</details>"]
    if plan.kept:
        out += ["", f"<details><summary>Kept: {len(plan.kept)} {_KEPT_HEAD}</summary>", ""]
        out += [f"- `{k.address}` (matches `{k.pattern.describe()}`)" for k in plan.kept]
        out += ["", "</details>"]
    if graph and not plan.empty:
        out += ["", "<details><summary>Graph of the vhosts this plan changes</summary>", "", "```mermaid"]
        out += [graph.rstrip("\n"), "```", "", "</details>"]
    return "\n".join(out) + "\n"
