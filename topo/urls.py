"""Every URL topo reads, and the connection defaults, in one place: the Management API's (``http``/``https``) and AMQP's
(``amqp``/``amqps``). Parsed once, redacted once; a password never reaches output.

How a URL is read (RFC 3986, and what people type):

- The authority runs from ``//`` to the first ``/``, ``?`` or ``#``; its user information ends at the
  **last** ``@`` in it and the user at the first ``:``. So a password may hold ``@``, ``:``, ``[``,
  ``]``, ``%``, spaces and non-ASCII characters as they are; user and password are percent-decoded.
- An ``@`` *after* the authority is refused (:class:`~topo.errors.UsageError`, with the URL redacted and a
  hint). It means a ``/``, ``?`` or ``#`` in the password (``http://u:a#b@host``: by the RFC the host
  would be ``u`` and ``#b@host`` a fragment), or an ``@`` in the path; guessing would either send the
  password to the wrong host or connect to the wrong vhost, so the user percent-encodes instead.

:func:`redact` never shows what stands between ``//`` (or the start, without a scheme) and the last
``@`` of the text: ``http://guest:guest@h:15672`` is shown as ``http://***@h:15672``. It works on any
text, valid URL or not, so error messages about a bad URL show it through :func:`redact` too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from urllib.parse import quote, unquote

from topo.errors import UsageError

__all__ = [
    "DEFAULT_AMQP_URL",
    "DEFAULT_TIMEOUT",
    "DEFAULT_URL",
    "URL",
    "amqp_url_for",
    "parse",
    "parse_amqp",
    "parse_management",
    "redact",
]

DEFAULT_URL = "http://guest:guest@localhost:15672"
"""The Management API every RabbitMQ tool assumes when none is given (``--url``, ``TOPO_URL``)."""
DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672/"
"""The AMQP URL every RabbitMQ tool assumes when none is given (``--amqp-url``, ``TOPO_AMQP_URL``)."""
DEFAULT_TIMEOUT = 60.0
"""Seconds the Management API may stay silent (to connect, or between two reads) before a request fails
(``--timeout``, ``TOPO_TIMEOUT``)."""

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_SCHEME_SEP = re.compile(r"(?:^|(?<=[\s\"'(<\[=,]))[A-Za-z][A-Za-z0-9+.-]*://")  # a URL starts the text or a word
_PORT = re.compile(r"[0-9]{1,5}")
_BAD_HOST = re.compile(r"[\s/?#@\[\]\\<>\"'`{}|^]")
_ENCODE_HINT = (
    "percent-encode the special characters of the user and password: / as %2F, ? as %3F, # as %23, "
    "@ as %40, : as %3A, % as %25, space as %20 (Python: urllib.parse.quote(password, safe=''))"
)


def redact(text: str) -> str:
    """``text`` with everything between ``//`` and its last ``@`` replaced by ``***`` (safe to print).

    Any text: ``http://u:p@h`` → ``http://***@h``; ``u:p@h`` (no scheme) → ``***@h``; a URL without ``@``
    is returned unchanged; in free text (``boom at http://u:p@h``) what stands before the first URL's
    scheme is kept. The last ``@`` of the whole text is taken, so a password holding ``/``, ``?``,
    ``#`` or ``@`` is hidden whole (an ``@`` in a path hides the host too, which is safe)."""
    match = _SCHEME_SEP.search(text)
    head, rest = (text[: match.end()], text[match.end() :]) if match else ("", text)
    at = rest.rfind("@")
    if at < 0:
        return text
    return f"{head}***@{rest[at + 1 :]}"


@dataclass(frozen=True)
class URL:
    """A parsed URL. ``username``/``password`` are percent-decoded (None when absent); ``path``, ``query``
    and ``fragment`` are kept as written. ``repr`` and :meth:`display` never show the password."""

    scheme: str  # lower case
    host: str  # without the brackets of an IPv6 address; "" when absent
    port: int | None
    path: str = ""
    query: str = ""
    fragment: str = ""
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def has_credentials(self) -> bool:
        return self.username is not None or self.password is not None

    def netloc(self, *, credentials: bool = False) -> str:
        """``host:port`` (IPv6 in brackets), with ``user:password@`` percent-encoded when asked."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        hostport = host + (f":{self.port}" if self.port is not None else "")
        if not credentials or not self.has_credentials:
            return hostport
        userinfo = quote(self.username or "", safe="")
        if self.password is not None:
            userinfo += ":" + quote(self.password, safe="")
        return f"{userinfo}@{hostport}"

    def public(self) -> str:
        """The URL without credentials, query and fragment: ``scheme://host:port/path``."""
        return f"{self.scheme}://{self.netloc()}{self.path}"

    def display(self) -> str:
        """The URL as it may be printed: ``scheme://***@host:port/path?query`` (``***@`` only when the
        URL has credentials)."""
        query = f"?{self.query}" if self.query else ""
        return f"{self.scheme}://{'***@' if self.has_credentials else ''}{self.netloc()}{self.path}{query}"

    def unparse(self) -> str:
        """The full URL, credentials included (percent-encoded): for connecting, never for printing."""
        query = f"?{self.query}" if self.query else ""
        fragment = f"#{self.fragment}" if self.fragment else ""
        return f"{self.scheme}://{self.netloc(credentials=True)}{self.path}{query}{fragment}"

    def with_credentials(self, username: str | None, password: str | None) -> URL:
        return replace(self, username=username, password=password)


def parse(url: str, *, what: str = "URL", schemes: tuple[str, ...] = (), example: str = "") -> URL:
    """Read ``url`` (see the module docstring); a :class:`UsageError` naming ``what`` when it cannot be
    read or its scheme is not one of ``schemes``. The error shows the URL only through :func:`redact`."""
    text = url.strip()
    shown = redact(text)
    scheme, sep, rest = text.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):
        wanted = " or ".join(f"{s}://" for s in schemes) or "scheme://"
        raise UsageError(f"the {what} {shown} does not start with {wanted}", hint=example or None)
    scheme = scheme.lower()
    if schemes and scheme not in schemes:
        wanted = " or ".join(f"{s}://" for s in schemes)
        raise UsageError(f"the {what} {shown} is not a {wanted} URL", hint=example or None)
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    if "@" in tail:
        raise UsageError(
            f"the {what} {shown} cannot be read: it has an '@' after a '/', '?' or '#', so where the password "
            "ends and the host begins is ambiguous",
            hint=_ENCODE_HINT + "; an '@' in a vhost name as %40",
        )
    userinfo, at, hostport = authority.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user)
        password = unquote(secret) if colon else None
    host, port = _host_port(hostport, what, shown)
    path, _, fragment = tail.partition("#")
    path, _, query = path.partition("?")
    return URL(scheme, host, port, path, query, fragment, username, password)


def _host_port(hostport: str, what: str, shown: str) -> tuple[str, int | None]:
    if hostport.startswith("["):
        close = hostport.find("]")
        host, after = hostport[1:close], hostport[close + 1 :]
        if close < 0 or not host or not re.fullmatch(r"[0-9A-Fa-f:.]+(%[^\]]+)?", host):
            raise UsageError(f"the {what} {shown} has a bad IPv6 address", hint="write it as [::1]")
        if after and not after.startswith(":"):
            raise UsageError(f"the {what} {shown} has text after its IPv6 address", hint="write it as [::1]:15672")
        port_text = after[1:] if after else None
    else:
        host, colon, port_text_ = hostport.rpartition(":") if ":" in hostport else (hostport, "", "")
        port_text = port_text_ if colon else None
        if ":" in host:
            raise UsageError(f"the {what} {shown} has a bad host", hint="an IPv6 address goes in brackets: [::1]")
        if _BAD_HOST.search(host):
            raise UsageError(
                f"the {what} {shown} has a bad host {host!r}",
                hint="if part of it belongs to the password, " + _ENCODE_HINT,
            )
    if port_text is None or port_text == "":
        return host, None
    if not _PORT.fullmatch(port_text) or not 0 < int(port_text) < 65536:
        raise UsageError(f"the {what} {shown} has a bad port {port_text!r}", hint="a port is a number from 1 to 65535")
    return host, int(port_text)


MANAGEMENT_EXAMPLE = "write it as http://USER:PASSWORD@HOST:15672 (or https://...:15671)"
AMQP_EXAMPLE = "write it as amqp://USER:PASSWORD@HOST:5672/VHOST (or amqps://...:5671/VHOST)"


def parse_management(url: str) -> URL:
    """A Management API URL: ``http(s)://[user[:password]@]host[:port][/path prefix]``; a host is required.
    A query or fragment is ignored (``http://host:15672/#/`` copied from the browser works)."""
    parsed = parse(url, what="Management API URL", schemes=("http", "https"), example=MANAGEMENT_EXAMPLE)
    if not parsed.host:
        raise UsageError(f"the Management API URL {redact(url.strip())} has no host", hint=MANAGEMENT_EXAMPLE)
    return replace(parsed, query="", fragment="")


def parse_amqp(url: str) -> URL:
    """An AMQP URL: ``amqp(s)://[user[:password]@][host][:port][/vhost][?key=value&...]`` (RabbitMQ's URI
    spec: no host means localhost; the vhost is the percent-decoded path, ``/`` when there is none)."""
    return parse(url, what="AMQP URL", schemes=("amqp", "amqps"), example=AMQP_EXAMPLE)


def amqp_url_for(
    management_url: str,
    *,
    ca_cert: str | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
) -> str:
    """The AMQP URL every RabbitMQ tool assumes beside a Management API URL: same host and credentials,
    port 5672, vhost ``/``; for ``https``: ``amqps`` on port 5671 with the same TLS files (RabbitMQ's
    ``cacertfile``, ``certfile`` and ``keyfile`` query keys)."""
    parsed = parse_management(management_url)
    tls = parsed.scheme == "https"
    query = ""
    if tls:
        keys = {"cacertfile": ca_cert, "certfile": client_cert, "keyfile": client_key}
        items = [f"{key}={quote(value, safe='/')}" for key, value in keys.items() if value]
        query = "&".join(items)
    amqp = URL("amqps" if tls else "amqp", parsed.host, 5671 if tls else 5672, "/", query)
    return amqp.with_credentials(parsed.username, parsed.password).unparse()
