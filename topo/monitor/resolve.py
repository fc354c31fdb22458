"""Each declared queue's effective checks: the layers of ``monitor:`` blocks, the queue's role, its
length limits and where its dead letters go. Pure: a :class:`~topo.model.Topology` in, values out.

**Layers.** For each check, the built-in default (:data:`~topo.monitor.spec.BUILTIN`) is overridden by
the topology-wide block, then the vhost's, then the queue's own. ``off`` switches the check off; ``on``
switches it back on with the levels inherited (the built-in ones where nothing above has levels); a
mapping sets the levels it names and keeps the inherited others (none, when the check was off).

**Roles.** Some queues are not meant to be consumed, and the defaults leave them alone:

* a generated retry queue (``<queue>.retry.N``, from ``retry:``): no consumer check and no
  dead-letter-rate (its messages all go back to their queue: that is its job);
* a *dead-letter queue*: a queue with at least one binding, every binding of which comes from an exchange
  that some declared queue uses as its dead-letter exchange, and that some queue's dead letters reach.
  It gets no consumer check unless its own block asks for one. A queue that receives dead letters
  through the default exchange (``dead-letter-exchange: ""``) is not taken for one: publishers may use
  the default exchange too.

**What must exist for a check to mean something.** A percentage depth needs a length limit
(``max-length``/``max-length-bytes`` from the queue's arguments, its policy or its operator policy:
the lowest applies, as RabbitMQ does; a stream's limits are retention, not capacity); a percentage
publish rate needs ``capacity``; a dead-letter rate needs dead letters that reach dead-letter queues
only (the measure is what those queues receive); a message age needs a classic queue (RabbitMQ 3.10
reports ``head_message_timestamp`` for classic queues only). A default that cannot apply is left out
(with a note); a check the queue's own block sets that cannot apply is kept with its ``problem``
(``topo status`` reports it UNKNOWN, ``topo lint`` flags it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from topo.model import Origin, Queue, Topology, VHost
from topo.monitor.spec import BUILTIN, CHECKS, CheckName, CheckSetting, MonitorBlock, Threshold
from topo.routing import applied_policy, dead_letter_target

__all__ = [
    "Check",
    "Expectation",
    "Limit",
    "Role",
    "VHostExpectations",
    "dead_letter_roles",
    "length_limits",
    "resolve",
    "resolve_vhost",
]

Role = Literal["queue", "dead-letter", "retry"]
LimitKey = Literal["max-length", "max-length-bytes"]


@dataclass(frozen=True, slots=True)
class Limit:
    """A length limit in force on a queue: the lowest of its argument, its policy's and its operator
    policy's values, with where it comes from."""

    key: LimitKey
    value: int
    source: str  # "argument", "policy 'cap'", "operator policy 'safety'"


@dataclass(frozen=True, slots=True)
class Check:
    """One check in force on one queue."""

    name: CheckName
    warning: Threshold | None
    critical: Threshold | None
    capacity: float | None = None  # publish-rate: what 100% is, in messages per second
    own: bool = False  # set by the queue's own block (not inherited)
    problem: str | None = None  # why it cannot be measured on this queue (then the state is UNKNOWN)

    def level(self, name: str) -> Threshold | None:
        return self.warning if name == "warning" else self.critical


@dataclass(frozen=True, slots=True)
class Expectation:
    """What one declared queue is expected to look like."""

    vhost: str
    queue: str
    queue_type: str
    role: Role
    checks: tuple[Check, ...]
    limits: tuple[Limit, ...] = ()
    dead_letter_queues: tuple[str, ...] = ()  # the dead-letter queues its dead letters reach
    origin: Origin | None = field(default=None, compare=False)
    notes: tuple[str, ...] = ()  # defaults left out, and why

    def check(self, name: CheckName) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)


# -- facts about a queue ---------------------------------------------------------------------------------


def length_limits(vhost: VHost, queue: Queue) -> tuple[Limit, ...]:
    """The length limits in force on ``queue``: for each of max-length and max-length-bytes, the lowest of
    the queue argument, the policy's and the operator policy's value. None for a stream (its limits are
    retention: a stream is never "full")."""
    if queue.type == "stream":
        return ()
    policy = applied_policy(vhost, "queue", queue.name, queue.type)
    operator = applied_policy(vhost, "queue", queue.name, queue.type, operator=True)
    limits = []
    for key in ("max-length", "max-length-bytes"):
        found: list[tuple[int, str]] = []
        value = queue.arguments.get("x-" + key)
        if isinstance(value, int) and not isinstance(value, bool):
            found.append((value, "argument"))
        for source, label in ((policy, "policy"), (operator, "operator policy")):
            value = source.definition.get(key) if source is not None else None
            if isinstance(value, int) and not isinstance(value, bool) and source is not None:
                found.append((value, f"{label} '{source.name}'"))
        if found:
            value, origin = min(found, key=lambda item: item[0])
            limits.append(Limit(key, value, origin))
    return tuple(limits)


def _retry_origin(vhost: VHost, name: str) -> str | None:
    """The queue whose ``retry:`` generated the queue ``name``, if it is one."""
    queue = vhost.queues.get(name)
    return queue.generated_by if queue is not None else None


def dead_letter_roles(vhost: VHost) -> tuple[dict[str, set[str]], set[str]]:
    """(queue -> the declared queues its dead letters reach, the vhost's dead-letter queues)."""
    from topo.lint.core import Context  # the routing of dead letters is lint's (dead_letter_edges)
    from topo.lint.rules.dead_letters import dead_letter_edges

    edges = dead_letter_edges(Context(vhost))
    retry = {name for name in vhost.queues if _retry_origin(vhost, name) is not None}
    reached: set[str] = set()
    for source, targets in edges.items():
        if source not in retry:
            reached |= targets
    named = (dead_letter_target(vhost, queue)[0] for queue in vhost.queues.values())
    dead_letter_exchanges = {dlx for dlx in named if dlx}  # not the default exchange, not None
    bound: dict[str, list[str]] = {}
    for binding in vhost.bindings.values():
        if binding.destination_type == "queue":
            bound.setdefault(binding.destination, []).append(binding.source)
    dead = {
        name for name in reached if bound.get(name) and all(source in dead_letter_exchanges for source in bound[name])
    }
    return edges, dead


# -- layers ----------------------------------------------------------------------------------------------


def _layered(
    check: CheckName, blocks: Iterable[tuple[MonitorBlock | None, bool]], role_off: bool = False
) -> tuple[CheckSetting, bool]:
    """The check's setting after every layer, and whether the queue's own block named it. With
    ``role_off`` the queue's role switches the check off just before its own block."""
    state = BUILTIN[check]
    own = False
    for block, is_own in blocks:
        if is_own and role_off:
            state = CheckSetting(off=True)
        setting = block.checks.get(check) if block is not None else None
        if setting is None:
            continue
        own = is_own
        if setting.off:
            state = CheckSetting(off=True)
        elif setting.on:
            state = state if not state.off else BUILTIN[check]
        else:
            base = state if not state.off else CheckSetting()
            state = CheckSetting(
                warning=setting.warning or base.warning,
                critical=setting.critical or base.critical,
                capacity=setting.capacity if setting.capacity is not None else base.capacity,
            )
    return state, own


def _applicable(
    check: CheckName,
    setting: CheckSetting,
    queue: Queue,
    limits: tuple[Limit, ...],
    dead_letter_queues: tuple[str, ...],
    unmeasurable_dead_letters: str | None,
) -> str | None:
    """Why the check cannot be measured on this queue (None when it can)."""
    relative = any(t is not None and t.relative for t in (setting.warning, setting.critical))
    if check == "depth" and relative and not limits:
        if queue.type == "stream":
            return "a stream has no length limit to fill (its max-length-bytes is retention)"
        return "no max-length or max-length-bytes applies to it (argument, policy or operator policy)"
    if check == "publish-rate" and relative and setting.capacity is None:
        return "percentages of the publish rate need `capacity:` (messages per second)"
    if check == "dead-letter-rate":
        if queue.type == "stream":
            return "a stream never dead-letters"
        return unmeasurable_dead_letters
    if check == "message-age" and queue.type != "classic":
        return f"RabbitMQ 3.10 reports no head message timestamp for a {queue.type} queue"
    return None


def _dead_letter_problem(targets: set[str] | None, dead: set[str]) -> str | None:
    if not targets:
        return "its dead letters reach no declared queue (no dead-letter exchange, or it routes nowhere)"
    others = sorted(targets - dead)
    if others:
        return (
            f"its dead letters reach {', '.join(repr(o) for o in others)}, which other messages reach too, so "
            "what reaches it from dead-lettering cannot be told apart"
        )
    return None


@dataclass(frozen=True, slots=True)
class VHostExpectations:
    """The expectations of a vhost's queues, and which queues feed each dead-letter queue."""

    vhost: str
    queues: tuple[Expectation, ...]
    dead_letter_sources: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """dead-letter queue -> every declared queue whose dead letters reach it: the dead-letter rate of any
    of them is what the dead-letter queue received over what all of them were published"""


def resolve_vhost(vhost: VHost, topology_block: MonitorBlock | None = None) -> VHostExpectations:
    """The expectations of every queue of ``vhost``, in name order."""
    edges, dead = dead_letter_roles(vhost)
    out = []
    for name in sorted(vhost.queues):
        queue = vhost.queues[name]
        role: Role = "retry" if _retry_origin(vhost, name) else "dead-letter" if name in dead else "queue"
        limits = length_limits(vhost, queue)
        targets = edges.get(name)
        dead_letter_queues = tuple(sorted(targets)) if targets and targets <= dead else ()
        dl_problem = _dead_letter_problem(targets, dead)
        blocks = ((topology_block, False), (vhost.monitor, False), (queue.monitor, True))
        checks: list[Check] = []
        notes: list[str] = []
        for check in CHECKS:
            if role == "retry" and check in ("consumers", "dead-letter-rate"):
                continue  # a retry queue is never consumed and dead-letters everything back, by design
            parked = role == "dead-letter" and check == "consumers"
            setting, own = _layered(check, blocks, role_off=parked)
            if setting.off:
                if parked and not own:
                    notes.append("consumers: not checked on a dead-letter queue (set it on the queue to check it)")
                continue
            problem = _applicable(check, setting, queue, limits, dead_letter_queues, dl_problem)
            if problem is not None and not own:
                notes.append(f"{check}: not checked: {problem}")
                continue
            checks.append(Check(check, setting.warning, setting.critical, setting.capacity, own, problem))
        out.append(
            Expectation(
                vhost=vhost.name,
                queue=name,
                queue_type=queue.type,
                role=role,
                checks=tuple(checks),
                limits=limits,
                dead_letter_queues=dead_letter_queues,
                origin=queue.origin,
                notes=tuple(notes),
            )
        )
    sources: dict[str, set[str]] = {}
    for source, targets in edges.items():
        for target in targets & dead:
            sources.setdefault(target, set()).add(source)
    return VHostExpectations(vhost.name, tuple(out), {k: tuple(sorted(v)) for k, v in sorted(sources.items())})


def resolve(topology: Topology) -> dict[str, VHostExpectations]:
    """Every declared queue's expectations, by vhost (vhosts and queues in name order)."""
    return {name: resolve_vhost(topology.vhosts[name], topology.monitor) for name in sorted(topology.vhosts)}
