"""The links of a vhost in the files: ``shovels:``, ``federation-upstreams:`` and ``federation-upstream-sets:``,
from schema-valid documents into the :class:`~topo.model.VHost`, with the checks the schema cannot express
(see docs/topology-format.md, "Shovels and federation"):

- a URI carries credentials: one with a password never stands in a file in clear. ``uri:`` is one whole
  ``${env:NAME}`` / ``${var:NAME}``, or a URI whose password is one (``amqp://shovel:${env:PW}@host/shop``), or a
  URI without a password (``amqp:///shop``: this broker); ``uri-file:`` reads it from a file (one URI a line);
- a shovel's source is a queue or an exchange (not both), its destination one of them at most; a numeric
  ``delete-after`` cannot go with ``ack-mode: no-ack`` (the broker refuses it);
- durations in the files' units (``reconnect-delay: 5s``; ``expires: 1h``), sent as the broker's (seconds,
  milliseconds).

No problem message ever shows a URI's credentials: a URI is shown redacted (:func:`topo.urls.redact`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from topo.definitions import SHOVEL_DEFAULTS, UPSTREAM_DEFAULTS, link_settings
from topo.errors import Problem
from topo.loader.source import Document, Path_
from topo.model import FederationUpstream, FederationUpstreamSet, Origin, Secret, Shovel, VHost
from topo.units import parse_duration
from topo.urls import redact

__all__ = ["LINK_COLLECTIONS", "LinksBuilder", "reconnect_delay"]

LINK_COLLECTIONS = ("shovels", "federation-upstreams", "federation-upstream-sets")

_REFERENCE = re.compile(r"\$\{(env|var):([A-Za-z_][A-Za-z0-9_]*)\}")
_AUTHORITY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([^/?#\s]*)")
_URI_HINT = (
    "write `uri: ${env:NAME}` (the whole URI from the environment), or put only the password there "
    "(`amqp://user:${env:NAME}@host/vhost`), or `uri-file: PATH` for a mounted secret"
)
_SCHEMES = ("amqp", "amqps")

Report = Callable[[Problem], None]
Claim = Callable[[tuple[str, ...], Origin, str, Document, Path_], "Problem | None"]


def reconnect_delay(value: str) -> int | float:
    """A duration of the files (``5s``, ``500ms``) as the broker's seconds."""
    ms = parse_duration(value)
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


def _written_password(written: str) -> str | None:
    """The password part of a URI as written in a file (None: none written), wherever the URI stands in the
    text (a ``${env:NAME:-default}``'s default too)."""
    match = _AUTHORITY.search(written)
    if match is None or "@" not in match.group(1):
        return None
    userinfo = match.group(1).rsplit("@", 1)[0]
    return userinfo.split(":", 1)[1] if ":" in userinfo else None


class LinksBuilder:
    """Builds the shovels, federation upstreams and upstream sets of one vhost; problems go to ``report``."""

    def __init__(self, report: Report, claim: Claim) -> None:
        self.report = report
        self.claim = claim

    def vhost(
        self, doc: Document, path: Path_, vhost: VHost, body: Mapping[str, Any], broken: Callable[[Path_], bool]
    ) -> None:
        for name, item in (body.get("shovels") or {}).items():
            where = (*path, "shovels", name)
            if not broken(where) and self._claim(doc, where, vhost, "shovel", name):
                self.shovel(doc, where, vhost, name, item)
        for name, item in (body.get("federation-upstreams") or {}).items():
            where = (*path, "federation-upstreams", name)
            if not broken(where) and self._claim(doc, where, vhost, "federation upstream", name):
                self.upstream(doc, where, vhost, name, item)
        for name, item in (body.get("federation-upstream-sets") or {}).items():
            where = (*path, "federation-upstream-sets", name)
            if not broken(where) and self._claim(doc, where, vhost, "federation upstream set", name):
                self.upstream_set(doc, where, vhost, name, item)

    # -- helpers ------------------------------------------------------------------------------------
    def _origin(self, doc: Document, path: Path_) -> Origin:
        line, col = doc.place(path, key=True)
        return Origin(doc.file, line or 1, col or 1)

    def _problem(self, doc: Document, path: Path_, message: str, hint: str | None = None, *, key: bool = False) -> None:
        self.report(doc.problem(path, message, hint=hint, key=key))

    def _claim(self, doc: Document, path: Path_, vhost: VHost, what: str, name: str) -> bool:
        if not name:
            self._problem(doc, path, f"a {what} needs a non-empty name", key=True)
            return False
        problem = self.claim((what, vhost.name, name), self._origin(doc, path), f"{what} {name!r}", doc, path)
        if problem is not None:
            self.report(problem)
            return False
        return True

    def uris(self, doc: Document, path: Path_, body: Mapping[str, Any]) -> tuple[Secret, ...] | None:
        """The URIs of ``body`` (``uri:`` or ``uri-file:``); None when a problem was reported."""
        if "uri" in body and "uri-file" in body:
            self._problem(doc, (*path, "uri-file"), "a link takes `uri` or `uri-file`, not both", key=True)
            return None
        if "uri-file" in body:
            return self.uri_file(doc, (*path, "uri-file"), str(body["uri-file"]))
        if "uri" not in body:
            self._problem(doc, path, "a URI is missing: `uri:` or `uri-file:`", _URI_HINT, key=True)
            return None
        value = body["uri"]
        if isinstance(value, list):
            found = [self.uri(doc, (*path, "uri", index), item) for index, item in enumerate(value)]
            if not found or any(u is None for u in found):
                return None
            return tuple(u for u in found if u is not None)
        one = self.uri(doc, (*path, "uri"), value)
        return None if one is None else (one,)

    def uri(self, doc: Document, path: Path_, value: Any) -> Secret | None:
        if path in doc.unresolved:
            return None  # an unset variable: reported already
        written = doc.written.get(path, str(value))
        whole = _REFERENCE.fullmatch(written) is not None
        password = _written_password(written)
        if not whole and password is not None and _REFERENCE.fullmatch(password) is None:
            message = "a URI with a password cannot stand in a file in clear (what is written here is not shown)"
            self._problem(doc, path, message, _URI_HINT)
            return None
        source = written if whole else redact(written)
        if path in doc.deferred:
            return Secret(None, source)  # not needed by this command, and not at hand: not read
        return self._checked(doc, path, str(value), source)

    def _checked(self, doc: Document, path: Path_, text: str, source: str) -> Secret | None:
        scheme = text.split("://", 1)[0].lower() if "://" in text else ""
        if scheme not in _SCHEMES:
            self._problem(
                doc,
                path,
                f"not an AMQP URI: {redact(text)}",
                "write amqp://[user:password@]host[:port][/vhost] (amqps:// for TLS); amqp:///shop is vhost shop "
                "of this broker",
            )
            return None
        return Secret(text, source)

    def uri_file(self, doc: Document, path: Path_, name: str) -> tuple[Secret, ...] | None:
        file = Path(name)
        if not file.is_absolute():
            file = Path(doc.file).parent / file
        source = f"uri-file {name}"
        try:
            text = file.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            if not doc.secrets:
                return (Secret(None, source),)  # a secret mounted where plan runs, not here
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            self._problem(doc, path, f"cannot read the URI file {str(file)!r}: {why}", "one URI a line, UTF-8")
            return None
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if not lines:
            self._problem(doc, path, f"the URI file {str(file)!r} is empty")
            return None
        found = [self._checked(doc, path, line, source) for line in lines]
        if any(u is None for u in found):
            return None
        return tuple(u for u in found if u is not None)

    # -- shovels -------------------------------------------------------------------------------------
    def shovel(self, doc: Document, path: Path_, vhost: VHost, name: str, body: Mapping[str, Any]) -> None:
        source, dest = body.get("source") or {}, body.get("destination") or {}
        src_uris = self.uris(doc, (*path, "source"), source)
        dest_uris = self.uris(doc, (*path, "destination"), dest)
        ok = src_uris is not None and dest_uris is not None
        if ("queue" in source) == ("exchange" in source):
            self._problem(
                doc,
                (*path, "source"),
                "a shovel's source is a queue or an exchange: give one of `queue` and `exchange`",
                "`exchange` takes a `routing-key` (the binding of the shovel's own queue)",
                key=True,
            )
            ok = False
        if "queue" in source and "routing-key" in source:
            self._problem(doc, (*path, "source", "routing-key"), "a routing key goes with a source exchange", key=True)
            ok = False
        if "queue" in dest and "exchange" in dest:
            message = "a shovel's destination is a queue or an exchange, not both"
            hint = "without either, messages keep their exchange and routing key"
            self._problem(doc, (*path, "destination"), message, hint, key=True)
            ok = False
        if isinstance(source.get("delete-after"), int) and body.get("ack-mode") == "no-ack":
            self._problem(
                doc,
                (*path, "source", "delete-after"),
                "a count in `delete-after` cannot go with `ack-mode: no-ack` (the broker refuses it)",
                "use on-confirm or on-publish, or delete-after: queue-length",
            )
            ok = False
        if not ok or src_uris is None or dest_uris is None:
            return
        value: dict[str, Any] = {}
        for key, broker_key in (
            ("queue", "src-queue"),
            ("exchange", "src-exchange"),
            ("routing-key", "src-exchange-key"),
            ("prefetch-count", "src-prefetch-count"),
            ("delete-after", "src-delete-after"),
        ):
            if key in source:
                value[broker_key] = source[key]
        for key, broker_key in (
            ("queue", "dest-queue"),
            ("exchange", "dest-exchange"),
            ("routing-key", "dest-exchange-key"),
            ("add-forward-headers", "dest-add-forward-headers"),
            ("add-timestamp-header", "dest-add-timestamp-header"),
            ("publish-properties", "dest-publish-properties"),
        ):
            if key in dest:
                value[broker_key] = dest[key]
        if "ack-mode" in body:
            value["ack-mode"] = body["ack-mode"]
        if "reconnect-delay" in body:
            value["reconnect-delay"] = reconnect_delay(body["reconnect-delay"])
        vhost.shovels[name] = Shovel(
            name=name,
            source_uris=src_uris,
            destination_uris=dest_uris,
            settings=link_settings(value, SHOVEL_DEFAULTS, {}),
            origin=self._origin(doc, path),
            lint_disable=frozenset((body.get("lint") or {}).get("disable", [])),
            protect=bool(body.get("protect", False)),
        )

    # -- federation ----------------------------------------------------------------------------------
    def upstream(self, doc: Document, path: Path_, vhost: VHost, name: str, body: Mapping[str, Any]) -> None:
        uris = self.uris(doc, path, body)
        if uris is None:
            return
        vhost.federation_upstreams[name] = FederationUpstream(
            name=name,
            uris=uris,
            settings=link_settings(upstream_value(body), UPSTREAM_DEFAULTS, {}),
            origin=self._origin(doc, path),
            protect=bool(body.get("protect", False)),
        )

    def upstream_set(
        self, doc: Document, path: Path_, vhost: VHost, name: str, body: list[Any] | Mapping[str, Any]
    ) -> None:
        """A set: its list of members, or ``{upstreams: [...], protect: true}``."""
        items = body if isinstance(body, list) else body["upstreams"]
        members = []
        for item in items:
            if isinstance(item, str):
                members.append({"upstream": item})
            else:
                members.append({"upstream": item["upstream"], **link_settings(upstream_value(item), {}, {})})
        protect = isinstance(body, Mapping) and bool(body.get("protect", False))
        vhost.federation_upstream_sets[name] = FederationUpstreamSet(
            name, tuple(members), origin=self._origin(doc, path), protect=protect
        )


def upstream_value(body: Mapping[str, Any]) -> dict[str, Any]:
    """An upstream's settings of the files (or of a member of a set) as the broker's keys and units."""
    value: dict[str, Any] = {}
    for key, item in body.items():
        if key in ("uri", "uri-file", "upstream", "protect"):
            continue
        if key == "reconnect-delay":
            item = reconnect_delay(item)
        elif key in ("expires", "message-ttl"):
            item = parse_duration(item)
        value[key] = item
    return value
