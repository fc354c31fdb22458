"""Policy patterns as RabbitMQ reads them: PCRE (Erlang's ``re``), matched with Python's ``re``.

RabbitMQ compiles a policy's pattern with PCRE and applies the policy to the names it finds it in
(unanchored). Python's ``re`` differs in a few constructs RabbitMQ accepts; :func:`compile_pattern`
rewrites those into Python's syntax, so that the loader accepts what the broker accepts and routing
and lint match as the broker does:

- ``\\Q...\\E`` (quoted text), ``\\z``, ``\\Z`` (end, or before a final newline), ``\\e``, ``\\h``/``\\H``
  (horizontal space), ``\\x{HHHH}``, named groups ``(?<name>...)``, branch reset ``(?|...)`` (matched as
  ``(?:...)``: only whether it matches counts here), and POSIX classes inside brackets (``[[:alpha:]]``).

A few PCRE constructs have no Python equivalent (Unicode properties ``\\p{..}``, recursion, ``\\K``,
backtracking verbs ...): a pattern that uses one is :data:`UNKNOWN`: topo cannot evaluate it offline
(the broker still checks it when the policy is applied).
"""

from __future__ import annotations

import functools
import re

__all__ = ["UNKNOWN", "Unknown", "compile_pattern"]


class Unknown:
    """A PCRE pattern topo cannot translate (see the module docstring)."""


UNKNOWN = Unknown()

_POSIX = {
    "alpha": "a-zA-Z",
    "digit": "0-9",
    "alnum": "a-zA-Z0-9",
    "upper": "A-Z",
    "lower": "a-z",
    "space": " \\t\\n\\r\\f\\v",
    "blank": " \\t",
    "xdigit": "0-9A-Fa-f",
    "word": "\\w",
    "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "cntrl": "\\x00-\\x1f\\x7f",
    "print": "\\x20-\\x7e",
    "graph": "\\x21-\\x7e",
}
# Constructs of PCRE that Python's re lacks and that cannot be rewritten into it.
_PCRE_ONLY = re.compile(r"\\[pPRKXGCgN]|\(\?[R&(+\d-]|\(\*")  # ([:^...:] is caught by _translate)


class _Untranslatable(Exception):
    pass


@functools.lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> re.Pattern[str] | Unknown:
    """The pattern as Python's ``re`` reads it; :data:`UNKNOWN` for a PCRE construct Python lacks.

    Raises :class:`re.error` for a pattern that is not valid (in PCRE either).
    """
    try:
        return re.compile(_translate(pattern))
    except _Untranslatable:
        return UNKNOWN
    except re.error:
        if _PCRE_ONLY.search(pattern):
            return UNKNOWN
        raise


def _translate(pattern: str) -> str:
    out: list[str] = []
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt == "Q":
                end = pattern.find("\\E", i + 2)
                text = pattern[i + 2 :] if end < 0 else pattern[i + 2 : end]
                out.append("".join("\\" + ch if ch in "\\]^-" else ch for ch in text) if in_class else re.escape(text))
                i = n if end < 0 else end + 2
                continue
            if nxt == "E":  # a \E without \Q: PCRE ignores it
                i += 2
                continue
            if nxt == "x" and i + 2 < n and pattern[i + 2] == "{":
                end = pattern.find("}", i + 3)
                if end < 0:
                    raise re.error("incomplete \\x{...} escape", pattern, i)
                try:
                    code = int(pattern[i + 3 : end], 16)
                except ValueError:
                    raise re.error("bad \\x{...} escape", pattern, i) from None
                out.append(f"\\U{code:08x}")
                i = end + 1
                continue
            replacement = {
                "e": "\\x1b",
                "h": " \\t" if in_class else "[ \\t]",
                "z": "\\Z",
                "Z": "(?=\\n?\\Z)",
            }.get(nxt)
            if nxt == "H":
                if in_class:
                    raise _Untranslatable
                replacement = "[^ \\t]"
            if replacement is not None and not (in_class and nxt in "zZ"):
                out.append(replacement)
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if c == "[" and pattern.startswith("[:", i):
                end = pattern.find(":]", i + 2)
                name = pattern[i + 2 : end] if end > 0 else ""
                if name in _POSIX:
                    out.append(_POSIX[name])
                    i = end + 2
                    continue
                if name.startswith("^"):
                    raise _Untranslatable
            if c == "]":
                in_class = False
            out.append("\\[" if c == "[" else c)  # a literal [ in a class: escaped, as Python wants
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":  # a ] first in a class is a literal
                out.append("\\]")
                i += 1
            continue
        if pattern.startswith("(?<", i) and i + 3 < n and pattern[i + 3] not in "=!":
            out.append("(?P<")
            i += 3
            continue
        if pattern.startswith("(?|", i):
            out.append("(?:")
            i += 3
            continue
        out.append(c)
        i += 1
    return "".join(out)
