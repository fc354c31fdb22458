"""URLs with credentials: split them for use, redact them for display. Passwords never reach output."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, urlsplit, urlunsplit

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
    """The URL with its password replaced by ``***`` (user kept), safe to print."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if parts.password is None:
        return url
    _, user, _ = split_credentials(url)
    netloc = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, f"{quote(user or '', safe='')}:***@{netloc}", parts.path, parts.query, ""))


def redact_text(text: str) -> str:
    """Any ``scheme://user:password@`` inside free text, with the password replaced by ``***``."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:***@", text)
