"""Executing a plan against the broker: the phases of :data:`topo.broker.phases.PHASES`, in order.

Order (the phases say it as data): the refusals no count changes (a changed default queue type, a change
that would lock topo out, a permission on a vhost that exists nowhere); fences an interrupted apply left (see
below); the safety check; vhosts (and their limits and settings); users, then their permissions and topic
permissions; policy deletions; binding deletions (in reverse); the queues to drop (replacements; deletions
later), as :mod:`topo.broker.drop` says; exchanges to replace; then every exchange, queue and binding to
create in one ``POST /api/definitions/{vhost}`` per vhost (the broker's own bulk path; only creates go
there, since an import silently keeps an existing queue's arguments); then policies and operator policies;
last, revoked topic permissions and permissions, deleted users, and global parameters (a new
``cluster_name`` must not change the name apply's AMQP counts check while queues are dropped). Each vhost's
bindings are read once (``GET /api/bindings/{vhost}``) for the binding deletions and the cuts. How each
change is made is its executor's (:mod:`topo.broker.executors`).

Never lose a message: apply first counts every queue it would drop and refuses, before writing
anything, a plan the safety rule (:mod:`topo.plan.safety`) blocks. Then, for the queues of a vhost:

1. every binding to the queue is deleted: routed publishes become unroutable (returned to a ``mandatory``
   publisher, dropped otherwise, as for any queue that is not there);
2. a quorum queue is fenced (a policy ``topo.fence.<queue>``: ``max-length: 0``, ``overflow:
   reject-publish``): the broker refuses (nacks) what is published to it by name through the default
   exchange, checked with two probe messages; a classic queue's delete carries ``if-empty`` and
   ``if-unused``, so the broker refuses it atomically if anything arrived;
3. each queue is counted exactly (AMQP passive declare); if anything arrived, apply stops, puts back the
   bindings and fences, and raises :class:`~topo.errors.UnsafeChange` saying what arrived where;
4. otherwise the queues are deleted, each fence removed right after its queue (before the new queue is
   declared): a quorum queue over AMQP, counted once more just before (a change stops apply as in 3);
   if its ``Queue.DeleteOk`` counts more than apply's probe, the rest of the apply is made and then
   :class:`~topo.errors.MessagesLost` raised, saying what was dropped where. Streams are never dropped.

A failure part-way raises :class:`~topo.errors.ApplyFailed`; what was done stays done, and the next
apply converges from there (every step is idempotent on a re-plan). A fence left by an apply killed
half-way shows in the next plan as a policy to delete, and apply removes it before anything else.
"""

from __future__ import annotations

from typing import NoReturn

from topo.broker.drop import Miscount, lost
from topo.broker.executors import Progress, Run
from topo.broker.phases import PHASES
from topo.broker.port import Broker
from topo.errors import ApplyFailed, BrokerError, TopoError, UnsafeChange
from topo.plan.model import Plan
from topo.plan.safety import dropped_queues

__all__ = ["Progress", "execute"]


def execute(
    broker: Broker,
    plan: Plan,
    progress: Progress | None = None,
    *,
    recount: bool = True,
    notes: list[str] | None = None,
    migrate_wait: float = 60.0,
    stats_interval: float | None = None,
) -> None:
    """Apply every change of ``plan``. Raises UnsafeChange before writing anything if the safety rule
    blocks the plan (counting afresh; with ``recount=False`` the plan's own counts, for a plan made an
    instant ago), UnsafeChange (after putting back what it cut) if a queue got messages while apply was
    dropping it, and ApplyFailed if a write fails part-way. MessagesLost, once every change is made (or
    with the reason apply stopped), if RabbitMQ deleted a quorum queue with messages that arrived after
    apply's last count (its ``Queue.DeleteOk`` says so): never silently. ``notes`` gets what the user should
    hear once it is done (each migration's figures), as the changes are made: also when a later one fails.
    ``migrate_wait``: how many seconds a migration waits for the old queue's consumers to settle what they
    hold (:mod:`topo.broker.migrate`); ``stats_interval``: the broker's ``collect_statistics_interval`` in
    seconds, when not RabbitMQ's default."""
    if plan.empty:
        return
    migrates = any(c.action == "migrate" for c in plan.changes)
    cluster = broker.overview().cluster_name if dropped_queues(plan) or migrates else None
    lag = None if stats_interval is None else 2 * stats_interval
    run = Run(
        broker,
        plan,
        progress,
        cluster=cluster,
        recount=recount,
        notes=[] if notes is None else notes,
        migrate_wait=migrate_wait,
        stats_lag=lag,
    )
    phase = PHASES[0]
    try:
        for phase in PHASES:
            phase.run(run, phase.changes(plan))
    except UnsafeChange as exc:
        if phase.preflight:
            raise
        if run.dropped:  # a classic queue refused its delete after others went: say which are missing
            gone = [what for _vhost, what in run.dropped]
            exc.message += f" (deleted for replacement, not declared again yet: {_summary(gone)})"
            exc.details += tuple(f"deleted for replacement, not declared again yet: {what}" for what in gone)
            exc.args = (exc.message,)
        _raise_with(exc, run.miscounts)
    except BrokerError as exc:
        if phase.preflight:
            raise
        if isinstance(exc, ApplyFailed):
            _raise_with(exc, run.miscounts)
        total = len(plan.changes)
        gone = [what for _vhost, what in run.dropped]
        listed = f" (deleted for replacement, not declared again yet: {_summary(gone)})" if gone else ""
        failed = ApplyFailed(
            f"apply stopped after {run.done} of {total} changes{listed}: {exc.message}",
            hint=(exc.hint + "; " if exc.hint else "")
            + "what was applied stays applied: fix the cause and run `topo apply` again to converge",
            status=exc.status,
            not_declared=gone,
        )
        failed.__cause__ = exc
        _raise_with(failed, run.miscounts)
    if run.miscounts:
        raise lost(run.miscounts)


def _raise_with(exc: TopoError, miscounts: list[Miscount]) -> NoReturn:
    """Raise ``exc``; or, when a quorum queue's delete took messages before it, MessagesLost saying both."""
    if miscounts:
        raise lost(miscounts, stopped=exc) from exc
    raise exc


def _summary(items: list[str], limit: int = 5) -> str:
    """The first ``limit`` of ``items`` and how many more (the next plan lists them all)."""
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more: `topo plan` lists them all" if len(items) > limit else "")
