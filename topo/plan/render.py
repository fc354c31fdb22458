"""Rendering a plan for people and programs: text (Terraform's symbols), JSON (versioned), Markdown.

The JSON form is documented in docs/plan-json.md; ``format_version`` changes only when a field changes
meaning or disappears (new fields may be added within a version).

Changes are grouped as the diff makes them: the broker-wide ones (users, their permissions, global
parameters: each kind's ``scope``) under one heading, then each vhost's under its own (:func:`group`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from topo import __version__
from topo.plan.kinds import kind
from topo.plan.kinds.base import as_json
from topo.plan.model import Action, Change, Plan, Resource

__all__ = [
    "FORMAT_VERSION",
    "MIGRATE_FORMAT_VERSION",
    "blocked_line",
    "group",
    "render_json",
    "render_markdown",
    "render_text",
    "summary_line",
    "unknown_line",
]

FORMAT_VERSION = 1
SYMBOLS = {"create": "+", "update": "~", "replace": "-/+", "delete": "-", "migrate": "~>"}
COLOURS = {"create": "green", "update": "yellow", "replace": "magenta", "delete": "red", "migrate": "cyan"}
Styler = Callable[[str, str], str]


def _plain(text: str, _colour: str) -> str:
    return text


def _resource_json(change: Change, resource: Resource | None) -> Any:
    """A resource of ``change`` as JSON with the broker's field names (what the broker has or will have)."""
    return None if resource is None else kind(change.kind).to_json(resource)


def summary_line(plan: Plan) -> str:
    if plan.empty and not plan.read.complete:
        return f"No changes in what was compared (not compared: {plan.read.not_compared_words()})."
    if plan.empty:
        return "No changes. The broker matches the files."
    migrate = f", {plan.count('migrate')} to migrate" if plan.count("migrate") else ""
    return (
        f"Plan: {plan.count('create')} to create, {plan.count('update')} to update, "
        f"{plan.count('replace')} to replace{migrate}, {plan.count('delete')} to delete."
    )


def unknown_line(plan: Plan) -> str | None:
    """The line under the summary of a plan whose stack's inventory could not be read (``None``: known)."""
    if plan.read.ownership_known:
        return None
    stack = f"stack {plan.read.stack!r}" if plan.read.stack else "the stack"
    return (
        f"Ownership not known: the inventory of {stack} could not be read, so prune, adoption and other stacks' "
        "resources are not in this plan (see the note): `topo apply` may do more, or refuse."
    )


def group(change: Change) -> str:
    """The heading ``change`` is listed under: ``broker-wide`` for a broker-wide kind's, else its vhost's."""
    return "broker-wide" if kind(change.kind).scope == "broker" else f"in vhost {as_json(change.vhost)}"


def _vhost_or_none(vhost: str) -> str | None:
    return vhost or None  # "": a broker-wide kind's (a user, a global parameter)


def _details(change: Change) -> list[str]:
    """Indented lines under a change: what its kind shows of it (a create's or an update's attributes, what
    changes; what a broker-wide kind's delete takes away), then why (a replace's reasons; a create's or
    delete's reasons), what blocks it, warnings."""
    lines = kind(change.kind).details(change)
    if change.action in ("replace", "create", "delete", "migrate"):
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
_ADOPTED_HEAD = "existing resources the files declare, taken over by the stack (--adopt)"
_UNOWNED_HEAD = "the files declare these, but the stack did not create them; topo leaves them out of its inventory"


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
            if group(change) != current:
                current = group(change)
                out.append("")
                out.append(f"  {current}:")
            symbol = SYMBOLS[change.action]
            tail = {
                "replace": " (forces replacement)",
                "delete": " (will be deleted)",
                "migrate": " (replaced, its messages moved)",
            }.get(change.action, "")
            head = f"{symbol:>3} {change.kind} {change.address}{tail}"
            out.append("  " + style(head, COLOURS[change.action]))
            out += ["          " + line for line in _details(change)]
    if plan.unmanaged:
        out.append("")
        out.append(f"Not managed ({len(plan.unmanaged)}): no file declares these; topo leaves them alone:")
        out += [f"      {u.address}" + (f"  ({u.detail})" if u.detail else "") for u in plan.unmanaged]
    if plan.unowned:
        out.append("")
        out.append(f"Not owned ({len(plan.unowned)}): {_UNOWNED_HEAD}:")
        out += [f"      {u.address}  ({u.detail})" for u in plan.unowned]
    if plan.adopted:
        out.append("")
        out.append(f"Adopted ({len(plan.adopted)}): {_ADOPTED_HEAD}:")
        out += [f"      {a}" for a in plan.adopted]
    out += _kept_lines(plan)
    if not plan.empty:
        out.append("")
        out.append(style(summary_line(plan), "bold"))
        if plan.blocked:
            out.append(style(blocked_line(plan), "red"))
    unknown = unknown_line(plan)
    if unknown is not None:
        out.append(style(unknown, "yellow"))
    notes = plan.read.notes()
    if notes:
        out.append("")
        out += [style(f"Note: {note}", "yellow") for note in notes]
    return "\n".join(out) + "\n"


def _count_json(change: Change) -> dict[str, Any] | None:
    usage = change.usage
    if usage is None:
        return None
    return {"ready": usage.ready, "unacknowledged": usage.unacked, "consumers": usage.consumers, "exact": usage.exact}


_ACTIONS: tuple[Action, ...] = ("create", "update", "replace", "delete", "migrate")
MIGRATE_FORMAT_VERSION = 2
"""The version of a plan that holds a ``migrate`` change (``topo plan --migrate``): a new action bumps the
version, so that a consumer of version 1 refuses it rather than misreads it. A plan without one stays 1."""


def plan_json(plan: Plan) -> dict[str, Any]:
    version = MIGRATE_FORMAT_VERSION if plan.count("migrate") else FORMAT_VERSION
    return {
        "format_version": version,
        "topo_version": __version__,
        "vhosts": list(plan.vhosts),
        "summary": {a: plan.count(a) for a in _ACTIONS[: 5 if version > 1 else 4]},
        "blocked": plan.blocked,
        "broker": {"cluster_name": plan.broker.cluster_name, "url": plan.broker.url} if plan.broker else None,
        "changes": [
            {
                "action": c.action,
                "kind": c.kind,
                "vhost": _vhost_or_none(c.vhost),
                "address": str(c.address),
                "reasons": list(c.reasons),
                "warnings": list(c.warnings),
                "messages": c.messages,
                "before": _resource_json(c, c.before),
                "after": _resource_json(c, c.after),
                "blockers": [{"code": b.code, "message": b.message, "hint": b.hint} for b in c.blockers],
                "count": _count_json(c),
            }
            for c in plan.changes
        ],
        "not_managed": [
            {
                "kind": u.address.kind,
                "vhost": _vhost_or_none(u.address.vhost),
                "address": str(u.address),
                **({"detail": u.detail} if u.detail else {}),
            }
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
        "adopted": [{"kind": a.kind, "vhost": _vhost_or_none(a.vhost), "address": str(a)} for a in plan.adopted],
        "not_owned": [
            {
                "kind": u.address.kind,
                "vhost": _vhost_or_none(u.address.vhost),
                "address": str(u.address),
                "detail": u.detail,
            }
            for u in plan.unowned
        ],
        "allow_data_loss": plan.allow_data_loss,
        "read": {
            "by_resource": plan.read.by_resource,
            "not_compared": [{"kind": kind, "vhost": vhost} for kind, vhost in plan.read.not_compared],
            "ownership": None
            if plan.read.stack is None
            else {"stack": plan.read.stack, "known": plan.read.ownership_known},
            "notes": plan.read.notes(),
        },
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
    ownership = plan.read.ownership_note()
    if ownership is not None:  # what the plan could not know, before what it shows
        out += ["", f"> :warning: **{ownership}**"]
    for note in plan.read.notes():
        if note != ownership:
            out += ["", f"> :information_source: {note}"]
    if plan.blocked:
        out += ["", f"> :no_entry: **{blocked_line(plan, marked='')}**", ">"]
        for change in plan.blocked_changes:
            out += [f"> - `{change.address}` {blocker.message}" for blocker in change.blockers]
    if not plan.empty:
        # GitHub colours a diff block's lines by their first character: + green, - red, ! orange;
        # a line starting with a blank is context (details, reasons, warnings).
        out += ["", "```diff"]
        current = None
        for change in plan.changes:
            if group(change) != current:  # a hunk header: GitHub shows it apart from the changes
                current = group(change)
                out.append(f"@@ {current} @@")
            symbol = {"create": "+", "update": "!", "replace": "!", "delete": "-", "migrate": "!"}[change.action]
            word = {
                "update": " (update in place)",
                "replace": " (forces replacement)",
                "migrate": " (replaced, its messages moved)",
                "delete": " (will be deleted)",
            }.get(change.action, "")
            out.append(f"{symbol} {change.kind} {change.address}{word}")
            out += [f"      {line}" for line in _details(change)]
        out.append("```")
    if plan.unmanaged:
        count = len(plan.unmanaged)
        what = "1 resource" if count == 1 else f"{count} resources"
        out += ["", f"<details><summary>Not managed: {what} no file declares</summary>", ""]
        out += [f"- `{u.address}`" + (f" ({u.detail})" if u.detail else "") for u in plan.unmanaged]
        out += ["", "</details>"]
    if plan.unowned:
        out += ["", f"<details><summary>Not owned: {len(plan.unowned)} {_UNOWNED_HEAD}</summary>", ""]
        out += [f"- `{u.address}` ({u.detail})" for u in plan.unowned]
        out += ["", "</details>"]
    if plan.adopted:
        out += ["", f"<details><summary>Adopted: {len(plan.adopted)} {_ADOPTED_HEAD}</summary>", ""]
        out += [f"- `{a}`" for a in plan.adopted]
        out += ["", "</details>"]
    if plan.kept:
        out += ["", f"<details><summary>Kept: {len(plan.kept)} {_KEPT_HEAD}</summary>", ""]
        out += [f"- `{k.address}` (matches `{k.pattern.describe()}`)" for k in plan.kept]
        out += ["", "</details>"]
    if graph and not plan.empty:
        out += ["", "<details><summary>Graph of the vhosts this plan changes</summary>", "", "```mermaid"]
        out += [graph.rstrip("\n"), "```", "", "</details>"]
    return "\n".join(out) + "\n"
