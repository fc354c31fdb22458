"""The broker port (:mod:`topo.broker.port`) on a real broker: the Management API through
:class:`~topo.broker.client.ManagementClient`, AMQP through :class:`~topo.broker.amqp_probe.LiveAmqp`.

Every path and body of the Management API the engine uses is here, and nowhere else: the reader, the
writer's executors and the drop protocol call these methods. Tests run this same adapter, HTTP code and
all, on an in-memory broker (tests/fakebroker.py, through ``httpx.MockTransport``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

from topo.broker.amqp_probe import LiveAmqp
from topo.broker.client import ManagementClient, enc
from topo.broker.port import (
    CATCH_TAG_PREFIX,
    NO_AMQP_URL,
    Amqp,
    Broker,
    Held,
    ListedBinding,
    NoExactCount,
    Overview,
    VHostInfo,
)
from topo.definitions import (
    LINK_COMPONENTS,
    binding_from_definition,
    definitions_from_listings,
    global_parameter_definition,
    global_parameter_from_definition,
    permission_body,
    permission_from_definition,
    policy_body,
    policy_from_definition,
    topic_permission_body,
    topic_permissions_from_definitions,
    user_from_definition,
    vhost_from_definitions,
)
from topo.errors import BrokerError, PermissionDenied, UsageError
from topo.model import (
    SENSITIVE,
    Binding,
    GlobalParameter,
    PasswordHash,
    Permission,
    Policy,
    TopicPermission,
    TopicPermissions,
    User,
    VHost,
)
from topo.plan.model import QueueUsage
from topo.urls import parse, redact

__all__ = ["GONE_WHEN_COUNTED", "STREAM_UNCOUNTABLE", "LiveBroker", "as_broker"]

GONE_WHEN_COUNTED = "AMQP found no such queue when it counted"
STREAM_UNCOUNTABLE = "RabbitMQ answers 0 for a stream's messages over AMQP"


STATS_LAG = 10.0
"""How long a queue's statistics may trail behind it, in seconds, on a broker with RabbitMQ's default
``collect_statistics_interval`` (5 s; a quorum queue's ``quorum_tick_interval``, 5 s too): a classic queue
emits its figures at most that long after a change (a quorum queue's leader at each tick), and the
Management plugin collects what was emitted at most that long after. Twice the interval."""


class LiveBroker:
    """A broker reached through ``client`` (its Management API) and ``amqp`` (by default: AMQP at the
    client's ``amqp_url``, derived from its URL unless given)."""

    def __init__(self, client: ManagementClient, amqp: Amqp | None = None, *, stats_lag: float = STATS_LAG) -> None:
        self.client = client
        self._stats_lag = stats_lag
        self._amqp: Amqp = amqp if amqp is not None else LiveAmqp(client.amqp_url)
        self._by_resource = False  # set once GET /api/definitions/{vhost} is refused: no use asking again
        self._unread: dict[str, frozenset[str]] = {}  # vhost → the kinds its read by resource could not see

    def __repr__(self) -> str:
        return f"<LiveBroker {self.client.display_url}>"

    @property
    def url(self) -> str:
        return self.client.public_url

    @property
    def user(self) -> str | None:
        return self.client.user

    @property
    def amqp(self) -> Amqp:
        return self._amqp

    # -- reads -----------------------------------------------------------------------------------------
    @property
    def read_by_resource(self) -> bool:
        """Whether the vhosts were read resource by resource (the user may not read their definitions)."""
        return self._by_resource

    def unread_kinds(self, vhost: str) -> frozenset[str]:
        """The kinds of ``vhost`` its last read could not see (read by resource without the policymaker tag:
        shovels and federation links, whose parameters RabbitMQ shows to policymakers and administrators)."""
        return self._unread.get(vhost, frozenset())

    def read_vhost(self, name: str) -> VHost | None:
        """Two requests, whatever the vhost's size: its metadata, then everything inside it. Both need the
        administrator tag: for a user without it (a read-only one: ``monitoring``, or ``management``), the
        vhost is read resource by resource instead (:meth:`_read_by_resource`), into the same model."""
        if not self._by_resource:
            try:
                info = self.client.get(f"/vhosts/{enc(name)}", vhost=name, ok_missing=True)
                if info is None:
                    return None
                definitions = self.client.get(f"/definitions/{enc(name)}", vhost=name)
                return vhost_from_definitions(name, info, definitions or {})
            except PermissionDenied:
                self._by_resource = True
        return self._read_by_resource(name)

    def _read_by_resource(self, name: str) -> VHost | None:
        """Vhost ``name`` from the listings a user with the ``monitoring`` or ``management`` tag and a permission
        on the vhost (any: even one that grants nothing) may read, made into the document ``GET
        /api/definitions/{vhost}`` would have given (:func:`definitions_from_listings`), then into the model by
        the same function: the same result, though not one snapshot (the listings are read one beside the
        other)."""
        v = enc(name)
        requests: dict[str, tuple[str, dict[str, str] | None]] = {
            "queues": (f"/queues/{v}", {"disable_stats": "true", "columns": _QUEUE_COLUMNS}),
            "exchanges": (f"/exchanges/{v}", {"disable_stats": "true", "columns": _EXCHANGE_COLUMNS}),
            "bindings": (f"/bindings/{v}", {"columns": _BINDING_COLUMNS}),
            "policies": (f"/policies/{v}", None),
            "operator-policies": (f"/operator-policies/{v}", None),
            "vhost-limits": (f"/vhost-limits/{v}", None),
            "vhosts": ("/vhosts", {"columns": _VHOST_COLUMNS}),
            **{component: (f"/parameters/{enc(component)}/{v}", None) for component in LINK_COMPONENTS},
        }

        def get(path_params: tuple[str, dict[str, str] | None]) -> Any:
            path, params = path_params
            try:
                return self.client.get(path, params=params, vhost=name, ok_missing=True)
            except BrokerError as exc:
                return exc

        with ThreadPoolExecutor(max_workers=len(requests)) as pool:
            answers = dict(zip(requests, pool.map(get, requests.values()), strict=True))
        queues = answers["queues"]
        if isinstance(queues, PermissionDenied) and "access virtual host" in queues.message:
            raise PermissionDenied(
                f"user {self.user!r} may not read vhost {name!r} at {self.url}: it has no permission on that vhost",
                hint="a read-only plan needs the 'monitoring' or 'management' tag and a permission on each vhost it "
                "reads; one that grants nothing will do (configure '', write '', read '': topo's read needs no "
                "pattern)",
                status=queues.status,
            ) from None
        unread = frozenset(c for c in LINK_COMPONENTS if isinstance(answers[c], PermissionDenied))
        for key, answer in answers.items():
            if isinstance(answer, BaseException) and key not in unread:
                raise answer
        if queues is None:
            return None
        info = next((item for item in answers["vhosts"] or [] if item.get("name") == name), None)
        if info is None:  # deleted meanwhile
            return None
        listings = {key: answer or [] for key, answer in answers.items() if key not in unread}
        listings["parameters"] = [item for c in LINK_COMPONENTS if c not in unread for item in listings.pop(c)]
        self._unread[name] = unread
        return vhost_from_definitions(name, info, definitions_from_listings(name, listings))

    def vhost_names(self) -> list[str]:
        return [str(v["name"]) for v in self.client.get("/vhosts", params={"columns": "name"}) or []]

    def overview(self, *, exchange_types: bool = False) -> Overview:
        columns = "cluster_name,exchange_types" if exchange_types else "cluster_name"
        body = self.client.get("/overview", params={"columns": columns}) or {}
        types = None
        if exchange_types:
            listed = body.get("exchange_types") or []
            types = frozenset(str(item.get("name")) for item in listed if isinstance(item, dict))
        return Overview(str(body.get("cluster_name") or ""), types)

    @property
    def stats_lag(self) -> float:
        return self._stats_lag

    def held(self, vhost: str, queue: str) -> Held | None:
        info = self.client.get(f"/queues/{enc(vhost)}/{enc(queue)}", vhost=vhost, ok_missing=True)
        if info is None:
            return None

        def figure(key: str) -> int | None:
            value = info.get(key)
            return int(value) if isinstance(value, int | float) else None

        connections = []
        for consumer in info.get("consumer_details") or []:
            if not isinstance(consumer, dict) or str(consumer.get("consumer_tag", "")).startswith(CATCH_TAG_PREFIX):
                continue  # apply's own
            channel = consumer.get("channel_details")
            name = channel.get("connection_name") if isinstance(channel, dict) else None
            if name and name not in connections:
                connections.append(str(name))
        return Held(figure("messages_ready"), figure("messages_unacknowledged"), tuple(connections))

    def count(self, vhost: str, queues: Iterable[str], *, cluster: str | None = None) -> dict[str, QueueUsage]:
        """Ready messages and consumers come from an AMQP passive declare, which the broker answers with the
        queue's counts at that instant: the count is then ``exact``. Unacknowledged messages have no such
        count: they come from the Management API's statistics, which lag up to ~5 s. Where AMQP does not
        answer (or another cluster answers there), every figure comes from the statistics and the count is
        not exact, and ``QueueUsage.why_inexact`` says why (AMQP refused the user, did not answer, ...). A
        stream's count is never exact (RabbitMQ answers 0 for a stream over AMQP). ``cluster`` is the
        broker's cluster name when the caller has it already."""
        stats: dict[str, Mapping[str, Any]] = {}
        for name in queues:
            info = self.client.get(f"/queues/{enc(vhost)}/{enc(name)}", vhost=vhost, ok_missing=True)
            if info is not None:
                stats[name] = info
        exact: dict[str, tuple[int, int]] = {}
        why_not = NO_AMQP_URL
        if self.amqp.available and stats:
            if cluster is None:
                cluster = self.overview().cluster_name
            counted = self.amqp.count(vhost, list(stats), cluster=cluster)
            if isinstance(counted, NoExactCount):
                why_not = counted.reason
            else:
                exact, why_not = counted, GONE_WHEN_COUNTED
        usage: dict[str, QueueUsage] = {}
        for name, info in stats.items():
            unacked = int(info.get("messages_unacknowledged") or 0)
            ready_consumers = exact.get(name)
            if info.get("type") == "stream":
                ready_consumers, why = None, STREAM_UNCOUNTABLE
            else:
                why = why_not
            if ready_consumers is not None:
                usage[name] = QueueUsage(ready_consumers[0], unacked, ready_consumers[1], exact=True)
            else:
                ready = int(info.get("messages_ready") or 0)
                if not ready and not unacked:  # a queue's first statistics may carry only the total
                    ready = int(info.get("messages") or 0)
                consumers = int(info.get("consumers") or 0)
                usage[name] = QueueUsage(ready, unacked, consumers, exact=False, why_inexact=why)
        return usage

    def vhost_info(self, name: str) -> VHostInfo | None:
        info = self.client.get(f"/vhosts/{enc(name)}", vhost=name, ok_missing=True)
        if info is None:
            return None
        tags = info.get("tags") or []
        listed = tuple(tags) if isinstance(tags, list) else tuple(t for t in str(tags).split(",") if t)
        return VHostInfo(info.get("description") or "", listed)

    def bindings(self, vhost: str) -> list[ListedBinding]:
        listed = self.client.get(f"/bindings/{enc(vhost)}", vhost=vhost, ok_missing=True) or []
        return [ListedBinding(binding_from_definition(item), str(item.get("properties_key", ""))) for item in listed]

    def policies(self, vhost: str) -> list[Policy]:
        return [policy_from_definition(item) for item in self.client.get(f"/policies/{enc(vhost)}", vhost=vhost) or []]

    def policy(self, vhost: str, name: str) -> Policy | None:
        item = self.client.get(_policy_path(vhost, name), vhost=vhost, ok_missing=True)
        return None if item is None else policy_from_definition({"name": name, **item})

    def users(self) -> list[User]:
        return [user_from_definition(item) for item in self.client.get("/users") or []]

    def permissions(self) -> list[Permission]:
        return [permission_from_definition(item) for item in self.client.get("/permissions") or []]

    def topic_permissions(self) -> list[TopicPermissions]:
        return list(topic_permissions_from_definitions(self.client.get("/topic-permissions") or []).values())

    def global_parameters(self) -> list[GlobalParameter]:
        return [global_parameter_from_definition(item) for item in self.client.get("/global-parameters") or []]

    def enabled_plugins(self) -> frozenset[str] | None:
        """``GET /api/nodes`` lists each node's ``enabled_plugins`` (explicitly enabled: a management plugin
        brings its plugin along unlisted); what every node has. A node lists them with its statistics, which
        RabbitMQ 3.10.8 only has some seconds after it starts (about 6 s): until then, asked again for up to
        :data:`PLUGINS_WAIT` seconds, unless ``GET /api/extensions`` (at once after a start) lists
        ``shovel.js`` and ``federation.js``: the management plugins of both run (each brings its plugin),
        then both are there. A user who may not read the nodes: the extensions alone. Otherwise, not known
        (None)."""
        deadline = time.monotonic() + PLUGINS_WAIT
        while True:
            try:
                nodes = self.client.get("/nodes", params={"columns": "name,enabled_plugins"}) or []
            except PermissionDenied:
                return self._plugins_from_extensions()
            found = _plugins_of(nodes)
            if found is not None:
                return found
            from_extensions = self._plugins_from_extensions()
            if from_extensions is not None or time.monotonic() >= deadline:
                return from_extensions
            time.sleep(0.5)

    def _plugins_from_extensions(self) -> frozenset[str] | None:
        """Both link plugins' management plugins, when ``GET /api/extensions`` shows both (None: not known)."""
        try:
            extensions = self.client.get("/extensions", ok_missing=True) or []
        except BrokerError:
            return None
        scripts = {str(e.get("javascript")) for e in extensions if isinstance(e, Mapping)}
        if {"shovel.js", "federation.js"} <= scripts:
            return frozenset({"rabbitmq_shovel_management", "rabbitmq_federation_management"})
        return None

    def put_parameter(self, vhost: str, component: str, name: str, value: Any) -> None:
        """``PUT /api/parameters/{component}/{vhost}/{name}``. RabbitMQ's refusal quotes the value it refused,
        URIs and passwords in clear: they are taken out of the error."""
        path = f"/parameters/{enc(component)}/{enc(vhost)}/{enc(name)}"
        try:
            self.client.put(path, {"value": value}, vhost=vhost)
        except BrokerError as exc:
            raise _scrubbed_uris(exc, value) from None

    def delete_parameter(self, vhost: str, component: str, name: str) -> None:
        self.client.delete(f"/parameters/{enc(component)}/{enc(vhost)}/{enc(name)}", vhost=vhost, ok_missing=True)

    # -- writes ----------------------------------------------------------------------------------------
    def put_vhost(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        default_queue_type: str | None = None,
        tracing: bool | None = None,
    ) -> None:
        body: dict[str, Any] = {}
        if description is not None:
            body["description"] = description
        if tags is not None:
            body["tags"] = ",".join(tags)
        if default_queue_type is not None:
            body["defaultqueuetype"] = default_queue_type  # RabbitMQ 3.10's key; taken at creation only
        if tracing is not None:  # a PUT without it keeps the vhost's tracing
            body["tracing"] = tracing
        self.client.put(f"/vhosts/{enc(name)}", body, vhost=name)

    def set_vhost_limit(self, vhost: str, key: str, value: int) -> None:
        self.client.put(f"/vhost-limits/{enc(vhost)}/{enc(key)}", {"value": value}, vhost=vhost)

    def clear_vhost_limit(self, vhost: str, key: str) -> None:
        self.client.delete(f"/vhost-limits/{enc(vhost)}/{enc(key)}", vhost=vhost, ok_missing=True)

    def import_definitions(self, vhost: str, document: Mapping[str, Any]) -> None:
        self.client.post(f"/definitions/{enc(vhost)}", document, vhost=vhost)

    def delete_vhost(self, name: str) -> None:
        self.client.delete(f"/vhosts/{enc(name)}", vhost=name, ok_missing=True)

    def delete_exchange(self, vhost: str, name: str) -> None:
        self.client.delete(f"/exchanges/{enc(vhost)}/{enc(name)}", vhost=vhost, ok_missing=True)

    def delete_queue(self, vhost: str, name: str, *, if_empty: bool = False, if_unused: bool = False) -> None:
        params = {"if-empty": "true"} if if_empty else {}
        if if_unused:
            params["if-unused"] = "true"
        self.client.delete(f"/queues/{enc(vhost)}/{enc(name)}", params=params or None, vhost=vhost, ok_missing=True)

    def add_binding(self, vhost: str, binding: Binding) -> None:
        body = {"routing_key": binding.routing_key, "arguments": dict(binding.arguments)}
        self.client.post(_binding_path(vhost, binding), body, vhost=vhost)

    def delete_binding(self, vhost: str, listed: ListedBinding) -> None:
        path = f"{_binding_path(vhost, listed.binding)}/{enc(listed.properties_key)}"
        self.client.delete(path, vhost=vhost, ok_missing=True)

    def put_policy(self, vhost: str, policy: Policy, *, operator: bool = False) -> None:
        self.client.put(_policy_path(vhost, policy.name, operator), policy_body(policy), vhost=vhost)

    def delete_policy(self, vhost: str, name: str, *, operator: bool = False) -> None:
        self.client.delete(_policy_path(vhost, name, operator), vhost=vhost, ok_missing=True)

    def put_user(self, name: str, tags: Sequence[str], password: PasswordHash) -> None:
        body = {"tags": ",".join(tags), "password_hash": password.value, "hashing_algorithm": password.algorithm}
        try:
            self.client.put(f"/users/{enc(name)}", body)
        except BrokerError as exc:  # the broker may echo the hash it refused
            raise _scrubbed(exc, password.value) from None

    def set_user_limit(self, user: str, key: str, value: int) -> None:
        self.client.put(f"/user-limits/{enc(user)}/{enc(key)}", {"value": value})

    def clear_user_limit(self, user: str, key: str) -> None:
        self.client.delete(f"/user-limits/{enc(user)}/{enc(key)}", ok_missing=True)

    def delete_user(self, name: str) -> None:
        self.client.delete(f"/users/{enc(name)}", ok_missing=True)

    def put_permission(self, permission: Permission) -> None:
        path = f"/permissions/{enc(permission.vhost)}/{enc(permission.user)}"
        self.client.put(path, permission_body(permission), vhost=permission.vhost)

    def delete_permission(self, vhost: str, user: str) -> None:
        self.client.delete(f"/permissions/{enc(vhost)}/{enc(user)}", vhost=vhost, ok_missing=True)

    def put_topic_permission(self, vhost: str, user: str, entry: TopicPermission) -> None:
        self.client.put(f"/topic-permissions/{enc(vhost)}/{enc(user)}", topic_permission_body(entry), vhost=vhost)

    def delete_topic_permissions(self, vhost: str, user: str) -> None:
        self.client.delete(f"/topic-permissions/{enc(vhost)}/{enc(user)}", vhost=vhost, ok_missing=True)

    def put_global_parameter(self, parameter: GlobalParameter) -> None:
        self.client.put(f"/global-parameters/{enc(parameter.name)}", global_parameter_definition(parameter))

    def delete_global_parameter(self, name: str) -> None:
        self.client.delete(f"/global-parameters/{enc(name)}", ok_missing=True)


_QUEUE_COLUMNS = "name,durable,auto_delete,exclusive,arguments"
_EXCHANGE_COLUMNS = "name,type,durable,auto_delete,internal,arguments"
_BINDING_COLUMNS = "source,destination,destination_type,routing_key,arguments"
_VHOST_COLUMNS = "name,description,tags,default_queue_type,tracing"


def _scrubbed(exc: BrokerError, secret: str) -> BrokerError:
    """``exc`` with ``secret`` replaced by ``(sensitive)`` in its message and hint."""
    if secret:
        exc.message = exc.message.replace(secret, SENSITIVE)
        exc.hint = exc.hint.replace(secret, SENSITIVE) if exc.hint else exc.hint
        exc.args = (exc.message,)
    return exc


def _uri_texts(value: Any) -> list[str]:
    """Every string in ``value`` that may be a URI (those of a shovel, an upstream, a member of a set)."""
    if isinstance(value, str):
        return [value] if "://" in value else []
    if isinstance(value, Mapping):
        return [t for item in value.values() for t in _uri_texts(item)]
    if isinstance(value, list):
        return [t for item in value for t in _uri_texts(item)]
    return []


def _scrubbed_uris(exc: BrokerError, value: Any) -> BrokerError:
    """``exc`` without the URIs of ``value`` (shown redacted) nor their passwords (``(sensitive)``)."""
    for uri in sorted(_uri_texts(value), key=len, reverse=True):
        secrets = [(uri, redact(uri))]
        try:
            password = parse(uri).password
        except UsageError:
            password = None
        if password:
            secrets += [(password, SENSITIVE), (quote(password, safe=""), SENSITIVE)]
        for secret, shown in secrets:
            exc.message = exc.message.replace(secret, shown)
            exc.hint = exc.hint.replace(secret, shown) if exc.hint else exc.hint
    exc.message = redact_all(exc.message)
    exc.args = (exc.message,)
    return exc


def redact_all(text: str) -> str:
    """Every ``scheme://user:password@`` in ``text`` shown as ``scheme://***@``."""
    return _CREDENTIALS.sub(lambda m: m.group(1) + "***@", text)


_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^\s/@\"']*@")


def _policy_path(vhost: str, name: str, operator: bool = False) -> str:
    return f"/{'operator-policies' if operator else 'policies'}/{enc(vhost)}/{enc(name)}"


def _binding_path(vhost: str, binding: Binding) -> str:
    kind = "e" if binding.destination_type == "exchange" else "q"
    return f"/bindings/{enc(vhost)}/e/{enc(binding.source)}/{kind}/{enc(binding.destination)}"


def as_broker(target: Broker | ManagementClient) -> Broker:
    """``target`` as the port: a :class:`ManagementClient` is wrapped in a :class:`LiveBroker` (the library
    form the README shows), anything else is taken as a :class:`~topo.broker.port.Broker` already."""
    return LiveBroker(target) if isinstance(target, ManagementClient) else target


PLUGINS_WAIT = 10.0
"""How long :meth:`LiveBroker.enabled_plugins` waits for a node that just started to list its plugins."""


def _plugins_of(nodes: Iterable[Mapping[str, Any]]) -> frozenset[str] | None:
    """The plugins every node lists as enabled (None: a node lists none yet, or there is no node)."""
    found: frozenset[str] | None = None
    for node in nodes:
        if not isinstance(node.get("enabled_plugins"), list):
            return None  # its statistics are not in yet (the first seconds after it starts): not known
        enabled = frozenset(str(p) for p in node["enabled_plugins"])
        found = enabled if found is None else found & enabled
    return found
