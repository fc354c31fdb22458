"""An in-memory RabbitMQ for fast tests of the engine: the Management API served through
``httpx.MockTransport`` (so the live adapter, :class:`topo.broker.live.LiveBroker`, and its HTTP client run
as they do against a node), and an AMQP side (:class:`FakeAmqp`, the port's ``Amqp``) on the same state.

It models what the engine relies on, as RabbitMQ 3.10.8 answers (each behaviour was seen on a node; the
live tests prove the adapter against a real one):

- vhosts: ``PUT`` replaces the metadata (what the body leaves out is cleared), limits, ``GET /vhosts``;
- ``GET /definitions/{v}`` (no ``amq.*`` exchanges, no default-exchange bindings); ``POST`` merges: it
  creates what is missing and never changes what exists (an existing queue keeps its arguments);
- exchanges, queues (with ready messages, unacknowledged messages and consumers), bindings with their
  ``properties_key`` (``k``, or ``k~hash`` with arguments), listed with the default exchange's implicit ones;
- ``DELETE /queues/..?if-empty&if-unused``: 400 for a classic queue that holds messages or has consumers,
  and 400 for either flag on a quorum queue ("not supported by quorum queues");
- policies and operator policies; a fence (the highest-priority policy on a queue with ``max-length: 0``
  and ``overflow: reject-publish``) makes the AMQP side refuse a second probe;
- the overview: cluster name (the ``cluster_name`` global parameter when set), exchange types;
- users: every request authenticates (basic auth: 401 for an unknown user or a wrong password; ``guest``
  / ``guest``, an administrator, to begin with); ``PUT`` needs ``tags`` (400 without), refuses ``password``
  with ``password_hash`` (400), stores a ``password`` with a fresh salt each time, a ``password_hash`` as it
  is, and **clears the password when neither is sent** (RabbitMQ's trap); reading users, permissions and
  global parameters needs the administrator tag (403); a user's delete takes its permissions, topic
  permissions and limits along; user limits;
- permissions (all three patterns, PCRE-checked: 400 ``invalid_regexp``; 400 for a vhost or user that does
  not exist), the ``.*`` grant a vhost's creator gets; topic permissions, one entry per exchange, deleted
  only all at once;
- vhost settings: ``defaultqueuetype`` taken at creation only (``"undefined"`` without one), ``tracing``
  set when the PUT names it and kept when it does not;
- global parameters;
- runtime parameters of a vhost (shovels, federation upstreams and sets: the component exists only with its
  plugin, else 400 "component ... not found"; a shovel's unknown key is refused with the value quoted back, URIs
  and all), and ``GET /nodes``' ``enabled_plugins`` (``FakeRabbit(plugins=...)``).

Faults are injected with :meth:`FakeRabbit.fail` (a request answered with an error) and
:meth:`FakeRabbit.ignore` (a write answered 2xx and not made: the next read shows it). ``log`` lists every
request as ``"METHOD /path"`` (path decoded), for ordering checks. Statistics are exact here unless a test
sets ``FakeQueue.stats`` (what a lagging ``GET /queues/{v}/{q}`` shows).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx

from topo.broker.client import ManagementClient
from topo.broker.live import LiveBroker
from topo.broker.port import PROBE_ID_PREFIX, Catching, Deleted, DropCheck, Moved, NoExactCount
from topo.model import canonical_json
from topo.passwords import DEFAULT_ALGORITHM, hash_password, matches
from topo.pcre import compile_pattern

URL = "http://guest:guest@fake-rabbit:15672"

_COMPONENT_PLUGINS = {
    "shovel": "rabbitmq_shovel",
    "federation-upstream": "rabbitmq_federation",
    "federation-upstream-set": "rabbitmq_federation",
}
_SHOVEL_KEYS = frozenset(
    {
        "src-uri", "src-protocol", "src-queue", "src-exchange", "src-exchange-key", "src-prefetch-count",
        "src-delete-after", "dest-uri", "dest-protocol", "dest-queue", "dest-exchange", "dest-exchange-key",
        "dest-add-forward-headers", "dest-add-timestamp-header", "dest-publish-properties", "ack-mode",
        "reconnect-delay", "prefetch-count", "delete-after", "add-forward-headers", "publish-properties",
    }
)  # fmt: skip


@dataclass
class Message:
    message_id: str = ""


@dataclass
class FakeQueue:
    name: str
    durable: bool = True
    auto_delete: bool = False
    arguments: dict[str, Any] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)  # ready, in order
    unacked: int = 0
    consumers: int = 0
    stats: dict[str, Any] | None = None  # what GET /queues/{v}/{q} shows instead (lagging statistics)

    @property
    def type(self) -> str:
        return str(self.arguments.get("x-queue-type") or "classic")

    def definition(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "durable": self.durable,
            "auto_delete": self.auto_delete,
            "arguments": self.arguments,
        }


@dataclass
class FakeUser:
    name: str
    password_hash: str = ""
    hashing_algorithm: str = DEFAULT_ALGORITHM
    tags: list[str] = field(default_factory=list)
    limits: dict[str, int] = field(default_factory=dict)

    def definition(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "password_hash": self.password_hash,
            "hashing_algorithm": self.hashing_algorithm,
            "tags": list(self.tags),
            "limits": dict(self.limits),
        }


@dataclass
class FakeVHost:
    name: str
    description: str = ""
    tags: list[str] = field(default_factory=list)
    default_queue_type: str = "undefined"
    tracing: bool = False
    limits: dict[str, int] = field(default_factory=dict)
    exchanges: dict[str, dict[str, Any]] = field(default_factory=dict)
    queues: dict[str, FakeQueue] = field(default_factory=dict)
    bindings: list[dict[str, Any]] = field(default_factory=list)
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    operator_policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    parameters: dict[tuple[str, str], Any] = field(default_factory=dict)  # (component, name) → value


def properties_key(routing_key: str, arguments: Mapping[str, Any]) -> str:
    if not arguments:
        return routing_key
    digest = hashlib.sha1(canonical_json(dict(arguments)).encode()).hexdigest()[:8]
    return f"{routing_key}~{digest}"


def _binding_key(item: Mapping[str, Any]) -> tuple[str, str, str, str, str]:
    return (
        item["source"],
        item["destination_type"],
        item["destination"],
        item.get("routing_key", ""),
        canonical_json(dict(item.get("arguments") or {})),
    )


class HttpError(Exception):
    def __init__(self, status: int, reason: str, error: str = "bad_request") -> None:
        super().__init__(reason)
        self.status, self.reason, self.error = status, reason, error


NOT_FOUND = HttpError(404, "Not Found", "Object Not Found")


@dataclass
class Fault:
    method: str
    pattern: re.Pattern[str]
    skip: int  # matching requests let through before this one
    status: int | None  # None: ignore (answer 204, change nothing)
    reason: str
    times: int  # how many matching requests it hits (after skip)
    then: Callable[[], None] | None = None  # for on(): run before the request is handled


class FakeRabbit:
    """The broker's state and its Management API (:meth:`handle`, :meth:`transport`)."""

    def __init__(
        self, cluster_name: str = "rabbit@fake", exchange_types: Sequence[str] = (), plugins: Sequence[str] = ()
    ) -> None:
        self.plugins = ["rabbitmq_management", *plugins]  # enabled on the (one) node
        self.node_statistics = True  # False: GET /nodes lists no enabled_plugins (a node just started)
        self.node_name = cluster_name  # the cluster's name until the cluster_name global parameter is set
        self.exchange_types = ["direct", "fanout", "headers", "topic", *exchange_types]
        self.vhosts: dict[str, FakeVHost] = {}
        self.users: dict[str, FakeUser] = {"guest": FakeUser("guest", hash_password("guest"), tags=["administrator"])}
        self.permissions: dict[tuple[str, str], dict[str, str]] = {}  # (user, vhost) → configure, write, read
        self.topic_permissions: dict[tuple[str, str], dict[str, dict[str, str]]] = {}  # → exchange → write, read
        self.global_parameters: dict[str, Any] = {"internal_cluster_id": "rabbitmq-cluster-id-fake"}
        self.requester = "guest"  # the user of the request being handled
        self.log: list[str] = []
        self.faults: list[Fault] = []
        self._write_fault: int | None = None  # fail_write: writes to let through first
        self.amqp = FakeAmqp(self)

    # -- set-up and faults ------------------------------------------------------------------------
    def client(self, *, amqp: bool = True) -> ManagementClient:
        """A Management API client on this broker (``amqp=False``: exact counts off)."""
        return ManagementClient(URL, transport=self.transport(), amqp_url=None if amqp else "")

    def broker(self, *, amqp: bool = True) -> LiveBroker:
        """The live adapter on this broker; with ``amqp``, this broker's AMQP side for exact counts."""
        client = self.client(amqp=amqp)
        return LiveBroker(client, amqp=self.amqp if amqp else None, stats_lag=0.0)  # statistics are exact here

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def fail(
        self,
        method: str,
        path: str,
        *,
        skip: int = 0,
        status: int = 500,
        reason: str = "injected failure",
        times: int = 1,
    ) -> None:
        """Answer the request(s) ``method`` whose path matches the regular expression ``path`` (after
        ``/api``) with ``status`` and ``reason``, after letting ``skip`` of them through."""
        self.faults.append(Fault(method, re.compile(path), skip, status, reason, times))

    def ignore(self, method: str, path: str, *, skip: int = 0, times: int = 1) -> None:
        """Answer the matching request(s) with success and change nothing (a write that is lost)."""
        self.faults.append(Fault(method, re.compile(path), skip, None, "", times))

    def on(self, method: str, path: str, then: Callable[[], None], *, times: int = 1) -> None:
        """Run ``then`` just before the matching request(s) are handled (something happening meanwhile)."""
        self.faults.append(Fault(method, re.compile(path), 0, 0, "", times, then))

    def fail_write(self, number: int) -> None:
        """Fail the ``number``-th write (PUT, POST, DELETE) from now on (0: the next one)."""
        self._write_fault = number

    @property
    def cluster_name(self) -> str:
        return str(self.global_parameters.get("cluster_name", self.node_name))

    def vhost(self, name: str) -> FakeVHost:
        return self.vhosts[name]

    def add_user(self, name: str, password: str, *tags: str) -> None:
        """A user made by hand (as ``rabbitmqctl add_user`` would), with permissions nowhere."""
        self.users[name] = FakeUser(name, hash_password(password), tags=list(tags))

    def publish(self, vhost: str, queue: str, count: int = 1, message_id: str = "m") -> None:
        """``count`` messages straight into ``queue`` (as a publisher by the default exchange would)."""
        self.vhosts[vhost].queues[queue].messages += [Message(f"{message_id}{i}") for i in range(count)]

    def writes(self) -> list[str]:
        return [entry for entry in self.log if not entry.startswith("GET ")]

    # -- the HTTP side ----------------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        raw = request.url.raw_path.decode().split("?")[0]
        assert raw.startswith("/api/"), raw
        parts = [unquote(p) for p in raw[len("/api/") :].split("/")]
        path = "/" + "/".join(parts)
        self.log.append(f"{request.method} {path}")
        refused = self._authenticate(request)
        if refused is not None:
            return refused
        if request.method != "GET" and self._write_fault is not None:
            if self._write_fault == 0:
                self._write_fault = None
                return self._json(500, {"error": "injected", "reason": "injected failure"})
            self._write_fault -= 1
        for fault in self.faults:
            if fault.method == request.method and fault.times and fault.pattern.search(path):
                if fault.skip:
                    fault.skip -= 1
                    continue
                fault.times -= 1
                if fault.then is not None:
                    fault.then()
                    continue
                if fault.status is None:
                    return httpx.Response(204)
                return self._json(fault.status, {"error": "injected", "reason": fault.reason})
        body = json.loads(request.content) if request.content else None
        params = dict(request.url.params)
        try:
            status, answer = self._route(request.method, parts, body, params)
        except HttpError as exc:
            return self._json(exc.status, {"error": exc.error, "reason": exc.reason})
        return self._json(status, answer) if answer is not None else httpx.Response(status)

    @staticmethod
    def _json(status: int, body: Any) -> httpx.Response:
        return httpx.Response(status, json=body)

    def _authenticate(self, request: httpx.Request) -> httpx.Response | None:
        """Basic auth against the users (None: let in): 401 for an unknown user or a wrong password."""
        header = request.headers.get("authorization", "")
        name, _, password = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
        if not self.logs_in(name, password):
            return self._json(401, {"error": "not_authorised", "reason": "Login failed"})
        self.requester = name
        return None

    def logs_in(self, user: str, password: str) -> bool:
        """Whether ``user`` logs in with ``password`` (checked against its stored hash, as the broker does)."""
        found = self.users.get(user)
        return found is not None and matches(password, found.password_hash, found.hashing_algorithm)

    def _administrator(self) -> None:
        if "administrator" not in self.users[self.requester].tags:
            raise HttpError(403, "Not administrator user", "not_authorised")

    def _vh(self, name: str) -> FakeVHost:
        if name not in self.vhosts:
            raise NOT_FOUND
        return self.vhosts[name]

    def _route(self, method: str, parts: list[str], body: Any, params: Mapping[str, str]) -> tuple[int, Any]:
        head, rest = parts[0], parts[1:]
        handler: Callable[..., tuple[int, Any]] | None = getattr(self, f"_{head.replace('-', '_')}", None)
        if handler is None:
            raise NOT_FOUND
        return handler(method, rest, body or {}, params)

    def _overview(self, method: str, rest: list[str], body: Any, params: Mapping[str, str]) -> tuple[int, Any]:
        return 200, {"cluster_name": self.cluster_name, "exchange_types": [{"name": t} for t in self.exchange_types]}

    def _vhosts(self, method: str, rest: list[str], body: Any, params: Mapping[str, str]) -> tuple[int, Any]:
        if not rest:
            return 200, [{"name": n} for n in sorted(self.vhosts)]
        (name,) = rest
        if method == "GET":
            vh = self._vh(name)
            return 200, {
                "name": name,
                "description": vh.description,
                "tags": list(vh.tags),
                "default_queue_type": vh.default_queue_type,
                "tracing": vh.tracing,
            }
        if method == "PUT":  # replaces the metadata: what the body leaves out is cleared
            created = name not in self.vhosts
            vh = self.vhosts.setdefault(name, FakeVHost(name))
            vh.description = body.get("description", "")
            vh.tags = [t for t in str(body.get("tags", "")).split(",") if t]
            if created:  # the default queue type is taken at creation only; the creator gets .* on it
                vh.default_queue_type = str(body.get("defaultqueuetype", "undefined"))
                self.permissions[(self.requester, name)] = {"configure": ".*", "write": ".*", "read": ".*"}
            if "tracing" in body:  # kept when the PUT does not name it
                vh.tracing = bool(body["tracing"])
            return 201 if created else 204, None
        if method == "DELETE":
            self._vh(name)
            del self.vhosts[name]
            for table in (self.permissions, self.topic_permissions):
                for key in [k for k in table if k[1] == name]:
                    del table[key]
            return 204, None
        raise NOT_FOUND

    def _vhost_limits(self, method: str, rest: list[str], body: Any, params: Mapping[str, str]) -> tuple[int, Any]:
        name, key = rest
        vh = self._vh(name)
        if method == "PUT":
            vh.limits[key] = int(body["value"])
            return 204, None
        if key not in vh.limits:
            raise NOT_FOUND
        del vh.limits[key]
        return 204, None

    def _definitions(self, method: str, rest: list[str], body: Any, params: Mapping[str, str]) -> tuple[int, Any]:
        (name,) = rest
        if name not in self.vhosts:
            raise HttpError(404, "vhost_not_found", "not_found")
        vh = self.vhosts[name]
        if method == "GET":
            parameters = [
                {"vhost": name, "component": "operator_policy", "name": n, "value": p}
                for n, p in vh.operator_policies.items()
            ]
            if vh.limits:
                parameters.append({"vhost": name, "component": "vhost-limits", "name": "limits", "value": vh.limits})
            for (component, pname), value in vh.parameters.items():
                parameters.append({"vhost": name, "component": component, "name": pname, "value": value})
            return 200, {
                "rabbit_version": "3.10.8",
                "parameters": parameters,
                "policies": [{"vhost": name, "name": n, **p} for n, p in vh.policies.items()],
                "queues": [q.definition() for q in vh.queues.values()],
                "exchanges": list(vh.exchanges.values()),
                "bindings": [{k: v for k, v in b.items() if k != "properties_key"} for b in vh.bindings],
            }
        # POST merges: creates what is missing, never changes what exists
        for item in body.get("exchanges") or []:
            vh.exchanges.setdefault(item["name"], dict(item))
        for item in body.get("queues") or []:
            if item["name"] not in vh.queues:
                vh.queues[item["name"]] = FakeQueue(
                    item["name"],
                    bool(item.get("durable", True)),
                    bool(item.get("auto_delete", False)),
                    dict(item.get("arguments") or {}),
                )
        for item in body.get("bindings") or []:
            self._bind(vh, dict(item))
        return 201, None

    def _bind(self, vh: FakeVHost, item: dict[str, Any]) -> None:
        item.setdefault("routing_key", "")
        item["arguments"] = dict(item.get("arguments") or {})
        if item["source"] not in vh.exchanges and not item["source"].startswith("amq."):
            raise NOT_FOUND
        targets = vh.queues if item["destination_type"] == "queue" else vh.exchanges
        if item["destination"] not in targets and not item["destination"].startswith("amq."):
            raise NOT_FOUND
        if all(_binding_key(b) != _binding_key(item) for b in vh.bindings):
            item["properties_key"] = properties_key(item["routing_key"], item["arguments"])
            vh.bindings.append(item)

    def _exchanges(self, method: str, rest: list[str], body: Any, params: Mapping[str, str]) -> tuple[int, Any]:
        vhost, name = rest
        vh = self._vh(vhost)
        if method == "DELETE":
            if name not in vh.exchanges:
                raise NOT_FOUND
            del vh.exchanges[name]
            vh.bindings = [
                b
                for b in vh.bindings
                if b["source"] != name and not (b["destination_type"] == "exchange" and b["destination"] == name)
            ]
            return 204, None
        if method == "PUT":
            vh.exchanges.setdefault(
                name,
                {
                    "name": name,
                    "type": "direct",
                    "durable": True,
                    "auto_delete": False,
                    "internal": False,
                    "arguments": {},
                    **body,
                },
            )
            return 201, None
        raise NOT_FOUND

    def _queues(self, method: str, rest: list[str], body: Any, params: Mapping[str, str]) -> tuple[int, Any]:
        vhost, name = rest
        vh = self._vh(vhost)
        queue = vh.queues.get(name)
        if queue is None:
            raise NOT_FOUND
        if method == "GET":
            if queue.stats is not None:
                return 200, {"name": name, "type": queue.type, **queue.stats}
            ready = len(queue.messages)
            return 200, {
                "name": name,
                "type": queue.type,
                "messages_ready": ready,
                "messages_unacknowledged": queue.unacked,
                "messages": ready + queue.unacked,
                "consumers": queue.consumers,
            }
        if method == "DELETE":
            flags = [f for f in ("if-empty", "if-unused") if params.get(f) == "true"]
            if flags and queue.type == "quorum":
                raise HttpError(
                    400,
                    f"cannot delete queue '{name}' in vhost '{vhost}'. queue.delete operations with {flags[-1]} flag "
                    "set are not supported by quorum queues",
                )
            if "if-empty" in flags and (queue.messages or queue.unacked):
                raise HttpError(400, f"queue '{name}' in vhost '{vhost}' not empty")
            if "if-unused" in flags and queue.consumers:
                raise HttpError(400, f"queue '{name}' in vhost '{vhost}' in use")
            self.drop_queue(vh, name)
            return 204, None
        raise NOT_FOUND

    def drop_queue(self, vh: FakeVHost, name: str) -> int:
        """Delete queue ``name`` and its bindings; the ready messages it held."""
        queue = vh.queues.pop(name)
        vh.bindings = [b for b in vh.bindings if not (b["destination_type"] == "queue" and b["destination"] == name)]
        return len(queue.messages)

    def _bindings(self, method: str, rest: list[str], body: Any, params: Mapping[str, str]) -> tuple[int, Any]:
        vh = self._vh(rest[0])
        if len(rest) == 1:
            implicit = [
                {
                    "source": "",
                    "vhost": vh.name,
                    "destination": q,
                    "destination_type": "queue",
                    "routing_key": q,
                    "arguments": {},
                    "properties_key": q,
                }
                for q in vh.queues
            ]
            return 200, implicit + [{"vhost": vh.name, **b} for b in vh.bindings]
        _, e, source, kind, destination, *key = rest
        assert e == "e" and kind in ("q", "e")
        dtype = "queue" if kind == "q" else "exchange"
        if method == "POST":
            self._bind(vh, {"source": source, "destination": destination, "destination_type": dtype, **body})
            return 201, None
        if method == "DELETE":
            (props,) = key
            for b in vh.bindings:
                if (b["source"], b["destination"], b["destination_type"], b["properties_key"]) == (
                    source,
                    destination,
                    dtype,
                    props,
                ):
                    vh.bindings.remove(b)
                    return 204, None
            raise NOT_FOUND
        raise NOT_FOUND

    def _policies(self, method: str, rest: list[str], body: Any, params: Mapping[str, str]) -> tuple[int, Any]:
        return self._policy_table(method, rest, body, operator=False)

    def _operator_policies(self, method: str, rest: list[str], body: Any, params: Mapping[str, str]) -> tuple[int, Any]:
        return self._policy_table(method, rest, body, operator=True)

    def _policy_table(self, method: str, rest: list[str], body: Any, *, operator: bool) -> tuple[int, Any]:
        vh = self._vh(rest[0])
        table = vh.operator_policies if operator else vh.policies
        if len(rest) == 1:
            return 200, [{"vhost": vh.name, "name": n, **p} for n, p in table.items()]
        name = rest[1]
        if method == "GET":
            if name not in table:
                raise NOT_FOUND
            return 200, {"vhost": vh.name, "name": name, **table[name]}
        if method == "PUT":
            table[name] = {
                "pattern": body["pattern"],
                "apply-to": body.get("apply-to", "all"),
                "definition": dict(body["definition"]),
                "priority": int(body.get("priority", 0)),
            }
            return 201, None
        if method == "DELETE":
            if name not in table:
                raise NOT_FOUND
            del table[name]
            return 204, None
        raise NOT_FOUND

    def _users(self, method: str, rest: list[str], body: Any, params: Mapping[str, str]) -> tuple[int, Any]:
        if not rest:
            self._administrator()
            return 200, [u.definition() for u in self.users.values()]
        name = rest[0]
        if rest[1:] == ["permissions"]:
            self._administrator()
            return 200, [{"user": u, "vhost": v, **p} for (u, v), p in self.permissions.items() if u == name]
        if method == "GET":
            self._administrator()
            if name not in self.users:
                raise NOT_FOUND
            return 200, self.users[name].definition()
        if method == "PUT":
            if "tags" not in body:
                raise HttpError(400, "tags_missing")
            if "password" in body and "password_hash" in body:
                raise HttpError(400, "password and password_hash are mutually exclusive")
            created = name not in self.users
            user = self.users.setdefault(name, FakeUser(name))
            user.tags = [t for t in (body["tags"] if isinstance(body["tags"], list) else body["tags"].split(",")) if t]
            algorithm = str(body.get("hashing_algorithm") or DEFAULT_ALGORITHM)
            if "password" in body:  # a fresh salt every time
                user.password_hash, user.hashing_algorithm = hash_password(body["password"], algorithm), algorithm
            elif "password_hash" in body:  # stored as it is
                user.password_hash, user.hashing_algorithm = str(body["password_hash"]), algorithm
            else:  # the trap: neither clears the password
                user.password_hash = ""
            return 201 if created else 204, None
        if method == "DELETE":
            if name not in self.users:
                raise NOT_FOUND
            del self.users[name]
            for table in (self.permissions, self.topic_permissions):
                for key in [k for k in table if k[0] == name]:
                    del table[key]
            return 204, None
        raise NOT_FOUND

    def _user_limits(self, method: str, rest: list[str], body: Any, params: Mapping[str, str]) -> tuple[int, Any]:
        if not rest:
            return 200, [{"user": u.name, "value": dict(u.limits)} for u in self.users.values() if u.limits]
        name, key = rest
        if name not in self.users:
            raise NOT_FOUND
        limits = self.users[name].limits
        if method == "PUT":
            limits[key] = int(body["value"])
            return 204, None
        if key not in limits:
            raise NOT_FOUND
        del limits[key]
        return 204, None

    def _grant(self, vhost: str, user: str) -> tuple[str, str]:
        if vhost not in self.vhosts or user not in self.users:
            raise HttpError(400, "vhost_or_user_not_found")
        return user, vhost

    def _permissions(self, method: str, rest: list[str], body: Any, params: Mapping[str, str]) -> tuple[int, Any]:
        if not rest:
            self._administrator()
            return 200, [{"user": u, "vhost": v, **p} for (u, v), p in self.permissions.items()]
        vhost, user = rest
        key = (user, vhost)
        if method == "GET":
            if key not in self.permissions:
                raise NOT_FOUND
            return 200, {"user": user, "vhost": vhost, **self.permissions[key]}
        if method == "PUT":
            key = self._grant(vhost, user)
            if any(k not in body for k in ("configure", "write", "read")):
                raise HttpError(400, "[{key_missing,configure}]")
            for k in ("configure", "write", "read"):
                try:
                    compile_pattern(body[k])  # PCRE, as RabbitMQ reads it (what Python lacks is let through)
                except re.error:
                    raise HttpError(400, "invalid_regexp") from None
            created = key not in self.permissions
            self.permissions[key] = {k: str(body[k]) for k in ("configure", "write", "read")}
            return 201 if created else 204, None
        if key not in self.permissions:
            raise NOT_FOUND
        del self.permissions[key]
        return 204, None

    def _topic_permissions(self, method: str, rest: list[str], body: Any, params: Mapping[str, str]) -> tuple[int, Any]:
        if not rest:
            self._administrator()
            return 200, [
                {"user": u, "vhost": v, "exchange": x, **entry}
                for (u, v), entries in self.topic_permissions.items()
                for x, entry in entries.items()
            ]
        vhost, user = rest
        key = (user, vhost)
        if method == "GET":
            if key not in self.topic_permissions:
                raise NOT_FOUND
            entries = self.topic_permissions[key].items()
            return 200, [{"user": user, "vhost": vhost, "exchange": x, **e} for x, e in entries]
        if method == "PUT":
            key = self._grant(vhost, user)
            entry = {"write": str(body["write"]), "read": str(body["read"])}
            self.topic_permissions.setdefault(key, {})[str(body["exchange"])] = entry
            return 201, None
        if key not in self.topic_permissions:  # one DELETE takes every exchange's entry
            raise NOT_FOUND
        del self.topic_permissions[key]
        return 204, None

    def _global_parameters(self, method: str, rest: list[str], body: Any, params: Mapping[str, str]) -> tuple[int, Any]:
        if not rest:
            self._administrator()
            return 200, [{"name": n, "value": v} for n, v in self.global_parameters.items()]
        (name,) = rest
        if method == "GET":
            if name not in self.global_parameters:
                raise NOT_FOUND
            return 200, {"name": name, "value": self.global_parameters[name]}
        if method == "PUT":
            created = name not in self.global_parameters
            self.global_parameters[name] = body["value"]
            return 201 if created else 204, None
        if name not in self.global_parameters:
            raise NOT_FOUND
        del self.global_parameters[name]
        return 204, None

    def _nodes(self, method: str, rest: list[str], body: Any, params: Mapping[str, str]) -> tuple[int, Any]:
        if not self.node_statistics:  # a node that started seconds ago lists no statistics yet
            return 200, [{"name": self.node_name}]
        return 200, [{"name": self.node_name, "enabled_plugins": list(self.plugins)}]

    def _parameters(self, method: str, rest: list[str], body: Any, params: Mapping[str, str]) -> tuple[int, Any]:
        """Shovels and federation upstreams (sets): their component exists only with the plugin; the value is
        stored as sent (URIs and passwords in clear, as RabbitMQ 3.10.8 does)."""
        component, vhost, name = rest
        vh = self._vh(vhost)
        if method == "GET":
            if (component, name) not in vh.parameters:
                raise NOT_FOUND
            return 200, {
                "vhost": vhost,
                "component": component,
                "name": name,
                "value": vh.parameters[(component, name)],
            }
        if method == "PUT":
            plugin = _COMPONENT_PLUGINS.get(component)
            if plugin is None or not any(p.startswith(plugin) for p in self.plugins):
                raise HttpError(400, f"Validation failed\n\ncomponent {component} not found\n")
            value = body["value"]
            if component == "shovel":
                unknown = sorted(set(value) - _SHOVEL_KEYS)
                if unknown:  # RabbitMQ quotes the whole value back, URIs and all
                    raise HttpError(400, f"Validation failed\n\nUnrecognised terms {json.dumps(value)} in {name}\n")
            created = (component, name) not in vh.parameters
            vh.parameters[(component, name)] = value
            return 201 if created else 204, None
        if (component, name) not in vh.parameters:
            raise NOT_FOUND
        del vh.parameters[(component, name)]
        return 204, None

    # -- what the broker applies ------------------------------------------------------------------
    def fenced(self, vh: FakeVHost, queue: str) -> bool:
        """Whether the policy that applies to ``queue`` (the highest priority matching one) refuses new
        messages to it (``max-length: 0``, ``overflow: reject-publish``)."""
        matching = [
            p
            for p in vh.policies.values()
            if p["apply-to"] in ("all", "queues", "quorum_queues") and _matches(p["pattern"], queue)
        ]
        if not matching:
            return False
        top = max(matching, key=lambda p: p["priority"])["definition"]
        return top.get("max-length") == 0 and top.get("overflow") == "reject-publish"


def _matches(pattern: str, name: str) -> bool:
    compiled = compile_pattern(pattern)  # PCRE, as RabbitMQ reads it
    return isinstance(compiled, re.Pattern) and compiled.search(name) is not None


class FakeAmqp:
    """The AMQP side (:class:`topo.broker.port.Amqp`) of a :class:`FakeRabbit`.

    ``between_count_and_delete`` (a callable taking the vhost and the queue's name) runs where RabbitMQ's
    own instant is, in :meth:`delete_if_counted`: after the last count, before the delete. ``refuse`` makes
    every step answer :class:`NoExactCount` with that reason (AMQP refused the user, did not answer, ...).
    """

    def __init__(self, rabbit: FakeRabbit) -> None:
        self.rabbit = rabbit
        self.between_count_and_delete: Callable[[str, str], None] | None = None
        self.refuse: str | None = None
        self.calls: list[str] = []

    @property
    def available(self) -> bool:
        return True

    def _queues(self, vhost: str, cluster: str | None) -> dict[str, FakeQueue] | NoExactCount:
        if self.refuse is not None:
            return NoExactCount(self.refuse, refused=True)
        if cluster is not None and cluster != self.rabbit.cluster_name:
            return NoExactCount(f"another broker (cluster {self.rabbit.cluster_name!r}) answers AMQP")
        return self.rabbit.vhosts[vhost].queues

    @staticmethod
    def _declare(queue: FakeQueue) -> tuple[int, int]:
        return (0 if queue.type == "stream" else len(queue.messages)), queue.consumers

    def count(
        self, vhost: str, queues: Sequence[str], *, cluster: str | None = None
    ) -> dict[str, tuple[int, int]] | NoExactCount:
        self.calls.append(f"count {vhost} {','.join(queues)}")
        table = self._queues(vhost, cluster)
        if isinstance(table, NoExactCount):
            return table
        return {name: self._declare(table[name]) for name in queues if name in table}

    def check_drops(
        self, vhost: str, queues: Mapping[str, bool], probe_id: str, *, cluster: str | None = None
    ) -> dict[str, DropCheck] | NoExactCount:
        self.calls.append(f"check {vhost} {','.join(queues)}")
        table = self._queues(vhost, cluster)
        if isinstance(table, NoExactCount):
            return table
        vh = self.rabbit.vhosts[vhost]
        checks: dict[str, DropCheck] = {}
        for name, fenced in queues.items():
            queue = table.get(name)
            if queue is None:
                checks[name] = DropCheck(False)
                continue
            probe = holds = None
            if fenced:  # RabbitMQ holds the limit once the queue is over it: the first probe gets in, not the second
                applies = self.rabbit.fenced(vh, name)
                # (a classic queue checks its limit before it takes a message: it refuses the first one too)
                probe = "refused" if applies and (queue.messages or queue.type == "classic") else "taken"
                if probe == "taken":
                    queue.messages.append(Message(probe_id))
                holds = applies
                if not holds:
                    queue.messages.append(Message(probe_id))
            ready, consumers = self._declare(queue)
            checks[name] = DropCheck(True, ready, consumers, probe, holds)
        return checks

    def delete_if_counted(
        self, vhost: str, expected: Mapping[str, int], *, cluster: str | None = None, in_use: bool = False
    ) -> tuple[list[Deleted], NoExactCount | None]:
        self.calls.append(f"delete {vhost} {','.join(expected)}")
        table = self._queues(vhost, cluster)
        if isinstance(table, NoExactCount):
            return [], table
        done: list[Deleted] = []
        for name, messages in expected.items():
            queue = table.get(name)
            if queue is None:
                done.append(Deleted(name, None))
                continue
            counted = self._declare(queue)
            if counted[0] != messages or (counted[1] and not in_use):
                done.append(Deleted(name, counted))
                break
            if self.between_count_and_delete is not None:
                self.between_count_and_delete(vhost, name)
            dropped = self.rabbit.drop_queue(self.rabbit.vhosts[vhost], name)
            done.append(Deleted(name, counted, True, dropped))
        return done, None

    def move(
        self,
        vhost: str,
        source: str,
        target: str,
        *,
        cluster: str | None = None,
        exact: bool = False,
    ) -> Moved | NoExactCount:
        """Every message of ``source`` onto the end of ``target``, in order (one batch)."""
        self.calls.append(f"move {vhost} {source} {target}")
        table = self._queues(vhost, cluster)
        if isinstance(table, NoExactCount):
            return table
        if source not in table or target not in table:
            return NoExactCount(f"AMQP found no queue {source if source not in table else target!r}")
        taken = table[source].messages[:]
        table[source].messages.clear()
        table[target].messages.extend(taken)
        return Moved(len(taken), len(table[target].messages))

    def catch_requeues(
        self, vhost: str, source: str, target: str, *, cluster: str | None = None
    ) -> contextlib.AbstractContextManager[Catching]:
        """Nothing is delivered here, so nothing is requeued: nothing to catch."""
        self.calls.append(f"catch {vhost} {source}")
        return contextlib.nullcontext(Catching())

    def remove_probes(self, vhost: str, queue: str, probes: int, probe_id: str | None) -> tuple[int, int]:
        self.calls.append(f"remove-probes {vhost} {queue}")
        table = self._queues(vhost, None)
        if isinstance(table, NoExactCount) or queue not in table:
            return probes, 0
        messages = table[queue].messages
        held = 0
        left = probes
        index = 0
        while left and index < len(messages) and held < 20:
            ident = messages[index].message_id
            if ident == probe_id or (probe_id is None and ident.startswith(PROBE_ID_PREFIX)):
                del messages[index]
                left -= 1
            else:
                held += 1
                index += 1
        if index >= len(messages):
            left = 0  # none further back
        return left, held
