"""Ownership without a state file: what a stack (``name:`` in its files) owns, kept on the broker itself, and
what a plan does with it (prune, adopt, the guards). Pure: values in, values out.

**The inventory** (:class:`~topo.model.Inventory`) lists the addresses of the resources a stack created or
adopted, and those of them its files mark ``protect: true``. It lives in global parameters: ``topo.stack.NAME``
(part 0) and, past :data:`PART_SIZE` addresses, ``topo.stack-part.NAME.GENERATION.N``; every part carries the
stack, the generation and the number of parts, and part 0 is written last (after the others of its
generation), so a reader never mixes two generations (see :func:`encode`, :func:`decode`). Global parameters
survive a restart of the broker, and one ``GET /api/global-parameters`` reads them all.

**A plan of a stack** (:func:`own`, after the kinds have compared): a resource the files declare is the
stack's when the stack owns it already or the plan creates it; one that exists and that the stack does not own
is taken over only with ``--adopt`` (listed in the plan), and never one another stack owns ("owned by stack
B": its changes are dropped or blocked). What the inventory holds and no file declares any more is listed as
"owned, no file declares it" and, with ``--prune``, deleted. A resource the inventory holds that the broker no
longer has is forgotten. The inventory's own change (``stack`` kind) is part of the plan: an apply writes the
intended inventory (the old one and everything it is about to create) before its first write, and the final
one last, so an apply killed half-way over-claims at worst (a resource it did not create yet), never under-
claims one it created: the next apply converges and owns it without ``--adopt``.

**The guards** (:func:`guard`): a change that deletes or replaces a protected resource (``protect: true`` in
the files, or in the inventory for a resource the files no longer declare) is blocked, whatever the flags; a
protected binding that a replacement of its queue or exchange drops and creates again is replaced too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from topo.model import Address, Binding, GlobalParameter, Inventory, TopicPermissions, Topology, VHost
from topo.plan.kinds import BY_NAME, VHOST_KINDS
from topo.plan.kinds.permission import topic_entries_removed
from topo.plan.model import Action, Blocker, Change, Plan, Unmanaged

__all__ = [
    "FORMAT",
    "PART_PREFIX",
    "PART_SIZE",
    "PREFIX",
    "Ownership",
    "addresses",
    "decode",
    "destroy_plan",
    "encode",
    "guard",
    "is_inventory_part",
    "own",
    "ownership_unknown",
    "prune_undeclared_vhosts",
]

PREFIX = "topo.stack."
"""Part 0 of stack NAME's inventory is the global parameter ``topo.stack.NAME``."""
PART_PREFIX = "topo.stack-part."
"""Further parts: ``topo.stack-part.NAME.GENERATION.N``."""
PART_SIZE = 2000
"""Addresses per global parameter: RabbitMQ refuses a body over about 8 MB; 2,000 addresses of the longest
names (255 bytes, and a binding's arguments) stay well under it, and 10,000 queues with a binding each take
about ten parameters of ~100 KB."""
FORMAT = 1


@dataclass(frozen=True)
class Ownership:
    """What a plan of a stack may do besides making the broker match the files: take over existing resources
    the files declare (``adopt``), delete what the stack owns and no file declares any more (``prune``)."""

    adopt: bool = False
    prune: bool = False


def is_inventory_part(name: str) -> bool:
    """Whether the global parameter ``name`` is part of a stack's inventory."""
    return name.startswith(PREFIX) or name.startswith(PART_PREFIX)


# -- the inventory on the broker --------------------------------------------------------------------------


def _nest(items: Iterable[Address]) -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, list[str]]] = {}
    for a in sorted(items, key=lambda a: (a.vhost, a.kind, a.name)):
        out.setdefault(a.vhost, {}).setdefault(a.kind, []).append(a.name)
    return out


def _flat(nested: Any) -> set[Address]:
    found: set[Address] = set()
    if not isinstance(nested, dict):
        return found
    for vhost, kinds in nested.items():
        if not isinstance(kinds, dict):
            continue
        for kind, names in kinds.items():
            if kind in BY_NAME and isinstance(names, list):
                found.update(Address(kind, vhost, n) for n in names if isinstance(n, str))
    return found


def encode(inventory: Inventory, generation: str) -> list[GlobalParameter]:
    """The global parameters that hold ``inventory``: the further parts first, part 0 last (write them in this
    order)."""
    owned = sorted(inventory.owned, key=lambda a: (a.vhost, a.kind, a.name))
    chunks = [owned[i : i + PART_SIZE] for i in range(0, len(owned), PART_SIZE)] or [[]]
    head = {"format": FORMAT, "stack": inventory.stack, "generation": generation, "parts": len(chunks)}
    params = [
        GlobalParameter(f"{PART_PREFIX}{inventory.stack}.{generation}.{n}", {**head, "part": n, "owned": _nest(chunk)})
        for n, chunk in enumerate(chunks)
        if n
    ]
    first = {**head, "part": 0, "owned": _nest(chunks[0]), "protected": _nest(inventory.protected)}
    return [*params, GlobalParameter(PREFIX + inventory.stack, first)]


def stale_parts(parameters: Iterable[GlobalParameter], stack: str, generation: str | None) -> list[str]:
    """The names of ``stack``'s parts of another generation than ``generation`` (``None``: all of them)."""
    return [
        p.name
        for p in parameters
        if p.name.startswith(PART_PREFIX)
        and isinstance(p.value, dict)
        and p.value.get("stack") == stack
        and p.value.get("generation") != generation
    ]


def decode(parameters: Iterable[GlobalParameter]) -> dict[str, Inventory]:
    """Every stack's inventory among ``parameters`` (the broker's global parameters), by stack. A part of
    another generation than its part 0's is ignored (an interrupted write left it); a value topo cannot read
    is ignored too (at worst the stack owns less: nothing is deleted for it)."""
    heads: dict[str, dict[str, Any]] = {}
    parts: list[dict[str, Any]] = []
    for p in parameters:
        if not isinstance(p.value, dict) or p.value.get("format") != FORMAT:
            continue
        if p.name.startswith(PREFIX) and p.value.get("stack") == p.name[len(PREFIX) :]:
            heads[p.value["stack"]] = p.value
        elif p.name.startswith(PART_PREFIX):
            parts.append(p.value)
    found: dict[str, Inventory] = {}
    for stack, head in heads.items():
        owned = _flat(head.get("owned"))
        for part in parts:
            if part.get("stack") == stack and part.get("generation") == head.get("generation"):
                owned |= _flat(part.get("owned"))
        found[stack] = Inventory(stack, frozenset(owned), frozenset(_flat(head.get("protected"))))
    return found


# -- what a vhost holds, by address --------------------------------------------------------------------------


def addresses(vhost: VHost, named: dict[Any, Address] | None = None) -> dict[Address, Any]:
    """Every resource of ``vhost`` (the vhost itself too), by address, as a plan's ``before`` holds it.
    ``named``: the addresses of bindings already written, by binding key (a binding's address is a string
    built from its parts: the other side of a plan shares most of them); filled as it goes."""
    name = vhost.name
    found: dict[Address, Any] = {Address("vhost", name): vhost}
    found.update((Address("exchange", name, n), x) for n, x in vhost.exchanges.items())
    found.update((Address("queue", name, n), q) for n, q in vhost.queues.items())
    named = {} if named is None else named
    for key, binding in vhost.bindings.items():
        address = named.get(key)
        if address is None:
            address = named[key] = binding.address(name)
        found[address] = binding
    found.update((Address("policy", name, n), p) for n, p in vhost.policies.items())
    found.update((Address("operator-policy", name, n), p) for n, p in vhost.operator_policies.items())
    found.update((Address("shovel", name, n), x) for n, x in vhost.shovels.items())
    found.update((Address("federation-upstream", name, n), x) for n, x in vhost.federation_upstreams.items())
    found.update((Address("federation-upstream-set", name, n), x) for n, x in vhost.federation_upstream_sets.items())
    return found


def _protected(vhost: VHost) -> set[Address]:
    """The addresses of what ``vhost`` marks ``protect: true``: the vhost, and any resource of it."""
    name = vhost.name
    found = {Address("vhost", name)} if vhost.protect else set()
    found.update(Address("exchange", name, n) for n, x in vhost.exchanges.items() if x.protect)
    found.update(Address("queue", name, n) for n, q in vhost.queues.items() if q.protect)
    found.update(b.address(name) for b in vhost.bindings.values() if b.protect)
    found.update(Address("policy", name, n) for n, p in vhost.policies.items() if p.protect)
    found.update(Address("operator-policy", name, n) for n, p in vhost.operator_policies.items() if p.protect)
    found.update(Address("shovel", name, n) for n, x in vhost.shovels.items() if x.protect)
    found.update(Address("federation-upstream", name, n) for n, x in vhost.federation_upstreams.items() if x.protect)
    sets = vhost.federation_upstream_sets
    found.update(Address("federation-upstream-set", name, n) for n, x in sets.items() if x.protect)
    return found


HELD = ("permission", "topic-permission")
"""The kinds a user holds per vhost that take ``protect: true``: no stack owns them (nor users), but a stack's
inventory remembers those its files protect, so that their revoke stays blocked once the files no longer give
them."""


def _protected_access(topology: Topology) -> set[Address]:
    """The addresses of the permissions and topic permissions ``topology`` marks ``protect: true``."""
    found = {p.address() for p in topology.permissions.values() if p.protect}
    found.update(t.address() for t in topology.topic_permissions.values() if t.protect)
    return found


def _held_protected(desired: Topology, mine: Inventory) -> set[tuple[str, str, str]]:
    """The permissions and topic permissions (as (vhost, kind, user)) the new inventory of stack ``mine`` marks
    protected: those the files protect, and those the old inventory marks that the files do not declare (a
    declaration without ``protect`` takes it off)."""
    found: set[tuple[str, str, str]] = {(a.vhost, a.kind, a.name) for a in _protected_access(desired)}
    for a in mine.protected:
        if a.kind in HELD:
            declared = desired.permissions if a.kind == "permission" else desired.topic_permissions
            if (a.name, a.vhost) not in declared:
                found.add((a.vhost, a.kind, a.name))
    return found


# -- a plan of a stack -------------------------------------------------------------------------------------


def _sorted(changes: list[Change], vhosts: Iterable[str]) -> list[Change]:
    """``changes`` in plan order: the broker-wide ones as they are (the stack's last), then each vhost's, kind
    by kind, each kind's in its order."""
    broker = [c for c in changes if BY_NAME[c.kind].scope == "broker" and c.kind != "stack"]
    out = broker + [c for c in changes if c.kind == "stack"]
    for vhost in vhosts:
        for kind in VHOST_KINDS:
            out += sorted((c for c in changes if c.vhost == vhost and c.kind == kind.name), key=kind.order)
    return out


def _before(address: Address, resource: Any) -> Any:
    if address.kind == "vhost":
        return {}
    return resource


Key = tuple[str, str]
"""A resource of one vhost as ``own`` compares it: (kind, name). Plain tuples: hashed and compared in C, where
a plan of 10,000 queues compares some 40,000 of them."""


def _keys(vhost: VHost, named: dict[Any, str]) -> dict[Key, Any]:
    """Every resource of ``vhost`` by :data:`Key` (``named``: binding addresses already written, by key)."""
    found: dict[Key, Any] = {("vhost", ""): vhost}
    found.update((("exchange", n), x) for n, x in vhost.exchanges.items())
    found.update((("queue", n), q) for n, q in vhost.queues.items())
    for key, binding in vhost.bindings.items():
        name = named.get(key)
        if name is None:
            name = named[key] = binding.address(vhost.name).name
        found[("binding", name)] = binding
    found.update((("policy", n), p) for n, p in vhost.policies.items())
    found.update((("operator-policy", n), p) for n, p in vhost.operator_policies.items())
    found.update((("shovel", n), x) for n, x in vhost.shovels.items())
    found.update((("federation-upstream", n), x) for n, x in vhost.federation_upstreams.items())
    found.update((("federation-upstream-set", n), x) for n, x in vhost.federation_upstream_sets.items())
    return found


def own(plan: Plan, desired: Topology, observed: Topology, options: Ownership = Ownership()) -> Plan:
    """``plan`` (made by the kinds) as stack ``desired.name`` makes it: adoption, prune, other stacks'
    resources left alone, and the change of its inventory. A topology without a name: ``plan`` as it is."""
    stack = desired.name
    if stack is None:
        return plan
    mine = observed.stacks.get(stack) or Inventory(stack)
    owner_of: dict[Address, str] = {}
    for other, inventory in sorted(observed.stacks.items()):
        if other != stack:
            owner_of.update(dict.fromkeys(inventory.owned, other))
    compared = set(plan.vhosts)
    unmanaged = {
        u.address: Unmanaged(u.address, f"owned by stack {owner_of[u.address]!r}") if u.address in owner_of else u
        for u in plan.unmanaged
    }
    kept = {k.address for k in plan.kept}
    notes: list[Unmanaged] = []
    adopted: list[Address] = []
    changes: list[Change] = []
    for change in plan.changes:
        other_stack = owner_of.get(change.address)
        if other_stack is not None and change.kind != "stack" and change.address not in mine.owned:
            if change.action == "delete":  # a binding of another stack to a declared queue or exchange
                unmanaged[change.address] = Unmanaged(change.address, f"owned by stack {other_stack!r}")
                continue
            if change.action != "create":
                blocker = Blocker(
                    "owned-by-another-stack",
                    f"belongs to stack {other_stack!r}: stack {stack!r} never changes another stack's resources",
                    f"declare it in one stack only (change it in the files of stack {other_stack!r})",
                )
                change = replace(change, blockers=(*change.blockers, blocker))
        changes.append(change)
    deleting = {c.address for c in changes if c.action == "delete"}
    mine_by_vhost: dict[str, dict[Key, Address]] = {}
    for address in mine.owned:
        mine_by_vhost.setdefault(address.vhost, {})[(address.kind, address.name)] = address
    guarded: set[tuple[str, str, str]] = {(a.vhost, a.kind, a.name) for a in mine.protected}
    # what the new inventory holds, vhost by vhost (the vhosts this plan did not compare: as they were)
    owned: dict[str, set[Key]] = {v: set(keys) for v, keys in mine_by_vhost.items() if v not in compared}
    protected: set[tuple[str, str, str]] = {t for t in guarded if t[0] not in compared and t[1] not in HELD}
    protected |= _held_protected(desired, mine)
    for vhost in plan.vhosts:
        named: dict[Any, str] = {}
        want = _keys(desired.vhosts[vhost], named)
        have = _keys(observed.vhosts[vhost], named) if vhost in observed.vhosts else {}
        mine_here = mine_by_vhost.get(vhost, {})
        declared = want.keys()
        ours = (declared & mine_here.keys()) | (declared - have.keys())  # owned already, or created now
        for kind, name in sorted(declared - ours):  # exists, not the stack's (usually none)
            address = Address(kind, vhost, name)  # type: ignore[arg-type]
            if address in owner_of:
                notes.append(Unmanaged(address, f"owned by stack {owner_of[address]!r}"))
            elif options.adopt:
                ours.add((kind, name))
                adopted.append(address)
            else:
                notes.append(Unmanaged(address, "exists, not created by the stack: --adopt takes it over"))
        protected |= {(vhost, *k) for k in _protected_keys(desired.vhosts[vhost]) & ours}
        for key in (mine_here.keys() - declared) & have.keys():  # owned, no file declares it any more
            address = mine_here[key]
            if address in kept or not options.prune:  # keep-bindings leaves it alone; or no --prune
                ours.add(key)
                protected |= {(vhost, *key)} & guarded
                if not options.prune and address not in kept and address not in deleting:
                    unmanaged[address] = Unmanaged(
                        address, f"owned by stack {stack!r}, no file declares it any more: --prune deletes it"
                    )
                continue
            unmanaged.pop(address, None)
            if address not in deleting:  # (a binding of a declared queue is deleted by its kind already)
                reason = f"owned by stack {stack!r}, no file declares it any more (--prune)"
                changes.append(Change("delete", address, before=_before(address, have[key]), reasons=(reason,)))
            if (vhost, *key) in guarded:  # deleted only once the inventory forgets it: keep it until then
                ours.add(key)
                protected.add((vhost, *key))
        owned[vhost] = ours
    same = protected == guarded and all(
        owned.get(v, set()) == mine_by_vhost.get(v, {}).keys() for v in owned.keys() | mine_by_vhost.keys()
    )
    if not same or (stack not in observed.stacks and any(owned.values())):
        after = Inventory(
            stack,
            frozenset(
                mine_by_vhost.get(v, {}).get(k) or Address(k[0], v, k[1])  # type: ignore[arg-type]
                for v, keys in owned.items()
                for k in keys
            ),
            frozenset(Address(k, v, n) for v, k, n in protected),  # type: ignore[arg-type]
        )
        if after != mine or stack not in observed.stacks:
            action: Action = "update" if stack in observed.stacks else "create"
            before = mine if stack in observed.stacks else None
            changes.append(Change(action, Address("stack", "", stack), before=before, after=after))
    return replace(
        plan,
        changes=_sorted(changes, plan.vhosts),
        unmanaged=sorted(unmanaged.values(), key=lambda u: str(u.address)),
        unowned=sorted(notes, key=lambda u: str(u.address)),
        adopted=sorted(adopted, key=str),
    )


UNKNOWN_CHANGE = "ownership not known: apply refuses this change if another stack owns the resource"
UNKNOWN_DELETE = "ownership not known: apply leaves it alone if another stack owns it"


def ownership_unknown(plan: Plan) -> Plan:
    """``plan`` (made by the kinds) for a stack whose inventory could not be read (``topo plan`` with read-only
    credentials): nothing is decided about ownership (no prune, adoption, inventory change), and each change
    whose fate depends on who owns its resource is marked, so that the plan never shows it as plainly fine:
    an update, replace or migration of an existing resource (refused when another stack owns it), the delete
    of a binding (left alone when another stack owns it). A create depends on no one's inventory, nor does the
    delete of a fence an interrupted apply left."""
    changes = []
    for change in plan.changes:
        marked = change.action != "create" and (change.action != "delete" or change.kind == "binding")
        if BY_NAME[change.kind].scope == "vhost" and marked:
            warning = UNKNOWN_DELETE if change.action == "delete" else UNKNOWN_CHANGE
            change = replace(change, warnings=(*change.warnings, warning))
        changes.append(change)
    return replace(plan, changes=changes)


def _protected_keys(vhost: VHost) -> set[Key]:
    return {(a.kind, a.name) for a in _protected(vhost)}


# -- the guards -----------------------------------------------------------------------------------------------

PROTECTED_HINT = (
    "remove `protect: true` from its declaration and apply that first (a reviewed change of its own), then plan "
    "the delete or the replacement again"
)


def protected_blocker(change: Change) -> Blocker:
    doing = "delete" if change.action == "delete" else "replace"
    return Blocker(
        "protected",
        f"is protected (`protect: true`): no plan may {doing} it, whatever the flags",
        PROTECTED_HINT,
    )


def _recreated(change: Change, replaced: set[Address]) -> bool:
    """Whether ``change`` creates again a binding that the replacement of its source or destination (one of
    ``replaced``) drops: the binding is replaced too."""
    binding = change.after
    if change.kind != "binding" or change.action != "create" or not isinstance(binding, Binding):
        return False
    vhost = change.address.vhost
    destination = Address("queue" if binding.destination_type == "queue" else "exchange", vhost, binding.destination)
    return Address("exchange", vhost, binding.source) in replaced or destination in replaced


def guard(plan: Plan, desired: Topology, inventories: Mapping[str, Inventory] | None = None) -> Plan:
    """``plan`` with every delete or replace of a protected resource blocked: ``protect: true`` in the files
    (``desired``), or in the inventory of the stack (``inventories``: a resource its files no longer declare)."""
    marked = _protected_access(desired)
    for vhost in desired.vhosts.values():
        marked |= _protected(vhost)
    if inventories is not None and desired.name is not None and desired.name in inventories:
        marked |= inventories[desired.name].protected
    if not marked:
        return plan
    replaced = {c.address for c in plan.changes if c.action == "replace" and c.kind in ("queue", "exchange")}
    held: dict[str, list[Address]] = {}  # a vhost's delete takes its permissions with it
    for address in marked:
        if address.kind in HELD:
            held.setdefault(address.vhost, []).append(address)
    changes = []
    for change in plan.changes:
        protects = change.address in marked and (
            change.action in ("delete", "replace")
            or (bool(replaced) and _recreated(change, replaced))
            or _topic_permissions_reset(change)
        )
        if protects and not any(b.code == "protected" for b in change.blockers):
            change = replace(change, blockers=(*change.blockers, protected_blocker(change)))
        if change.kind == "vhost" and change.action == "delete" and change.vhost in held:
            change = replace(change, blockers=(*change.blockers, _takes_protected(held[change.vhost])))
        changes.append(change)
    return replace(plan, changes=changes)


def _topic_permissions_reset(change: Change) -> bool:
    """Whether ``change`` deletes a user's topic permissions on a vhost and sets the others again (an exchange's
    entry removed: RabbitMQ 3.10 deletes them only all at once): they are replaced."""
    before, after = change.before, change.after
    return (
        change.kind == "topic-permission"
        and change.action == "update"
        and isinstance(before, TopicPermissions)
        and isinstance(after, TopicPermissions)
        and bool(topic_entries_removed(before, after))
    )


def _takes_protected(addresses: list[Address]) -> Blocker:
    shown = ", ".join(sorted(str(a) for a in addresses))
    return Blocker(
        "protected",
        f"deleting it revokes what is protected (`protect: true`) on it: {shown}",
        PROTECTED_HINT,
    )


def _teardown(stack: str, mine: Inventory, vhost: VHost, reason: str) -> tuple[list[Change], list[Unmanaged]]:
    """The deletes that remove what ``stack`` owns in ``vhost``: the vhost itself (with its queues listed, for
    the guards to count) when the stack owns it and it holds nothing else; otherwise each owned resource, and
    a note on the vhost, which stays (resources a stack did not create are never deleted)."""
    have = addresses(vhost)
    mine_here = {a for a in mine.owned if a.vhost == vhost.name and a in have}
    others = sorted(str(a) for a in have if a not in mine.owned and a.kind != "vhost")
    whole = Address("vhost", vhost.name) in mine_here and not others
    changes: list[Change] = []
    for address in sorted(mine_here, key=str):
        if whole and address.kind not in ("vhost", "queue") and address not in mine.protected:
            continue  # goes with its vhost (its queues and protected resources are listed: the guards see them)
        if not whole and address.kind == "vhost":
            continue
        changes.append(Change("delete", address, before=_before(address, have[address]), reasons=(reason,)))
    notes: list[Unmanaged] = []
    if Address("vhost", vhost.name) in mine_here and others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        notes.append(
            Unmanaged(
                Address("vhost", vhost.name),
                f"owned by stack {stack!r} but not deleted: it holds resources the stack did not create ({shown})",
            )
        )
    return changes, notes


def prune_undeclared_vhosts(
    plan: Plan, desired: Topology, observed: Topology, options: Ownership = Ownership()
) -> Plan:
    """``plan`` with what stack ``desired.name`` owns in vhosts its files no longer declare (``observed`` holds
    those the broker has): listed, or with ``--prune`` deleted as :func:`destroy_plan` would; the inventory's
    change updated to forget them."""
    stack = desired.name
    if stack is None or stack not in observed.stacks:
        return plan
    mine = observed.stacks[stack]
    extra = sorted({a.vhost for a in mine.owned if a.vhost} - set(desired.vhosts) & set(observed.vhosts))
    if not extra:
        return plan
    changes = [c for c in plan.changes if c.kind != "stack"]
    current = next((c for c in plan.changes if c.kind == "stack"), None)
    after = current.after if current is not None and isinstance(current.after, Inventory) else mine
    owned, protected = set(after.owned), set(after.protected)
    unmanaged = list(plan.unmanaged)
    for name in extra:
        have = addresses(observed.vhosts[name])
        gone = {a for a in mine.owned if a.vhost == name and a not in have}
        owned -= gone
        protected -= gone
        if not options.prune:
            unmanaged += [
                Unmanaged(a, f"owned by stack {stack!r}, no file declares it any more: --prune deletes it")
                for a in sorted(mine.owned, key=str)
                if a.vhost == name and a in have and a.kind in ("vhost", "exchange", "queue", "policy")
            ]
            continue
        reason = f"owned by stack {stack!r}, no file declares its vhost any more (--prune)"
        deletes, notes = _teardown(stack, mine, observed.vhosts[name], reason)
        changes += deletes
        unmanaged += notes
        kept = {a for a in mine.owned if a.vhost == name and a in mine.protected}
        owned = {a for a in owned if a.vhost != name} | kept
        if notes:  # the vhost stays: still the stack's
            owned.add(Address("vhost", name))
    new = Inventory(stack, frozenset(owned), frozenset(protected & owned | {a for a in protected if a.kind in HELD}))
    if new != mine:
        before = mine
        changes.append(Change("update", Address("stack", "", stack), before=before, after=new))
    vhosts = tuple(sorted({*plan.vhosts, *(c.vhost for c in changes if c.vhost)}))
    result = replace(plan, changes=_sorted(changes, vhosts), unmanaged=sorted(unmanaged, key=lambda u: str(u.address)))
    return guard(result, desired, observed.stacks)


def destroy_plan(stack: str, observed: Topology) -> Plan:
    """The plan of ``topo destroy``: delete every resource stack ``stack`` owns that the broker has (a vhost
    it owns with everything in it, when it holds nothing the stack did not create), then its inventory;
    protected ones blocked."""
    mine = observed.stacks.get(stack)
    if mine is None:
        return Plan()
    changes: list[Change] = []
    notes: list[Unmanaged] = []
    for name in sorted({a.vhost for a in mine.owned if a.vhost}):
        vhost = observed.vhosts.get(name)
        if vhost is not None:
            deletes, noted = _teardown(stack, mine, vhost, f"owned by stack {stack!r} (topo destroy)")
            changes += deletes
            notes += noted
    changes.append(Change("delete", Address("stack", "", stack), before=mine, reasons=("the inventory itself",)))
    vhosts = tuple(sorted({c.vhost for c in changes if c.vhost}))
    plan = Plan(changes=_sorted(changes, vhosts), vhosts=vhosts, unmanaged=notes)
    return guard(plan, Topology(name=stack), {stack: mine})
