"""A saved plan (``topo plan -o plan.json``): what ``topo apply plan.json`` applies exactly. Pure.

The file holds the desired topology as it was loaded (normalised, every ``${env:...}``/``${var:...}`` already
resolved), the plan made from it (the JSON plan format, for people and programs), the flags it was made
with, and a **fingerprint** of the broker state the plan was computed from: a hash of every resource the
plan manages (those the files declare and those it changes), by address. Applying it re-reads the broker:
any managed resource whose hash differs, or a plan that would come out different, refuses the apply and
names the addresses (:class:`~topo.errors.StalePlan`).

No secret is written: a user's password is recorded by its *source* only (``${env:NAME}``, ``${var:NAME}``,
``password-file PATH``) and read again where the plan is applied; a password hash (the broker's, or a
file's ``password-hash:``) is neither written nor fingerprinted (a hash of it would be a verifier a
dictionary attack can use). Whether a user's password still matches is decided again at apply time: a
password changed on the broker since the plan, or a different password at hand, makes the plan come out
different, and the apply is refused naming the user. See docs/gitops.md.

The codec is driven by the model's type hints: every field of every dataclass of a :class:`Topology` is
written and read back (``monitor:`` blocks excepted: nothing that apply needs), so a kind added to the model
travels without a change here.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from topo import __version__
from topo.errors import UsageError
from topo.model import Address, PasswordHash, Secret, Topology, User, VHost
from topo.plan.kinds import BROKER_KINDS, VHOST_KINDS, BrokerFacts
from topo.plan.model import Plan

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "KNOWN_FLAGS",
    "BadPlanFile",
    "SavedPlan",
    "changes_key",
    "compare_changes",
    "compare_fingerprints",
    "decode_topology",
    "dumps",
    "encode_topology",
    "fingerprint",
    "loads",
    "managed_addresses",
    "readable_source",
]

FORMAT = "topo-saved-plan"
FORMAT_VERSION = 1

KNOWN_FLAGS = frozenset({"vhosts", "prune", "adopt", "allow_data_loss", "migrate"})
"""The flags a saved plan may record (how ``topo plan`` was run). A flag that changes what is planned
(prune, adopt, allow-data-loss, migrate, ...) is added here and passed to the planner again by
:func:`topo.saved.check`, so that apply plans as the saved plan was planned; a file with a flag this topo
does not know is refused."""

_SKIP = frozenset({"monitor"})  # runtime monitoring levels: apply never needs them
_URL_WITH_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/@\s]*:[^/@\s]*@")


class BadPlanFile(UsageError):
    """A file given to ``topo apply`` is not a saved plan this topo can apply: not JSON, another format or
    version, or changed since it was written."""


@dataclass(frozen=True)
class SavedPlan:
    """What a saved plan file holds (see the module docstring). ``flags``: how the plan was made (``vhosts``
    and the options other commands add, e.g. prune); apply makes it with the same ones."""

    desired: Topology
    plan: dict[str, Any]  # the JSON plan format (docs/plan-json.md)
    fingerprint: dict[str, str]  # address → hash of the broker's resource ("" : absent)
    flags: dict[str, Any] = field(default_factory=dict)
    topo_version: str = __version__


# -- the codec: a Topology as JSON and back, by the model's type hints -----------------------------------


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, localns={"MonitorBlock": object})


def _optional(tp: Any) -> Any:
    """``X`` of ``X | None`` (``tp`` itself otherwise)."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        rest = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(rest) != 1:
            raise TypeError(f"cannot save a field of type {tp}")
        return rest[0]
    return tp


Encode = typing.Callable[[Any, Any], Any]  # (value, the dataclass that holds it) -> JSON
Decode = typing.Callable[[Any], Any]


def _place(owner: Any) -> str:
    """Where a value of ``owner`` (the dataclass that holds it) was declared, for a message."""
    if isinstance(owner, User):
        return str(Address("user", "", owner.name))
    kind = re.sub(r"(?<!^)(?=[A-Z])", "-", type(owner).__name__).lower()
    name = getattr(owner, "name", None)
    origin = getattr(owner, "origin", None)
    place = f"{origin.file}:{origin.line}: " if origin is not None else ""
    return f"{place}{kind} {name!r}" if isinstance(name, str) and name else f"{place}{kind}"


def _plain(value: Any, owner: Any) -> Any:
    return value


def _credentials(value: Any, owner: Any) -> Any:
    """``value`` (a string, or any JSON), refused when a URL with a password stands in it."""
    if isinstance(value, str):
        if "://" in value and _URL_WITH_PASSWORD.search(value):
            raise UsageError(
                f"{_place(owner)}: a saved plan would hold a URL with a password: topo never writes a secret into a "
                "plan file",
                hint="take it from ${env:NAME} where topo can record the source, or apply from the files",
            )
    elif isinstance(value, dict):
        for item in value.values():
            _credentials(item, owner)
    elif isinstance(value, list | tuple):
        for item in value:
            _credentials(item, owner)
    return value


def _secret_source(value: Any, owner: Any) -> Any:
    return None if value is None else {"source": value.source}  # never the value


def _readable_source(value: Any, owner: Any) -> Any:
    if value is not None and (not readable_source(value.source) or _URL_WITH_PASSWORD.search(value.source)):
        raise UsageError(
            f"{_place(owner)}: a saved plan cannot record where this secret comes from ({value.source}): a password "
            "written inside a URI",
            hint="write the whole URI as ${env:NAME} (or use uri-file: PATH), or apply from the files",
        )
    return _secret_source(value, owner)


def _password_hash(value: Any, owner: Any) -> Any:
    if value is None:
        return None
    if value.value:
        raise UsageError(
            f"{_place(owner)}: the password is a password-hash in the files, and a saved plan never holds a password "
            "hash",
            hint="give the password as `password: ${env:NAME}` or `password-file: PATH` (read again where the "
            "plan is applied), or apply from the files",
        )
    return {"value": "", "algorithm": value.algorithm}  # no password: nothing secret


@functools.cache
def _encoder(tp: Any, desired: bool) -> Encode:
    """How to write a value of type ``tp`` (made once per type: a large topology is written field by field).
    ``desired``: the files' topology, whose secrets must be readable again from their sources and where no
    URL with a password may stand; else the broker's (fingerprinted: its secrets' sources are redacted)."""
    tp = _optional(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or tp is object or tp is str:
        return _credentials if desired else _plain
    if origin is Literal or tp in (int, float, bool):
        return _plain
    if tp is Secret:
        return _readable_source if desired else _secret_source
    if tp is PasswordHash:
        return _password_hash
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        fields = [(f.name, _encoder(hints[f.name], desired)) for f in dataclasses.fields(tp) if f.name not in _SKIP]

        def dataclass_(value: Any, owner: Any) -> Any:
            if value is None:
                return None
            return {name: encode(getattr(value, name), value) for name, encode in fields}

        return dataclass_
    if origin in (dict, Mapping):
        key_type, item_type = args
        item = _encoder(item_type, desired)
        if key_type is str:
            if item is _plain:
                return lambda value, owner: None if value is None else dict(value)
            return lambda value, owner: None if value is None else {k: item(v, owner) for k, v in value.items()}
        key = _encoder(key_type, desired)
        return lambda value, owner: (
            None if value is None else [[key(k, owner), item(v, owner)] for k, v in value.items()]
        )
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            each = _encoder(args[0], desired)
            return lambda value, owner: None if value is None else [each(v, owner) for v in value]
        parts = [_encoder(a, desired) for a in args]
        return lambda value, owner: None if value is None else [e(v, owner) for e, v in zip(parts, value, strict=True)]
    if origin is frozenset:
        member = _encoder(args[0], desired)
        return lambda value, owner: None if value is None else sorted(member(v, owner) for v in value)
    raise TypeError(f"cannot save a value of type {tp}")


def _scalar(tp: type) -> Decode:
    def scalar(data: Any) -> Any:
        if data is None:
            return None
        if not isinstance(data, tp) or (tp is int and isinstance(data, bool)):
            raise ValueError(f"expected {tp.__name__}, got {type(data).__name__}")
        return data

    return scalar


@functools.cache
def _decoder(tp: Any) -> Decode:
    """How to read a value of type ``tp`` back (made once per type); ValueError when ``data`` does not fit."""
    tp = _optional(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or tp is object:
        return lambda data: data
    if tp in (str, int, float, bool):
        return _scalar(tp)
    if origin is Literal:

        def literal(data: Any) -> Any:
            if data is not None and data not in args:
                raise ValueError(f"{data!r} is not one of {args}")
            return data

        return literal
    if tp is Secret:
        return lambda data: None if data is None else Secret(None, str(data["source"]))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        fields = {f.name: _decoder(hints[f.name]) for f in dataclasses.fields(tp)}
        cls: Any = tp

        def dataclass_(data: Any) -> Any:
            if data is None:
                return None
            if not isinstance(data, dict):
                raise ValueError(f"expected an object for {cls.__name__}")
            unknown = set(data) - set(fields)
            if unknown:
                raise ValueError(f"unknown field(s) of {cls.__name__}: {', '.join(sorted(unknown))}")
            return cls(**{name: fields[name](value) for name, value in data.items()})

        return dataclass_
    if origin in (dict, Mapping):
        key_type, item_type = args
        item = _decoder(item_type)
        if key_type is str:
            return lambda data: None if data is None else {str(k): item(v) for k, v in data.items()}
        key = _decoder(key_type)
        return lambda data: None if data is None else {key(k): item(v) for k, v in data}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            each = _decoder(args[0])
            return lambda data: None if data is None else tuple(each(v) for v in data)
        parts = [_decoder(a) for a in args]
        return lambda data: None if data is None else tuple(d(v) for d, v in zip(parts, data, strict=True))
    if origin is frozenset:
        member = _decoder(args[0])
        return lambda data: None if data is None else frozenset(member(v) for v in data)
    raise TypeError(f"cannot read a value of type {tp}")


def encode_topology(topology: Topology) -> dict[str, Any]:
    """``topology`` (the files') as JSON data: secrets by their source only; refused (UsageError, naming the
    place) when a password hash, a secret whose source apply cannot read again (a password written inside a
    URI), or a URL with a password would be written."""
    data: dict[str, Any] = _encoder(Topology, True)(topology, topology)
    return data


def decode_topology(data: Any) -> Topology:
    """The topology :func:`encode_topology` wrote (its secrets not read: ``Secret.value`` None)."""
    topology: Topology = _decoder(Topology)(data)
    return topology


def readable_source(source: str) -> bool:
    """Whether a secret's value can be had again from its ``source``: a file (``password-file PATH``,
    ``uri-file PATH``), or the text the files wrote, which interpolation turns into it (``${env:NAME}``,
    ``${env:NAME:-amqp:///shop}``, a URI without credentials). Not a URI whose credentials were left out of
    its source (``amqp://***@host``: a password written inside the URI)."""
    return source.startswith(("password-file ", "uri-file ")) or "***" not in source


# -- the fingerprint of the broker state ---------------------------------------------------------------


def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _no_hash(kind: str, resource: Any) -> str:
    return ""


def _hash(kind: str, resource: Any) -> str:
    if isinstance(resource, User):  # the password is decided again at apply time, never fingerprinted
        resource = dataclasses.replace(resource, password=None, password_hash=None)
    body: Any = resource
    if dataclasses.is_dataclass(resource) and not isinstance(resource, type):
        body = _encoder(type(resource), False)(resource, resource)
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in ("origin", "password", "password_hash")}
    return _digest(body)


def _vhost_metadata(vhost: VHost) -> dict[str, Any]:
    return {
        "description": vhost.description,
        "tags": list(vhost.tags) if vhost.tags is not None else None,
        "limits": dict(vhost.limits) if vhost.limits is not None else None,
        "default_queue_type": vhost.default_queue_type,
        "tracing": vhost.tracing,
    }


def _broker_address(kind: str, key: Any) -> Address:
    if isinstance(key, tuple):  # a permission's (user, vhost)
        return Address(kind, key[1], key[0])  # type: ignore[arg-type]
    return Address(kind, "", str(key))  # type: ignore[arg-type]


def _resources(
    topology: Topology, vhosts: typing.Iterable[str], broker_kinds: typing.Iterable[str], *, hashed: bool = True
) -> dict[str, str]:
    """Address → hash of every resource of ``topology`` in ``vhosts`` and of the broker-wide kinds named
    (without ``hashed``: address → "", the addresses alone)."""
    out: dict[str, str] = {}
    _resource_hash = _hash if hashed else _no_hash
    wanted = set(broker_kinds)
    for kind in BROKER_KINDS:
        if kind.name in wanted:
            for key, resource in kind.items(topology).items():
                out[str(_broker_address(kind.name, key))] = _resource_hash(kind.name, resource)
    for name in vhosts:
        vhost = topology.vhosts.get(name)
        if vhost is None:
            continue
        out[str(Address("vhost", name))] = _digest(_vhost_metadata(vhost)) if hashed else ""
        for kind in VHOST_KINDS:
            if kind.name == "vhost":
                continue
            for key, resource in kind.items(vhost).items():
                is_binding = kind.name == "binding"
                address = resource.address(name) if is_binding else Address(kind.name, name, str(key))
                out[str(address)] = _resource_hash(kind.name, resource)
    return out


def managed_addresses(desired: Topology, plan: Plan) -> set[str]:
    """The addresses a saved plan fingerprints: every resource the files declare and every one the plan
    changes (what no file declares and the plan leaves alone, e.g. a client's own queues, is not)."""
    kinds = [k.name for k in BROKER_KINDS if k.declared(desired)]
    addresses = set(_resources(desired, desired.vhosts, kinds, hashed=False))
    addresses.update(str(change.address) for change in plan.changes)
    return addresses


def fingerprint(
    observed: Topology, desired: Topology, addresses: typing.Iterable[str], facts: BrokerFacts | None = None
) -> dict[str, str]:
    """Address → hash of the broker's resource (``""``: the broker does not have it), for each address;
    and the facts the broker-wide kinds are compared with (who topo connects as, the broker's vhosts),
    under ``broker.connecting-user`` and ``broker.vhosts``."""
    kinds = [k.name for k in BROKER_KINDS if k.declared(desired)]
    have = _resources(observed, set(desired.vhosts) | set(observed.vhosts), kinds)
    out = {address: have.get(address, "") for address in sorted(set(addresses))}
    if kinds and facts is not None and (facts.connecting_user is not None or facts.vhosts is not None):
        out["broker.connecting-user"] = _digest(facts.connecting_user)
        out["broker.vhosts"] = _digest(sorted(facts.vhosts or ()))
    return out


def compare_fingerprints(saved: Mapping[str, str], now: Mapping[str, str]) -> list[str]:
    """What changed on the broker since the plan, one line per address (empty: nothing)."""
    out = []
    for address in sorted(set(saved) | set(now)):
        before, after = saved.get(address, ""), now.get(address, "")
        if before == after:
            continue
        if address.startswith("broker."):
            what = {"broker.connecting-user": "the user topo connects as", "broker.vhosts": "the broker's vhosts"}
            out.append(f"{what.get(address, address)} changed")
        elif not before:
            out.append(f"{address} was created")
        elif not after:
            out.append(f"{address} was deleted")
        else:
            out.append(f"{address} was changed")
    return out


def changes_key(plan_json: Mapping[str, Any]) -> dict[str, Any]:
    """What of a JSON plan's changes a saved plan must match (address → action, before, after, reasons):
    not the counts, which apply takes again anyway."""
    return {
        change["address"]: {k: change.get(k) for k in ("action", "kind", "before", "after", "reasons")}
        for change in plan_json.get("changes", [])
    }


def compare_changes(saved: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """How the plan made now differs from the saved one, one line per address."""
    a, b = changes_key(saved), changes_key(now)
    out = []
    for address in sorted(set(a) | set(b)):
        if address not in b:
            action = a[address]["action"]
            out.append(f"{address}: the saved plan would {action} it, the broker needs no such change now")
        elif address not in a:
            action = b[address]["action"]
            article = "an" if action[0] in "aeiou" else "a"
            out.append(f"{address}: the broker now needs {article} {action} the saved plan does not have")
        elif a[address] != b[address]:
            out.append(f"{address}: the saved plan's {a[address]['action']} is not what the broker needs now")
    return out


# -- the file ------------------------------------------------------------------------------------------


def _body(saved: SavedPlan) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "topo_version": saved.topo_version,
        "flags": saved.flags,
        "fingerprint": saved.fingerprint,
        "plan": saved.plan,
        "desired": encode_topology(saved.desired),
    }


def dumps(saved: SavedPlan) -> str:
    """The file's text: the body and a checksum of it (which catches a file edited or cut short; it is no
    signature: keep the file where the pipeline keeps its other artifacts)."""
    body = _body(saved)
    checksum = _digest(body)
    text = json.dumps({**body, "checksum": f"sha256:{checksum}"}, ensure_ascii=False, separators=(",", ":"))
    return text + "\n"


def loads(text: str, name: str) -> SavedPlan:
    """The saved plan in ``text`` (from the file ``name``); BadPlanFile when it is not one this topo applies."""
    hint = "make it again with `topo plan PATH... -o FILE` (with this version of topo)"
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        where = f" (line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise BadPlanFile(f"{name} is not a saved plan: not JSON{where}", hint=hint) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BadPlanFile(
            f'{name} is not a saved plan (no "format": "{FORMAT}")',
            hint="`topo apply` takes the topology files, or a plan saved with `topo plan ... -o FILE` "
            "(`--format json` output is for reading, not for apply)",
        )
    version, made_by = data.get("format_version"), data.get("topo_version")
    if version != FORMAT_VERSION or made_by != __version__:
        raise BadPlanFile(
            f"{name} was saved by topo {made_by} (saved-plan format {version}); this is topo {__version__} (format "
            f"{FORMAT_VERSION}): a saved plan is applied by the topo that made it",
            hint=hint,
        )
    checksum = data.pop("checksum", None)
    if checksum != f"sha256:{_digest(data)}":
        raise BadPlanFile(f"{name} was changed after topo saved it (its checksum does not match)", hint=hint)
    try:
        flags, prints, plan = data["flags"], data["fingerprint"], data["plan"]
        if not isinstance(flags, dict) or not isinstance(prints, dict) or not isinstance(plan, dict):
            raise ValueError("flags, fingerprint and plan are objects")
        unknown = sorted(set(flags) - KNOWN_FLAGS)
        if unknown:
            raise ValueError(f"made with flags this topo does not know: {', '.join(unknown)}")
        desired = decode_topology(data["desired"])
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise BadPlanFile(f"{name} is not a saved plan topo can read ({exc})", hint=hint) from None
    return SavedPlan(desired=desired, plan=plan, fingerprint=dict(prints), flags=dict(flags), topo_version=made_by)
