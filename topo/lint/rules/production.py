"""TL5xx: the production checklist."""

from __future__ import annotations

from collections.abc import Iterator

from topo.lint.core import Context, Draft, rule

__all__: list[str] = []

MAX_PRIORITY_RECOMMENDED = 10


@rule("TL501", "non-durable", "warning")
def non_durable(ctx: Context) -> Iterator[Draft]:
    """A queue or exchange is not durable.

    **Risk.** A non-durable queue or exchange disappears when its node restarts, with every message in
    it and every binding to it; publishers then get errors or lose messages until something declares
    it again.

    **Fix.** Remove `durable: false` (durable is the default). Keep it only for truly temporary
    resources, and disable the rule on them.
    """
    for queue in ctx.vhost.queues.values():
        if not queue.durable:
            yield ctx.finding(queue, f"queue '{queue.name}' is not durable: it and its messages vanish on restart")
    for exchange in ctx.vhost.exchanges.values():
        if not exchange.durable:
            yield ctx.finding(
                exchange, f"exchange '{exchange.name}' is not durable: it and its bindings vanish on restart"
            )


@rule("TL502", "high-max-priority", "warning")
def high_max_priority(ctx: Context) -> Iterator[Draft]:
    """A priority queue has more than 10 priority levels.

    **Risk.** A classic queue keeps an internal sub-queue per priority level: every level costs memory
    and CPU, and more than a handful rarely changes the order consumers see. RabbitMQ recommends at
    most 10 levels (newer documentation: 5).

    **Fix.** Use a small `max-priority` (e.g. 5) and map your priorities onto it.
    """
    for queue in ctx.vhost.queues.values():
        value = queue.arguments.get("x-max-priority")
        if isinstance(value, int) and value > MAX_PRIORITY_RECOMMENDED:
            yield ctx.finding(
                queue,
                f"queue '{queue.name}' has max-priority {value}: each level costs memory and CPU; "
                f"use at most {MAX_PRIORITY_RECOMMENDED}",
            )
