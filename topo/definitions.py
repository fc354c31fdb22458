"""Resources as the broker's JSON (the shapes of ``/api/definitions``), both ways, in one place. Pure.

Model → broker: ``*_definition`` (what the writer sends, the plan's JSON form shows, and tests build
broker state from). Broker → model: ``*_from_definition`` and :func:`vhost_from_definitions` (what the
reader makes of ``GET /api/vhosts/{v}`` and ``GET /api/definitions/{v}``), normalised as the loader
normalises the files, so that an untouched broker never shows false drift. The two directions stand side
by side so that a field added to one is seen missing from the other (tests/test_definitions.py round-trips
every kind).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from topo.errors import UsageError
from topo.model import (
    SENSITIVE,
    Binding,
    Exchange,
    FederationUpstream,
    FederationUpstreamSet,
    GlobalParameter,
    PasswordHash,
    Permission,
    Policy,
    Queue,
    Secret,
    Shovel,
    TopicPermission,
    TopicPermissions,
    User,
    VHost,
    is_broker_exchange,
)
from topo.passwords import DEFAULT_ALGORITHM, hash_password, matches
from topo.urls import redact

__all__ = [
    "IMPORT_SECTIONS",
    "LINK_COMPONENTS",
    "QUEUE_TYPES",
    "SHOVEL_DEFAULTS",
    "SHOVEL_LEGACY_KEYS",
    "UPSTREAM_DEFAULTS",
    "VHOST_COMPONENTS",
    "binding_definition",
    "binding_from_definition",
    "declared_password",
    "definitions_from_listings",
    "exchange_definition",
    "exchange_from_definition",
    "federation_upstream_from_value",
    "federation_upstream_json",
    "federation_upstream_set_from_value",
    "federation_upstream_set_json",
    "federation_upstream_set_value",
    "federation_upstream_value",
    "global_parameter_definition",
    "global_parameter_from_definition",
    "link_settings",
    "password_to_send",
    "permission_body",
    "permission_definition",
    "permission_from_definition",
    "policy_body",
    "policy_definition",
    "policy_from_definition",
    "queue_definition",
    "queue_from_definition",
    "shovel_from_value",
    "shovel_json",
    "shovel_value",
    "tags_of",
    "topic_permission_body",
    "topic_permissions_definitions",
    "topic_permissions_from_definitions",
    "uri_values",
    "user_body",
    "user_definition",
    "user_from_definition",
    "vhost_definitions",
    "vhost_from_definitions",
]

# -- exchanges -------------------------------------------------------------------------------------------


def exchange_definition(exchange: Exchange) -> dict[str, Any]:
    return {
        "name": exchange.name,
        "type": exchange.type,
        "durable": exchange.durable,
        "auto_delete": exchange.auto_delete,
        "internal": exchange.internal,
        "arguments": dict(exchange.arguments),
    }


def exchange_from_definition(item: Mapping[str, Any]) -> Exchange:
    return Exchange(
        name=item["name"],
        type=item.get("type", "direct"),
        durable=bool(item.get("durable", True)),
        auto_delete=bool(item.get("auto_delete", False)),
        internal=bool(item.get("internal", False)),
        arguments=dict(item.get("arguments") or {}),
    )


# -- queues ----------------------------------------------------------------------------------------------


def queue_definition(queue: Queue) -> dict[str, Any]:
    """As declared: the type always explicit (classic too), so a vhost's default queue type cannot decide it."""
    arguments = {**queue.arguments, "x-queue-type": queue.type}
    return {"name": queue.name, "durable": queue.durable, "auto_delete": queue.auto_delete, "arguments": arguments}


def queue_from_definition(item: Mapping[str, Any]) -> Queue:
    """The type comes out of the arguments (the broker may write the resolved ``x-queue-type`` there)."""
    arguments = dict(item.get("arguments") or {})
    qtype = arguments.pop("x-queue-type", None) or "classic"
    return Queue(
        name=item["name"],
        type=qtype,
        durable=bool(item.get("durable", True)),
        auto_delete=bool(item.get("auto_delete", False)),
        arguments=arguments,
    )


# -- bindings --------------------------------------------------------------------------------------------


def binding_definition(binding: Binding) -> dict[str, Any]:
    return {
        "source": binding.source,
        "destination": binding.destination,
        "destination_type": binding.destination_type,
        "routing_key": binding.routing_key,
        "arguments": dict(binding.arguments),
    }


def binding_from_definition(item: Mapping[str, Any]) -> Binding:
    """A binding as ``/api/definitions`` or ``/api/bindings`` lists it (the latter's extra fields ignored)."""
    return Binding(
        source=item.get("source", ""),
        destination=item["destination"],
        destination_type="exchange" if item.get("destination_type") == "exchange" else "queue",
        routing_key=item.get("routing_key", ""),
        arguments=dict(item.get("arguments") or {}),
    )


# -- policies and operator policies ----------------------------------------------------------------------


def policy_definition(policy: Policy) -> dict[str, Any]:
    """The body of ``PUT /api/policies/{vhost}/{name}`` (and of an operator policy), with its name."""
    return {
        "name": policy.name,
        "pattern": policy.pattern,
        "apply-to": policy.apply_to,
        "priority": policy.priority,
        "definition": dict(policy.definition),
    }


def policy_body(policy: Policy) -> dict[str, Any]:
    """:func:`policy_definition` without the name (which the PUT's path carries)."""
    body = policy_definition(policy)
    del body["name"]
    return body


def policy_from_definition(item: Mapping[str, Any]) -> Policy:
    """A policy as ``/api/policies`` lists it, or an operator policy's parameter value with its name."""
    return Policy(
        name=item["name"],
        pattern=item.get("pattern", ""),
        apply_to=item.get("apply-to", "all"),
        priority=int(item.get("priority", 0)),
        definition=dict(item.get("definition") or {}),
    )


# -- a whole vhost ---------------------------------------------------------------------------------------

QUEUE_TYPES = ("classic", "quorum", "stream")
"""The values of a vhost's ``default_queue_type`` (RabbitMQ 3.10)."""

IMPORT_SECTIONS = ("exchanges", "queues", "bindings")
"""The parts of a ``POST /api/definitions/{vhost}`` document the writer sends (creates only: an import
silently keeps what exists)."""


def vhost_from_definitions(name: str, info: Mapping[str, Any], definitions: Mapping[str, Any]) -> VHost:
    """Normalise ``GET /api/vhosts/{name}`` and ``GET /api/definitions/{name}`` into a VHost (pure).

    The broker's own exchanges (``""``, ``amq.*``) and the default exchange's implicit bindings are left
    out: no file declares them."""
    tags = info.get("tags") or []
    if isinstance(tags, str):
        tags = [t for t in tags.split(",") if t]
    queue_type = info.get("default_queue_type")
    vhost = VHost(
        name=name,
        description=info.get("description") or "",
        tags=tuple(sorted(set(tags))),
        limits={},
        # RabbitMQ 3.10 says "undefined" for a vhost created without one: its queues are then classic
        default_queue_type=queue_type if queue_type in QUEUE_TYPES else "classic",
        tracing=bool(info.get("tracing", False)),
    )
    plugins_own = _plugin_internal(definitions)
    for item in definitions.get("exchanges") or []:
        if not is_broker_exchange(item["name"]) and ("exchange", item["name"]) not in plugins_own:
            vhost.exchanges[item["name"]] = exchange_from_definition(item)
    for item in definitions.get("queues") or []:
        if ("queue", item["name"]) not in plugins_own:
            vhost.queues[item["name"]] = queue_from_definition(item)
    for item in definitions.get("bindings") or []:
        if item.get("source", "") == "":  # the default exchange's implicit bindings
            continue
        if ("exchange", item["source"]) in plugins_own or (
            item.get("destination_type"),
            item.get("destination"),
        ) in plugins_own:
            continue
        vhost.add_binding(binding_from_definition(item))
    for item in definitions.get("policies") or []:
        policy = policy_from_definition(item)
        vhost.policies[policy.name] = policy
    limits: dict[str, int] = {}
    for param in definitions.get("parameters") or []:
        component = param.get("component")
        if component == "operator_policy":
            policy = policy_from_definition({"name": param["name"], **(param.get("value") or {})})
            vhost.operator_policies[policy.name] = policy
        elif component == "vhost-limits":
            limits.update({k: int(v) for k, v in (param.get("value") or {}).items()})
        elif component in LINK_COMPONENTS:
            _read_link(vhost, component, str(param["name"]), param.get("value"))
    vhost.limits = limits
    return vhost


def _plugin_internal(definitions: Mapping[str, Any]) -> set[tuple[str, str]]:
    """The exchanges and queues a plugin makes for itself (a federation link's upstream exchange and queue,
    in the upstream vhost: argument ``x-internal-purpose``), as ("exchange" | "queue", name): the broker's
    own, like ``amq.*``: no file declares them, the plugin deletes them with its link, so they are left out
    (with their bindings) rather than listed as not managed."""
    return {
        (kind, str(item["name"]))
        for kind, key in (("exchange", "exchanges"), ("queue", "queues"))
        for item in definitions.get(key) or []
        if isinstance(item.get("arguments"), Mapping) and "x-internal-purpose" in item["arguments"]
    }


def definitions_from_listings(name: str, listings: Mapping[str, Any]) -> dict[str, Any]:
    """The document ``GET /api/definitions/{name}`` gives, made from the listings a user without the
    administrator tag may read (``listings``: the bodies of ``GET /api/queues/{name}``, ``exchanges``,
    ``bindings``, ``policies``, ``operator-policies`` and ``vhost-limits``, by those names, and ``parameters``:
    the items of ``GET /api/parameters/{component}/{name}`` for the shovels and federation links), left out what
    RabbitMQ 3.10.8's export leaves out: exclusive queues and the bindings to them, the default exchange's
    implicit bindings, the broker's own exchanges. Then :func:`vhost_from_definitions` makes the same model
    of either."""
    queues = [item for item in listings.get("queues") or [] if not item.get("exclusive")]
    exported = {item["name"] for item in queues}
    bindings = [
        item
        for item in listings.get("bindings") or []
        if item.get("source", "") != ""
        and (item.get("destination_type") == "exchange" or item.get("destination") in exported)
    ]
    parameters: list[dict[str, Any]] = [
        {
            "vhost": name,
            "component": "operator_policy",
            "name": item["name"],
            "value": {key: item[key] for key in ("pattern", "definition", "priority", "apply-to") if key in item},
        }
        for item in listings.get("operator-policies") or []
    ]
    limits: dict[str, Any] = {}
    for item in listings.get("vhost-limits") or []:
        limits.update(item.get("value") or {})
    if limits:
        parameters.append({"vhost": name, "component": "vhost-limits", "name": "limits", "value": limits})
    parameters += [
        {key: item[key] for key in ("vhost", "component", "name", "value") if key in item}
        for item in listings.get("parameters") or []
    ]
    return {
        "parameters": parameters,
        "policies": list(listings.get("policies") or []),
        "queues": [{key: item[key] for key in _QUEUE_KEYS if key in item} for item in queues],
        "exchanges": [item for item in listings.get("exchanges") or [] if not is_broker_exchange(item["name"])],
        "bindings": [{key: item[key] for key in _BINDING_KEYS if key in item} for item in bindings],
    }


_QUEUE_KEYS = ("name", "durable", "auto_delete", "arguments")
_BINDING_KEYS = ("source", "destination", "destination_type", "routing_key", "arguments")


def _parameters(vhost: VHost) -> Iterable[dict[str, Any]]:
    for policy in vhost.operator_policies.values():
        value = policy_body(policy)
        yield {"vhost": vhost.name, "component": "operator_policy", "name": policy.name, "value": value}
    if vhost.limits:
        yield {"vhost": vhost.name, "component": "vhost-limits", "name": "limits", "value": dict(vhost.limits)}
    for shovel in vhost.shovels.values():
        yield {"vhost": vhost.name, "component": "shovel", "name": shovel.name, "value": shovel_value(shovel)}
    for upstream in vhost.federation_upstreams.values():
        body = federation_upstream_value(upstream)
        yield {"vhost": vhost.name, "component": "federation-upstream", "name": upstream.name, "value": body}
    for members in vhost.federation_upstream_sets.values():
        listed = federation_upstream_set_value(members)
        yield {"vhost": vhost.name, "component": "federation-upstream-set", "name": members.name, "value": listed}


def vhost_definitions(vhost: VHost) -> tuple[dict[str, Any], dict[str, Any]]:
    """``vhost`` as the broker shows it: the bodies of ``GET /api/vhosts/{name}`` and ``GET
    /api/definitions/{name}`` (the reverse of :func:`vhost_from_definitions`)."""
    info = {
        "name": vhost.name,
        "description": vhost.description or "",
        "tags": list(vhost.tags or ()),
        "default_queue_type": vhost.default_queue_type or "undefined",
        "tracing": bool(vhost.tracing),
    }
    document = {
        "exchanges": [exchange_definition(x) for x in vhost.exchanges.values()],
        "queues": [queue_definition(q) for q in vhost.queues.values()],
        "bindings": [binding_definition(b) for b in vhost.bindings.values()],
        "policies": [policy_definition(p) for p in vhost.policies.values()],
        "parameters": list(_parameters(vhost)),
    }
    return info, document


# -- links: shovels, federation upstreams and upstream sets (runtime parameters of a vhost) ---------------
#
# ``PUT /api/parameters/{component}/{vhost}/{name}`` with ``{"value": ...}``; read back in the ``parameters``
# of ``GET /api/definitions/{vhost}``, as sent (RabbitMQ 3.10.8 adds nothing to the stored value), URIs with
# their passwords in clear. Normalised both ways so that a broker changed through its web UI or with legacy
# key names shows no false drift: legacy names renamed, every default the broker applies left out, a single
# URI and a list of one compared alike, numbers that are whole as int.

LINK_COMPONENTS = ("shovel", "federation-upstream", "federation-upstream-set")

VHOST_COMPONENTS = ("operator_policy", "vhost-limits", *LINK_COMPONENTS)
"""The components of a vhost's parameters that :func:`vhost_from_definitions` reads into the model (a kind
stored as parameters adds its component here and reads it there; ``topo import`` reports the parameters of
any other component as not managed)."""

SHOVEL_LEGACY_KEYS: Mapping[str, str] = {
    "prefetch-count": "src-prefetch-count",
    "delete-after": "src-delete-after",
    "add-forward-headers": "dest-add-forward-headers",
    "add-timestamp-header": "dest-add-timestamp-header",
    "publish-properties": "dest-publish-properties",
}
"""Shovel keys of RabbitMQ before 3.7 (still accepted by 3.10), and the names topo reads them as."""

SHOVEL_DEFAULTS: Mapping[str, Any] = {
    "src-protocol": "amqp091",
    "dest-protocol": "amqp091",
    "ack-mode": "on-confirm",
    "reconnect-delay": 5,
    "src-prefetch-count": 1000,
    "src-delete-after": "never",
    "dest-add-forward-headers": False,
    "dest-add-timestamp-header": False,
}
"""What a dynamic shovel does without these keys (rabbit_shovel_parameters, RabbitMQ 3.10)."""

UPSTREAM_DEFAULTS: Mapping[str, Any] = {
    "prefetch-count": 1000,
    "reconnect-delay": 5,
    "max-hops": 1,
    "ack-mode": "on-confirm",
    "trust-user-id": False,
    "bind-nowait": False,
    "resource-cleanup-mode": "default",
    "channel-use-mode": "multiple",
}
"""What a federation upstream does without these keys (rabbit_federation_upstream, RabbitMQ 3.10)."""


def _number(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def link_settings(value: Mapping[str, Any], defaults: Mapping[str, Any], legacy: Mapping[str, str]) -> dict[str, Any]:
    """A link's value without its URIs, in the broker's current key names, without the defaults."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        key = legacy.get(key, key)
        if key in ("src-uri", "dest-uri", "uri"):
            continue
        item = _number(item)
        if key in defaults and defaults[key] == item and type(defaults[key]) is type(item):
            continue
        out[key] = item
    return dict(sorted(out.items()))


def _uris(value: Any) -> tuple[Secret, ...]:
    items = value if isinstance(value, list) else [] if value is None else [value]
    return tuple(Secret(str(uri), redact(str(uri))) for uri in items)


def uri_values(uris: tuple[Secret, ...], *, what: str) -> Any:
    """The URIs as the broker takes them: one string, or a list of several. A URI that was not read (files
    loaded without their secrets) is a :class:`~topo.errors.UsageError`."""
    values = []
    for uri in uris:
        if uri.value is None:
            raise UsageError(
                f"the URI of {what} ({uri.source}) was not read",
                hint="load the files with their secrets (topo.load(..., secrets=True), as plan and apply do)",
            )
        values.append(uri.value)
    return values[0] if len(values) == 1 else values


def _shown(uris: tuple[Secret, ...]) -> Any:
    return [SENSITIVE for _ in uris] if len(uris) != 1 else SENSITIVE


def shovel_from_value(name: str, value: Mapping[str, Any]) -> Shovel:
    return Shovel(
        name=name,
        source_uris=_uris(value.get("src-uri")),
        destination_uris=_uris(value.get("dest-uri")),
        settings=link_settings(value, SHOVEL_DEFAULTS, SHOVEL_LEGACY_KEYS),
    )


def shovel_value(shovel: Shovel) -> dict[str, Any]:
    """The ``value`` of ``PUT /api/parameters/shovel/{vhost}/{name}`` (URIs and all: never shown)."""
    return {
        "src-uri": uri_values(shovel.source_uris, what=f"shovel {shovel.name!r}"),
        "dest-uri": uri_values(shovel.destination_uris, what=f"shovel {shovel.name!r}"),
        **shovel.settings,
    }


def shovel_json(shovel: Shovel) -> dict[str, Any]:
    """A shovel as a plan or an export shows it: the URIs are ``(sensitive)``, with where each comes from."""
    return {
        "name": shovel.name,
        "src-uri": _shown(shovel.source_uris),
        "src-uri-source": [u.source for u in shovel.source_uris],
        "dest-uri": _shown(shovel.destination_uris),
        "dest-uri-source": [u.source for u in shovel.destination_uris],
        **shovel.settings,
    }


def federation_upstream_from_value(name: str, value: Mapping[str, Any]) -> FederationUpstream:
    return FederationUpstream(
        name=name, uris=_uris(value.get("uri")), settings=link_settings(value, UPSTREAM_DEFAULTS, {})
    )


def federation_upstream_value(upstream: FederationUpstream) -> dict[str, Any]:
    """The ``value`` of ``PUT /api/parameters/federation-upstream/{vhost}/{name}``."""
    return {"uri": uri_values(upstream.uris, what=f"federation upstream {upstream.name!r}"), **upstream.settings}


def federation_upstream_json(upstream: FederationUpstream) -> dict[str, Any]:
    return {
        "name": upstream.name,
        "uri": _shown(upstream.uris),
        "uri-source": [u.source for u in upstream.uris],
        **upstream.settings,
    }


def federation_upstream_set_from_value(name: str, value: Any) -> FederationUpstreamSet:
    members = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, Mapping):
            upstream = str(item.get("upstream", ""))
            rest = link_settings({k: v for k, v in item.items() if k != "upstream"}, {}, {})
            if "uri" in item:  # a member may carry its own URI: kept (compared), never shown
                rest["uri"] = item["uri"]
            members.append({"upstream": upstream, **rest})
    return FederationUpstreamSet(name, tuple(members))


def federation_upstream_set_value(members: FederationUpstreamSet) -> list[dict[str, Any]]:
    """The ``value`` of ``PUT /api/parameters/federation-upstream-set/{vhost}/{name}``."""
    return [dict(m) for m in members.members]


def federation_upstream_set_json(members: FederationUpstreamSet) -> dict[str, Any]:
    shown = [{k: (SENSITIVE if k == "uri" else v) for k, v in m.items()} for m in members.members]
    return {"name": members.name, "upstreams": shown}


def _read_link(vhost: VHost, component: str, name: str, value: Any) -> None:
    if component == "shovel" and isinstance(value, Mapping):
        vhost.shovels[name] = shovel_from_value(name, value)
    elif component == "federation-upstream" and isinstance(value, Mapping):
        vhost.federation_upstreams[name] = federation_upstream_from_value(name, value)
    elif component == "federation-upstream-set":
        vhost.federation_upstream_sets[name] = federation_upstream_set_from_value(name, value)


# -- users, permissions, topic permissions, global parameters (broker-wide) ------------------------------
#
# Reading: the items of ``GET /api/users``, ``/api/permissions``, ``/api/topic-permissions`` and
# ``/api/global-parameters``. Writing: the bodies of the ``PUT`` requests.
#
# A user's ``PUT`` always carries a password hash (:func:`user_body`): RabbitMQ clears the password of a user
# updated without one, and gives a plaintext password sent again a new salt. So the body holds the broker's
# own stored hash when the password does not change (byte-stable: nothing rotates), and a hash topo computed
# with a fresh salt when it does (the plaintext never travels).


def tags_of(value: Any) -> tuple[str, ...]:
    """A user's tags as the broker gives them (a list, or a comma-separated string), sorted."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    return tuple(sorted({str(tag).strip() for tag in items if str(tag).strip()}))


def user_from_definition(item: Mapping[str, Any]) -> User:
    """One item of ``GET /api/users``: its stored hash (``""``: no password) and limits come along."""
    limits = item.get("limits")
    return User(
        name=str(item["name"]),
        tags=tags_of(item.get("tags")),
        limits={str(k): int(v) for k, v in limits.items()} if isinstance(limits, dict) else {},
        password_hash=PasswordHash(
            str(item.get("password_hash") or ""), str(item.get("hashing_algorithm") or DEFAULT_ALGORITHM)
        ),
    )


def user_definition(user: User) -> dict[str, Any]:
    """``user`` as ``GET /api/users`` lists it (the reverse of :func:`user_from_definition`)."""
    stored = user.password_hash or PasswordHash("", DEFAULT_ALGORITHM)
    return {
        "name": user.name,
        "tags": list(user.tags),
        "limits": dict(user.limits or {}),
        "password_hash": stored.value,
        "hashing_algorithm": stored.algorithm,
    }


def declared_password(user: User) -> str:
    """The password ``user`` declares (it has a ``password``); a :class:`~topo.errors.UsageError` when the
    files were loaded without their secrets and this one was not at hand."""
    secret = user.password
    if secret is None or secret.value is None:
        raise UsageError(
            f"the password of user {user.name!r} ({secret.source if secret else 'none'}) was not read",
            hint="load the files with their secrets (topo.load(..., secrets=True), as plan and apply do)",
        )
    return secret.value


def password_to_send(desired: User, observed: User | None, *, salt: bytes | None = None) -> PasswordHash:
    """The hash a ``PUT`` of ``desired`` carries, when the broker has ``observed`` (None: a new user).

    - a declared hash: that hash;
    - a declared password that the stored hash was made from (and the algorithm the files ask for, if they
      ask): the stored hash, as it is; otherwise a fresh hash of the password (``salt`` for tests);
    - no password source: the stored hash as it is, or none (``""``) for a new user.
    """
    stored = observed.password_hash if observed is not None else None
    if desired.password_hash is not None:
        return desired.password_hash
    if desired.password is not None:
        wanted = desired.hashing_algorithm
        if (
            stored is not None
            and matches(declared_password(desired), stored.value, stored.algorithm)
            and (wanted is None or wanted == stored.algorithm)
        ):
            return stored
        algorithm = wanted or DEFAULT_ALGORITHM
        return PasswordHash(hash_password(declared_password(desired), algorithm, salt=salt), algorithm)
    if stored is not None:
        return stored
    return PasswordHash("", DEFAULT_ALGORITHM)


def user_body(desired: User, observed: User | None, *, salt: bytes | None = None) -> dict[str, Any]:
    """The body of ``PUT /api/users/{name}``: tags and a password hash, never a plaintext password."""
    password = password_to_send(desired, observed, salt=salt)
    return {
        "tags": ",".join(desired.tags),
        "password_hash": password.value,
        "hashing_algorithm": password.algorithm,
    }


def permission_from_definition(item: Mapping[str, Any]) -> Permission:
    return Permission(
        user=str(item["user"]),
        vhost=str(item["vhost"]),
        configure=str(item.get("configure", "")),
        write=str(item.get("write", "")),
        read=str(item.get("read", "")),
    )


def permission_definition(permission: Permission) -> dict[str, str]:
    """``permission`` as ``GET /api/permissions`` lists it."""
    return {"user": permission.user, "vhost": permission.vhost, **permission_body(permission)}


def permission_body(permission: Permission) -> dict[str, str]:
    """The body of ``PUT /api/permissions/{vhost}/{user}`` (all three patterns: the broker requires them)."""
    return {"configure": permission.configure, "write": permission.write, "read": permission.read}


def topic_permissions_from_definitions(items: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], TopicPermissions]:
    """``GET /api/topic-permissions`` (one item per user, vhost and exchange), grouped by (user, vhost)."""
    grouped: dict[tuple[str, str], dict[str, TopicPermission]] = {}
    for item in items:
        key = (str(item["user"]), str(item["vhost"]))
        exchange = str(item["exchange"])
        grouped.setdefault(key, {})[exchange] = TopicPermission(
            exchange, str(item.get("write", "")), str(item.get("read", ""))
        )
    return {key: TopicPermissions(key[0], key[1], entries) for key, entries in grouped.items()}


def topic_permissions_definitions(permissions: TopicPermissions) -> list[dict[str, str]]:
    """A user's topic permissions on a vhost as ``GET /api/topic-permissions`` lists them: one item per exchange."""
    return [
        {"user": permissions.user, "vhost": permissions.vhost, **topic_permission_body(entry)}
        for entry in permissions.exchanges.values()
    ]


def topic_permission_body(entry: TopicPermission) -> dict[str, str]:
    """The body of ``PUT /api/topic-permissions/{vhost}/{user}``: one exchange's entry."""
    return {"exchange": entry.exchange, "write": entry.write, "read": entry.read}


def global_parameter_from_definition(item: Mapping[str, Any]) -> GlobalParameter:
    return GlobalParameter(str(item["name"]), item.get("value"))


def global_parameter_definition(parameter: GlobalParameter) -> dict[str, Any]:
    """The body of ``PUT /api/global-parameters/{name}``, as ``GET`` lists it too."""
    return {"name": parameter.name, "value": parameter.value}
