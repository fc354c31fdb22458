"""A RabbitMQ definitions file (``GET /api/definitions``, ``rabbitmqadmin export``) → topology files
(``topo import``). Pure: text in, file texts and a report out.

No converter of its own: each vhost is read as the broker's JSON by :mod:`topo.definitions`
(:func:`~topo.definitions.vhost_from_definitions` and the user, permission and global parameter readers) and
written by :mod:`topo.export`. What this module adds is the part a whole-broker file needs: the differences
between RabbitMQ 3.6 and 3.12 exports smoothed into the form :mod:`topo.definitions` reads (``rabbit_version``
or ``rabbitmq_version``, a queue's ``type`` or ``x-queue-type`` or neither, a vhost's settings at the top or
under ``metadata``, tags as a list or a comma-separated string, sections missing), one file per vhost plus
one for users and one for global parameters, and a report of everything the files cannot say, each at its
place in the definitions file.

Extension points: a vhost parameter's component is imported when :data:`topo.definitions.VHOST_COMPONENTS`
names it (a kind that reads a new component there, shovels or federation upstreams, is imported with no
change here); a global parameter when the file format may declare it (:func:`topo.model.reserved_parameter`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from topo.arguments import OPERATOR_POLICY_KEYS, POLICY_KEYS, queue_argument
from topo.definitions import (
    QUEUE_TYPES,
    VHOST_COMPONENTS,
    global_parameter_from_definition,
    permission_from_definition,
    tags_of,
    topic_permissions_from_definitions,
    user_from_definition,
    vhost_from_definitions,
)
from topo.errors import UsageError
from topo.export import export_yaml, password_variable
from topo.model import Topology, User, is_broker_exchange, reserved_parameter
from topo.passwords import HashProblem, check_hash

__all__ = [
    "ACCESS_FILE",
    "PARAMETERS_FILE",
    "REPORT_FILE",
    "Imported",
    "Note",
    "import_definitions",
    "parse_definitions",
]

ACCESS_FILE = "access-control.yaml"
"""The file that holds the users, their permissions and topic permissions."""
PARAMETERS_FILE = "global-parameters.yaml"
"""The file that holds the global parameters."""
REPORT_FILE = "import-report.txt"
"""The report, beside the files (topo loads ``*.yaml``/``*.yml`` only: it is never read as a topology)."""

_SECTIONS = (
    "users",
    "vhosts",
    "permissions",
    "topic_permissions",
    "parameters",
    "global_parameters",
    "policies",
    "queues",
    "exchanges",
    "bindings",
)
_ABOUT = ("rabbit_version", "rabbitmq_version", "product_name", "product_version", "explanation")
"""Top-level keys that describe the export itself (nothing to import)."""
_VHOST_SECTIONS = ("parameters", "policies", "queues", "exchanges", "bindings")
_PLACEHOLDER = re.compile(r"(?<!\$)\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
"""A ``${env:NAME}`` export wrote in place of a secret (a literal ``${`` is written ``$${``)."""


@dataclass(frozen=True)
class Note:
    """Something of the definitions file the topology files do not hold (or hold differently): ``place`` is
    where it stands in the definitions file (``queues[3] (vhost "shop", queue "orders")``)."""

    place: str
    message: str

    def render(self) -> str:
        return f"{self.place}: {self.message}"


@dataclass
class Imported:
    """The files to write (name → text, in writing order), the topology they hold, and the report."""

    files: dict[str, str] = field(default_factory=dict)
    topology: Topology = field(default_factory=Topology)
    notes: list[Note] = field(default_factory=list)
    version: str | None = None  # the RabbitMQ version that wrote the definitions, when they say

    def report(self, source: str) -> str:
        """The report as text: what was written, then each note."""
        lines = [f"topo import of {source}" + (f" (RabbitMQ {self.version})" if self.version else "")]
        lines += [f"wrote {name}" for name in self.files]
        if self.notes:
            lines.append(f"{len(self.notes)} thing{'s' if len(self.notes) != 1 else ''} not imported as is:")
            lines += ["  " + note.render() for note in self.notes]
        else:
            lines.append("everything was imported")
        return "\n".join(lines) + "\n"


def parse_definitions(text: str, source: str) -> dict[str, Any]:
    """The definitions document of ``text`` (read from ``source``): a UsageError with the line and column of
    bad JSON, or saying why it is not a definitions file."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{source}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}",
            hint="give the file `GET /api/definitions` or `rabbitmqadmin export` wrote",
        ) from None
    if not isinstance(document, dict) or not any(key in document for key in (*_SECTIONS, *_ABOUT)):
        what = type(document).__name__ if not isinstance(document, dict) else "an object without any of its sections"
        raise UsageError(
            f"{source}: not a RabbitMQ definitions file ({'a JSON ' + what if what != 'dict' else what})",
            hint="expected the JSON object of `GET /api/definitions` (or `rabbitmqadmin export`): "
            + ", ".join(_SECTIONS),
        )
    for section in _SECTIONS:
        items = document.get(section)
        if items is None:
            continue
        if not isinstance(items, list):
            raise UsageError(
                f"{source}: {section}: a list was expected, not {type(items).__name__}",
                hint="is this a RabbitMQ definitions file?",
            )
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise UsageError(f"{source}: {section}[{index}]: an object was expected, not {type(item).__name__}")
            required = ("user", "vhost") if section in ("permissions", "topic_permissions") else ("name",)
            if section == "bindings":
                required = ("destination",)
            for key in required:
                if not isinstance(item.get(key), str):
                    raise UsageError(f"{source}: {section}[{index}]: no {key!r} (a string)")
    return document


def _place(section: str, index: int, item: Mapping[str, Any], vhost: str | None = None) -> str:
    what = {
        "queues": "queue",
        "exchanges": "exchange",
        "policies": "policy",
        "parameters": "parameter",
        "users": "user",
        "global_parameters": "global parameter",
        "vhosts": "vhost",
    }.get(section)
    parts = [f'vhost "{vhost}"'] if vhost is not None and section != "vhosts" else []
    if section == "parameters":
        parts.append(f'{item.get("component")} "{item.get("name")}"')
    elif section == "bindings":
        parts.append(f'binding "{item.get("source", "")}" → "{item.get("destination")}"')
    elif section in ("permissions", "topic_permissions"):
        parts.append(f'user "{item.get("user")}"')
    elif what:
        parts.append(f'{what} "{item.get("name")}"')
    return f"{section}[{index}] ({', '.join(parts)})"


def _file_name(vhost: str, taken: set[str]) -> str:
    stem = re.sub(r"[^\w.-]+", "_", vhost).strip("._-") or "default"
    name, number = f"vhost-{stem}.yaml", 1
    while name.lower() in taken:
        number += 1
        name = f"vhost-{stem}-{number}.yaml"
    taken.add(name.lower())
    return name


class _Importer:
    def __init__(self, document: Mapping[str, Any], default_vhost: str | None) -> None:
        self.document = document
        self.default_vhost = default_vhost
        self.notes: list[Note] = []
        self.binding_index: dict[int, int] = {}  # a binding's place in the file, for the report

    def note(self, place: str, message: str) -> None:
        self.notes.append(Note(place, message))

    def vhost_of(self, section: str, index: int, item: Mapping[str, Any]) -> str:
        vhost = item.get("vhost", self.default_vhost)
        if not isinstance(vhost, str):
            raise UsageError(
                f"{section}[{index}]: names no vhost (a single vhost's export, `GET /api/definitions/VHOST`?)",
                hint="say which vhost it is with --vhost NAME",
            )
        return vhost

    # -- vhosts ---------------------------------------------------------------------------------------------

    def vhosts(self) -> dict[str, dict[str, Any]]:
        """Each vhost's settings (``GET /api/vhosts/{name}``'s form), in the file's order."""
        listed = self.document.get("vhosts")
        infos: dict[str, dict[str, Any]] = {}
        if listed is None:  # a single vhost's export, or a file without the section: the vhosts its items name
            for section in _VHOST_SECTIONS:
                for index, item in enumerate(self.document.get(section) or []):
                    infos.setdefault(self.vhost_of(section, index, item), {})
            return infos
        for item in listed:
            metadata = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
            info = {**metadata, **{k: v for k, v in item.items() if k != "metadata"}}
            info["tags"] = list(tags_of(info.get("tags")))
            infos[item["name"]] = info
        return infos

    def limits(self, index: int, name: str, info: Mapping[str, Any]) -> list[dict[str, Any]]:
        """A vhost's ``limits`` in its entry (later exports), as the ``vhost-limits`` parameter it stands for."""
        limits = info.get("limits")
        if isinstance(limits, dict) and limits:
            return [{"vhost": name, "component": "vhost-limits", "name": "limits", "value": dict(limits)}]
        if limits not in (None, [], {}):
            self.note(_place("vhosts", index, info), f"limits {limits!r} not understood: left out")
        return []

    def queue(self, index: int, item: Mapping[str, Any], vhost: str, default_type: Any) -> dict[str, Any]:
        """The queue with its type in ``x-queue-type`` (from its ``type`` field, or the vhost's default)."""
        arguments = dict(item.get("arguments") or {})
        if "x-queue-type" not in arguments:
            qtype = item.get("type")
            if qtype not in QUEUE_TYPES and default_type in QUEUE_TYPES:
                qtype = default_type
            if qtype in QUEUE_TYPES:
                arguments["x-queue-type"] = qtype
        for argument in sorted(arguments):
            if argument != "x-queue-type" and queue_argument(argument) is None:
                self.note(
                    _place("queues", index, item, vhost),
                    f"argument {argument!r} is not one topo knows: kept under `arguments:` as it is",
                )
        return {**item, "arguments": arguments}

    def policy_ok(self, place: str, definition: Any, operator: bool) -> bool:
        keys = OPERATOR_POLICY_KEYS if operator else POLICY_KEYS
        unknown = sorted(str(k) for k in (definition or {}) if k not in keys)
        if unknown:
            what = "operator policy" if operator else "policy"
            self.note(place, f"{what} key(s) {', '.join(unknown)} not in the file format: the {what} is left out")
        return not unknown

    def split(self, infos: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, list[Any]]]:
        """Each vhost's part of the document (``GET /api/definitions/{vhost}``'s form); what stands in a vhost
        the file does not list, or topo cannot express, goes to the report."""
        parts: dict[str, dict[str, list[Any]]] = {name: {s: [] for s in _VHOST_SECTIONS} for name in infos}
        for index, (name, info) in enumerate(infos.items()):
            parts[name]["parameters"] += self.limits(index, name, info)
        for section in _VHOST_SECTIONS:
            for index, item in enumerate(self.document.get(section) or []):
                vhost = self.vhost_of(section, index, item)
                place = _place(section, index, item, vhost)
                if vhost not in parts:
                    self.note(place, f"vhost {vhost!r} is not in the file's vhosts: left out")
                    continue
                if section == "queues":
                    item = self.queue(index, item, vhost, infos[vhost].get("default_queue_type"))
                elif section == "exchanges" and is_broker_exchange(str(item["name"])):
                    continue  # the broker's own: every vhost has them
                elif section == "exchanges":
                    for argument in sorted(item.get("arguments") or {}):
                        if argument != "alternate-exchange":
                            self.note(place, f"argument {argument!r} kept under `arguments:` as it is")
                elif section == "policies" and not self.policy_ok(place, item.get("definition"), operator=False):
                    continue
                elif section == "parameters":
                    component = item.get("component")
                    if component not in VHOST_COMPONENTS:
                        self.note(place, f"parameters of component {component!r} are not managed by topo: left out")
                        continue
                    value = item.get("value") if isinstance(item.get("value"), dict) else {}
                    if component == "operator_policy" and not self.policy_ok(
                        place, value.get("definition"), operator=True
                    ):
                        continue
                elif section == "bindings":
                    self.binding_index[id(item)] = index
                parts[vhost][section].append(item)
        for name, part in parts.items():
            declared = {("queue", q["name"]) for q in part["queues"]} | {
                ("exchange", x["name"]) for x in part["exchanges"]
            }
            kept = []
            for binding in part["bindings"]:
                kind = "exchange" if binding.get("destination_type") == "exchange" else "queue"
                if binding.get("source", "") != "" and (kind, binding["destination"]) not in declared:
                    self.note(
                        _place("bindings", self.binding_index[id(binding)], binding, name),
                        f"its destination {kind} {binding['destination']!r} is not in the file (a binding is "
                        "declared on its destination): left out",
                    )
                    continue
                kept.append(binding)
            part["bindings"] = kept
        return parts

    # -- broker-wide ---------------------------------------------------------------------------------------

    def user(self, index: int, item: Mapping[str, Any]) -> User:
        """The user, its hash's algorithm checked (inferred from the hash's length when the file does not name
        it, as before RabbitMQ 3.6); a hash the broker could not use is left out, and said."""
        place = _place("users", index, item)
        stored = str(item.get("password_hash") or "")
        named = item.get("hashing_algorithm")
        try:
            algorithm = check_hash(stored, str(named) if named else None)
        except HashProblem as exc:
            self.note(place, f"{exc}: the hash is left out (topo does not manage this user's password)")
            return replace(user_from_definition(item), password_hash=None)
        if not named and stored:
            self.note(place, f"no hashing_algorithm: {algorithm}, as the hash's length says")
        return user_from_definition({**item, "hashing_algorithm": algorithm})

    def access(self, topology: Topology, vhosts: Collection[str]) -> None:
        for index, item in enumerate(self.document.get("users") or []):
            user = self.user(index, item)
            topology.users[user.name] = user
        for item in self.document.get("permissions") or []:
            permission = permission_from_definition(item)
            topology.permissions[(permission.user, permission.vhost)] = permission
        topology.topic_permissions = topic_permissions_from_definitions(self.document.get("topic_permissions") or [])
        for section in ("permissions", "topic_permissions"):
            for index, item in enumerate(self.document.get(section) or []):
                place = _place(section, index, item, item["vhost"])
                if item["user"] not in topology.users:
                    self.note(place, f"user {item['user']!r} is not in the file's users: left out")
                elif item["vhost"] not in vhosts:
                    self.note(
                        place,
                        f"vhost {item['vhost']!r} is not in the file's vhosts: the permission is kept (a plan "
                        "blocks it where the broker has no such vhost)",
                    )
        topology.permissions = {k: v for k, v in topology.permissions.items() if k[0] in topology.users}
        topology.topic_permissions = {k: v for k, v in topology.topic_permissions.items() if k[0] in topology.users}
        for index, item in enumerate(self.document.get("global_parameters") or []):
            parameter = global_parameter_from_definition(item)
            why = reserved_parameter(parameter.name)
            if why is not None:
                self.note(_place("global_parameters", index, item), f"{why}: left out")
                continue
            topology.global_parameters[parameter.name] = parameter


def import_definitions(
    document: Mapping[str, Any],
    *,
    source: str = "definitions.json",
    vhost: str | None = None,
    password_hashes: bool = False,
) -> Imported:
    """The topology files of a definitions ``document`` (see :func:`parse_definitions`). ``vhost`` names the
    vhost of items that name none (a single vhost's export); ``password_hashes`` keeps the users' hashes
    (otherwise each user's password is a ``${env:...}`` placeholder to fill in)."""
    importer = _Importer(document, vhost)
    for key in document:
        if key not in _SECTIONS and key not in _ABOUT:
            importer.note(key, "a section topo does not know: left out")
    infos = importer.vhosts()
    parts = importer.split(infos)
    imported = Imported(notes=importer.notes)
    version = document.get("rabbitmq_version") or document.get("rabbit_version")
    imported.version = str(version) if version else None
    header = f"imported by topo from {source}"
    taken: set[str] = {ACCESS_FILE, PARAMETERS_FILE, REPORT_FILE}
    for name, info in infos.items():
        vhost_model = vhost_from_definitions(name, info, parts[name])
        imported.topology.vhosts[name] = vhost_model
        single = Topology(vhosts={name: vhost_model})
        file_name = _file_name(name, taken)
        text = export_yaml(single, header=header)
        variables = list(dict.fromkeys(_PLACEHOLDER.findall(text)))
        if variables:  # URIs with credentials (shovels, federation upstreams): kept out of the file
            imported.notes.append(
                Note(
                    file_name,
                    "URIs with credentials are written as ${env:NAME}, to set where topo runs: " + ", ".join(variables),
                )
            )
            text = export_yaml(
                single,
                header=header + "\n# URIs with credentials are not in this file: set " + " ".join(variables),
            )
        imported.files[file_name] = text
    access = Topology()
    importer.access(access, infos)
    imported.topology.users = access.users
    imported.topology.permissions = access.permissions
    imported.topology.topic_permissions = access.topic_permissions
    imported.topology.global_parameters = access.global_parameters
    if access.users:
        users = Topology(users=access.users, permissions=access.permissions, topic_permissions=access.topic_permissions)
        imported.files[ACCESS_FILE] = _without_vhosts(
            export_yaml(users, header=_access_header(header, users, password_hashes), password_hashes=password_hashes)
        )
    if access.global_parameters:
        parameters = Topology(global_parameters=access.global_parameters)
        imported.files[PARAMETERS_FILE] = _without_vhosts(export_yaml(parameters, header=header))
    return imported


def _access_header(header: str, users: Topology, password_hashes: bool) -> str:
    if password_hashes:
        return (
            header + "\n# SENSITIVE: the users' password hashes are the broker's (whoever reads this file can try to "
            "crack them)"
        )
    taken: set[str] = set()
    names = [
        password_variable(name, taken)
        for name in sorted(users.users)
        if (stored := users.users[name].password_hash) is not None and stored.value
    ]
    if not names:
        return header
    return (
        header + "\n# The passwords are not in this file: set each variable below where topo runs (or write\n"
        "# `password-file: PATH` for a mounted secret in place of `password:`), or import again with\n"
        "# --include-password-hashes to keep the broker's hashes.\n# " + " ".join(names)
    )


def _without_vhosts(text: str) -> str:
    """A file of broker-wide kinds only: export writes an empty ``vhosts:`` the format does not need."""
    return text.replace("\nvhosts: {}\n", "\n", 1)
