"""Saved plans at the edge: write one (``topo plan -o``), read one, and check it against the broker before
``topo apply plan.json`` runs it. The format and the fingerprint are :mod:`topo.plan.saved` (pure).

Library use::

    with ManagementClient(url) as client:
        desired, planned, observed = engine.load_plan_observed(client, "topologies/")
        topo.saved.write("plan.json", topo.saved.make(desired, planned, observed))
        ...
        desired, planned = topo.saved.check(client, topo.saved.read("plan.json"))  # StalePlan if moved
        engine.apply(client, desired, planned, recount=False)
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from topo import engine
from topo.broker.client import ManagementClient
from topo.broker.port import Broker
from topo.broker.reader import Observed
from topo.errors import StalePlan, UsageError
from topo.model import Address, Origin, Secret, Topology, User
from topo.plan.model import Plan
from topo.plan.ownership import Ownership
from topo.plan.render import plan_json
from topo.plan.saved import (
    BadPlanFile,
    SavedPlan,
    compare_changes,
    compare_fingerprints,
    dumps,
    fingerprint,
    loads,
    managed_addresses,
    readable_source,
)

__all__ = ["check", "make", "read", "with_secrets", "write"]

_INTERPOLATION = re.compile(r"\$\$\{|\$\{(env|var):([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{([^}]*)\}")
"""What the loader interpolates (topo/loader/source.py), read again in a secret's source."""
_STALE_HINT = (
    "the broker changed after the plan was made: make the plan again (`topo plan PATH... -o FILE`), review it, "
    "and apply the new one"
)


def make(desired: Topology, planned: Plan, observed: Observed, flags: Mapping[str, Any] | None = None) -> SavedPlan:
    """The saved plan of ``planned`` (made from ``desired`` against ``observed``)."""
    addresses = managed_addresses(desired, planned)
    prints = fingerprint(observed.topology, desired, addresses, observed.facts)
    return SavedPlan(desired=desired, plan=plan_json(planned), fingerprint=prints, flags=dict(flags or {}))


def write(path: str | os.PathLike[str], saved: SavedPlan) -> None:
    text = dumps(saved)  # refuses a secret before anything is written
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(
            f"cannot write {os.fspath(path)}: {exc.strerror or exc}", hint="check the path given to -o"
        ) from None


def read(path: str | os.PathLike[str]) -> SavedPlan:
    name = os.fspath(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise BadPlanFile(f"cannot read {name}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadPlanFile(
            f"{name} is not a saved plan: not UTF-8 text", hint="make it with `topo plan PATH... -o FILE`"
        ) from None
    return loads(text, name)


def with_secrets(
    topology: Topology, environ: Mapping[str, str] | None = None, variables: Mapping[str, str] | None = None
) -> Topology:
    """``topology`` with every secret read from its source, here and now (a user's password, a shovel's or
    federation upstream's URIs): ``${env:NAME}`` from the environment, ``${var:NAME}`` from ``variables``
    (``--var``), ``password-file PATH`` and ``uri-file PATH`` from the file (a relative path is taken from the
    directory of the topology file that declared it, as at plan time); a URI without credentials is its own
    source."""
    reader = _Secrets(os.environ if environ is None else environ, variables or {})
    resolved: Topology = reader.walk(topology, None, "the topology")
    return resolved


class _Secrets:
    def __init__(self, environ: Mapping[str, str], variables: Mapping[str, str]) -> None:
        self.environ, self.variables = environ, variables

    def walk(self, value: Any, origin: Origin | None, where: str) -> Any:
        """``value`` with its unread secrets read (the same object when it has none)."""
        if isinstance(value, Secret):
            return value if value.value is not None else Secret(self.read(value.source, origin, where)[0], value.source)
        if isinstance(value, tuple) and value and all(isinstance(item, Secret) for item in value):
            sources = {item.source for item in value if item.value is None}
            if len(sources) == 1 and len(value) >= 1 and next(iter(sources)).startswith("uri-file "):
                source = next(iter(sources))
                return tuple(Secret(text, source) for text in self.read(source, origin, where))
            return tuple(self.walk(item, origin, where) for item in value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            origin = getattr(value, "origin", None) or origin
            name = getattr(value, "name", None)
            kind = re.sub(r"(?<!^)(?=[A-Z])", "-", type(value).__name__).lower()
            here = f"{kind} {name!r}" if isinstance(name, str) and name else where
            if isinstance(value, User):
                here = str(Address("user", "", value.name))
            changes = {}
            for f in dataclasses.fields(value):
                if f.name in ("origin", "monitor"):
                    continue
                item = getattr(value, f.name)
                walked = self.walk(item, origin, here)
                if walked is not item:
                    changes[f.name] = walked
            return dataclasses.replace(value, **changes) if changes else value
        if isinstance(value, dict) and value and any(dataclasses.is_dataclass(v) for v in value.values()):
            walked_items = {k: self.walk(v, origin, where) for k, v in value.items()}
            return walked_items if any(walked_items[k] is not value[k] for k in value) else value
        return value

    def read(self, source: str, origin: Origin | None, where: str) -> list[str]:
        """The secret(s) ``source`` names (a URI file may hold several, one a line)."""
        kind, _, name = source.partition(" ")
        if kind in ("password-file", "uri-file") and name:
            return self.read_file(kind, name, origin, where)
        if not readable_source(source):
            raise UsageError(f"{where}: the saved plan names a secret source topo cannot read: {source}")
        return [self.interpolate(source, where)]

    def interpolate(self, text: str, where: str) -> str:
        """``text`` with ``${env:NAME}``, ``${env:NAME:-default}``, ``${var:NAME}`` and ``$${`` replaced, as the
        loader does."""

        def replace(match: re.Match[str]) -> str:
            whole = match.group(0)
            if whole == "$${":
                return "${"
            scope, variable, default = match.group(1), match.group(2), match.group(3)
            if scope is None:
                raise UsageError(f"{where}: the saved plan names a secret source topo cannot read: {text}")
            table = self.environ if scope == "env" else self.variables
            if variable in table:
                return table[variable]
            if default is not None:
                return default
            how = f"set {variable} in the environment" if scope == "env" else f"pass --var {variable}=..."
            raise UsageError(
                f"{where}: the saved plan takes a secret from {whole}, which is not set here (a saved plan never holds "
                "a secret)",
                hint=f"{how} where the plan is applied, as where it was made",
            )

        value = _INTERPOLATION.sub(replace, text)
        if not value:
            raise UsageError(f"{where}: the secret from {text} is empty here", hint="set it where the plan is applied")
        return value

    def read_file(self, kind: str, name: str, origin: Origin | None, where: str) -> list[str]:
        file = Path(name)
        if not file.is_absolute() and origin is not None:
            file = Path(origin.file).parent / file
        try:
            text = file.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise UsageError(
                f"{where}: cannot read the file {str(file)!r} the saved plan names ({kind}): {why}",
                hint="apply the plan where that file is (a relative path: from the directory topo runs in, as "
                "for the plan)",
            ) from None
        if kind == "uri-file":
            lines = [line.strip() for line in text.splitlines() if line.strip()]
        else:
            lines = [text.removesuffix("\n").removesuffix("\r") if text.endswith("\n") else text]
        if not lines or not lines[0]:
            raise UsageError(f"{where}: the file {str(file)!r} the saved plan names ({kind}) is empty")
        return lines


def check(
    target: Broker | ManagementClient,
    saved: SavedPlan,
    *,
    environ: Mapping[str, str] | None = None,
    variables: Mapping[str, str] | None = None,
) -> tuple[Topology, Plan]:
    """The desired topology (passwords read) and the plan to run: the broker is read again, and the plan is
    refused (StalePlan, naming each address) when a resource it manages changed since it was saved, or when
    the plan made now differs from the saved one."""
    desired = with_secrets(saved.desired, environ, variables)
    flags = saved.flags
    planned, observed = engine.plan_observed(
        target,
        desired,
        ownership=Ownership(adopt=bool(flags.get("adopt")), prune=bool(flags.get("prune"))),
        allow_data_loss=bool(flags.get("allow_data_loss")),
        migrate=bool(flags.get("migrate")),
        whole=not flags.get("vhosts"),
    )
    made_against = (saved.plan.get("broker") or {}).get("cluster_name")
    if made_against is not None:
        here = engine.describe_broker(target, planned).broker
        if here is not None and here.cluster_name != made_against:
            raise StalePlan(
                f"the saved plan was made against the broker of cluster {made_against!r}, and this one is cluster "
                f"{here.cluster_name!r} (at {here.url}): nothing was applied",
                hint="apply a plan where it was made: check --url (or TOPO_URL)",
                changed=("broker.cluster_name",),
            )
    addresses = [a for a in saved.fingerprint if not a.startswith("broker.")]
    now = fingerprint(observed.topology, desired, addresses, observed.facts)
    now = {k: v for k, v in now.items() if not k.startswith("broker.") or k in saved.fingerprint}  # read at plan time
    changed = compare_fingerprints(saved.fingerprint, now)
    if not changed:
        changed = compare_changes(saved.plan, plan_json(planned))
    if changed:
        listed = "; ".join(changed[:10]) + (f"; and {len(changed) - 10} more" if len(changed) > 10 else "")
        raise StalePlan(f"the saved plan is stale, nothing was applied: {listed}", hint=_STALE_HINT, changed=changed)
    return desired, planned
