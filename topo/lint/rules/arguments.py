"""TL3xx: arguments RabbitMQ does not know or does not apply."""

from __future__ import annotations

from collections.abc import Iterator

from topo.arguments import EXCHANGE_TYPES, queue_argument
from topo.lint.core import Context, Draft, rule

__all__: list[str] = []

# Queue arguments RabbitMQ knows that have no readable key in topo's table.
_OTHER_QUEUE_ARGUMENTS = frozenset({"x-queue-type", "x-consumer-timeout"})


@rule("TL301", "unknown-argument", "warning")
def unknown_argument(ctx: Context) -> Iterator[Draft]:
    """An argument RabbitMQ does not know, or does not apply to this queue type.

    **Risk.** The broker stores unknown arguments and ignores them: a typo (`x-message-tll`), a
    setting of another queue type (`x-max-length` on a stream, `x-queue-mode` on a quorum queue) or an
    exchange argument other than `alternate-exchange` on a built-in exchange type has no effect at all,
    while the files suggest it does. (Worse, queue arguments are fixed at declaration: fixing it later
    means deleting and re-creating the queue.)

    **Fix.** Use the readable key (`message-ttl:`) that topo checks, correct the name, or remove the
    argument. For a plugin's argument, disable the rule on that queue or exchange.
    """
    for queue in ctx.vhost.queues.values():
        for argument in sorted(queue.arguments):
            spec = queue_argument(argument)
            if spec is None and argument not in _OTHER_QUEUE_ARGUMENTS:
                yield ctx.finding(
                    queue,
                    f"queue '{queue.name}' has argument '{argument}', which RabbitMQ does not know: it is ignored",
                )
            elif spec is not None and queue.type not in spec.queue_types:
                kinds = " and ".join(sorted(spec.queue_types))
                yield ctx.finding(
                    queue,
                    f"argument '{argument}' of {queue.type} queue '{queue.name}' only applies to {kinds} queues",
                )
    for exchange in ctx.vhost.exchanges.values():
        if exchange.type not in EXCHANGE_TYPES:
            continue  # a plugin's exchange type has arguments of its own
        for argument in sorted(exchange.arguments):
            if argument != "alternate-exchange":
                yield ctx.finding(
                    exchange,
                    f"exchange '{exchange.name}' has argument '{argument}', which a {exchange.type} exchange ignores",
                )
