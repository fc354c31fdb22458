"""The broker-wide kinds of the files: ``users:`` (with their permissions and topic permissions) and
``global-parameters:``, from schema-valid documents into the :class:`~topo.model.Topology`, with the checks
the schema cannot express (see docs/topology-format.md, "Users, permissions and global parameters"):

- a password never stands in a file in clear: ``password:`` is one whole ``${env:NAME}`` or ``${var:NAME}``
  (no default); ``password-file:`` is read (relative to the file that names it); ``password-hash:`` must be
  the broker's form; at most one of the three;
- permission patterns are regular expressions as RabbitMQ reads them (PCRE, :mod:`topo.pcre`);
- global parameter names starting with ``topo.`` are topo's own, ``internal_cluster_id`` the broker's;
  ``cluster_name`` is a non-empty string.

No problem message ever shows a password or a hash, nor what was written in a password's place.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from topo.errors import Problem
from topo.loader.source import Document, Path_
from topo.model import (
    GlobalParameter,
    Origin,
    PasswordHash,
    Permission,
    Secret,
    TopicPermission,
    TopicPermissions,
    Topology,
    User,
    reserved_parameter,
)
from topo.passwords import HashProblem, algorithm_name, check_hash
from topo.pcre import compile_pattern
from topo.shortstr import SHORTSTR_MAX, shortstr_excess

__all__ = ["AccessBuilder"]

_REFERENCE = re.compile(r"\$\{(env|var):([A-Za-z_][A-Za-z0-9_]*)\}")
_SOURCES = ("password", "password-file", "password-hash")
_PASSWORD_HINT = (
    "write `password: ${env:NAME}` (or ${var:NAME}) and set it where topo runs, or `password-file: PATH` "
    "for a mounted secret, or `password-hash:` with the broker's hash"
)


Report = Callable[[Problem], None]
Claim = Callable[[tuple[str, ...], Origin, str, Document, Path_], "Problem | None"]


class AccessBuilder:
    """Builds the users and global parameters of each document into ``topology``; problems go to ``report``.

    ``claim`` records where something was first declared (a second declaration is a problem naming both
    places). A user or global parameter where the schema check found a problem (reported already) is
    skipped as a whole."""

    def __init__(self, topology: Topology, report: Report, claim: Claim) -> None:
        self.topology = topology
        self.report = report
        self.claim = claim

    def document(self, doc: Document, bad: set[Path_]) -> None:
        """``bad``: the paths of ``doc`` where the schema check found a problem."""

        def broken(path: Path_) -> bool:
            return any(p[: len(path)] == path for p in bad)

        data: Mapping[str, Any] = doc.data
        for name, body in (data.get("users") or {}).items():
            path: Path_ = ("users", name)
            if not broken(path):
                self.user(doc, path, name, body)
        for name, value in (data.get("global-parameters") or {}).items():
            path = ("global-parameters", name)
            if not broken(path):
                self.global_parameter(doc, path, name, value)

    # -- helpers ------------------------------------------------------------------------------------
    def _origin(self, doc: Document, path: Path_) -> Origin:
        line, col = doc.place(path, key=True)
        return Origin(doc.file, line or 1, col or 1)

    def _problem(self, doc: Document, path: Path_, message: str, hint: str | None = None, *, key: bool = False) -> None:
        self.report(doc.problem(path, message, hint=hint, key=key))

    def _name(self, doc: Document, path: Path_, name: str, what: str) -> bool:
        if not name:
            self._problem(doc, path, f"a {what} needs a non-empty name", key=True)
            return False
        if shortstr_excess(name) is not None:
            message = f"{what} name is longer than {SHORTSTR_MAX} bytes of UTF-8"
            self._problem(doc, path, message, "shorten it", key=True)
            return False
        return True

    def _pattern(self, doc: Document, path: Path_, pattern: str) -> None:
        try:
            compile_pattern(pattern)
        except re.error as exc:
            self._problem(
                doc,
                path,
                f"invalid regular expression: {exc}",
                'RabbitMQ reads permissions as PCRE patterns; "" or "^$" matches nothing, ".*" everything',
            )

    # -- users ---------------------------------------------------------------------------------------
    def user(self, doc: Document, path: Path_, name: str, body: Mapping[str, Any]) -> None:
        if not self._name(doc, path, name, "user"):
            return
        origin = self._origin(doc, path)
        problem = self.claim(("user", name), origin, f"user {name!r}", doc, path)
        if problem is not None:
            self.report(problem)
            return
        password, password_hash, algorithm = self.password(doc, path, body)
        limits = body.get("limits")
        user = User(
            name=name,
            tags=tuple(sorted(set(body.get("tags") or []))),
            limits=dict(limits) if limits is not None else None,
            password=password,
            password_hash=password_hash,
            hashing_algorithm=algorithm,
            origin=origin,
        )
        self.topology.users[name] = user
        for vhost, item in (body.get("permissions") or {}).items():
            where = (*path, "permissions", vhost)
            if not self._name(doc, where, vhost, "vhost"):
                continue
            for key in ("configure", "write", "read"):
                self._pattern(doc, (*where, key), item[key])
            self.topology.permissions[(name, vhost)] = Permission(
                name,
                vhost,
                item["configure"],
                item["write"],
                item["read"],
                origin=self._origin(doc, where),
                protect=bool(item.get("protect", False)),
            )
        for vhost, exchanges in (body.get("topic-permissions") or {}).items():
            where = (*path, "topic-permissions", vhost)
            if not self._name(doc, where, vhost, "vhost"):
                continue
            entries: dict[str, TopicPermission] = {}
            for exchange, item in exchanges.items():
                at = (*where, exchange)
                if not self._name(doc, at, exchange, "exchange"):
                    continue
                for key in ("write", "read"):
                    self._pattern(doc, (*at, key), item[key])
                entries[exchange] = TopicPermission(
                    exchange,
                    item["write"],
                    item["read"],
                    origin=self._origin(doc, at),
                    protect=bool(item.get("protect", False)),
                )
            if entries:
                self.topology.topic_permissions[(name, vhost)] = TopicPermissions(
                    name, vhost, entries, origin=self._origin(doc, where)
                )

    def password(
        self, doc: Document, path: Path_, body: Mapping[str, Any]
    ) -> tuple[Secret | None, PasswordHash | None, str | None]:
        """The user's password source: (a secret, the broker's hash, the algorithm to hash a secret with)."""
        given = [key for key in _SOURCES if key in body]
        algorithm_written = body.get("hashing-algorithm")
        algorithm = algorithm_name(algorithm_written) if algorithm_written is not None else None
        if len(given) > 1:
            self._problem(
                doc,
                (*path, given[1]),
                f"a user takes one password source, this one has {' and '.join(given)}",
                "keep one of password, password-file and password-hash",
                key=True,
            )
            return None, None, None
        if not given:
            if algorithm_written is not None:
                self._problem(
                    doc,
                    (*path, "hashing-algorithm"),
                    "hashing-algorithm without a password source",
                    "it says how topo hashes the password of `password:` or `password-file:`, or which algorithm "
                    "made `password-hash:`",
                    key=True,
                )
            return None, None, None
        source = given[0]
        where = (*path, source)
        if source == "password-hash":
            try:
                checked = check_hash(str(body[source]), algorithm_written)
            except HashProblem as exc:
                self._problem(doc, where, str(exc), "copy the hash and its hashing_algorithm from the broker's export")
                return None, None, None
            return None, PasswordHash(str(body[source]), checked), None
        secret = self.secret(doc, where, source, body[source])
        return secret, None, algorithm if secret is not None else None

    def secret(self, doc: Document, path: Path_, source: str, value: Any) -> Secret | None:
        if source == "password-file":
            return self.password_file(doc, path, str(value))
        if path in doc.unresolved:
            return None  # an unset variable: reported already
        written = doc.written.get(path, "")
        reference = _REFERENCE.fullmatch(written)
        if reference is None:
            if not written:
                message = "the password is empty"
            elif "${" in written and not written.startswith("$${"):
                message = (
                    "a password must be one whole ${env:NAME} or ${var:NAME}, with no default and nothing around it"
                )
            else:
                message = "a password cannot stand in a file in clear"
            self._problem(doc, path, f"{message} (what is written here is not shown)", _PASSWORD_HINT)
            return None
        if path in doc.deferred:
            return Secret(None, written)  # not needed by this command, and not at hand: not read
        text = str(value)
        if not text:
            self._problem(
                doc,
                path,
                f"the password from {written} is empty",
                'set it to the password; for a user without one, write `password-hash: ""`',
            )
            return None
        return Secret(text, written)

    def password_file(self, doc: Document, path: Path_, name: str) -> Secret | None:
        file = Path(name)
        if not file.is_absolute():
            file = Path(doc.file).parent / file
        try:
            raw = file.read_bytes()
        except OSError as exc:
            if not doc.secrets:
                return Secret(None, f"password-file {name}")  # a secret mounted where plan runs, not here
            self._problem(
                doc,
                path,
                f"cannot read the password file {str(file)!r}: {exc.strerror or type(exc).__name__}",
                "a relative path is taken from the directory of this topology file",
            )
            return None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self._problem(doc, path, f"the password file {str(file)!r} is not UTF-8 text")
            return None
        text = text.removesuffix("\n").removesuffix("\r") if text.endswith("\n") else text
        if not text:
            self._problem(doc, path, f"the password file {str(file)!r} is empty")
            return None
        return Secret(text, f"password-file {name}")

    # -- global parameters ---------------------------------------------------------------------------
    def global_parameter(self, doc: Document, path: Path_, name: str, value: Any) -> None:
        if not self._name(doc, path, name, "global parameter"):
            return
        why = reserved_parameter(name)
        if why is not None:
            self._problem(doc, path, f"global parameter {name!r} cannot be declared: {why}", key=True)
            return
        if name == "cluster_name" and not (isinstance(value, str) and value.strip()):
            self._problem(doc, path, "cluster_name must be a non-empty string", "the cluster's name, as clients see it")
            return
        origin = self._origin(doc, path)
        problem = self.claim(("global-parameter", name), origin, f"global parameter {name!r}", doc, path)
        if problem is not None:
            self.report(problem)
            return
        self.topology.global_parameters[name] = GlobalParameter(name, value, origin=origin)
