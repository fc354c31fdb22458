"""URLs with credentials: split them for use, redact them for display. Passwords never reach output."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = ["redact", "redact_text", "split_credentials"]

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]*)@")


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """``http://u:p@h:1/x`` → (``http://h:1/x``, ``u``, ``p``); user and password percent-decoded."""
    parts = urlsplit(url)
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), user, password


def redact(url: str) -> str:
    """The URL with its password replaced by ``***`` (user kept), safe to print.

    Works on text that is not a valid URL too (an unencoded ``/`` or ``@`` in the password, no scheme,
    a bad port): everything up to the last ``@`` before the path's query is taken as user information.
    """
    scheme, sep, rest = url.partition("://")
    if sep:
        scheme += sep
    else:
        scheme, rest = "", url
    ends = [i for i in (rest.find("?"), rest.find("#")) if i >= 0]
    at = rest.rfind("@", 0, min(ends) if ends else len(rest))
    if at < 0:
        return url
    user, colon, _password = rest[:at].partition(":")
    if not colon:
        return url
    return f"{scheme}{user}:***@{rest[at + 1 :]}"


def redact_text(text: str) -> str:
    """Any ``scheme://user:password@`` inside free text, with the password replaced by ``***``."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:***@", text)
