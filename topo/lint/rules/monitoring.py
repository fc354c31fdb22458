"""TL6xx: ``monitor:`` expectations that cannot mean what they say."""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from topo.lint.core import Context, Draft, rule
from topo.monitor.resolve import Check, Expectation, VHostExpectations, resolve_vhost
from topo.monitor.spec import MAXIMUM_CHECKS, Threshold

__all__: list[str] = []


def _expectations(ctx: Context) -> VHostExpectations:
    cached = ctx.cache.get("monitor")
    if cached is None:
        cached = resolve_vhost(ctx.vhost, ctx.topology.monitor if ctx.topology is not None else None)
        ctx.cache["monitor"] = cached
    return cast(VHostExpectations, cached)


def _own_problems(ctx: Context, kinds: tuple[str, ...]) -> Iterator[tuple[Expectation, Check]]:
    for expectation in _expectations(ctx).queues:
        for check in expectation.checks:
            if check.own and check.problem is not None and check.name in kinds:
                yield expectation, check


@rule("TL601", "monitor-share-of-nothing", "error")
def monitor_share_of_nothing(ctx: Context) -> Iterator[Draft]:
    """A queue's `monitor:` gives a percentage of something the queue does not have.

    **Risk.** `depth: {warning: 80%}` is a share of the queue's length limit (`max-length` or
    `max-length-bytes`, from its arguments, its policy or its operator policy), and a percentage
    `publish-rate` a share of its `capacity:`. Without them the check has nothing to compare with:
    `topo status` can only answer UNKNOWN, and `topo alerts` writes no rule, so the queue you meant to
    watch is not watched. A stream has no capacity either: its `max-length-bytes` is retention.

    **Fix.** Give the queue a length limit (or `capacity:` to the publish rate), or write the level as
    a number: `depth: {warning: 10000, critical: 50000}` messages.
    """
    for expectation, check in _own_problems(ctx, ("depth", "publish-rate")):
        queue = ctx.vhost.queues[expectation.queue]
        yield ctx.finding(queue, f"queue '{queue.name}': {check.name} in percent, but {check.problem}")


@rule("TL602", "monitor-levels-inverted", "error")
def monitor_levels_inverted(ctx: Context) -> Iterator[Draft]:
    """A check's warning level is beyond its critical level.

    **Risk.** The state goes to CRITICAL before it ever goes to WARNING (for `consumers`, whose levels
    are minimums: WARNING below `warning`, CRITICAL below `critical`, the warning level must be the
    higher one), so the early warning the levels were written for never comes. The levels of a queue
    come from its own block, its vhost's, the topology-wide block and the defaults: one layer can
    invert what another set.

    **Fix.** Swap the levels, or set both in the same block.
    """
    for expectation in _expectations(ctx).queues:
        for check in expectation.checks:
            pair = _comparable(expectation, check)
            if pair is None:
                continue
            warning, critical = pair
            maximum = check.name in MAXIMUM_CHECKS
            if (warning > critical) if maximum else (warning < critical):
                queue = ctx.vhost.queues[expectation.queue]
                word = "above" if maximum else "below"
                yield ctx.finding(
                    queue,
                    f"queue '{queue.name}': {check.name} warning level {check.warning} is {word} its critical level "
                    f"{check.critical}: the state goes CRITICAL without warning first",
                )


def _comparable(expectation: Expectation, check: Check) -> tuple[float, float] | None:
    """The two levels in one unit, when both are set and can be compared."""
    if check.warning is None or check.critical is None:
        return None

    def absolute(level: Threshold) -> float | None:
        if not level.relative or check.name == "dead-letter-rate":
            return level.value
        if check.name == "publish-rate":
            return level.value * check.capacity if check.capacity is not None else None
        limit = next((x.value for x in expectation.limits if x.key == "max-length"), None)
        return level.value * limit if limit is not None else None

    if check.warning.relative == check.critical.relative:
        return check.warning.value, check.critical.value
    warning, critical = absolute(check.warning), absolute(check.critical)
    return (warning, critical) if warning is not None and critical is not None else None


@rule("TL603", "monitor-unmeasurable", "warning")
def monitor_unmeasurable(ctx: Context) -> Iterator[Draft]:
    """A queue's `monitor:` sets a check that cannot be measured on it.

    **Risk.** The dead-letter rate is what the queue's dead-letter queues receive over what the queue
    was published: it needs a dead-letter exchange that routes its dead letters to queues that receive
    nothing else (a queue that publishers also reach, through the default exchange or another
    binding, mixes both). The message age comes from the timestamp of the message at the head of the
    queue, which RabbitMQ 3.10 reports for classic queues only. `topo status` answers UNKNOWN for such a
    check, and `topo alerts` writes no rule for it.

    **Fix.** Route the queue's dead letters to a dead-letter queue of their own (bound to the
    dead-letter exchange only), or remove the check; for the message age, use a classic queue or watch
    the depth instead.
    """
    for expectation, check in _own_problems(ctx, ("dead-letter-rate", "message-age")):
        queue = ctx.vhost.queues[expectation.queue]
        yield ctx.finding(queue, f"queue '{queue.name}': {check.name} cannot be measured: {check.problem}")


@rule("TL604", "monitor-level-never-fires", "warning")
def monitor_level_never_fires(ctx: Context) -> Iterator[Draft]:
    """A `consumers` level of 0, which no figure can ever cross.

    **Risk.** `consumers` levels are minimums (WARNING *below* the level), so `consumers: {critical: 0}`
    — the way a checklist writes "critical at 0 consumers" — fires below zero: never. The queue looks
    watched and is not. (A `depth` percentage of 100% or more is refused when the files load: a full
    queue holds 100% of its limit and no more.)

    **Fix.** For "no consumer at all" write `critical: 1` (fewer than one).
    """
    for expectation in _expectations(ctx).queues:
        for check in expectation.checks:
            if not check.own or check.name != "consumers":
                continue
            for name in ("warning", "critical"):
                level = check.level(name)
                if level is not None and level.value <= 0:
                    queue = ctx.vhost.queues[expectation.queue]
                    yield ctx.finding(
                        queue,
                        f"queue '{queue.name}': consumers {name} level {level} can never be reached: consumers "
                        "levels are minimums and nothing is below 0 (write 1 for 'no consumer')",
                    )
