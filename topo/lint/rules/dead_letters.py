"""TL1xx: dead-lettering and limits that lose messages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from topo.lint.core import Context, Draft, rule
from topo.model import Queue
from topo.routing import applied_policy, dead_letter_target, routing_type, split_topic_key

__all__ = ["dead_letter_edges", "dead_letter_keys", "queue_setting"]


def queue_setting(ctx: Context, queue: Queue, key: str, *, operator_policies: bool = True) -> Any:
    """A queue's effective setting ``key`` (``message-ttl``): its argument, else its policy's, else the
    operator policy's. ``None`` when nothing sets it."""
    argument = "x-" + key
    if argument in queue.arguments:
        return queue.arguments[argument]
    for operator in (False, True) if operator_policies else (False,):
        policy = applied_policy(ctx.vhost, "queue", queue.name, queue.type, operator=operator)
        if policy is not None and key in policy.definition:
            return policy.definition[key]
    return None


def dead_letter_keys(ctx: Context, queue: Queue) -> tuple[tuple[str, ...], bool]:
    """The routing keys dead letters of ``queue`` carry, and whether that list is complete.

    With a dead-letter routing key, that key. Without one, messages keep the keys they were published
    with: the keys of the direct bindings and wildcard-free topic bindings into the queue (or its own
    name, when nothing is bound to it and it is fed through the default exchange). Keys behind
    wildcards, fanout and headers bindings cannot be listed: the list is then incomplete.
    """
    _dlx, dlrk = dead_letter_target(ctx.vhost, queue)
    if dlrk is not None:
        return (dlrk,), True
    keys: list[str] = []
    complete = True
    bindings = ctx.bindings_to_queue.get(queue.name, [])
    for binding in bindings:
        source = ctx.exchanges.get(binding.source)
        words = split_topic_key(binding.routing_key)
        literal = "*" not in words and "#" not in words
        kind = routing_type(source) if source is not None else None
        if kind == "direct" or (kind == "topic" and literal):
            keys.append(binding.routing_key)
        else:
            complete = False
    if not bindings:
        keys.append(queue.name)
    return tuple(dict.fromkeys(keys)), complete


def _ql(names: list[str] | tuple[str, ...]) -> str:
    return ", ".join(f"'{n}'" for n in names)


@rule("TL101", "dead-letter-nowhere", "error")
def dead_letter_nowhere(ctx: Context) -> Iterator[Draft]:
    """A queue's dead letters reach no queue.

    **Risk.** When a queue dead-letters a message (a consumer rejects it, it expires, the queue
    overflows) RabbitMQ republishes it to the dead-letter exchange with the dead-letter routing key,
    or with the message's own routing key when none is set. If that exchange is not declared, or no
    binding of it matches the key, the message is dropped without a trace: the dead-letter setup looks
    right and loses exactly the messages it was meant to keep.

    **Fix.** Declare the dead-letter exchange and bind a queue to it with the key dead letters carry,
    set `dead-letter-routing-key` to a key that is bound, or give the exchange an alternate exchange.
    Without a dead-letter routing key, topo checks the keys of the queue's direct and topic bindings
    (the queue's name when it is fed through the default exchange).
    """
    for queue in ctx.vhost.queues.values():
        dlx, dlrk = dead_letter_target(ctx.vhost, queue)
        if dlx is None or queue.type == "stream":
            continue
        label = "the default exchange" if dlx == "" else f"exchange '{dlx}'"
        if dlx != "" and dlx not in ctx.exchanges:
            yield ctx.finding(
                queue, f"queue '{queue.name}' dead-letters to {label}, which is not declared: dead letters are dropped"
            )
            continue
        keys, _complete = dead_letter_keys(ctx, queue)
        lost = []
        reason = ""
        for key in keys:
            result = ctx.router.route_within(dlx, (key,))
            if any(routing_type(ctx.exchanges[x]) == "headers" for x in result.exchanges if x in ctx.exchanges):
                continue  # depends on the message's headers, which topo cannot know
            if result.dropped:
                lost.append(key)
                reason = reason or (result.reason or "")
        if not lost:
            continue
        if dlrk is not None:
            message = (
                f"queue '{queue.name}' dead-letters to {label} with routing key '{dlrk}', "
                f"which reaches no queue ({reason})"
            )
        else:
            message = (
                f"queue '{queue.name}' dead-letters to {label} with the messages' own routing keys, and "
                f"{_ql(lost)} reach{'es' if len(lost) == 1 else ''} no queue there ({reason}); "
                "set dead-letter-routing-key or bind those keys"
            )
        yield ctx.finding(queue, message)


def dead_letter_edges(ctx: Context) -> dict[str, set[str]]:
    """Queue -> the queues its dead letters reach (with the keys of :func:`dead_letter_keys`)."""
    cached = ctx.cache.get("dead-letter-edges")
    if cached is not None:
        return cast(dict[str, set[str]], cached)
    edges: dict[str, set[str]] = {}
    ctx.cache["dead-letter-edges"] = edges
    for queue in ctx.vhost.queues.values():
        dlx, _ = dead_letter_target(ctx.vhost, queue)
        if dlx is None or queue.type == "stream" or (dlx != "" and dlx not in ctx.exchanges):
            continue
        keys, _ = dead_letter_keys(ctx, queue)
        targets: set[str] = set()
        for key in keys:
            targets.update(ctx.router.route_within(dlx, (key,)).queues)
        edges[queue.name] = targets
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with a cycle (Tarjan), each sorted, in name order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in edges.get(node, ()):
                out.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(out)


@rule("TL102", "dead-letter-cycle", "warning")
def dead_letter_cycle(ctx: Context) -> Iterator[Draft]:
    """Queues dead-letter into each other and every one of them expires messages.

    **Risk.** A message that expires in every queue of a dead-letter cycle goes round once; the second
    time it expires in a queue it already died in, RabbitMQ detects the cycle and drops it, silently
    (only a log line says so). A delay or retry loop built only from TTL queues therefore loses every
    message that goes round twice.

    **Fix.** Give the cycle a way out: a queue without `message-ttl` that consumers read (the classic
    retry pattern: work queue → retry queue with a TTL → back to the work queue, where consumers
    reject or accept), or dead-letter the last hop to a parking queue outside the cycle.
    """
    queues = ctx.vhost.queues
    for component in _cycles(dead_letter_edges(ctx)):
        if all(queue_setting(ctx, queues[name], "message-ttl") is not None for name in component):
            yield ctx.finding(
                queues[component[0]],
                f"queues {_ql(component)} dead-letter into each other and all expire messages: RabbitMQ "
                "drops a message the second time it expires in the same queue",
            )


@rule("TL103", "limit-drops-messages", "warning")
def limit_drops_messages(ctx: Context) -> Iterator[Draft]:
    """A TTL or length limit discards messages and the queue has no dead-letter exchange.

    **Risk.** `message-ttl` expires messages and `max-length`/`max-length-bytes` (with the default
    `overflow: drop-head`) drop the oldest ones. Without a dead-letter exchange they are gone, with no
    error for the publisher and nothing for an operator to inspect. Limits set by a policy count too
    (operator policies do not: they are the operators' safety caps).

    **Fix.** Set `dead-letter-exchange` (and a bound `dead-letter-routing-key`) to keep what the limit
    removes, use `overflow: reject-publish` so publishers learn about a full queue, or disable the rule
    on the queue when losing those messages is intended (`lint: {disable: [TL103]}`).
    """
    for queue in ctx.vhost.queues.values():
        if queue.type == "stream":
            continue
        dlx, _ = dead_letter_target(ctx.vhost, queue)
        if dlx is not None:
            continue

        # operator policies are the operators' safety caps: not reported here
        def setting(key: str, queue: Queue = queue) -> Any:
            return queue_setting(ctx, queue, key, operator_policies=False)

        limits = ["message-ttl"]
        if (setting("overflow") or "drop-head") == "drop-head":
            limits += ["max-length", "max-length-bytes"]
        found = [f"{key} {setting(key)}" for key in limits if setting(key) is not None]
        if found:
            yield ctx.finding(
                queue,
                f"queue '{queue.name}' discards messages ({', '.join(found)}) and has no dead-letter "
                "exchange: they are lost silently",
            )


@rule("TL104", "quorum-without-delivery-limit", "warning")
def quorum_without_delivery_limit(ctx: Context) -> Iterator[Draft]:
    """A quorum queue has no delivery limit.

    **Risk.** A message that makes its consumer crash or reject-and-requeue is redelivered forever (on
    RabbitMQ before 4.0, which sets no default): one poison message blocks or burns a consumer in a
    loop and the queue's log keeps growing.

    **Fix.** Set `delivery-limit` (a few attempts, e.g. 5) together with a `dead-letter-exchange`, so
    that a message that keeps failing is parked instead of looping; a policy key works too.
    """
    for queue in ctx.vhost.queues.values():
        if queue.type == "quorum" and queue_setting(ctx, queue, "delivery-limit") is None:
            yield ctx.finding(
                queue, f"quorum queue '{queue.name}' has no delivery-limit: a poison message is redelivered forever"
            )
