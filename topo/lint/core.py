"""The lint machinery: findings, the rule registry, and the runner that applies ``lint: disable``.

A rule is a function over one vhost (a :class:`Context`) that yields findings, registered with
:func:`rule` under a stable code. Rules see every resource, including the ones topo declares itself
(the retry delay queues of ``retry:``), since those take part in routing and dead-lettering; but the
runner drops every finding *about* a generated resource, for every rule: a user cannot fix what they
did not write (see :meth:`Context.generated`). Its docstring is its documentation: a one-line summary, then
paragraphs that say what goes wrong (**Risk**) and what to do (**Fix**); ``docs/lint-rules.md`` is
generated from them (``python -m topo.lint.docs``).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, TypeVar

from topo.errors import UsageError
from topo.model import (
    BUILTIN_EXCHANGES,
    Address,
    Binding,
    BindingPattern,
    Exchange,
    FederationUpstream,
    FederationUpstreamSet,
    Origin,
    Permission,
    Policy,
    Queue,
    Shovel,
    TopicPermissions,
    Topology,
    User,
    VHost,
)
from topo.routing import Router, applied_policy

__all__ = [
    "RULES",
    "Context",
    "Finding",
    "Rule",
    "Severity",
    "check_codes",
    "lint",
    "rule",
]

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")
Subject = (
    Queue
    | Exchange
    | Binding
    | Policy
    | User
    | Permission
    | TopicPermissions
    | Shovel
    | FederationUpstream
    | FederationUpstreamSet
)
Scope = Literal["vhost", "topology"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a rule found, about one resource."""

    code: str
    name: str
    severity: Severity
    message: str
    vhost: str
    address: str  # the resource's path in the topology document
    origin: Origin | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, object]:
        where = self.origin
        return {
            "code": self.code,
            "name": self.name,
            "severity": self.severity,
            "message": self.message,
            "vhost": self.vhost,
            "address": self.address,
            "file": where.file if where else None,
            "line": where.line if where else None,
            "col": where.col if where else None,
        }


@dataclass(frozen=True, slots=True)
class Draft:
    """What a rule yields: the resource it is about and the message; the runner adds the rest."""

    subject: Subject
    message: str


Check = Callable[["Context"], Iterable[Draft]]
TopologyCheck = Callable[[Topology], Iterable[Draft]]
"""A rule over the whole topology (``scope="topology"``): users and their permissions are broker-wide."""


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    name: str
    severity: Severity
    check: Callable[[Any], Iterable[Draft]]  # a Check, or a TopologyCheck for scope "topology"
    scope: Scope = "vhost"

    @property
    def doc(self) -> str:
        return inspect.cleandoc(self.check.__doc__ or "")

    @property
    def summary(self) -> str:
        return self.doc.split("\n", 1)[0]


RULES: dict[str, Rule] = {}
_CODE = re.compile(r"^TL\d{3}$")
F = TypeVar("F", Check, TopologyCheck)


def rule(code: str, name: str, severity: Severity, *, scope: Scope = "vhost") -> Callable[[F], F]:
    """Register a rule. Codes are stable: never reuse one for another meaning. A rule of ``scope="topology"``
    is called once with the whole :class:`Topology` (users and their permissions are broker-wide); the
    others once per vhost, with a :class:`Context`."""

    def register(check: F) -> F:
        if not _CODE.match(code) or code in RULES or severity not in SEVERITIES:
            raise ValueError(f"bad or duplicate lint rule code {code!r}")
        if not check.__doc__:
            raise ValueError(f"lint rule {code} needs a docstring")
        RULES[code] = Rule(code, name, severity, check, scope)
        return check

    return register


class Context:
    """One vhost under lint, with the lookups rules share."""

    def __init__(self, vhost: VHost, topology: Topology | None = None) -> None:
        self.vhost = vhost
        self.topology = topology  # the whole topology, for what is declared beside the vhosts (monitor:)
        self.cache: dict[str, object] = {}  # results rules share (e.g. the dead-letter graph)

    def finding(self, subject: Subject, message: str) -> Draft:
        return Draft(subject, message)

    @cached_property
    def router(self) -> Router:
        """The vhost's bindings indexed for routing (shared by the rules)."""
        return Router(self.vhost)

    @cached_property
    def bindings_to_queue(self) -> dict[str, list[Binding]]:
        """Bindings by destination queue."""
        out: dict[str, list[Binding]] = {}
        for binding in self.vhost.bindings.values():
            if binding.destination_type == "queue":
                out.setdefault(binding.destination, []).append(binding)
        return out

    @cached_property
    def exchanges(self) -> dict[str, Exchange]:
        """Declared exchanges plus the ones every vhost has (``amq.*``)."""
        return {**BUILTIN_EXCHANGES, **self.vhost.exchanges}

    def policy_of(self, subject: Queue | Exchange) -> Policy | None:
        if isinstance(subject, Queue):
            return applied_policy(self.vhost, "queue", subject.name, subject.type)
        return applied_policy(self.vhost, "exchange", subject.name)

    def address(self, subject: Subject) -> Address:
        name = self.vhost.name
        if isinstance(subject, Queue):
            return Address("queue", name, subject.name)
        if isinstance(subject, Exchange):
            return Address("exchange", name, subject.name)
        return subject_address(subject, name)

    def kept_patterns(self, subject: Queue | Exchange) -> tuple[BindingPattern, ...]:
        """The ``keep-bindings`` patterns in force for a queue or exchange (its own, else its vhost's): an
        application may bind it at run time."""
        return subject.keep_bindings if subject.keep_bindings is not None else self.vhost.keep_bindings

    @cached_property
    def runtime_sources(self) -> frozenset[str] | None:
        """Exchanges that ``keep-bindings`` says an application may bind from at run time; None: any."""
        found: set[str] = set()
        subjects: list[Queue | Exchange] = [*self.vhost.queues.values(), *self.vhost.exchanges.values()]
        for subject in subjects:
            for pattern in self.kept_patterns(subject):
                if pattern.exchange is None:
                    return None
                found.add(pattern.exchange)
        return frozenset(found)

    def generated(self, subject: Subject) -> bool:
        """Whether topo declared ``subject`` itself (a retry delay queue, or a binding declared on one)."""
        if isinstance(subject, Queue):
            return subject.generated_by is not None
        if isinstance(subject, Binding) and subject.destination_type == "queue":
            owner = self.vhost.queues.get(subject.destination)
            return owner is not None and owner.generated_by is not None
        return False

    def disabled_for(self, subject: Subject) -> frozenset[str]:
        """Codes disabled on the resource itself (a binding: on its destination, where it is declared)."""
        if isinstance(subject, Queue | Exchange | Shovel):
            return subject.lint_disable
        if isinstance(subject, Binding):
            owner: Queue | Exchange | None = (
                self.vhost.queues.get(subject.destination)
                if subject.destination_type == "queue"
                else self.vhost.exchanges.get(subject.destination)
            )
            return owner.lint_disable if owner is not None else frozenset()
        return frozenset()


def check_codes(codes: Iterable[str]) -> frozenset[str]:
    """Validate codes given by a user (``--disable``); a :class:`UsageError` names unknown ones."""
    _load_rules()
    wanted = frozenset(code.strip().upper() for code in codes if code.strip())
    unknown = sorted(wanted - set(RULES))
    if unknown:
        raise UsageError(
            f"unknown lint rule code{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}",
            hint="known codes: " + ", ".join(sorted(RULES)),
        )
    return wanted


def lint(
    topology: Topology,
    *,
    disable: Iterable[str] = (),
    select: Iterable[str] | None = None,
) -> list[Finding]:
    """Run every registered rule (or only ``select``) over every vhost; findings sorted by place.

    Codes in ``disable``, in ``topology.lint_disable``, and in a queue's or exchange's own
    ``lint_disable`` (for findings about it or the bindings declared on it) are not reported; nor is any
    finding about a resource topo generated (:meth:`Context.generated`).
    """
    _load_rules()
    off = frozenset(disable) | topology.lint_disable
    chosen = [RULES[c] for c in sorted(RULES) if (select is None or c in set(select)) and c not in off]
    findings: list[Finding] = []
    for vhost in topology.vhosts.values():
        ctx = Context(vhost, topology)
        for r in chosen:
            if r.scope != "vhost":
                continue
            for draft in r.check(ctx):
                if r.code in ctx.disabled_for(draft.subject) or ctx.generated(draft.subject):
                    continue
                findings.append(
                    Finding(
                        r.code,
                        r.name,
                        r.severity,
                        draft.message,
                        vhost.name,
                        str(ctx.address(draft.subject)),
                        draft.subject.origin,
                    )
                )
    for r in chosen:
        if r.scope == "topology":
            for draft in r.check(topology):
                address = subject_address(draft.subject, "")
                origin = draft.subject.origin
                findings.append(Finding(r.code, r.name, r.severity, draft.message, address.vhost, str(address), origin))
    return sorted(set(findings), key=_order)


def subject_address(subject: Subject, vhost: str) -> Address:
    """The address of what a finding is about (``vhost``: the vhost being linted, for its resources)."""
    if isinstance(subject, Queue):
        return Address("queue", vhost, subject.name)
    if isinstance(subject, Exchange):
        return Address("exchange", vhost, subject.name)
    if isinstance(subject, Binding):
        return subject.address(vhost)
    if isinstance(subject, User):
        return Address("user", "", subject.name)
    if isinstance(subject, Permission | TopicPermissions):
        return subject.address()
    if isinstance(subject, Shovel):
        return Address("shovel", vhost, subject.name)
    if isinstance(subject, FederationUpstream):
        return Address("federation-upstream", vhost, subject.name)
    if isinstance(subject, FederationUpstreamSet):
        return Address("federation-upstream-set", vhost, subject.name)
    return Address("policy", vhost, subject.name)


def _order(f: Finding) -> tuple[str, int, int, str, str, str]:
    o = f.origin
    return (o.file if o else "", o.line if o else 0, o.col if o else 0, f.address, f.code, f.message)


def _load_rules() -> None:
    from topo.lint import rules  # noqa: F401  (registers every rule on import)


def iter_rules() -> Iterator[Rule]:
    _load_rules()
    for code in sorted(RULES):
        yield RULES[code]
