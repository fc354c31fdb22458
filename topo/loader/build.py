"""From schema-valid documents to one normalised :class:`~topo.model.Topology`, with the checks the
schema cannot express: resources declared twice, references to undeclared exchanges, arguments that do
not fit the queue type, an argument given twice."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from topo.arguments import (
    CONSISTENT_HASH,
    DELAYED_MESSAGE,
    EXCHANGE_TYPES,
    POLICY_KEYS,
    QUEUE_ARGUMENTS,
    QUEUE_TYPES,
    ArgSpec,
    queue_argument,
)
from topo.errors import Problem
from topo.loader.access import AccessBuilder
from topo.loader.links import LINK_COLLECTIONS, LinksBuilder
from topo.loader.source import Document, Path_
from topo.model import (
    BUILTIN_EXCHANGES,
    RESERVED_PREFIX,
    Address,
    Binding,
    BindingPattern,
    CircuitBreaker,
    DestinationType,
    Exchange,
    Origin,
    Policy,
    Queue,
    Topology,
    VHost,
    document_path,
    retry_queue_name,
)
from topo.monitor.spec import MonitorBlock, parse_block
from topo.pcre import compile_pattern
from topo.shortstr import SHORTSTR_MAX, shortstr_excess, too_long_message
from topo.units import MAX_AGE_FORM, MAX_AGE_PATTERN, parse_duration, parse_size

__all__ = ["build_topology"]

_QUORUM_OR_STREAM = ("quorum", "stream")
_COLLECTIONS = ("exchanges", "queues", "policies", "operator-policies", *LINK_COLLECTIONS)
_STRUCTURAL_KEYS = frozenset(
    {
        "type",
        "durable",
        "auto-delete",
        "internal",
        "alternate-exchange",
        "arguments",
        "bindings",
        "retry",
        "prefetch",
        "circuit-breaker",
        "lint",
        "pattern",
        "apply-to",
        "priority",
        "definition",
        "keep-bindings",
        "protect",
    }
)


def keep_bindings(value: Any) -> tuple[BindingPattern, ...] | None:
    """``keep-bindings:`` as patterns (schema-valid input): ``all`` is one pattern that matches anything;
    None when the key is not given."""
    if value is None:
        return None
    if value == "all":
        return (BindingPattern(),)
    return tuple(BindingPattern(item.get("exchange"), item.get("routing-key")) for item in value)


def normalise_value(spec: ArgSpec, value: Any) -> Any:
    """The broker's form of a value for ``spec`` (``"5m"`` → ``300000``). ``ValueError`` if it does not fit."""
    if spec.kind in ("duration", "size"):
        amount = parse_duration(value) if spec.kind == "duration" else parse_size(value)
        if spec.minimum is not None and amount < spec.minimum:
            raise ValueError(f"must be at least {spec.minimum}, got {value!r}")
        return amount
    if spec.kind == "int":
        if spec.key == "ha-params" and isinstance(value, list):
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {value!r}")
        if spec.minimum is not None and value < spec.minimum:
            raise ValueError(f"must be at least {spec.minimum}, got {value}")
        if spec.maximum is not None and value > spec.maximum:
            raise ValueError(f"must be at most {spec.maximum}, got {value}")
        return value
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value
    if spec.kind == "enum":
        if value not in spec.choices:
            raise ValueError("expected one of " + ", ".join(map(repr, spec.choices)) + f", got {value!r}")
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    if spec.key == "max-age" and not re.match(MAX_AGE_PATTERN, value):
        raise ValueError(f"expected stream retention in {MAX_AGE_FORM}, got {value!r}")
    return value


@dataclass
class _Declared:
    """Where each resource was first declared, to report a second declaration at both places."""

    origins: dict[tuple[str, ...], Origin] = field(default_factory=dict)

    def claim(self, key: tuple[str, ...], origin: Origin, what: str, doc: Document, path: Path_) -> Problem | None:
        first = self.origins.get(key)
        if first is None:
            self.origins[key] = origin
            return None
        return doc.problem(
            path,
            f"{what} is declared twice: here and at {first}",
            hint="declare each resource in one place only",
            key=True,
        )


class _Builder:
    def __init__(self) -> None:
        self.topology = Topology()
        self.problems: list[Problem] = []
        self.declared = _Declared()
        self.name_origin: Origin | None = None
        self.bad: set[Path_] = set()  # paths of the current document that broke the schema
        # names declared by resources skipped for schema problems: still count for references
        self.skipped: set[tuple[str, str, str]] = set()
        # where a queue names its dead-letter exchange / an exchange its alternate exchange: (vhost, name)
        self.dlx_places: dict[tuple[str, str], tuple[Origin, str]] = {}
        self.ae_places: dict[tuple[str, str], tuple[Origin, str]] = {}
        self.access = AccessBuilder(self.topology, self.problems.append, self.declared.claim)  # users, ...
        self.links = LinksBuilder(self.problems.append, self.declared.claim)  # shovels, federation

    def broken(self, path: Path_) -> bool:
        """Whether a schema problem at or below ``path`` keeps the resource there from being built.

        Unknown keys (never read) and wrong argument values (reported once, then skipped by
        :meth:`value`) do not: the resource is still built and checked for everything else.
        """
        size = len(path)
        for p in self.bad:
            if p[:size] != path:
                continue
            rest = p[size:]
            if len(rest) == 1 and rest[0] not in _STRUCTURAL_KEYS:
                continue
            if rest and rest[0] == "monitor":
                continue  # reported; only the block is left out (see monitor())
            if len(rest) == 2 and rest[0] == "definition":
                continue
            return True
        return False

    def broken_here(self, path: Path_) -> bool:
        """Whether a schema problem lies at ``path`` or one of its direct keys."""
        size = len(path)
        return any(p[:size] == path and len(p) <= size + 1 for p in self.bad)

    # -- helpers ------------------------------------------------------------------------------
    def origin(self, doc: Document, path: Path_) -> Origin:
        line, col = doc.place(path, key=True)
        return Origin(doc.file, line or 1, col or 1)

    def place(self, doc: Document, path: Path_) -> tuple[Origin, str]:
        """The origin of the value at ``path`` and its dotted document path."""
        line, col = doc.place(path)
        return Origin(doc.file, line or 1, col or 1), document_path(path)

    def problem(self, doc: Document, path: Path_, message: str, hint: str | None = None) -> None:
        self.problems.append(doc.problem(path, message, hint=hint))

    def check_shortstr(self, doc: Document, path: Path_, text: str, what: str, *, key: bool = False) -> bool:
        """A problem when ``text`` (a routing key, an argument's name, ...) does not fit an AMQP short string."""
        size = shortstr_excess(text)
        if size is None:
            return True
        hint = "shorten it"
        if what.endswith("routing key"):
            hint = "no client can publish a message with this key over AMQP 0-9-1; shorten it"
        self.problems.append(doc.problem(path, too_long_message(what, size), hint=hint, key=key))
        return False

    def check_argument_names(self, doc: Document, path: Path_, table: Mapping[str, Any], what: str) -> None:
        """The names of a field table's entries (arguments, headers) are short strings too."""
        for name in table:
            self.check_shortstr(doc, (*path, name), name, what, key=True)

    def check_name(self, doc: Document, path: Path_, name: str, kind: str) -> None:
        """Reported at the name itself (the key), not at the body."""
        if not name:
            message, hint = f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} needs a non-empty name", None
        elif shortstr_excess(name) is not None:
            message, hint = f"{kind} name is longer than {SHORTSTR_MAX} bytes of UTF-8", "shorten it"
        elif kind in ("queue", "exchange") and name.startswith(RESERVED_PREFIX):
            message = f"{kind} names starting with {RESERVED_PREFIX!r} are reserved for the broker"
            hint = "choose another name"
        else:
            return
        self.problems.append(doc.problem(path, message, hint=hint, key=True))

    # -- documents ----------------------------------------------------------------------------
    def document(self, doc: Document, bad: set[Path_]) -> None:
        self.bad = bad
        if self.broken_here(()) or self.broken_here(("vhosts",)) or self.broken(("lint",)):
            return
        data: Mapping[str, Any] = doc.data
        name = data.get("name")
        if name is not None:
            origin = self.origin(doc, ("name",))
            if self.topology.name is None:
                self.topology.name, self.name_origin = name, origin
            elif self.topology.name != name:
                self.problem(
                    doc,
                    ("name",),
                    f"this file says the topology is {name!r}, but {self.name_origin} says {self.topology.name!r}",
                    "all files of one topology share one name",
                )
        disabled = data.get("lint", {}).get("disable", [])
        self.topology.lint_disable = self.topology.lint_disable | frozenset(disabled)
        if "monitor" in data:
            block = self.monitor(doc, ("monitor",), data["monitor"])
            origin = self.origin(doc, ("monitor",))
            problem = self.declared.claim(("monitor",), origin, "the topology-wide monitor block", doc, ("monitor",))
            if problem:
                self.problems.append(problem)
            elif block is not None:
                self.topology.monitor = block
        for vhost_name, body in (data.get("vhosts") or {}).items():
            self.vhost(doc, ("vhosts", vhost_name), vhost_name, body or {})
        self.access.document(doc, self.bad)

    def vhost(self, doc: Document, path: Path_, name: str, body: Mapping[str, Any]) -> None:
        self.check_name(doc, path, name, "vhost")
        if not name:
            return
        if self.broken_here(path) or any(self.broken_here((*path, c)) for c in _COLLECTIONS):
            self.skipped.add(("vhost", name, ""))
            return
        vhost = self.topology.vhosts.get(name)
        if vhost is None:
            vhost = self.topology.vhosts[name] = VHost(name, origin=self.origin(doc, path))
        for key in ("description", "tags", "limits", "keep-bindings", "monitor", "default-queue-type", "tracing"):
            if any(p[: len(path) + 1] == (*path, key) for p in self.bad):
                body = {k: v for k, v in body.items() if k != key}  # reported by the schema check already
            if key in body:
                problem = self.declared.claim(
                    ("vhost-meta", name, key),
                    self.origin(doc, (*path, key)),
                    f"vhost {name!r} {key}",
                    doc,
                    (*path, key),
                )
                if problem:
                    self.problems.append(problem)
        if "description" in body:
            vhost.description = body["description"]
        if "tags" in body:
            vhost.tags = tuple(sorted(set(body["tags"])))
        if "limits" in body:
            vhost.limits = dict(body["limits"])
        if "keep-bindings" in body:
            vhost.keep_bindings = keep_bindings(body["keep-bindings"]) or ()
        if "monitor" in body:
            vhost.monitor = self.monitor(doc, (*path, "monitor"), body["monitor"])
        if "default-queue-type" in body:
            vhost.default_queue_type = body["default-queue-type"]
        if "tracing" in body:
            vhost.tracing = body["tracing"]
        if body.get("protect"):
            vhost.protect = True
        for ex_name, ex_body in (body.get("exchanges") or {}).items():
            self.exchange(doc, (*path, "exchanges", ex_name), vhost, ex_name, ex_body or {})
        for q_name, q_body in (body.get("queues") or {}).items():
            self.queue(doc, (*path, "queues", q_name), vhost, q_name, q_body or {})
        for kind, table in (("policies", vhost.policies), ("operator-policies", vhost.operator_policies)):
            for p_name, p_body in (body.get(kind) or {}).items():
                self.policy(doc, (*path, kind, p_name), vhost, table, kind, p_name, p_body)
        self.links.vhost(doc, path, vhost, body, self.broken)

    def _claim(self, doc: Document, path: Path_, vhost: VHost, kind: str, name: str) -> Origin | None:
        if self.broken(path):
            self.skipped.add((kind, vhost.name, name))
            return None
        origin = self.origin(doc, path)
        problem = self.declared.claim((kind, vhost.name, name), origin, f"{kind} {name!r}", doc, path)
        if problem:
            self.problems.append(problem)
            return None
        return origin

    def exchange(self, doc: Document, path: Path_, vhost: VHost, name: str, body: Mapping[str, Any]) -> None:
        self.check_name(doc, path, name, "exchange")
        origin = self._claim(doc, path, vhost, "exchange", name)
        if origin is None:
            return
        arguments = dict(body.get("arguments") or {})
        self.check_argument_names(doc, (*path, "arguments"), arguments, "argument name")
        if "alternate-exchange" in body:
            if "alternate-exchange" in arguments:
                self.problem(
                    doc,
                    (*path, "arguments", "alternate-exchange"),
                    "alternate-exchange is given twice (as a key and under arguments)",
                    "keep the `alternate-exchange:` key",
                )
            arguments["alternate-exchange"] = body["alternate-exchange"]
        elif "alternate-exchange" in arguments and not isinstance(arguments["alternate-exchange"], str):
            self.problem(
                doc,
                (*path, "arguments", "alternate-exchange"),
                f"expected an exchange name, got {arguments['alternate-exchange']!r}",
            )
        if body["type"] == DELAYED_MESSAGE and arguments.get("x-delayed-type") not in EXCHANGE_TYPES:
            given = arguments.get("x-delayed-type")
            self.problem(
                doc,
                (*path, "arguments", "x-delayed-type") if given is not None else (*path, "type"),
                f"an {DELAYED_MESSAGE} exchange routes as its x-delayed-type says, "
                + (f"and {given!r} is not an exchange type" if given is not None else "and none is given"),
                "add `arguments: {x-delayed-type: direct}` (or fanout, topic, headers)",
            )
        if "alternate-exchange" in arguments:
            ae_key = "alternate-exchange" if "alternate-exchange" in body else "arguments"
            ae_path = (*path, ae_key) if ae_key == "alternate-exchange" else (*path, "arguments", "alternate-exchange")
            self.ae_places[(vhost.name, name)] = self.place(doc, ae_path)
        vhost.exchanges[name] = Exchange(
            name=name,
            type=body["type"],
            durable=body.get("durable", True),
            auto_delete=body.get("auto-delete", False),
            internal=body.get("internal", False),
            arguments=arguments,
            origin=origin,
            lint_disable=frozenset(body.get("lint", {}).get("disable", [])),
            keep_bindings=keep_bindings(body.get("keep-bindings")),
            protect=bool(body.get("protect", False)),
        )
        self.bindings(doc, path, vhost, name, "exchange", body.get("bindings") or [])

    def queue(self, doc: Document, path: Path_, vhost: VHost, name: str, body: Mapping[str, Any]) -> None:
        self.check_name(doc, path, name, "queue")
        origin = self._claim(doc, path, vhost, "queue", name)
        if origin is None:
            return
        qtype: str = body.get("type", "classic")
        arguments: dict[str, Any] = {}
        for key, spec in QUEUE_ARGUMENTS.items():
            if key in body:
                arguments[spec.argument] = self.value(doc, (*path, key), spec, body[key])
        self.check_argument_names(doc, (*path, "arguments"), body.get("arguments") or {}, "argument name")
        for arg, value in (body.get("arguments") or {}).items():
            arg_path = (*path, "arguments", arg)
            if arg == "x-queue-type":
                if "type" in body:
                    self.problem(
                        doc,
                        arg_path,
                        "x-queue-type is given twice: as `type:` and under `arguments:`",
                        "keep only `type:`",
                    )
                elif value not in QUEUE_TYPES:
                    self.problem(
                        doc,
                        arg_path,
                        f"unknown queue type {value!r}",
                        "expected one of " + ", ".join(QUEUE_TYPES) + "; better, write `type:`",
                    )
                else:
                    qtype = value
                continue
            known = queue_argument(arg)
            if known is not None:
                if known.argument in arguments:
                    self.problem(
                        doc,
                        arg_path,
                        f"{arg} is given twice: as `{known.key}:` and under `arguments:`",
                        f"keep only `{known.key}:`",
                    )
                    continue
                value = self.value(doc, arg_path, known, value)
            arguments[arg] = value
        durable = body.get("durable", True)
        auto_delete = body.get("auto-delete", False)
        if qtype in _QUORUM_OR_STREAM:
            if not durable:
                self.problem(doc, (*path, "durable"), f"{qtype} queues are always durable", "remove `durable: false`")
            if auto_delete:
                self.problem(doc, (*path, "auto-delete"), f"{qtype} queues cannot be auto-delete")
        for arg in arguments:
            known = queue_argument(arg)
            if known is not None and qtype not in known.queue_types:
                where = (*path, known.key) if known.key in body else (*path, "arguments", arg)
                kinds = " and ".join(sorted(known.queue_types))
                self.problem(
                    doc,
                    where,
                    f"{known.key} does not apply to a {qtype} queue (only to {kinds} queues)",
                    "RabbitMQ rejects it or silently ignores it; remove it or change the queue type",
                )
        if "x-dead-letter-exchange" in arguments:
            dlx_path = (
                (*path, "dead-letter-exchange")
                if "dead-letter-exchange" in body
                else (*path, "arguments", "x-dead-letter-exchange")
            )
            self.dlx_places[(vhost.name, name)] = self.place(doc, dlx_path)
        dlrk = arguments.get("x-dead-letter-routing-key")
        if isinstance(dlrk, str):  # a dead letter carries it as its routing key
            key_path = (
                (*path, "dead-letter-routing-key")
                if "dead-letter-routing-key" in body
                else (*path, "arguments", "x-dead-letter-routing-key")
            )
            self.check_shortstr(doc, key_path, dlrk, "dead-letter routing key")
        delays = tuple(parse_duration(d) for d in (body.get("retry") or {}).get("delays", []))
        if delays and qtype == "stream":
            self.problem(
                doc,
                (*path, "retry"),
                "retry does not apply to a stream: a stream keeps every message and delivers nothing again",
                "remove `retry:`; a consumer that failed reads the stream again from its offset",
            )
            delays = ()
        breaker = self.circuit_breaker(doc, (*path, "circuit-breaker"), body, qtype)
        vhost.queues[name] = Queue(
            name=name,
            type=qtype,
            durable=durable,
            auto_delete=auto_delete,
            arguments=arguments,
            origin=origin,
            prefetch=body.get("prefetch"),
            retry_delays=delays,
            circuit_breaker=breaker,
            lint_disable=frozenset(body.get("lint", {}).get("disable", [])),
            keep_bindings=keep_bindings(body.get("keep-bindings")),
            monitor=self.monitor(doc, (*path, "monitor"), body["monitor"]) if "monitor" in body else None,
            protect=bool(body.get("protect", False)),
        )
        for attempt, delay in enumerate(delays, start=1):
            retry_name = retry_queue_name(name, attempt)
            if shortstr_excess(retry_name) is not None:
                self.problem(
                    doc,
                    (*path, "retry"),
                    f"the retry queue name {retry_name!r} is longer than {SHORTSTR_MAX} bytes of UTF-8",
                    "shorten the queue's name: its retry queues are called <queue>.retry.N",
                )
                break
            if self._claim(doc, (*path, "retry"), vhost, "queue", retry_name) is None:
                continue
            vhost.queues[retry_name] = Queue(
                name=retry_name,
                arguments={
                    "x-message-ttl": delay,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": name,
                },
                origin=origin,
                generated_by=name,
            )
        self.bindings(doc, path, vhost, name, "queue", body.get("bindings") or [])

    def circuit_breaker(self, doc: Document, path: Path_, body: Mapping[str, Any], qtype: str) -> CircuitBreaker | None:
        """A queue's ``circuit-breaker:``; None when absent or wrong (the problem is reported)."""
        value = body.get("circuit-breaker")
        if value is None or any(p[: len(path)] == path for p in self.bad):
            return None  # absent, or the schema check reported it
        if qtype == "stream":
            self.problem(
                doc,
                path,
                "circuit-breaker does not apply to a stream: a stream's failed message is not delivered again, "
                "and stopping a stream's consumer would lose its place",
                "remove `circuit-breaker:`; a stream consumer reads again from an offset",
            )
            return None
        open_for = parse_duration(value["open-for"])
        if open_for <= 0:
            self.problem(doc, (*path, "open-for"), "open-for must be more than 0", "e.g. open-for: 30s")
            return None
        return CircuitBreaker(failures=value["failures"], open_for_ms=open_for)

    def monitor(self, doc: Document, path: Path_, body: Mapping[str, Any]) -> MonitorBlock | None:
        """A ``monitor:`` block; None when the schema check found a problem in it (reported already)."""
        size = len(path)
        if any(p[:size] == path for p in self.bad):
            return None

        def report(sub: tuple[str, ...], message: str, hint: str | None) -> None:
            self.problem(doc, (*path, *sub), message, hint)

        return parse_block(body, report, self.origin(doc, path))

    def value(self, doc: Document, path: Path_, spec: ArgSpec, value: Any) -> Any:
        if path in self.bad:
            return value  # reported by the schema check already
        try:
            return normalise_value(spec, value)
        except ValueError as exc:
            hint = None
            if isinstance(value, str) and value.strip().isdigit() and spec.kind in ("int", "duration", "size"):
                number = value.strip()
                hint = f'write it without quotes: RabbitMQ compares argument types, and "{number}" is not {number}'
            self.problem(doc, path, str(exc), hint)
            return value

    def bindings(
        self,
        doc: Document,
        path: Path_,
        vhost: VHost,
        destination: str,
        destination_type: DestinationType,
        items: list[Mapping[str, Any]],
    ) -> None:
        for index, item in enumerate(items):
            b_path = (*path, "bindings", index)
            arguments = dict(item.get("arguments") or {})
            routing_key = str(item.get("routing-key", ""))
            self.check_shortstr(doc, (*b_path, "routing-key"), routing_key, "routing key")
            self.check_argument_names(doc, (*b_path, "arguments"), arguments, "argument name")
            self.check_argument_names(doc, (*b_path, "headers"), item.get("headers") or {}, "header name")
            if "match" in item or "headers" in item:
                if "x-match" in arguments:
                    self.problem(doc, b_path, "x-match is given twice (`match:` and under `arguments:`)")
                arguments["x-match"] = item.get("match", "all")
                for header, value in (item.get("headers") or {}).items():
                    if header in arguments:
                        self.problem(doc, (*b_path, "headers", header), f"header {header!r} is given twice")
                    arguments[header] = value
            binding = Binding(
                source=item["exchange"],
                destination=destination,
                destination_type=destination_type,
                routing_key=routing_key,
                arguments=arguments,
                origin=self.origin(doc, b_path),
                protect=bool(item.get("protect", False)),
            )
            key = binding.key  # computed once: it serialises the arguments
            if key in vhost.bindings:
                first = vhost.bindings[key].origin
                self.problem(doc, b_path, f"the same binding is declared twice (first at {first})")
                continue
            vhost.bindings[key] = binding

    def policy(
        self,
        doc: Document,
        path: Path_,
        vhost: VHost,
        table: dict[str, Policy],
        kind: str,
        name: str,
        body: Mapping[str, Any],
    ) -> None:
        what = "operator policy" if kind == "operator-policies" else "policy"
        origin = self._claim(doc, path, vhost, what, name)
        if origin is None:
            return
        try:
            compile_pattern(body["pattern"])
        except re.error as exc:
            self.problem(doc, (*path, "pattern"), f"invalid regular expression: {exc}")
        definition = {
            key: self.value(doc, (*path, "definition", key), POLICY_KEYS[key], value)
            for key, value in body["definition"].items()
            if key in POLICY_KEYS
        }
        table[name] = Policy(
            name=name,
            pattern=body["pattern"],
            apply_to=body.get("apply-to", "all"),
            priority=body.get("priority", 0),
            definition=definition,
            origin=origin,
            protect=bool(body.get("protect", False)),
        )

    # -- references across files ----------------------------------------------------------------
    def references(self) -> None:
        # a vhost that could not be read in some file: references into it cannot be judged
        unreadable = {v for kind, v, _ in self.skipped if kind == "vhost"}
        for vhost in self.topology.vhosts.values():
            if vhost.name in unreadable:
                continue
            skipped = {name for kind, v, name in self.skipped if kind == "exchange" and v == vhost.name}
            known = set(vhost.exchanges) | set(BUILTIN_EXCHANGES) | skipped
            hashed = {name for name, x in vhost.exchanges.items() if x.type == CONSISTENT_HASH}
            for binding in vhost.bindings.values():
                if binding.source in hashed and not _is_weight(binding.routing_key):
                    self._ref_problem(
                        str(binding.address(vhost.name)),
                        binding.origin,
                        f"a binding of {CONSISTENT_HASH} exchange {binding.source!r} needs a weight as its routing "
                        f"key (a whole number from 1), got {binding.routing_key!r}",
                        'RabbitMQ refuses any other key; give each queue its share, e.g. routing-key: "1"',
                    )
                if binding.source != "" and binding.source in known:
                    continue  # the common case: nothing to report, no address to format
                where = str(binding.address(vhost.name))
                if binding.source == "":
                    self._ref_problem(
                        where,
                        binding.origin,
                        "the default exchange cannot be bound to: it routes to the queue named by the key",
                        "publish to the default exchange with the queue's name as routing key instead",
                    )
                else:
                    self._ref_problem(
                        where,
                        binding.origin,
                        _missing(binding.source, vhost.name),
                        "declare it under `exchanges:`",
                    )
            for queue in vhost.queues.values():
                self._exchange_ref(
                    vhost.name,
                    known,
                    Address("queue", vhost.name, queue.name),
                    queue.dead_letter_exchange,
                    queue.origin,
                    self.dlx_places,
                    "dead-letter",
                    "declare it, or dead letters are dropped",
                )
            for exchange in vhost.exchanges.values():
                self._exchange_ref(
                    vhost.name,
                    known,
                    Address("exchange", vhost.name, exchange.name),
                    exchange.alternate_exchange,
                    exchange.origin,
                    self.ae_places,
                    "alternate",
                    "declare it, or unroutable messages are dropped",
                )

    def _exchange_ref(
        self,
        vhost: str,
        known: set[str],
        owner: Address,
        target: str | None,
        origin: Origin | None,
        places: Mapping[tuple[str, str], tuple[Origin | None, str]],
        role: str,
        hint: str,
    ) -> None:
        """A dead-letter or alternate exchange that ``owner`` names must be declared in its vhost."""
        if not target or target in known:
            return
        where, path = places.get((vhost, owner.name), (origin, f"{owner}.{role}-exchange"))
        self._ref_problem(path, where, f"{role} {_missing(target, vhost)}", hint)

    def _ref_problem(self, path: str, origin: Origin | None, message: str, hint: str) -> None:
        file, line, col = (origin.file, origin.line, origin.col) if origin else (None, None, None)
        self.problems.append(Problem(message, file=file, line=line, col=col, path=path, hint=hint))


def _is_weight(key: str) -> bool:
    return key.isascii() and key.isdigit() and int(key) > 0


def _missing(exchange: str, vhost: str) -> str:
    return f"exchange {exchange!r} is not declared in vhost {vhost!r}"


def build_topology(docs: list[tuple[Document, set[Path_]]]) -> tuple[Topology, list[Problem]]:
    """Merge parsed documents into one Topology; returns it with every problem found.

    Each document comes with the paths where it broke the schema: resources there are skipped (their
    schema problems are reported already), everything else is built and checked.
    """
    builder = _Builder()
    for doc, bad in docs:
        builder.document(doc, bad)
    builder.references()
    return builder.topology, builder.problems
