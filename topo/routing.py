"""Offline routing: where a message published to an exchange goes, exactly as RabbitMQ routes it.

The semantics follow RabbitMQ 3.10's ``rabbit_exchange:route/2`` and the exchange type modules:

* **direct**: bindings whose key equals a routing key;
* **fanout**: every binding;
* **topic**: keys split on ``.`` (the empty key is *no* words, ``"a."`` is ``a`` and an empty word),
  ``*`` matches exactly one word (possibly empty), ``#`` zero or more words;
* **headers**: ``x-match`` ``all`` (also when absent or unknown), ``any``, ``all-with-x``, ``any-with-x``;
  ``x-match`` itself never takes part, other ``x-`` keys only in the ``-with-x`` forms; values compare
  like Erlang's ``==`` (``1`` equals ``1.0``, ``true`` is not ``1``, ``"1"`` is not ``1``); a binding
  value of ``None`` (AMQP void) only asks for the header to be present;
* **the default exchange** ``""`` routes to the queue named by each routing key;
* **exchange-to-exchange bindings** are followed; every exchange is visited once per message, so
  cycles end and a queue reached by several paths receives the message once;
* **alternate exchanges** (the ``alternate-exchange`` argument, else a policy's key) are used only when
  the exchange's own bindings match nothing at all, not even an exchange that then routes nowhere;
* **internal exchanges** refuse publishes from clients but route what other exchanges send them;
* the ``CC`` and ``BCC`` headers (arrays of strings) add routing keys; ``BCC`` is removed before routing.

With ``dead_letter=True`` the result also says, for every queue reached, where the message goes when the
queue dead-letters it (rejected, expired, over a length limit): to the queue's dead-letter exchange with
its dead-letter routing key, or the message's own routing keys when none is set.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from topo.model import Binding, DestinationType, Exchange, Policy, Queue, Topology, VHost

__all__ = [
    "BUILTIN_EXCHANGES",
    "DeadLetter",
    "Hop",
    "Path",
    "Refusal",
    "RouteResult",
    "applied_policy",
    "dead_letter_target",
    "effective_alternate_exchange",
    "headers_match",
    "policy_matches",
    "route",
    "route_within",
    "split_topic_key",
    "topic_matches",
]

BUILTIN_EXCHANGES: dict[str, Exchange] = {
    x.name: x
    for x in (
        Exchange("amq.direct", "direct"),
        Exchange("amq.fanout", "fanout"),
        Exchange("amq.topic", "topic"),
        Exchange("amq.headers", "headers"),
        Exchange("amq.match", "headers"),
        Exchange("amq.rabbitmq.trace", "topic", internal=True),
    )
}
"""The exchanges every vhost has without declaring them (besides the default exchange ``""``)."""

_REPLY_TO_PREFIX = "amq.rabbitmq.reply-to."
_MAX_DEAD_LETTER_STEPS = 200
X_MATCH_KINDS = ("all", "any", "all-with-x", "any-with-x")
Refusal = Literal["NOT_FOUND", "ACCESS_REFUSED", "PRECONDITION_FAILED"]
"""How the broker refuses a publish (the AMQP channel error: 404, 403, 406)."""

# ---------------------------------------------------------------------------------------------------
# Matching primitives


def split_topic_key(key: str) -> tuple[str, ...]:
    """Words of a topic key as RabbitMQ splits them: ``""`` has no words, ``"a."`` has two."""
    return () if key == "" else tuple(key.split("."))


def topic_matches(binding_key: str, routing_key: str) -> bool:
    """Whether a topic binding key matches a routing key (``*`` one word, ``#`` zero or more)."""
    pattern = split_topic_key(binding_key)
    words = split_topic_key(routing_key)
    # states: set of positions in `pattern` reachable after consuming a prefix of `words`
    states = _close({0}, pattern)
    for word in words:
        step: set[int] = set()
        for i in states:
            if i == len(pattern):
                continue
            p = pattern[i]
            if p == "#":
                step.add(i)  # '#' swallows this word and stays
            elif p == "*" or p == word:
                step.add(i + 1)
        states = _close(step, pattern)
        if not states:
            return False
    return len(pattern) in states


def _close(states: set[int], pattern: tuple[str, ...]) -> set[int]:
    """Add the positions reachable by letting a ``#`` match zero words."""
    out = set(states)
    todo = list(states)
    while todo:
        i = todo.pop()
        if i < len(pattern) and pattern[i] == "#" and i + 1 not in out:
            out.add(i + 1)
            todo.append(i + 1)
    return out


def _erlang_equal(a: Any, b: Any) -> bool:
    """Erlang's ``==`` on AMQP field values as the headers exchange compares them."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, str | bytes) and isinstance(b, str | bytes):
        return _as_bytes(a) == _as_bytes(b)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        # nested values keep their AMQP type tags: an int is not a float inside an array
        return len(a) == len(b) and all(_nested_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_nested_equal(a[k], b[k]) for k in a)
    if a is None or b is None:
        return False  # void is never equal to a value (a void *pattern* means "present", see below)
    return bool(a == b)


def _nested_equal(a: Any, b: Any) -> bool:
    numbers = isinstance(a, int | float) and isinstance(b, int | float)
    if numbers and not isinstance(a, bool) and not isinstance(b, bool) and type(a) is not type(b):
        return False
    return _erlang_equal(a, b)


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def headers_match(arguments: Mapping[str, Any], headers: Mapping[str, Any]) -> bool:
    """Whether a headers-exchange binding (its arguments) matches a message's headers."""
    kind = arguments.get("x-match")
    mode = kind if isinstance(kind, str) and kind in X_MATCH_KINDS else "all"
    with_x = mode.endswith("-with-x")
    results = []
    for key, expected in arguments.items():
        if key == "x-match" or (key.startswith("x-") and not with_x):
            continue
        if key not in headers:
            results.append(False)
        elif expected is None:
            results.append(True)
        else:
            results.append(_erlang_equal(expected, headers[key]))
    return all(results) if mode.startswith("all") else any(results)


# ---------------------------------------------------------------------------------------------------
# Policies


def applied_policy(
    vhost: VHost,
    kind: Literal["queue", "exchange"],
    name: str,
    queue_type: str = "",
    *,
    operator: bool = False,
) -> Policy | None:
    """The policy (or operator policy) RabbitMQ applies to a queue or exchange: the matching one of
    highest priority. Equal priorities are decided arbitrarily by the broker; here the first by name
    wins (lint warns about the tie)."""
    best: Policy | None = None
    policies = vhost.operator_policies if operator else vhost.policies
    for policy in sorted(policies.values(), key=lambda p: p.name):
        if policy_matches(policy, kind, name, queue_type) and (best is None or policy.priority > best.priority):
            best = policy
    return best


def policy_matches(policy: Policy, kind: Literal["queue", "exchange"], name: str, queue_type: str = "") -> bool:
    """Whether a policy's ``apply-to`` and pattern (searched, unanchored, like the broker) select a resource."""
    if not _applies_to(policy.apply_to, kind, queue_type):
        return False
    try:
        return re.search(policy.pattern, name) is not None
    except re.error:
        return False


def _applies_to(apply_to: str, kind: str, queue_type: str) -> bool:
    if apply_to == "all":
        return True
    if kind == "exchange":
        return apply_to == "exchanges"
    return apply_to == "queues" or apply_to == {
        "classic": "classic_queues",
        "quorum": "quorum_queues",
        "stream": "streams",
    }.get(queue_type)


def effective_alternate_exchange(vhost: VHost, exchange: Exchange) -> str | None:
    """The exchange's alternate exchange: its argument, else the key of the policy applied to it."""
    if "alternate-exchange" in exchange.arguments:
        return exchange.alternate_exchange
    policy = applied_policy(vhost, "exchange", exchange.name)
    value = policy.definition.get("alternate-exchange") if policy else None
    return value if isinstance(value, str) else None


def dead_letter_target(vhost: VHost, queue: Queue) -> tuple[str | None, str | None]:
    """The queue's (dead-letter exchange, dead-letter routing key): arguments first, then its policy."""
    policy = applied_policy(vhost, "queue", queue.name, queue.type)
    definition: Mapping[str, Any] = policy.definition if policy else {}

    def pick(argument: str, key: str) -> str | None:
        value = queue.arguments[argument] if argument in queue.arguments else definition.get(key)
        return value if isinstance(value, str) else None

    return (
        pick("x-dead-letter-exchange", "dead-letter-exchange"),
        pick("x-dead-letter-routing-key", "dead-letter-routing-key"),
    )


# ---------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True, slots=True)
class Hop:
    """One step of a path: a binding taken, an alternate exchange used, or the default exchange."""

    kind: Literal["binding", "alternate-exchange", "default-exchange"]
    source: str
    destination: str
    destination_type: DestinationType
    binding: Binding | None = field(default=None, compare=False)

    def describe(self) -> str:
        src = _xname(self.source)
        if self.kind == "alternate-exchange":
            return f"{src} =[alternate exchange]=> {self.destination}"
        if self.kind == "default-exchange":
            return f"{src} -[{json.dumps(self.destination, ensure_ascii=False)}]-> {self.destination}"
        assert self.binding is not None
        label = json.dumps(self.binding.routing_key, ensure_ascii=False)
        if self.binding.arguments:
            label += " " + ", ".join(
                f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(self.binding.arguments.items())
            )
        return f"{src} -[{label}]-> {self.destination}"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "source": self.source,
            "destination": self.destination,
            "destination_type": self.destination_type,
        }
        if self.binding is not None:
            data["routing_key"] = self.binding.routing_key
            data["arguments"] = dict(self.binding.arguments)
        return data


@dataclass(frozen=True, slots=True)
class Path:
    """How the message reaches ``queue``: the hops from the exchange it was published to."""

    queue: str
    hops: tuple[Hop, ...]

    @property
    def identity(self) -> tuple[Any, ...]:
        return (self.queue, *((h.kind, h.source, h.destination, h.binding and h.binding.key) for h in self.hops))

    def describe(self) -> str:
        if not self.hops:
            return self.queue
        text = _xname(self.hops[0].source)
        for hop in self.hops:
            text += hop.describe()[len(_xname(hop.source)) :]
        return text

    def to_json(self) -> dict[str, Any]:
        return {"queue": self.queue, "hops": [hop.to_json() for hop in self.hops]}


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Where a message goes when ``queue`` dead-letters it.

    ``exchange`` is ``None`` when the queue has no dead-letter exchange (the message is discarded);
    ``result`` is the routing of the dead letter from ``exchange`` (its own ``dead_letters`` follow the
    next step); ``cycle`` names the queues of a dead-letter cycle the message would enter.
    """

    queue: str
    exchange: str | None
    routing_keys: tuple[str, ...] = ()
    result: RouteResult | None = None
    note: str | None = None
    cycle: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "exchange": self.exchange,
            "routing_keys": list(self.routing_keys),
            "result": self.result.to_json() if self.result is not None else None,
            "note": self.note,
            "cycle": list(self.cycle),
        }


@dataclass(frozen=True, slots=True)
class RouteResult:
    """Where one message goes. ``queues`` are sorted and each appears once."""

    vhost: str
    exchange: str
    routing_keys: tuple[str, ...]
    headers: Mapping[str, Any]
    queues: tuple[str, ...]
    paths: tuple[Path, ...]
    reason: str | None = None
    exchanges: tuple[str, ...] = ()  # every exchange the message passed through, in visiting order
    dead_letters: tuple[DeadLetter, ...] | None = None  # None unless dead_letter=True
    notes: tuple[str, ...] = field(default=())
    refused: Refusal | None = None  # the broker refuses the publish (closes the channel) instead

    @property
    def dropped(self) -> bool:
        return not self.queues

    @property
    def routing_key(self) -> str:
        return self.routing_keys[0] if self.routing_keys else ""

    def paths_to(self, queue: str) -> tuple[Path, ...]:
        return tuple(p for p in self.paths if p.queue == queue)

    def to_json(self) -> dict[str, Any]:
        return {
            "vhost": self.vhost,
            "exchange": self.exchange,
            "routing_key": self.routing_key,
            "routing_keys": list(self.routing_keys),
            "headers": _jsonable(dict(self.headers)),
            "queues": list(self.queues),
            "dropped": self.dropped,
            "reason": self.reason,
            "paths": [p.to_json() for p in self.paths],
            "exchanges": list(self.exchanges),
            "notes": list(self.notes),
            "refused": self.refused,
            "dead_letters": ([d.to_json() for d in self.dead_letters] if self.dead_letters is not None else None),
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _xname(name: str) -> str:
    return "(default exchange)" if name == "" else name


def _q(name: str) -> str:
    return "'" + name + "'"


# ---------------------------------------------------------------------------------------------------
# The router


def route(
    topology: Topology,
    vhost: str,
    exchange: str,
    routing_key: str,
    headers: Mapping[str, Any] | None = None,
    *,
    dead_letter: bool = False,
) -> RouteResult:
    """Route a message published to ``exchange`` in ``vhost`` with ``routing_key`` and ``headers``.

    Raises :class:`~topo.errors.UsageError` when the vhost is not declared. An exchange that is not
    declared, or is internal, gives a dropped result that says so (the broker would refuse the publish).
    """
    return _Router(topology.vhost(vhost)).publish(exchange, routing_key, headers or {}, dead_letter)


def route_within(
    vhost: VHost, exchange: str, routing_keys: Iterable[str], headers: Mapping[str, Any] | None = None
) -> RouteResult:
    """Route as the broker does for messages it sends itself (dead letters): internal exchanges accept
    them, and an exchange that is not declared routes nowhere. ``exchange`` ``""`` is the default one."""
    router = _Router(vhost)
    keys = tuple(routing_keys)
    if exchange != "" and exchange not in router.exchanges:
        reason = f"exchange {_q(exchange)} is not declared"
        return RouteResult(vhost.name, exchange, keys, headers or {}, (), (), reason=reason)
    return router.route_from(exchange, keys, headers or {})


class _Router:
    def __init__(self, vhost: VHost) -> None:
        self.vhost = vhost
        self.exchanges: dict[str, Exchange] = {**BUILTIN_EXCHANGES, **vhost.exchanges}
        self.queues = vhost.queues
        self.by_source: dict[str, list[Binding]] = {}
        for binding in sorted(vhost.bindings.values(), key=lambda b: b.key):
            if binding.source not in self.exchanges or binding.source == "":
                continue  # a binding whose source does not exist cannot exist on the broker
            known = self.queues if binding.destination_type == "queue" else self.exchanges
            if binding.destination not in known:
                continue
            self.by_source.setdefault(binding.source, []).append(binding)

    # -- publishing -----------------------------------------------------------------------------------

    def publish(self, exchange: str, routing_key: str, headers: Mapping[str, Any], dead_letter: bool) -> RouteResult:
        # the broker's order: the exchange first (404, 403), then the message's CC/BCC headers (406)
        keys, headers, problem = _routing_keys(routing_key, headers)
        refused: Refusal | None = None if problem is None else "PRECONDITION_FAILED"
        if exchange != "" and exchange not in self.exchanges:
            problem, refused = f"exchange {_q(exchange)} is not declared", "NOT_FOUND"
        elif exchange != "" and self.exchanges[exchange].internal:
            problem = f"exchange {_q(exchange)} is internal: publishers cannot publish to it"
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
                        text += f"; its alternate exchange {_q(ae)} was visited already"
                    elif ae in self.exchanges or ae == "":
                        text += f", so it goes to the alternate exchange {_q(ae)}"
                        reached[ae] = (*via, Hop("alternate-exchange", name, ae, "exchange"))
                        work.append(ae)
                    else:
                        text += f"; its alternate exchange {_q(ae)} is not declared"
                trace.append(text)
            elif all(hop.destination_type == "exchange" for hop in matched):
                names = ", ".join(_q(h.destination) for h in matched)
                trace.append(f"exchange {_q(name)} sends it only to exchange{'s' if len(matched) > 1 else ''} {names}")
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
        notes = tuple(f"direct reply-to key {_q(k)} is not a queue" for k in keys if _is_reply_to(start, k))
        return RouteResult(self.vhost.name, start, keys, headers, queues, ordered, reason, tuple(order), notes=notes)

    def _type_route(self, name: str, keys: tuple[str, ...], headers: Mapping[str, Any]) -> list[Hop]:
        if name == "":
            return [
                Hop("default-exchange", "", key, "queue")
                for key in dict.fromkeys(keys)
                if key in self.queues and not key.startswith(_REPLY_TO_PREFIX)
            ]
        kind = self.exchanges[name].type
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
            else:  # an exchange type of a plugin: topo cannot know how it routes
                ok = False
            if ok:
                hops.append(Hop("binding", name, b.destination, b.destination_type, b))
        return hops

    def _no_match(self, name: str, keys: tuple[str, ...], headers: Mapping[str, Any]) -> str:
        if name == "":
            return (
                "no queue named " + " or ".join(map(_q, keys)) + " is declared (the default exchange"
                " routes to the queue named by the routing key)"
            )
        kind = self.exchanges[name].type
        if kind in ("fanout", "headers") and not self.by_source.get(name):
            return f"exchange {_q(name)} has no bindings"
        if kind == "headers":
            return f"no binding of exchange {_q(name)} matches headers {_format_headers(headers)}"
        if kind not in ("direct", "topic"):
            return f"exchange {_q(name)} has type {_q(kind)}, which topo cannot route"
        what = "routing key " + _q(keys[0]) if len(keys) == 1 else "routing keys " + ", ".join(map(_q, keys))
        return f"no binding of exchange {_q(name)} matches {what}"

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
                note = f"dead-letter exchange {_q(dlx)} is not declared: the message is discarded"
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


def _only(result: RouteResult, excluded: tuple[str, ...]) -> RouteResult:
    if not excluded:
        return result
    queues = tuple(q for q in result.queues if q not in excluded)
    return RouteResult(result.vhost, result.exchange, result.routing_keys, result.headers, queues, result.paths)


def _with_dead_letters(result: RouteResult, dead_letters: tuple[DeadLetter, ...]) -> RouteResult:
    return RouteResult(
        result.vhost,
        result.exchange,
        result.routing_keys,
        result.headers,
        result.queues,
        result.paths,
        result.reason,
        result.exchanges,
        dead_letters,
        result.notes,
        result.refused,
    )


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
            problem = f"header {_q(name)} must be an array of routing keys: the broker refuses the message"
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
    return json.dumps(_jsonable(dict(headers)), ensure_ascii=False, sort_keys=True)
