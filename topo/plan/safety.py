"""The safety rule, in one place: what apply refuses, decided from the counts of the queues it would drop,
and from what no count changes.

Pure: :func:`blockers` looks at one change and its :class:`~topo.plan.model.QueueUsage`; the plan shows
the result (every format, and ``plan --detailed-exitcode`` exits 3), and apply raises
:func:`refusal` from the same blockers, counted again, so both say the same words.

Other blockers are decided by the kinds when they compare, and no count changes them (:func:`standing`): a
changed ``default-queue-type`` (RabbitMQ keeps the one a vhost was created with), a change that would lock
topo out (the user it connects as deleted, demoted, or given another password), a permission on a vhost
that exists nowhere. The plan shows them as blocked, and apply refuses them first, before any write (the
repair of fences included), in the same words (:func:`standing_refusal`).

A queue may be dropped (replaced or deleted) only when it is empty and unused:

- it holds no message (ready, or unacknowledged by a consumer);
- no consumer reads it (RabbitMQ refuses to delete a classic queue in use, and a consumer's messages
  would go with it);
- it is not a stream (RabbitMQ answers 0 for a stream's messages over AMQP: no exact count exists);
- its count is exact (AMQP answered) unless it is a classic queue, whose delete carries ``if-empty``, so
  the broker itself refuses one that filled up since the lagging statistics were read. Where it is not,
  the words say why, as the count does (``QueueUsage.why_inexact``: AMQP refused the user, did not
  answer, ...).

This module also names the *fence* apply puts on a quorum queue while it drops it (a policy that makes
the broker refuse new messages to that queue, see :mod:`topo.broker.drop`): its name, pattern and
definition, and how a plan recognises one that an interrupted apply left behind.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from topo.errors import UnsafeChange
from topo.model import Policy, Queue
from topo.plan.model import Blocker, Change, Plan, QueueUsage

__all__ = [
    "ALLOWED_BY_FLAG",
    "COUNT_CODES",
    "FENCE_DEFINITION",
    "FENCE_PREFIX",
    "FENCE_RELAXED",
    "annotate",
    "blockers",
    "count_warnings",
    "data_loss_allowed",
    "dropped_queues",
    "fence_policy",
    "fenced_queue",
    "leftover_fences",
    "listing",
    "refusal",
    "refused_as_planned",
    "standing",
    "standing_refusal",
]

STATISTICS = "the Management API's statistics, which lag up to ~5 s"
_MESSAGES_HINT = (
    "drain the queue first (or move its messages); apply never drops a queue that holds messages unless "
    "--allow-data-loss says it may"
)
_CONSUMERS_HINT = "stop its consumers first: RabbitMQ refuses to delete a queue in use"
_STREAM_HINT = (
    "delete the stream yourself once its messages may go, then apply; x-max-age and x-max-length-bytes "
    "can also change through a policy, without replacing the stream"
)
_AMQP_HINT = (
    "topo counts over AMQP: give --amqp-url (or $TOPO_AMQP_URL) of this broker, with a user AMQP lets into "
    "the vhost. The Management API's statistics lag up to ~5 s, and RabbitMQ cannot refuse to delete a "
    "non-empty quorum queue (it has no if-empty), so messages published meanwhile would be lost"
)
_NO_ANSWER = "AMQP did not answer for this broker"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def listing(items: Sequence[str], limit: int = 5) -> str:
    """``items`` joined by "; ", the first ``limit`` of them and "and N more" for the rest."""
    shown = "; ".join(items[:limit])
    return shown + (f"; and {len(items) - limit} more" if len(items) > limit else "")


def _queue_type(change: Change) -> str:
    return change.before.type if isinstance(change.before, Queue) else "classic"


def dropped_queues(plan: Plan) -> list[Change]:
    """The changes that delete a queue (a replace or a delete)."""
    return [c for c in plan.changes if c.kind == "queue" and c.action in ("replace", "delete")]


def blockers(change: Change, usage: QueueUsage | None, *, fenced: bool = False) -> tuple[Blocker, ...]:
    """Why apply would refuse to drop the queue of ``change``, counted as ``usage`` (``None``: the queue
    does not exist, nothing to drop). Empty for a change that drops no queue. ``fenced``: an interrupted
    apply left a fence (and maybe its probe messages) on the queue."""
    if change.kind != "queue" or change.action not in ("replace", "delete") or usage is None:
        return ()
    doing = "replacing" if change.action == "replace" else "deleting"
    queue_type = _queue_type(change)
    found: list[Blocker] = []
    if usage.messages:
        if not usage.exact:
            source = f" (counted from {STATISTICS})"
        elif usage.unacked:
            source = (
                f" ({usage.ready} ready, {usage.unacked} unacknowledged; the unacknowledged figure comes from "
                f"{STATISTICS})"
            )
        else:
            source = ""
        them = "it" if usage.messages == 1 else "them"
        probes = (
            " (an interrupted apply left a fence on it, and may have left its probe messages, which the count "
            "includes: apply takes them back first, then counts again)"
            if fenced
            else ""
        )
        found.append(
            Blocker(
                "messages",
                f"holds {_plural(usage.messages, 'message')}{source}: {doing} it would drop {them}{probes}",
                _MESSAGES_HINT
                + (
                    "; or run `topo apply --migrate`: it moves them into the new queue"
                    if change.action == "replace" and queue_type != "stream"
                    else ""
                ),
            )
        )
    if usage.consumers:
        source = "" if usage.exact else f" (counted from {STATISTICS})"
        found.append(
            Blocker(
                "consumers",
                f"has {_plural(usage.consumers, 'consumer')}{source}: RabbitMQ refuses to delete a queue in use",
                _CONSUMERS_HINT,
            )
        )
    if queue_type == "stream":
        found.append(
            Blocker(
                "uncountable-stream",
                "is a stream, whose messages cannot be counted exactly (over AMQP RabbitMQ answers 0 for a "
                "stream, and the statistics lag): apply never drops one",
                _STREAM_HINT,
            )
        )
    elif not usage.exact and queue_type != "classic":
        found.append(
            Blocker(
                "inexact-count",
                f"has no exact message count ({usage.why_inexact or _NO_ANSWER}), and RabbitMQ cannot refuse to "
                f"delete a non-empty {queue_type} queue",
                _AMQP_HINT,
            )
        )
    return tuple(found)


def count_warnings(change: Change, usage: QueueUsage | None) -> tuple[str, ...]:
    """What a plan says of a count that does not block the change but is not exact."""
    if usage is None or usage.exact or _queue_type(change) != "classic" or change.kind != "queue":
        return ()
    return (
        f"its count comes from {STATISTICS}: {usage.why_inexact or _NO_ANSWER} (see --amqp-url); the broker's "
        "own if-empty guard still refuses to delete it if messages arrived meanwhile",
    )


def leftover_fences(plan: Plan) -> list[tuple[Change, str]]:
    """The plan's deletions of fences an interrupted apply left, each with the queue it fences."""
    found = []
    for change in plan.changes:
        if change.kind == "policy" and change.action == "delete" and isinstance(change.before, Policy):
            queue = fenced_queue(change.before)
            if queue is not None:
                found.append((change, queue))
    return found


COUNT_CODES = frozenset({"messages", "consumers", "uncountable-stream", "inexact-count"})
"""The blockers a count decides (counted again, they are decided again); others (``protected``, ...) stay."""
ALLOWED_BY_FLAG = frozenset({"messages", "inexact-count"})
"""The blockers ``--allow-data-loss`` lifts: the plan then names each queue and its count, as a warning."""


def data_loss_allowed(change: Change) -> bool:
    """Whether ``change`` drops a queue that holds (or may hold) messages because ``--allow-data-loss`` says so."""
    return any(w.startswith(_ALLOWED_LEAD) for w in change.warnings)


_ALLOWED_LEAD = "data loss allowed (--allow-data-loss): "


def _allowed(change: Change, found: tuple[Blocker, ...]) -> tuple[tuple[Blocker, ...], tuple[str, ...]]:
    """``found`` without what --allow-data-loss lifts, and the warnings that say what it lifted (loud)."""
    lifted = [b for b in found if b.code in ALLOWED_BY_FLAG]
    if not lifted:
        return found, ()
    words = "; ".join(b.message for b in lifted)
    return tuple(b for b in found if b.code not in ALLOWED_BY_FLAG), (_ALLOWED_LEAD + words,)


def annotate(plan: Plan, usage: Mapping[tuple[str, str], QueueUsage]) -> Plan:
    """``plan`` with each dropped queue's count, warnings and blockers (``usage`` by (vhost, queue)). With
    ``plan.allow_data_loss``, what that flag lifts is a warning naming the queue's count instead of a blocker."""
    doomed = {id(c) for c in dropped_queues(plan)}
    fenced = {(change.vhost, queue) for change, queue in leftover_fences(plan)}
    changes = []
    for change in plan.changes:
        if id(change) in doomed:
            counted = usage.get((change.vhost, change.address.name))
            found = blockers(change, counted, fenced=(change.vhost, change.address.name) in fenced)
            lifted: tuple[str, ...] = ()
            if plan.allow_data_loss:
                found, lifted = _allowed(change, found)
            kept = tuple(b for b in change.blockers if b.code not in COUNT_CODES)
            warnings = tuple(w for w in change.warnings if not w.startswith(_ALLOWED_LEAD))
            change = replace(
                change,
                usage=counted,
                messages=counted.messages if counted is not None else 0,
                warnings=warnings + count_warnings(change, counted) + lifted,
                blockers=kept + found,
            )
        changes.append(change)
    return replace(plan, changes=changes)


def _where(change: Change) -> str:
    if change.kind == "queue":
        return f"queue {change.address.name!r} in vhost {change.vhost!r}"
    return f"{change.kind} {change.address}:"


def refusal(blocked: Iterable[Change]) -> UnsafeChange:
    """The error apply raises for ``blocked`` changes: each blocker in the words the plan shows."""
    changes = list(blocked)
    items = [f"{_where(c)} {b.message}" for c in changes for b in c.blockers]
    # each part once: the blockers of several queues share most of their hints
    hints = list(dict.fromkeys(part for c in changes for b in c.blockers for part in b.hint.split("; ")))
    more = "; `topo plan` lists every one" if len(items) > 5 else ""
    if all(c.kind == "queue" for c in changes):
        what = "a queue" if len(changes) == 1 else f"{len(changes)} queues"
        head = f"refusing to replace or delete {what} that apply cannot drop safely"
    else:  # a blocker that no count changes (a vhost setting, the user topo connects as, ...)
        what = "a change" if len(changes) == 1 else f"{len(changes)} changes"
        head = f"refusing {what} that apply cannot make"
    return UnsafeChange(f"{head}: {listing(items)}{more}", hint="; ".join(hints), details=tuple(items))


def standing(plan: Plan) -> list[Change]:
    """The blocked changes of ``plan`` whose blockers no count changes: every one but a dropped queue's
    counted ones (a protected queue is refused first, as any protected resource)."""
    counted = {id(c) for c in dropped_queues(plan)}
    return [
        c for c in plan.blocked_changes if id(c) not in counted or any(b.code not in COUNT_CODES for b in c.blockers)
    ]


def standing_refusal(plan: Plan) -> UnsafeChange | None:
    """What apply refuses of ``plan`` before anything else, whatever the counts (``None``: nothing)."""
    found = standing(plan)
    return refusal(found) if found else None


def refused_as_planned(plan: Plan) -> UnsafeChange | None:
    """What apply refuses of ``plan`` as it stands, without counting again (``None``: nothing): its blocked
    changes; but the queues' counts only when no interrupted apply left fences, which apply repairs first
    and then counts again (the probes a fence left are in the plan's counts). The CLI refuses so before it
    asks, the writer before it writes a plan made an instant ago."""
    if leftover_fences(plan):
        return standing_refusal(plan)
    if plan.blocked:
        return refusal(plan.blocked_changes)
    return None


# -- the fence of a quorum queue being dropped ----------------------------------------------------------

FENCE_PREFIX = "topo.fence."
"""Fence policies are named ``topo.fence.<queue>``."""
FENCE_DEFINITION: Mapping[str, object] = {"max-length": 0, "overflow": "reject-publish"}
"""A quorum queue takes ``overflow`` from a policy before its own argument, and the lower ``max-length``
of the two: with this definition the broker refuses (nacks) new messages to the queue."""


FENCE_RELAXED: Mapping[str, object] = {"max-length": 2_147_483_647, "overflow": "reject-publish"}
"""What a fence becomes for an instant before it is removed from a queue that stays: publishers the fence
refused are only told to publish again when the queue falls below its limit (RabbitMQ 3.10's quorum queues),
and removing the policy alone never tells them."""


def _fence_pattern(queue: str) -> str:
    # RabbitMQ matches policy patterns with PCRE: a backslash before an ASCII character that is not a
    # letter or digit makes it a literal, and \z (not $, which also matches before a final newline) ends
    # the name exactly.
    escaped = "".join("\\" + ch if ord(ch) < 128 and not (ch.isalnum() or ch == "_") else ch for ch in queue)
    return "^" + escaped + r"\z"


def fence_policy(queue: str, priority: int) -> Policy:
    """The fence of ``queue``: a policy on exactly that queue, above ``priority``-1 (every other policy)."""
    return Policy(
        name=FENCE_PREFIX + queue,
        pattern=_fence_pattern(queue),
        apply_to="queues",
        priority=priority,
        definition=dict(FENCE_DEFINITION),
    )


def fenced_queue(policy: Policy) -> str | None:
    """The queue ``policy`` fences, when it is a fence apply put (name, pattern and definition all fit)."""
    if not policy.name.startswith(FENCE_PREFIX):
        return None
    queue = policy.name[len(FENCE_PREFIX) :]
    if policy.pattern != _fence_pattern(queue):
        return None
    if dict(policy.definition) not in (dict(FENCE_DEFINITION), dict(FENCE_RELAXED)):
        return None
    return queue
