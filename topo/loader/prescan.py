"""What the files declare at the top, found before they are parsed: the vhost names and the top-level
collections (``users``, ``global-parameters``), by a scan of their text (milliseconds for megabytes).

A plan starts reading the broker with these names while the files are parsed (:func:`topo.engine.load_and_plan`),
so that a single large file costs about max(parse, read), not parse + read. The scan is a guess, never an
authority: it reads block-style YAML as people write it (``vhosts:`` at the start of a line, each vhost a key
one level in); what it misses (flow style, anchors, a name with a variable in it) is announced by the
loader's hook once the file is parsed, and what it finds that the files do not declare is read and thrown
away. A file it cannot read, or one over the size limit, is left to the loader, which reports it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from topo.loader.source import MAX_FILE_SIZE, discover

__all__ = ["Declared", "prescan", "scan_text"]

_TOP_KEY = re.compile(r"^([A-Za-z_][\w-]*)[ \t]*:(?=[ \t]|$)", re.MULTILINE)
_TOP_LINE = re.compile(r"^[^\s#]", re.MULTILINE)  # a line at the top level (not blank, not a comment)
_CHILD_LINE = re.compile(r"^([ \t]+)[^\s#]", re.MULTILINE)  # the first line inside a block, with its indent


@dataclass
class Declared:
    """Vhost names and top-level keys found in the files, in the order found."""

    vhosts: list[str] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)


def _key(raw: str) -> str | None:
    """A mapping key as written (plain, ``"double"`` or ``'single'`` quoted), or None when unsure."""
    raw = raw.strip()
    if raw.startswith('"'):
        try:
            value = json.loads(raw)  # YAML's double-quoted escapes are JSON's, for what names use
        except ValueError:
            return None
        return value if isinstance(value, str) else None
    if raw.startswith("'"):
        return raw[1:-1].replace("''", "'") if len(raw) >= 2 and raw.endswith("'") else None
    if not raw or raw[0] in "&*!|>[{%@`" or raw.startswith("? ") or raw == "<<":
        return None
    return raw


def scan_text(text: str, into: Declared | None = None) -> Declared:
    """The vhost names and top-level keys of one file's text (block style; see the module docstring)."""
    found = into if into is not None else Declared()
    found.keys.update(_TOP_KEY.findall(text))
    for match in re.finditer(r"^vhosts[ \t]*:[ \t]*(?:#.*)?$", text, re.MULTILINE):
        start = match.end()
        end_match = _TOP_LINE.search(text, start)
        section = text[start : end_match.start() if end_match else len(text)]
        first = _CHILD_LINE.search(section)
        if first is None:
            continue
        indent = re.escape(first.group(1))
        child = re.compile(rf"^{indent}(\"(?:[^\"\\]|\\.)*\"|'(?:[^']|'')*'|[^\s#'\"][^\n#]*?)[ \t]*:(?=[ \t]|$)", re.M)
        for key in child.findall(section):
            name = _key(key)
            if name and "${" not in name and name not in found.vhosts:
                found.vhosts.append(name)
    return found


def prescan(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], max_file_size: int = MAX_FILE_SIZE
) -> Declared:
    """:func:`scan_text` over every file the loader would read (never an error: see the module docstring)."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    files, _ = discover(paths)
    found = Declared()
    for file in files:
        try:
            if file.stat().st_size > max_file_size:
                continue
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        scan_text(text, found)
    return found
