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
    "plain_source",
]

FORMAT = "topo-saved-plan"
FORMAT_VERSION = 1

KNOWN_FLAGS = frozenset({"vhosts"})
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


def _enc(tp: Any, value: Any, where: str) -> Any:
    if value is None:
        return None
    tp = _optional(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or tp is object:
        return value
    if tp is Secret:
        return {"source": value.source}  # never the value
    if tp is PasswordHash:
        if value.value:
            raise UsageError(
                f"{where}: the password is a password-hash in the files, and a saved plan never holds a password hash",
                hint="give the password as `password: ${env:NAME}` or `password-file: PATH` (read again where the "
                "plan is applied), or apply from the files",
            )
        return {"value": "", "algorithm": value.algorithm}  # no password: nothing secret
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        if isinstance(value, User):
            where = str(Address("user", "", value.name))
        return {
            f.name: _enc(hints[f.name], getattr(value, f.name), where)
            for f in dataclasses.fields(tp)
            if f.name not in _SKIP
        }
    if origin in (dict, Mapping):
        key_type, item_type = args
        if key_type is str:
            return {k: _enc(item_type, v, where) for k, v in value.items()}
        return [[_enc(key_type, k, where), _enc(item_type, v, where)] for k, v in value.items()]
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return [_enc(args[0], item, where) for item in value]
        return [_enc(a, item, where) for a, item in zip(args, value, strict=True)]
    if origin is frozenset:
        return sorted(_enc(args[0], item, where) for item in value)
    if origin is Literal or tp in (str, int, float, bool):
        return value
    raise TypeError(f"cannot save a value of type {tp}")


def _dec(tp: Any, data: Any) -> Any:
    if data is None:
        return None
    tp = _optional(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or tp is object:
        return data
    if tp is Secret:
        return Secret(None, str(data["source"]))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        if not isinstance(data, dict):
            raise ValueError(f"expected an object for {tp.__name__}")
        known = {f.name for f in dataclasses.fields(tp)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown field(s) of {tp.__name__}: {', '.join(sorted(unknown))}")
        built: Any = tp(**{name: _dec(hints[name], value) for name, value in data.items()})
        return built
    if origin in (dict, Mapping):
        key_type, item_type = args
        if key_type is str:
            return {str(k): _dec(item_type, v) for k, v in data.items()}
        return {_dec(key_type, k): _dec(item_type, v) for k, v in data}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_dec(args[0], item) for item in data)
        return tuple(_dec(a, item) for a, item in zip(args, data, strict=True))
    if origin is frozenset:
        return frozenset(_dec(args[0], item) for item in data)
    if origin is Literal:
        if data not in args:
            raise ValueError(f"{data!r} is not one of {args}")
        return data
    if tp in (str, int, float, bool):
        if not isinstance(data, tp) or (tp is int and isinstance(data, bool)):
            raise ValueError(f"expected {tp.__name__}, got {type(data).__name__}")
        return data
    raise TypeError(f"cannot read a value of type {tp}")


def encode_topology(topology: Topology) -> dict[str, Any]:
    """``topology`` as JSON data: secrets by their source only; refused (UsageError) when a password hash, a
    secret whose source apply cannot read again, or a URL with credentials would be written."""
    data: dict[str, Any] = _enc(Topology, topology, "the topology")
    _check_sources(topology, None, "the topology")
    _refuse_credentials(data, "desired")
    return data


_READABLE = re.compile(r"\$\{(env|var):[A-Za-z_][A-Za-z0-9_]*\}|(password-file|uri-file) .+")


def plain_source(source: str) -> bool:
    """Whether ``source`` is a URI without credentials (it is then its own value: no secret)."""
    return "://" in source and "@" not in source and "***" not in source


def _check_sources(value: Any, origin: Any, where: str) -> None:
    """Every secret of ``value`` can be read again where the plan is applied (from its source), or UsageError
    naming it: a URI whose password is written inside it (``amqp://user:${env:PW}@host``) keeps no source of
    its own (its source is the URI with the credentials left out)."""
    if isinstance(value, Secret):
        if not (_READABLE.fullmatch(value.source) or plain_source(value.source)):
            place = f"{origin.file}:{origin.line}: " if origin is not None else ""
            raise UsageError(
                f"{place}{where}: a saved plan cannot record where this secret comes from ({value.source}): a "
                "password written inside a URI",
                hint="write the whole URI as ${env:NAME} (or use uri-file: PATH), or apply from the files",
            )
    elif isinstance(value, tuple | list):
        for item in value:
            _check_sources(item, origin, where)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        origin = getattr(value, "origin", None) or origin
        name = getattr(value, "name", None)
        kind = re.sub(r"(?<!^)(?=[A-Z])", "-", type(value).__name__).lower()
        here = f"{kind} {name!r}" if isinstance(name, str) and name else where
        for f in dataclasses.fields(value):
            if f.name not in ("origin", "monitor"):
                _check_sources(getattr(value, f.name), origin, here)
    elif isinstance(value, dict) and value and any(dataclasses.is_dataclass(v) for v in value.values()):
        for item in value.values():
            _check_sources(item, origin, where)


def decode_topology(data: Any) -> Topology:
    """The topology :func:`encode_topology` wrote (its users' passwords not read: ``Secret.value`` None)."""
    topology: Topology = _dec(Topology, data)
    return topology


def _refuse_credentials(data: Any, path: str) -> None:
    """No URL with a password in a saved plan (a shovel's or federation upstream's URI, a value from
    ``${env:...}``): refuse rather than write it."""
    if isinstance(data, str):
        if _URL_WITH_PASSWORD.search(data):
            raise UsageError(
                f"a saved plan would hold a URL with a password (at {path}): topo never writes a secret into a plan "
                "file",
                hint="apply from the files instead of a saved plan",
            )
    elif isinstance(data, dict):
        for key, value in data.items():
            _refuse_credentials(value, f"{path}.{key}")
    elif isinstance(data, list):
        for index, value in enumerate(data):
            _refuse_credentials(value, f"{path}[{index}]")


# -- the fingerprint of the broker state ---------------------------------------------------------------


def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _resource_hash(kind: str, resource: Any) -> str:
    if isinstance(resource, User):  # the password is decided again at apply time, never fingerprinted
        resource = dataclasses.replace(resource, password=None, password_hash=None)
    body = _enc(type(resource), resource, kind) if dataclasses.is_dataclass(resource) else resource
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


def _resources(topology: Topology, vhosts: typing.Iterable[str], broker_kinds: typing.Iterable[str]) -> dict[str, str]:
    """Address → hash of every resource of ``topology`` in ``vhosts`` and of the broker-wide kinds named."""
    out: dict[str, str] = {}
    wanted = set(broker_kinds)
    for kind in BROKER_KINDS:
        if kind.name in wanted:
            for key, resource in kind.items(topology).items():
                out[str(_broker_address(kind.name, key))] = _resource_hash(kind.name, resource)
    for name in vhosts:
        vhost = topology.vhosts.get(name)
        if vhost is None:
            continue
        out[str(Address("vhost", name))] = _digest(_vhost_metadata(vhost))
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
    addresses = set(_resources(desired, desired.vhosts, kinds))
    addresses.update(str(change.address) for change in plan.changes)
    return addresses


def fingerprint(
    observed: Topology, desired: Topology, addresses: typing.Iterable[str], facts: BrokerFacts | None = None
) -> dict[str, str]:
    """Address → hash of the broker's resource (``""``: the broker does not have it), for each address;
    and the facts the broker-wide kinds are compared with (who topo connects as, the broker's vhosts),
    under ``broker.connecting-user`` and ``broker.vhosts``."""
    kinds = [k.name for k in BROKER_KINDS if k.declared(desired)]
    have = _resources(observed, desired.vhosts, kinds)
    out = {address: have.get(address, "") for address in sorted(set(addresses))}
    if kinds and facts is not None:
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
            out.append(f"{address}: the broker now needs a {b[address]['action']} the saved plan does not have")
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
    text = json.dumps({**body, "checksum": f"sha256:{checksum}"}, indent=1, ensure_ascii=False, sort_keys=False)
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
