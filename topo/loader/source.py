"""Reading topology files: discovery, YAML with positions, interpolation.

Each file becomes a :class:`Document`: its plain Python value plus the ``line:col`` of every key and
value, addressed by their path (a tuple of keys and indices), so later stages can report any problem
at its place.
"""

from __future__ import annotations

import datetime
import math
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from topo.errors import Problem
from topo.model import document_path

__all__ = ["MAX_FILE_SIZE", "SENSITIVE_KEYS", "Document", "Path_", "discover", "read_document", "sensitive_path"]

Path_ = tuple[str | int, ...]

try:  # libyaml makes large topologies load several times faster
    _Loader: type[Any] = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - pyyaml without libyaml
    _Loader = yaml.SafeLoader

_STR_TAG = "tag:yaml.org,2002:str"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_INTERPOLATION = re.compile(r"\$\$\{|\$\{(env|var):([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{([^}]*)\}")


@dataclass
class Document:
    """One YAML file, parsed: ``data`` plus positions of values (``marks``) and keys (``key_marks``)."""

    file: str
    data: Any
    marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    unresolved: set[Path_] = field(default_factory=set)  # values whose interpolation failed
    # what stands in the file at a sensitive place (a password: see sensitive_path), before interpolation
    written: dict[Path_, str] = field(default_factory=dict)
    # whether secrets are read (passwords from the environment, password files): False for the commands that
    # never send them (validate, lint, ...); then a password whose variable is unset is left unread, here
    secrets: bool = True
    deferred: set[Path_] = field(default_factory=set)

    def place(self, path: Path_, *, key: bool = False) -> tuple[int | None, int | None]:
        """(line, col) of the value at ``path`` (or its key), walking up to the nearest known place."""
        table = self.key_marks if key else self.marks
        probe = path
        while True:
            if probe in table:
                return table[probe]
            if probe in self.marks:
                return self.marks[probe]
            if not probe:
                return (None, None)
            probe = probe[:-1]

    def problem(self, path: Path_, message: str, *, hint: str | None = None, key: bool = False) -> Problem:
        line, col = self.place(path, key=key)
        return Problem(message, file=self.file, line=line, col=col, path=document_path(path) or None, hint=hint)


def discover(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[Problem]]:
    """Every ``*.yaml``/``*.yml`` file below the given files and directories, in a stable order."""
    files: list[Path] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        if not str(raw):  # Path("") is ".": an empty argument must not mean "the current directory"
            problems.append(Problem("an empty path was given", hint="name a topology file or directory"))
            continue
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.suffix in (".yaml", ".yml")
                and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                problems.append(
                    Problem(
                        "no *.yaml or *.yml files in this directory",
                        file=str(path),
                        hint="point topo at the directory that holds your topology files",
                    )
                )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            problems.append(Problem("no such file or directory", file=str(path)))
    seen: set[Path] = set()
    unique = []
    for f in files:
        resolved = f.resolve()
        if resolved not in seen:
            seen.add(resolved)
            unique.append(f)
    return unique, problems


MAX_FILE_SIZE = 10 * 1024 * 1024
"""The largest topology file topo reads: 10 MiB, some 50,000 queues with their arguments and a binding
each. Loading costs about half a second and 55 MB of memory per MiB of YAML, so a file several times this
size is far more likely a mistake (a data file, a generated dump) than a topology; a real one this large
is split into several files, which make one topology."""


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB ({size:,} bytes)"


def _limit(size: int) -> str:
    return f"{size // 2**20} MiB" if size % 2**20 == 0 else f"{size:,} bytes"


def _too_big(name: str, size: int, limit: int) -> Problem:
    return Problem(
        f"the file is {_mib(size)}, over topo's limit of {_limit(limit)} for one topology file",
        file=name,
        hint="split it into several files: all the *.yaml/*.yml files below a directory make one topology "
        "(a vhost may be spread over files); or check that this file is a topology at all",
    )


def _read_text(file: Path, limit: int) -> str | Problem:
    """The file's text, or the problem that stops it: too large (checked before reading, and while reading
    in case it grows), not UTF-8, unreadable."""
    name = str(file)
    try:
        size = file.stat().st_size
        if size > limit:
            return _too_big(name, size, limit)
        with file.open("rb") as handle:
            raw = handle.read(limit + 1)
    except OSError as exc:
        return Problem(f"cannot read the file: {exc.strerror or exc}", file=name)
    if len(raw) > limit:
        return _too_big(name, len(raw), limit)
    try:
        # universal newlines, as Path.read_text: YAML positions count "\r\n" as one line break
        text = raw.decode("utf-8")
        return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text
    except UnicodeDecodeError as exc:
        return Problem(
            f"not a UTF-8 text file (byte {exc.object[exc.start]:#04x} at offset {exc.start})",
            file=name,
            hint="topology files are YAML text in UTF-8",
        )


# Aliases share one node, and building copies it at every use: `a: &a [x, x]`, `b: &b [*a, *a]`, ... nine
# levels deep is a billion values from a few hundred bytes. Building stops past this many values for
# each value written in the file (plus a floor, so that a small file may use its aliases freely).
ALIAS_EXPANSION = 10
ALIAS_FLOOR = 100_000


class _TooManyValues(Exception):
    pass


# Mappings and lists inside each other. A topology needs a handful of levels; topo stops at this many,
# below every YAML library's own limit (libyaml 0.2.6, in PyYAML 6.0.4: 1,000 levels, with its own
# message) and below Python's recursion limit, so that a document nested too deeply gets one problem of
# topo's, at its place, whichever PyYAML release reads it.
MAX_DEPTH = 100
# Composing the node tree is recursive: PyYAML 6.0.1-6.0.3 with libyaml crash the interpreter (C stack)
# some tens of thousands of levels down, before any error can be raised. A file that could be nested
# this deep (by _nesting_bound) is counted before it is composed.
_COMPOSE_SAFE = 10_000


class _TooDeep(Exception):
    def __init__(self, place: tuple[int, int] | None) -> None:
        super().__init__()
        self.place = place  # (line, column), from 1


def _nesting_bound(text: str) -> int:
    """An upper bound of the nesting depth of ``text``, cheap to compute.

    Every flow collection opens with ``[`` or ``{``; a block collection inside a block collection starts
    further right on its line, except a list under a mapping key, which may share the key's column: two
    levels at most per column of the widest line.
    """
    widest = max(map(len, text.splitlines()), default=0)
    return text.count("[") + text.count("{") + 2 * (widest + 1)


def _place(mark: Any) -> tuple[int, int] | None:
    return None if mark is None else (mark.line + 1, mark.column + 1)


def _first_too_deep(text: str, loader: type[Any]) -> _TooDeep | None:
    """Where the document first nests more than MAX_DEPTH levels (that collection's start), or None.

    Counted on the parser's events, which come one at a time from a loop, not a recursion, and stop
    being read as soon as the answer is known.
    """
    depth = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                return _TooDeep(_place(event.start_mark))
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return None


def _too_deep_at(text: str) -> _TooDeep | None:
    """:func:`_first_too_deep`, on libyaml, else on the pure-Python parser, which has no nesting limit
    of its own: libyaml's limit may stop it first (its scanner reads ahead), or another YAML error may."""
    loaders = [_Loader] if _Loader is yaml.SafeLoader else [_Loader, yaml.SafeLoader]
    for loader in loaders:
        try:
            return _first_too_deep(text, loader)
        except yaml.YAMLError:
            continue
    return None


def _compose(text: str) -> list[yaml.Node]:
    """The documents of ``text`` as node trees; raises _TooDeep, or the YAML library's error."""
    if _nesting_bound(text) > _COMPOSE_SAFE:
        too_deep = _too_deep_at(text)
        if too_deep is not None:
            raise too_deep
    try:
        return list(yaml.compose_all(text, Loader=_Loader))
    except (yaml.YAMLError, RecursionError) as exc:
        # libyaml's own nesting limit (PyYAML 6.0.4), or pure-Python PyYAML out of recursion: count it
        too_deep = _too_deep_at(text)
        if too_deep is None and isinstance(exc, RecursionError):
            too_deep = _TooDeep(None)
        if too_deep is not None:
            raise too_deep from None
        raise


def _too_deep_problem(file: str, place: tuple[int, int] | None) -> Problem:
    return Problem(
        f"the document is nested too deeply to read: more than {MAX_DEPTH} levels of mappings and lists",
        file=file,
        line=place[0] if place else None,
        col=place[1] if place else None,
        hint=f"topo reads at most {MAX_DEPTH} levels"
        + (f", and this mapping or list is level {MAX_DEPTH + 1}" if place else "")
        + "; a topology needs a few: look for unclosed [ or {, or aliases inside aliases",
    )


def _distinct_nodes(root: yaml.Node) -> int:
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack += (key, value)
    return len(seen)


class _Builder:
    """Turns a composed YAML node tree into plain values, recording positions and interpolating."""

    def __init__(
        self, file: str, variables: Mapping[str, str], environ: Mapping[str, str], budget: int, secrets: bool = True
    ) -> None:
        self.doc = Document(file, None, secrets=secrets)
        self.budget = budget  # values left to build before the aliases count as a bomb
        self.variables = variables
        self.environ = environ
        self.problems: list[Problem] = []
        self._constructor = yaml.constructor.SafeConstructor()
        self._resolver = yaml.resolver.Resolver()
        self._open: set[int] = set()  # collections being built, to catch an alias that contains itself
        self._depth = 0  # collections being built around the current value (aliases stack them)
        self._own_keys: dict[int, set[int]] = {}  # mapping node -> its own key nodes (not merged in)

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _TooManyValues
        self.doc.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            if id(node) in self._open:  # `a: &x {b: *x}`: an alias inside the collection it names
                self.problems.append(self.doc.problem(path, "an alias refers to a collection that contains it"))
                self.doc.unresolved.add(path)
                return None
            if self._depth >= MAX_DEPTH:
                raise _TooDeep(_place(node.start_mark))
            self._open.add(id(node))
            self._depth += 1
            try:
                if isinstance(node, yaml.MappingNode):
                    return self._mapping(node, path)
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            finally:
                self._depth -= 1
                self._open.discard(id(node))
        if not isinstance(node, yaml.ScalarNode):  # PyYAML composes only these three kinds of node
            self.problems.append(self.doc.problem(path, f"a YAML node of an unknown kind: {type(node).__name__}"))
            self.doc.unresolved.add(path)
            return None
        return self._scalar(node, path)

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any]:
        # Keys written in this mapping, as opposed to keys merged in by `<<:`, which they override.
        # Flattening rewrites the node in place, so an aliased mapping remembers this from its first use.
        own = self._own_keys.get(id(node))
        if own is None:
            own = self._own_keys[id(node)] = {id(k) for k, _ in node.value if k.tag != _MERGE_TAG}
        try:
            self._constructor.flatten_mapping(node)  # merge keys (<<)
        except yaml.MarkedYAMLError as exc:
            where = exc.problem_mark or node.start_mark
            self.problems.append(
                Problem(
                    f"cannot merge here: {exc.problem}",
                    file=self.doc.file,
                    line=where.line + 1,
                    col=where.column + 1,
                    path=document_path(path) or None,
                    hint="`<<:` takes an alias of a mapping (<<: *defaults) or a list of them",
                )
            )
            node.value = [(k, v) for k, v in node.value if k.tag != _MERGE_TAG]
        result: dict[str, Any] = {}
        written: set[Path_] = set()
        for key_node, value_node in node.value:
            mark = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(
                    Problem(
                        "a mapping key must be a plain string, not a list or a mapping",
                        file=self.doc.file,
                        line=mark[0],
                        col=mark[1],
                        path=document_path(path) or None,
                    )
                )
                self.doc.unresolved.add(path)  # reported once, not again as a schema problem here
                continue
            key = self._key(key_node, path)
            child = (*path, key)
            if key in result and id(key_node) in own and child in written:
                first = self.doc.key_marks.get(child)
                self.problems.append(
                    Problem(
                        f"key {key!r} is given twice in the same mapping"
                        + (f" (first at line {first[0]})" if first else ""),
                        file=self.doc.file,
                        line=mark[0],
                        col=mark[1],
                        path=document_path(child),
                        hint="YAML keeps only the last one; remove or merge the duplicate",
                    )
                )
            if id(key_node) in own:
                written.add(child)
            self.doc.key_marks[child] = mark
            result[key] = self.build(value_node, child)
        return result

    def _key(self, node: yaml.ScalarNode, path: Path_) -> str:
        """A mapping key is the text written: `1:` is "1" and `on:` is "on", never 1 or true.

        When its interpolation fails (reported), the key stays as written, so what it holds is still
        checked and reported: `orders.${env:REGION}`.
        """
        text = str(node.value)
        if "${" in text and node.tag == _STR_TAG:
            before = len(self.problems)
            mark = (node.start_mark.line + 1, node.start_mark.column + 1)
            result = self._interpolate(text, (*path, text), mark)
            if len(self.problems) == before:
                return result
        return text

    def _scalar(self, node: yaml.ScalarNode, path: Path_) -> Any:
        value = node.value
        if sensitive_path(path):  # a password: text as written, never typed (`${env:P}` holding 0123 stays "0123")
            self.doc.written[path] = str(value)
            return self._interpolate(value, path) if "${" in value else str(value)
        if isinstance(value, str) and "${" in value and node.tag == _STR_TAG:
            value = self._interpolate(value, path)
            if node.style:  # quoted: the result stays a string
                return value
            # plain scalar (style None or ''): type the result as YAML would (`${var:N}` -> int)
            tag = self._resolver.resolve(yaml.ScalarNode, value, (True, False))  # type: ignore[no-untyped-call]
            node = yaml.ScalarNode(tag, value, node.start_mark, node.end_mark, node.style)
        if node.tag == _STR_TAG:
            return value
        try:
            result = self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.problems.append(self.doc.problem(path, f"cannot read this value: {exc}"))
            return value
        if isinstance(result, datetime.date):  # `2024-01-01` unquoted: the text is meant, not a date
            return value
        if isinstance(result, float) and not math.isfinite(result):
            self.problems.append(self.doc.problem(path, f"{value} is not a number RabbitMQ accepts"))
        elif not isinstance(result, str | int | float | bool | type(None)):
            self.problems.append(
                self.doc.problem(
                    path,
                    f"a {node.tag.rsplit(':', 1)[-1]} value cannot be sent to RabbitMQ",
                    hint="write a string, a number, true or false",
                )
            )
        return result

    def _interpolate(self, text: str, path: Path_, mark: tuple[int, int] | None = None) -> str:
        """Replace ``${env:X}``, ``${env:X:-default}``, ``${var:X}`` and ``$${``; report what cannot be.

        ``mark`` is the place to report at when it is not the value's own (a key's).
        """

        secret = sensitive_path(path)  # a password: no part of it in a message

        def report(message: str, hint: str) -> None:
            line, col = mark or self.doc.place(path)
            self.problems.append(
                Problem(message, file=self.doc.file, line=line, col=col, path=document_path(path) or None, hint=hint)
            )
            self.doc.unresolved.add(path)

        def replace(match: re.Match[str]) -> str:
            whole = match.group(0)
            if whole == "$${":
                return "${"
            source, name, default, bad = match.group(1), match.group(2), match.group(3), match.group(4)
            if bad is not None:
                report(
                    f"cannot interpolate {whole!r}" if not secret else "cannot interpolate a ${...} written here",
                    "write ${env:NAME}, ${env:NAME:-default} or ${var:NAME}; $${ for a literal ${",
                )
                return whole
            table = self.environ if source == "env" else self.variables
            if name in table:
                value = table[name]
                bad = _not_utf8(value)
                if bad is not None:
                    what = "environment variable" if source == "env" else "variable"
                    report(
                        f"{what} {name} is not UTF-8 text" + (f" (it holds {bad})" if not secret else ""),
                        "RabbitMQ names, keys and arguments are UTF-8 text: set it to UTF-8 text "
                        "(its bytes come from whatever set it, e.g. a file in another encoding or a locale)",
                    )
                    return ""
                return value
            if default is not None:
                return default
            if secret and not self.doc.secrets:  # a password not needed by this command: left unread
                self.doc.deferred.add(path)
                return ""
            if source == "env":
                report(
                    f"environment variable {name} is not set",
                    f"set it, or give a default: ${{env:{name}:-default}}",
                )
            else:
                report(f"variable {name} is not set", f"pass --var {name}=VALUE")
            return ""

        return _INTERPOLATION.sub(replace, text)


SENSITIVE_KEYS = frozenset({"password", "password-hash"})
"""Keys of a user whose value is a secret (see :func:`sensitive_path`)."""


def sensitive_path(path: Path_) -> bool:
    """Whether the value at ``path`` is a secret: a user's ``password`` or ``password-hash``, or the URI of a
    shovel's source or destination or of a federation upstream (one, or an item of a list).

    Such a value is kept as the text written (interpolated), never typed by YAML, and no message shows it.
    """
    if len(path) == 3 and path[0] == "users" and path[2] in SENSITIVE_KEYS:
        return True
    if len(path) < 5 or path[0] != "vhosts":
        return False
    rest = path[4:-1] if isinstance(path[-1], int) else path[4:]
    if path[2] == "shovels":
        return len(rest) == 2 and rest[0] in ("source", "destination") and rest[1] == "uri"
    return path[2] == "federation-upstreams" and rest == ("uri",)


def _not_utf8(value: str) -> str | None:
    """None when ``value`` encodes as UTF-8; else what stands in the way, for a message.

    Python decodes bytes that are not UTF-8 in the environment and the command line to "surrogate
    escapes" (b"\\xff" becomes "\\udcff"), which no request to the broker can carry.
    """
    if value.isascii():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(value[exc.start])
        if 0xDC80 <= code <= 0xDCFF:
            return f"the byte {code - 0xDC00:#04x}"
        return f"U+{code:04X}, a lone surrogate"
    return None


def read_document(
    file: Path,
    variables: Mapping[str, str],
    environ: Mapping[str, str] | None = None,
    max_size: int = MAX_FILE_SIZE,
    *,
    secrets: bool = True,
) -> tuple[Document | None, list[Problem]]:
    """Parse one file (at most ``max_size`` bytes). Returns the document (None when it cannot be parsed)
    and the problems found. Without ``secrets``, a password whose variable is not set is no problem (see
    :attr:`Document.deferred`)."""
    name = str(file)
    text = _read_text(file, max_size)
    if isinstance(text, Problem):
        return None, [text]
    try:
        nodes = _compose(text)
    except _TooDeep as exc:
        return None, [_too_deep_problem(name, exc.place)]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        if exc.context and exc.context_mark and mark and exc.context_mark.line != mark.line:
            # "while parsing a flow mapping" that starts at an earlier line: the mistake is usually there
            start = exc.context_mark
            context = f" ({exc.context} that starts at line {start.line + 1}, column {start.column + 1})"
        hint = None
        if mark is not None and "${" in "".join(text.splitlines()[max(mark.line - 1, 0) : mark.line + 1]):
            hint = (
                "inside { } or [ ] a ${...} must be quoted, which makes it a string; "
                "to interpolate a number, write that mapping in block style (one key per line)"
            )
        return None, [
            Problem(
                f"invalid YAML: {what}{context}",
                file=name,
                line=mark.line + 1 if mark else None,
                col=mark.column + 1 if mark else None,
                hint=hint,
            )
        ]
    except yaml.reader.ReaderError as exc:
        before = text[: exc.position]
        line = before.count("\n") + 1
        col = exc.position - (before.rfind("\n") + 1) + 1
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return None, [
            Problem(
                f"invalid YAML: character U+{char:04X} is not allowed ({exc.reason})", file=name, line=line, col=col
            )
        ]
    except yaml.YAMLError as exc:
        return None, [Problem(f"invalid YAML: {exc}", file=name)]
    nodes = [n for n in nodes if n is not None and not (n.tag == _NULL_TAG and n.value == "")]
    if not nodes:
        return None, [Problem("the file is empty", file=name, hint="start it with `version: 1`")]
    if len(nodes) > 1:
        second = nodes[1].start_mark
        return None, [
            Problem(
                "a topology file holds one YAML document, this one has several",
                file=name,
                line=second.line + 1,
                col=second.column + 1,
                hint="split the documents into separate files",
            )
        ]
    # no `&` anywhere: no anchor, so no alias to expand (skips the count for most files)
    written = _distinct_nodes(nodes[0]) if "&" in text else 0
    budget = ALIAS_FLOOR + ALIAS_EXPANSION * written if written else sys.maxsize
    builder = _Builder(name, variables, environ if environ is not None else os.environ, budget, secrets)
    try:
        builder.doc.data = builder.build(nodes[0], ())
    except _TooDeep as exc:
        return None, [_too_deep_problem(name, exc.place)]
    except RecursionError:  # the caller's own stack was nearly full already
        return None, [_too_deep_problem(name, None)]
    except _TooManyValues:
        return None, [
            Problem(
                f"its aliases expand to more than {budget:,} values, from {written:,} written in the file",
                file=name,
                line=1,
                col=1,
                hint=f"topo reads at most {ALIAS_EXPANSION} times the values written (plus {ALIAS_FLOOR:,}): "
                "an alias that repeats aliases that repeat aliases multiplies; use fewer levels",
            )
        ]
    return builder.doc, builder.problems
