"""TL2xx: bindings that cannot do what they seem to, and exchanges and queues nothing routes through."""

from __future__ import annotations

from collections.abc import Iterator

from topo.lint.core import Context, Draft, rule
from topo.lint.rules.dead_letters import dead_letter_edges
from topo.model import BUILTIN_EXCHANGES, Binding
from topo.routing import X_MATCH_KINDS, effective_alternate_exchange, routing_type, split_topic_key, topology_links

__all__: list[str] = []


def _dest(b: Binding) -> str:
    return f"{b.destination_type} '{b.destination}'"


def _bindings_from(ctx: Context, exchange_type: str) -> Iterator[Binding]:
    for binding in ctx.vhost.bindings.values():
        source = ctx.exchanges.get(binding.source)
        if source is not None and routing_type(source) == exchange_type:
            yield binding


@rule("TL201", "direct-binding-wildcard", "warning")
def direct_binding_wildcard(ctx: Context) -> Iterator[Draft]:
    """A binding to a direct exchange uses `*` or `#` as if they were wildcards.

    **Risk.** A direct exchange compares routing keys byte for byte: the binding key `orders.*` matches
    only a message whose key is literally `orders.*`. Messages meant for the binding are dropped (or go
    to the alternate exchange).

    **Fix.** Bind to a topic exchange when you need patterns, or bind each exact key.
    """
    for binding in _bindings_from(ctx, "direct"):
        if any(word in ("*", "#") for word in split_topic_key(binding.routing_key)):
            yield ctx.finding(
                binding,
                f"binding of {_dest(binding)} to direct exchange '{binding.source}' uses the key "
                f"'{binding.routing_key}': direct exchanges have no wildcards, it only matches that exact key",
            )


def _header_keys(binding: Binding) -> tuple[str, list[str]]:
    kind = binding.arguments.get("x-match")
    mode = kind if isinstance(kind, str) and kind in X_MATCH_KINDS else "all"
    with_x = mode.endswith("-with-x")
    keys = [k for k in binding.arguments if k != "x-match" and (with_x or not k.startswith("x-"))]
    return mode, keys


@rule("TL202", "headers-binding-never-matches", "error")
def headers_binding_never_matches(ctx: Context) -> Iterator[Draft]:
    """A headers binding with `x-match: any` has no header to compare.

    **Risk.** `any` matches when at least one listed header matches; with none listed (or only `x-`
    headers, which `any` ignores) the binding never matches and its destination never receives
    anything from this exchange.

    **Fix.** List the headers to match under `headers:`, or use `any-with-x` if the headers you match
    start with `x-`.
    """
    for binding in _bindings_from(ctx, "headers"):
        mode, keys = _header_keys(binding)
        if mode.startswith("any") and not keys:
            yield ctx.finding(
                binding,
                f"headers binding of {_dest(binding)} to '{binding.source}' has x-match {mode} and no "
                "header to compare: it never matches",
            )


@rule("TL203", "headers-binding-matches-everything", "warning")
def headers_binding_matches_everything(ctx: Context) -> Iterator[Draft]:
    """A headers binding with `x-match: all` (or none) lists no header, so it matches every message.

    **Risk.** With nothing to compare, `all` is trivially true: the destination receives every message
    the exchange gets, like a fanout binding. That is rarely what a headers binding was written for;
    usually the headers were forgotten or written under `arguments:` with an `x-` prefix, which `all`
    ignores.

    **Fix.** List the headers under `headers:`; use `all-with-x` to match headers starting with `x-`;
    use a fanout exchange if every message should go there.
    """
    for binding in _bindings_from(ctx, "headers"):
        mode, keys = _header_keys(binding)
        if mode.startswith("all") and not keys:
            yield ctx.finding(
                binding,
                f"headers binding of {_dest(binding)} to '{binding.source}' compares no header: "
                "it matches every message",
            )


@rule("TL204", "topic-wildcard-inside-word", "warning")
def topic_wildcard_inside_word(ctx: Context) -> Iterator[Draft]:
    """A topic binding key has `*` or `#` inside a word (`sensor*`, `a.#b`).

    **Risk.** Wildcards are whole words only: `sensor*` matches the literal word `sensor*`, not
    `sensor1`. The binding silently matches far less than intended.

    **Fix.** Separate the wildcard with dots (`sensor.*`), or name the words exactly.
    """
    for binding in _bindings_from(ctx, "topic"):
        odd = [w for w in split_topic_key(binding.routing_key) if w not in ("*", "#") and ("*" in w or "#" in w)]
        if odd:
            yield ctx.finding(
                binding,
                f"topic binding key '{binding.routing_key}' of {_dest(binding)} has {', '.join(repr(w) for w in odd)}: "
                "wildcards only work as whole words, this one is literal",
            )


@rule("TL205", "exchange-without-bindings", "warning")
def exchange_without_bindings(ctx: Context) -> Iterator[Draft]:
    """An exchange has no bindings and no alternate exchange.

    **Risk.** Every message published to it is dropped (a publisher using `mandatory` gets it back,
    others never learn). Often a binding was declared on the wrong exchange, or the consumer side that
    should bind to it is missing from the files.

    **Fix.** Bind a queue or exchange to it, give it an `alternate-exchange`, or remove it. When an
    application binds to it at run time, say so with `keep-bindings` on the queues it binds (an exchange
    a `keep-bindings` pattern names is not reported). An exchange a shovel or a federation link of the
    topology takes messages from (its URI names this broker) is not reported either: the link binds it.
    """
    sources = {b.source for b in ctx.vhost.bindings.values()}
    if ctx.topology is not None:
        sources |= {
            link.source
            for link in topology_links(ctx.topology)
            if link.source_vhost == ctx.vhost.name and link.source_type == "exchange"
        }
    runtime = ctx.runtime_sources
    if runtime is None:
        return  # `keep-bindings` lets applications bind from any exchange
    for exchange in ctx.vhost.exchanges.values():
        if exchange.name in sources or exchange.name in BUILTIN_EXCHANGES or exchange.name in runtime:
            continue
        if effective_alternate_exchange(ctx.vhost, exchange) is None:
            yield ctx.finding(
                exchange,
                f"nothing is bound to exchange '{exchange.name}' and it has no alternate exchange: "
                "every message published to it is dropped",
            )


@rule("TL206", "alternate-exchange-missing", "error")
def alternate_exchange_missing(ctx: Context) -> Iterator[Draft]:
    """An exchange's alternate exchange (by argument or policy) is not declared.

    **Risk.** Messages the exchange cannot route are meant to go to the alternate exchange; when it
    does not exist the broker drops them silently, exactly the messages the setting was meant to keep.

    **Fix.** Declare the alternate exchange (and bind a queue to it), or correct its name.
    """
    for exchange in ctx.vhost.exchanges.values():
        ae = effective_alternate_exchange(ctx.vhost, exchange)
        if ae is not None and ae != "" and ae not in ctx.exchanges:
            yield ctx.finding(
                exchange,
                f"the alternate exchange '{ae}' of exchange '{exchange.name}' is not declared: "
                "unroutable messages are dropped",
            )


@rule("TL207", "queue-unreachable", "info")
def queue_unreachable(ctx: Context) -> Iterator[Draft]:
    """Nothing is bound to a queue and no dead letters reach it.

    **Risk.** Only messages published to the default exchange with the queue's name as routing key (or
    dead letters sent there) reach it. That is how work queues and RPC reply queues are meant to be
    used; elsewhere it means a binding is missing.

    **Fix.** Nothing, if publishers address the queue by name; otherwise add the binding. Disable the
    rule on such queues with `lint: {disable: [TL207]}`. A queue with `keep-bindings` (its own or its
    vhost's) is bound by an application at run time and is not reported.
    """
    bound = {b.destination for b in ctx.vhost.bindings.values() if b.destination_type == "queue"}
    bound.update(*dead_letter_edges(ctx).values())
    for queue in ctx.vhost.queues.values():
        if queue.name not in bound and not ctx.kept_patterns(queue):
            yield ctx.finding(
                queue,
                f"nothing is bound to queue '{queue.name}': only messages published to the default exchange "
                f"with routing key '{queue.name}' reach it",
            )
