"""The router: RabbitMQ's ``rabbit_exchange:route/2`` loop over a declared vhost."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from topo.arguments import DELAYED_MESSAGE, EXCHANGE_TYPES
from topo.model import BUILTIN_EXCHANGES, Binding, Exchange, Topology, VHost
from topo.routing.links import Link, topology_links
from topo.routing.matching import headers_match, topic_matches
from topo.routing.policies import dead_letter_target, effective_alternate_exchange
from topo.routing.result import DeadLetter, Forward, Hop, Path, Refusal, RouteResult, jsonable, quoted

__all__ = ["PLUGIN", "Router", "route", "route_within", "routing_type"]

PLUGIN = "plugin"
"""How :func:`routing_type` names a plugin's exchange type that topo cannot route exactly."""


def routing_type(exchange: Exchange) -> str:
    """How ``exchange`` routes: its type; an x-delayed-message exchange as its ``x-delayed-type`` says;
    any other plugin type (x-consistent-hash, x-random...): :data:`PLUGIN`."""
    if exchange.type in EXCHANGE_TYPES:
        return exchange.type
    if exchange.type == DELAYED_MESSAGE:
        delayed = exchange.arguments.get("x-delayed-type")
        if delayed in EXCHANGE_TYPES:
            return str(delayed)
    return PLUGIN


_REPLY_TO_PREFIX = "amq.rabbitmq.reply-to."
_MAX_DEAD_LETTER_STEPS = 200


def route(
    topology: Topology,
    vhost: str,
    exchange: str,
    routing_key: str,
    headers: Mapping[str, Any] | None = None,
    *,
    dead_letter: bool = False,
    links: bool = True,
) -> RouteResult:
    """Route a message published to ``exchange`` in ``vhost`` with ``routing_key`` and ``headers``.

    Raises :class:`~topo.errors.UsageError` when the vhost is not declared. An exchange that is not
    declared, or is internal, gives a dropped result that says so (the broker would refuse the publish).
    With ``links`` (the default), the message is followed through the shovels and federation links between
    vhosts of this broker (:mod:`topo.routing.links`): ``RouteResult.forwarded``.
    """
    result = Router(topology.vhost(vhost)).route(exchange, routing_key, headers, dead_letter=dead_letter)
    if not links:
        return result
    found = topology_links(topology)
    if not found:
        return result
    return _LinkFollower(topology, found).follow(result, (), 0)


def route_within(
    vhost: VHost, exchange: str, routing_keys: Iterable[str], headers: Mapping[str, Any] | None = None
) -> RouteResult:
    """Route as the broker does for messages it sends itself (dead letters): internal exchanges accept
    them, and an exchange that is not declared routes nowhere. ``exchange`` ``""`` is the default one."""
    return Router(vhost).route_within(exchange, routing_keys, headers)


class Router:
    """One vhost prepared for routing many messages: its bindings are indexed once.

    Build a new one when the vhost changes. :func:`route` and :func:`route_within` are the one-off forms.
    """

    def __init__(self, vhost: VHost) -> None:
        self.vhost = vhost
        self.exchanges: dict[str, Exchange] = {**BUILTIN_EXCHANGES, **vhost.exchanges}
        self.queues = vhost.queues
        self.by_source: dict[str, list[Binding]] = {}
        self.direct: dict[tuple[str, str], list[Binding]] = {}
        for _key, binding in sorted(vhost.bindings.items(), key=lambda item: item[0]):
            if binding.source not in self.exchanges or binding.source == "":
                continue  # a binding whose source does not exist cannot exist on the broker
            known = self.queues if binding.destination_type == "queue" else self.exchanges
            if binding.destination not in known:
                continue
            self.by_source.setdefault(binding.source, []).append(binding)
            self.direct.setdefault((binding.source, binding.routing_key), []).append(binding)

    def route(
        self,
        exchange: str,
        routing_key: str,
        headers: Mapping[str, Any] | None = None,
        *,
        dead_letter: bool = False,
    ) -> RouteResult:
        """Like :func:`route`, in this router's vhost."""
        return self.publish(exchange, routing_key, headers or {}, dead_letter)

    def route_within(
        self, exchange: str, routing_keys: Iterable[str], headers: Mapping[str, Any] | None = None
    ) -> RouteResult:
        """Like :func:`route_within`, in this router's vhost."""
        keys = tuple(routing_keys)
        if exchange != "" and exchange not in self.exchanges:
            reason = f"exchange {quoted(exchange)} is not declared"
            return RouteResult(self.vhost.name, exchange, keys, headers or {}, (), (), reason=reason)
        return self.route_from(exchange, keys, headers or {})

    # -- publishing -----------------------------------------------------------------------------------

    def publish(self, exchange: str, routing_key: str, headers: Mapping[str, Any], dead_letter: bool) -> RouteResult:
        # the broker's order: the exchange first (404, 403), then the message's CC/BCC headers (406)
        keys, headers, problem = _routing_keys(routing_key, headers)
        refused: Refusal | None = None if problem is None else "PRECONDITION_FAILED"
        if exchange != "" and exchange not in self.exchanges:
            problem, refused = f"exchange {quoted(exchange)} is not declared", "NOT_FOUND"
        elif exchange != "" and self.exchanges[exchange].internal:
            problem = f"exchange {quoted(exchange)} is internal: publishers cannot publish to it"
            refused = "ACCESS_REFUSED"
        if problem is not None:
            return RouteResult(self.vhost.name, exchange, keys, headers, (), (), reason=problem, refused=refused)
        result = self.route_from(exchange, keys, headers)
        if dead_letter:
            budget = [_MAX_DEAD_LETTER_STEPS]
            result = _with_dead_letters(result, self._follow(result, (), headers, exchange, budget))
        return result

    def route_from(self, start: str, keys: tuple[str, ...], headers: Mapping[str, Any]) -> RouteResult:
        """The broker's route1 loop: a work list of exchanges, each visited once."""
        reached: dict[str, tuple[Hop, ...]] = {start: ()}
        order: list[str] = []
        work: deque[str] = deque([start])
        paths: dict[tuple[Any, ...], Path] = {}
        trace: list[str] = []  # what each exchange did, for the reason of a drop
        while work:
            name = work.popleft()
            order.append(name)
            via = reached[name]
            matched = self._type_route(name, keys, headers)
            if not matched:
                text = self._no_match(name, keys, headers)
                ae = None if name == "" else effective_alternate_exchange(self.vhost, self.exchanges[name])
                if ae is not None:
                    if ae in reached:
                        text += f"; its alternate exchange {quoted(ae)} was visited already"
                    elif ae in self.exchanges or ae == "":
                        text += f", so it goes to the alternate exchange {quoted(ae)}"
                        reached[ae] = (*via, Hop("alternate-exchange", name, ae, "exchange"))
                        work.append(ae)
                    else:
                        text += f"; its alternate exchange {quoted(ae)} is not declared"
                trace.append(text)
            elif all(hop.destination_type == "exchange" for hop in matched):
                names = ", ".join(quoted(h.destination) for h in matched)
                trace.append(
                    f"exchange {quoted(name)} sends it only to exchange{'s' if len(matched) > 1 else ''} {names}"
                )
            for hop in matched:
                if hop.destination_type == "queue":
                    path = Path(hop.destination, (*via, hop))
                    paths[path.identity] = path
                elif hop.destination not in reached:
                    reached[hop.destination] = (*via, hop)
                    work.append(hop.destination)
        queues = tuple(sorted({p.queue for p in paths.values()}))
        ordered = tuple(sorted(paths.values(), key=lambda p: (p.queue, len(p.hops), p.describe())))
        reason = None if queues else "; ".join(trace)
        notes = tuple(f"direct reply-to key {quoted(k)} is not a queue" for k in keys if _is_reply_to(start, k))
        notes += tuple(note for name in order if (note := self._plugin_note(name)) is not None)
        return RouteResult(self.vhost.name, start, keys, headers, queues, ordered, reason, tuple(order), notes=notes)

    def _type_route(self, name: str, keys: tuple[str, ...], headers: Mapping[str, Any]) -> list[Hop]:
        if name == "":
            return [
                Hop("default-exchange", "", key, "queue")
                for key in dict.fromkeys(keys)
                if key in self.queues and not key.startswith(_REPLY_TO_PREFIX)
            ]
        kind = routing_type(self.exchanges[name])
        if kind == "direct":
            found = {id(b): b for key in dict.fromkeys(keys) for b in self.direct.get((name, key), ())}
            ordered = sorted(found.values(), key=lambda b: (b.destination_type, b.destination, b.routing_key))
            return [Hop("binding", name, b.destination, b.destination_type, b) for b in ordered]
        hops = []
        for b in self.by_source.get(name, ()):
            if kind == "fanout":
                ok = True
            elif kind == "direct":
                ok = b.routing_key in keys
            elif kind == "topic":
                ok = any(topic_matches(b.routing_key, key) for key in keys)
            elif kind == "headers":
                ok = headers_match(b.arguments, headers)
            else:  # a plugin's exchange type: topo cannot compute its choice, so each binding may be taken
                ok = True
            if ok:
                hops.append(Hop("binding", name, b.destination, b.destination_type, b))
        return hops

    def _plugin_note(self, name: str) -> str | None:
        exchange = self.exchanges.get(name)
        if exchange is None or exchange.type in EXCHANGE_TYPES:
            return None
        kind = routing_type(exchange)
        if kind != PLUGIN:  # x-delayed-message, which routes as its x-delayed-type
            return f"exchange {quoted(name)} ({exchange.type}) routes as a {kind} exchange, after the message's x-delay"
        return (
            f"exchange {quoted(name)} has the plugin type {quoted(exchange.type)}: topo cannot compute its choice "
            "and counts each of its bindings as a possible route"
        )

    def _no_match(self, name: str, keys: tuple[str, ...], headers: Mapping[str, Any]) -> str:
        if name == "":
            return (
                "no queue named " + " or ".join(map(quoted, keys)) + " is declared (the default exchange"
                " routes to the queue named by the routing key)"
            )
        kind = routing_type(self.exchanges[name])
        if kind in ("fanout", "headers", PLUGIN) and not self.by_source.get(name):
            return f"exchange {quoted(name)} has no bindings"
        if kind == "headers":
            return f"no binding of exchange {quoted(name)} matches headers {_format_headers(headers)}"
        what = "routing key " + quoted(keys[0]) if len(keys) == 1 else "routing keys " + ", ".join(map(quoted, keys))
        return f"no binding of exchange {quoted(name)} matches {what}"

    # -- dead letters ---------------------------------------------------------------------------------

    def _follow(
        self,
        result: RouteResult,
        chain: tuple[str, ...],
        headers: Mapping[str, Any],
        published_to: str,
        budget: list[int],
    ) -> tuple[DeadLetter, ...]:
        out = []
        for qname in result.queues:
            queue = self.queues[qname]
            if queue.type == "stream":
                out.append(DeadLetter(qname, None, note="stream queues never dead-letter"))
                continue
            dlx, dlrk = dead_letter_target(self.vhost, queue)
            if dlx is None:
                out.append(DeadLetter(qname, None, note="no dead-letter exchange: the message is discarded"))
                continue
            keys = (dlrk,) if dlrk is not None else result.routing_keys
            if dlx != "" and dlx not in self.exchanges:
                note = f"dead-letter exchange {quoted(dlx)} is not declared: the message is discarded"
                out.append(DeadLetter(qname, dlx, keys, note=note))
                continue
            budget[0] -= 1
            if budget[0] < 0:
                out.append(DeadLetter(qname, dlx, keys, note="not followed further (too many steps)"))
                continue
            dl_headers = _dead_letter_headers(headers, qname, published_to, dlrk is not None)
            dl_result = self.route_from(dlx, keys, dl_headers)
            path = (*chain, qname)
            looping = tuple(q for q in dl_result.queues if q in path)
            nested = self._follow(_only(dl_result, looping), path, dl_headers, dlx, budget)
            cycle_note = None
            if looping:
                start = path.index(looping[0])
                cycle = (*path[start:], looping[0])
                cycle_note = (
                    "dead-letter cycle " + " -> ".join(cycle) + ": RabbitMQ drops the message when it "
                    "expires again in a queue it already died in (it cycles only while consumers reject it)"
                )
            else:
                cycle = ()
            out.append(DeadLetter(qname, dlx, keys, _with_dead_letters(dl_result, nested), cycle_note, cycle))
        return tuple(out)


_MAX_LINK_STEPS = 50


class _LinkFollower:
    """Follows a routed message through the links whose source it reached, vhost after vhost."""

    def __init__(self, topology: Topology, links: tuple[Link, ...]) -> None:
        self.topology = topology
        self.links = links
        self.routers: dict[str, Router] = {}
        self.budget = _MAX_LINK_STEPS

    def router(self, vhost: str) -> Router:
        if vhost not in self.routers:
            self.routers[vhost] = Router(self.topology.vhosts[vhost])
        return self.routers[vhost]

    def follow(self, result: RouteResult, chain: tuple[Link, ...], federated: int) -> RouteResult:
        out: list[Forward] = []
        for link in self.links:
            if link.source_vhost != result.vhost or not self._reaches(link, result):
                continue
            if link.kind == "federation" and federated >= link.max_hops:
                continue  # the upstream's max-hops: the message crossed that many federation links already
            out.append(self._forward(link, result, chain, federated))
        if not out:
            return result
        return replace(result, forwarded=tuple(out))

    def _reaches(self, link: Link, result: RouteResult) -> bool:
        if link.source_type == "queue":
            return link.source in result.queues
        if link.source not in result.exchanges or link.source == "":
            return False
        if link.kind == "federation":
            return True
        exchange = self.router(result.vhost).exchanges.get(link.source)
        kind = routing_type(exchange) if exchange is not None else "direct"
        key = link.source_key or ""
        if kind == "direct":
            return key in result.routing_keys
        if kind == "topic":
            return any(topic_matches(key, k) for k in result.routing_keys)
        if kind == "headers":
            return headers_match({}, result.headers)
        return True  # fanout, or a plugin's type: the shovel's queue may receive it

    def _forward(self, link: Link, result: RouteResult, chain: tuple[Link, ...], federated: int) -> Forward:
        if link in chain:
            return Forward(link, link.source, note="a cycle: the message came through this link already")
        if link.destination_vhost not in self.topology.vhosts:
            note = f"vhost {quoted(link.destination_vhost)} is not declared in the files: not followed"
            return Forward(link, link.source, note=note)
        self.budget -= 1
        if self.budget < 0:
            return Forward(link, link.source, note="not followed further (too many steps)")
        router = self.router(link.destination_vhost)
        key = link.destination_key if link.destination_key is not None else result.routing_key
        if link.destination_type == "queue":
            exchange, key = "", link.destination or ""
        elif link.destination_type == "exchange":
            exchange = link.destination or ""
        else:
            exchange = result.exchange  # the message keeps its exchange and routing key
        headers = dict(result.headers)
        nested = router.route(exchange, key, headers)
        hops = federated + (link.kind == "federation")
        return Forward(link, link.source, self.follow(nested, (*chain, link), hops))


def _only(result: RouteResult, excluded: tuple[str, ...]) -> RouteResult:
    if not excluded:
        return result
    queues = tuple(q for q in result.queues if q not in excluded)
    return RouteResult(result.vhost, result.exchange, result.routing_keys, result.headers, queues, result.paths)


def _with_dead_letters(result: RouteResult, dead_letters: tuple[DeadLetter, ...]) -> RouteResult:
    return replace(result, dead_letters=dead_letters)


def _routing_keys(
    routing_key: str, headers: Mapping[str, Any]
) -> tuple[tuple[str, ...], Mapping[str, Any], str | None]:
    """The message's routing keys (the key plus ``CC`` and ``BCC``) and the headers the exchange sees."""
    keys = [routing_key]
    for name in ("CC", "BCC"):
        if name not in headers:
            continue
        value = headers[name]
        if not isinstance(value, list | tuple):
            problem = f"header {quoted(name)} must be an array of routing keys: the broker refuses the message"
            return (routing_key,), headers, problem
        keys.extend(v for v in value if isinstance(v, str))
    if "BCC" in headers:
        headers = {k: v for k, v in headers.items() if k != "BCC"}
    return tuple(keys), headers, None


def _dead_letter_headers(headers: Mapping[str, Any], queue: str, exchange: str, drop_cc: bool) -> dict[str, Any]:
    out = {k: v for k, v in headers.items() if not (drop_cc and k == "CC")}
    if "x-death" not in out:
        out["x-first-death-reason"] = "rejected"
        out["x-first-death-queue"] = queue
        out["x-first-death-exchange"] = exchange
    out["x-death"] = [{"count": 1, "reason": "rejected", "queue": queue, "exchange": exchange}]
    return out


def _is_reply_to(exchange: str, key: str) -> bool:
    return exchange == "" and key.startswith(_REPLY_TO_PREFIX)


def _format_headers(headers: Mapping[str, Any]) -> str:
    if not headers:
        return "{} (the message has no headers)"
    return json.dumps(jsonable(dict(headers)), ensure_ascii=False, sort_keys=True)
