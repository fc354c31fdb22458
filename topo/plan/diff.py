"""Desired vs observed → a :class:`Plan`. Pure: no I/O, tested on values.

What can change in place is an update (policies, operator policies, vhost metadata and limits); what
cannot is a replace, with the reason (queue and exchange properties and arguments are fixed at
declaration). Bindings have no update: a different binding is a delete plus a create. A replaced queue
or exchange gets all its declared bindings back. Bindings of a declared queue or exchange that no file
declares are deleted (the destination's bindings are part of its declaration), unless its
``keep-bindings`` (or its vhost's) matches them: those are listed as kept and left alone (and come back
with a replaced queue or exchange). So is a fence policy that an interrupted apply left (see
:mod:`topo.plan.safety`). Any other resource that no file declares is listed as not managed and left alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from topo.access.compare import AccessContext, diff_access
from topo.arguments import queue_argument
from topo.model import Address, Binding, Exchange, Policy, Queue, Topology, VHost
from topo.plan.model import Blocker, Change, Kept, Plan, Unmanaged
from topo.plan.safety import fenced_queue
from topo.units import format_duration, format_size

__all__ = ["diff", "exchange_replace_reasons", "queue_replace_reasons"]


def _show(value: Any) -> str:
    if value is None:
        return "not set"
    return json.dumps(value, ensure_ascii=False)


def _readable(arg: str, value: Any) -> str:
    """A queue argument's value as a person writes it (``86400000`` → ``"24h"`` for a duration)."""
    spec = queue_argument(arg)
    if spec is not None and isinstance(value, int) and not isinstance(value, bool) and value:
        if spec.kind == "duration":
            return _show(format_duration(value)).strip('"')
        if spec.kind == "size":
            return _show(format_size(value)).strip('"')
    return _show(value)


def _arg_reasons(kind: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    reasons = []
    for arg in sorted(set(before) | set(after)):
        old, new = before.get(arg), after.get(arg)
        if old == new and type(old) is type(new):
            continue
        if old is not None and new is not None and str(old) == str(new):
            reasons.append(
                f"{arg} has the wrong type on the broker ({type(old).__name__} {_show(old)}, "
                f"declared as {type(new).__name__} {_show(new)}) and cannot change on an existing {kind}"
            )
        else:
            reasons.append(f"{arg} cannot change on an existing {kind} ({_readable(arg, old)} → {_readable(arg, new)})")
    return reasons


def queue_replace_reasons(before: Queue, after: Queue) -> list[str]:
    """Why ``before`` cannot become ``after`` in place (empty when they are equivalent)."""
    reasons = []
    if before.type != after.type:
        reasons.append(f"the queue type cannot change ({before.type} → {after.type})")
    if before.durable != after.durable:
        reasons.append(f"durable cannot change on an existing queue ({_show(before.durable)} → {_show(after.durable)})")
    if before.auto_delete != after.auto_delete:
        reasons.append(
            f"auto-delete cannot change on an existing queue ({_show(before.auto_delete)} → {_show(after.auto_delete)})"
        )
    reasons.extend(_arg_reasons("queue", before.arguments, after.arguments))
    return reasons


def exchange_replace_reasons(before: Exchange, after: Exchange) -> list[str]:
    reasons = []
    if before.type != after.type:
        reasons.append(f"the exchange type cannot change ({before.type} → {after.type})")
    for attr, word in (("durable", "durable"), ("auto_delete", "auto-delete"), ("internal", "internal")):
        old, new = getattr(before, attr), getattr(after, attr)
        if old != new:
            reasons.append(f"{word} cannot change on an existing exchange ({_show(old)} → {_show(new)})")
    for reason in _arg_reasons("exchange", before.arguments, after.arguments):
        if not reason.startswith("alternate-exchange"):
            reason += " (RabbitMQ would silently keep the old value)"
        reasons.append(reason)
    return reasons


def _metadata(vhost: VHost) -> dict[str, Any]:
    return {
        "description": vhost.description,
        "tags": list(vhost.tags) if vhost.tags is not None else None,
        "limits": dict(vhost.limits) if vhost.limits is not None else None,
        "default-queue-type": vhost.default_queue_type,
        "tracing": vhost.tracing,
    }


FIXED_AT_CREATION = Blocker(
    "fixed-at-creation",
    "default-queue-type cannot change on an existing vhost: RabbitMQ 3.10 sets it only when the vhost is created, "
    "and silently keeps it afterwards",
    "leave `default-queue-type` out (topo declares every queue's type explicitly anyway), or delete and re-create "
    "the vhost yourself (deleting a vhost deletes everything in it)",
)


def _vhost_change(desired: VHost, observed: VHost | None) -> Change | None:
    address = Address("vhost", desired.name)
    wanted = {k: v for k, v in _metadata(desired).items() if v is not None}
    if observed is None:
        return Change("create", address, after=wanted)
    have = _metadata(observed)
    changed = {k: v for k, v in wanted.items() if have.get(k) != v}
    if not changed:
        return None
    before = {k: have.get(k) for k in changed}
    reasons = tuple(f"{k} can change in place" for k in changed if k != "default-queue-type")
    blockers = (FIXED_AT_CREATION,) if "default-queue-type" in changed else ()
    return Change("update", address, before=before, after=changed, reasons=reasons, blockers=blockers)


class _VhostDiff:
    def __init__(self, desired: VHost, observed: VHost | None) -> None:
        self.d = desired
        self.o = observed or VHost(desired.name)
        self.exists = observed is not None
        self.changes: list[Change] = []
        self.unmanaged: list[Unmanaged] = []
        self.kept: list[Kept] = []
        self.replaced_queues: set[str] = set()
        self.replaced_exchanges: set[str] = set()

    def run(self) -> None:
        vhost_change = _vhost_change(self.d, self.o if self.exists else None)
        if vhost_change:
            self.changes.append(vhost_change)
        self.exchanges()
        self.queues()
        self.bindings()
        self.policies("policy", self.d.policies, self.o.policies)
        self.policies("operator-policy", self.d.operator_policies, self.o.operator_policies)
        self.not_managed()

    def addr(self, kind: Any, name: str) -> Address:
        return Address(kind, self.d.name, name)

    def exchanges(self) -> None:
        for name in sorted(self.d.exchanges):
            want, have = self.d.exchanges[name], self.o.exchanges.get(name)
            if have is None:
                self.changes.append(Change("create", self.addr("exchange", name), after=want))
                continue
            reasons = exchange_replace_reasons(have, want)
            if reasons:
                self.replaced_exchanges.add(name)
                lost = [b for b in self.o.bindings.values() if b.source == name and not self._managed_destination(b)]
                warnings = tuple(
                    f"binding to unmanaged {b.destination_type} {b.destination!r} (key {_show(b.routing_key)}) "
                    "is lost with the exchange and not re-created"
                    for b in lost
                )
                self.changes.append(
                    Change("replace", self.addr("exchange", name), have, want, tuple(reasons), warnings=warnings)
                )

    def queues(self) -> None:
        for name in sorted(self.d.queues):
            want, have = self.d.queues[name], self.o.queues.get(name)
            if have is None:
                self.changes.append(Change("create", self.addr("queue", name), after=want))
                continue
            reasons = queue_replace_reasons(have, want)
            if reasons:
                self.replaced_queues.add(name)
                self.changes.append(Change("replace", self.addr("queue", name), have, want, tuple(reasons)))

    def _managed_destination(self, binding: Binding) -> bool:
        if binding.destination_type == "queue":
            return binding.destination in self.d.queues
        return binding.destination in self.d.exchanges

    def _replaced_endpoint(self, binding: Binding) -> str | None:
        if binding.source in self.replaced_exchanges:
            return f"re-created: exchange {binding.source!r} is replaced"
        if binding.destination_type == "queue" and binding.destination in self.replaced_queues:
            return f"re-created: queue {binding.destination!r} is replaced"
        if binding.destination_type == "exchange" and binding.destination in self.replaced_exchanges:
            return f"re-created: exchange {binding.destination!r} is replaced"
        return None

    def bindings(self) -> None:
        creates, deletes = [], []
        for key, binding in self.d.bindings.items():
            existed = key in self.o.bindings
            replaced = self._replaced_endpoint(binding) if existed else None  # only what existed is re-created
            if not existed or replaced:
                reasons = (replaced,) if replaced else ()
                creates.append(Change("create", binding.address(self.d.name), after=binding, reasons=reasons))
        for key, binding in self.o.bindings.items():
            if key in self.d.bindings:
                continue
            if self._managed_destination(binding):
                address = binding.address(self.d.name)
                pattern = self.d.kept_by(binding)
                if pattern is None:
                    reason = "no file declares this binding of a managed " + binding.destination_type
                    deletes.append(Change("delete", address, before=binding, reasons=(reason,)))
                    continue
                self.kept.append(Kept(address, pattern))
                replaced = self._replaced_endpoint(binding)  # dropped with it: bring it back
                if replaced:
                    reasons = (f"{replaced} (kept by keep-bindings)",)
                    creates.append(Change("create", address, after=binding, reasons=reasons))
            elif binding.source not in self.replaced_exchanges:
                self.unmanaged.append(Unmanaged(binding.address(self.d.name)))
        order = sorted(creates + deletes, key=lambda c: (str(c.address), c.action))
        self.changes.extend(order)
        self.kept.sort(key=lambda k: str(k.address))

    def policies(self, kind: str, desired: Mapping[str, Any], observed: Mapping[str, Any]) -> None:
        for name in sorted(set(desired) | set(observed)):
            want, have = desired.get(name), observed.get(name)
            if want is None:
                queue = fenced_queue(have) if kind == "policy" and isinstance(have, Policy) else None
                if queue is not None:  # left by an apply stopped while it was replacing that queue
                    reason = (
                        f"left on queue {queue!r} by an interrupted apply: this fence makes the broker refuse "
                        "messages published to the queue; apply removes it, and the probe messages (header "
                        "x-topo-fence-probe) it left at the head of the queue"
                    )
                    self.changes.append(Change("delete", self.addr(kind, name), before=have, reasons=(reason,)))
            elif have is None:
                self.changes.append(Change("create", self.addr(kind, name), after=want))
            elif have != want:
                self.changes.append(Change("update", self.addr(kind, name), have, want, ("policies change in place",)))

    def not_managed(self) -> None:
        tables: Iterable[tuple[str, Mapping[str, Any], Mapping[str, Any]]] = (
            ("exchange", self.o.exchanges, self.d.exchanges),
            ("queue", self.o.queues, self.d.queues),
            ("policy", self.o.policies, self.d.policies),
            ("operator-policy", self.o.operator_policies, self.d.operator_policies),
        )
        for kind, have, want in tables:
            for name in sorted(set(have) - set(want)):
                if kind == "policy" and fenced_queue(have[name]) is not None:
                    continue  # deleted by the plan (see policies)
                self.unmanaged.append(Unmanaged(self.addr(kind, name)))
        self.unmanaged.sort(key=lambda u: str(u.address))


def diff(desired: Topology, observed: Topology, *, access: AccessContext | None = None) -> Plan:
    """The changes that make ``observed`` match ``desired`` in every vhost ``desired`` declares, and for the
    users and global parameters it declares (:mod:`topo.access.compare`; ``access`` tells who topo connects as
    and which vhosts the broker has). Broker-wide changes come first, then each vhost's (a user's permissions
    on a vhost among that vhost's)."""
    plan = Plan(vhosts=tuple(sorted(desired.vhosts)))
    by_vhost: dict[str, list[Change]] = {}
    for name in plan.vhosts:
        vdiff = _VhostDiff(desired.vhosts[name], observed.vhosts.get(name))
        vdiff.run()
        by_vhost[name] = vdiff.changes
        plan.unmanaged.extend(vdiff.unmanaged)
        plan.kept.extend(vdiff.kept)
    if desired.users or desired.global_parameters:
        found = diff_access(desired, observed, access)
        plan.changes.extend(found.broker_wide)
        for name, changes in found.per_vhost.items():
            by_vhost.setdefault(name, []).extend(changes)
        plan.unmanaged.extend(found.unmanaged)
    for name in sorted(by_vhost):
        plan.changes.extend(by_vhost[name])
    return plan
