"""Reading topology files: discovery, YAML with positions, interpolation.

Each file becomes a :class:`Document`: its plain Python value plus the ``line:col`` of every key and
value, addressed by their path (a tuple of keys and indices), so later stages can report any problem
at its place.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from topo.errors import Problem

__all__ = ["Document", "Path_", "discover", "read_document"]

Path_ = tuple[str | int, ...]

try:  # libyaml makes large topologies load several times faster
    _Loader: type[Any] = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - pyyaml without libyaml
    _Loader = yaml.SafeLoader

_STR_TAG = "tag:yaml.org,2002:str"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_INTERPOLATION = re.compile(r"\$\$\{|\$\{(env|var):([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{([^}]*)\}")


@dataclass
class Document:
    """One YAML file, parsed: ``data`` plus positions of values (``marks``) and keys (``key_marks``)."""

    file: str
    data: Any
    marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    unresolved: set[Path_] = field(default_factory=set)  # values whose interpolation failed

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
        return Problem(message, file=self.file, line=line, col=col, path=dotted(path) or None, hint=hint)


def dotted(path: Iterable[str | int]) -> str:
    """``vhosts.iot.queues.orders.bindings[0]`` (names with dots or slashes quoted)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.match(r"^[A-Za-z0-9_\-]+$", part):
            out += f".{part}" if out else part
        else:
            out += f'["{part}"]'
    return out


def discover(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[Path], list[Problem]]:
    """Every ``*.yaml``/``*.yml`` file below the given files and directories, in a stable order."""
    files: list[Path] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
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


class _Builder:
    """Turns a composed YAML node tree into plain values, recording positions and interpolating."""

    def __init__(self, file: str, variables: Mapping[str, str], environ: Mapping[str, str]) -> None:
        self.doc = Document(file, None)
        self.variables = variables
        self.environ = environ
        self.problems: list[Problem] = []
        self._constructor = yaml.constructor.SafeConstructor()
        self._resolver = yaml.resolver.Resolver()

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.doc.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            self._constructor.flatten_mapping(node)  # merge keys (<<)
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self._scalar(key_node, path) if isinstance(key_node, yaml.ScalarNode) else None
                if not isinstance(key, str):
                    if isinstance(key, bool | int | float) or key is None:
                        key = "null" if key is None else str(key).lower() if isinstance(key, bool) else str(key)
                    else:
                        self.problems.append(self.doc.problem(path, "a mapping key must be a plain string"))
                        continue
                child = (*path, key)
                mark = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                if key in result:
                    first = self.doc.key_marks.get(child)
                    self.problems.append(
                        Problem(
                            f"key {key!r} is given twice in the same mapping"
                            + (f" (first at line {first[0]})" if first else ""),
                            file=self.doc.file,
                            line=mark[0],
                            col=mark[1],
                            path=dotted(child),
                            hint="YAML keeps only the last one; remove or merge the duplicate",
                        )
                    )
                self.doc.key_marks[child] = mark
                result[key] = self.build(value_node, child)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _scalar(self, node: yaml.Node, path: Path_) -> Any:
        value = node.value
        if isinstance(value, str) and "${" in value and node.tag == _STR_TAG:
            value = self._interpolate(value, path)
            if (
                not node.style
            ):  # plain scalar (None or '' depending on the parser): type the result as YAML would (${var:N} -> int)
                tag = self._resolver.resolve(yaml.ScalarNode, value, (True, False))
                node = yaml.ScalarNode(tag, value, node.start_mark, node.end_mark, node.style)
            else:
                return value
        if node.tag == _STR_TAG:
            return value
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.problems.append(self.doc.problem(path, f"cannot read this value: {exc}"))
            return value

    def _interpolate(self, text: str, path: Path_) -> str:
        def replace(match: re.Match[str]) -> str:
            whole = match.group(0)
            if whole == "$${":
                return "${"
            source, name, default, bad = match.group(1), match.group(2), match.group(3), match.group(4)
            if bad is not None:
                self.problems.append(
                    self.doc.problem(
                        path,
                        f"cannot interpolate {whole!r}",
                        hint="write ${env:NAME}, ${env:NAME:-default} or ${var:NAME}; $${ for a literal ${",
                    )
                )
                return whole
            table = self.environ if source == "env" else self.variables
            if name in table:
                return table[name]
            if default is not None:
                return default
            hint = (
                f"set the environment variable {name} or write ${{env:{name}:-default}}"
                if source == "env"
                else f"pass --var {name}=VALUE"
            )
            self.problems.append(self.doc.problem(path, f"{source} variable {name!r} is not set", hint=hint))
            self.doc.unresolved.add(path)
            return ""

        return _INTERPOLATION.sub(replace, text)


def read_document(
    file: Path, variables: Mapping[str, str], environ: Mapping[str, str] | None = None
) -> tuple[Document | None, list[Problem]]:
    """Parse one file. Returns the document (None when it cannot be parsed) and the problems found."""
    name = str(file)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(f"cannot read the file: {exc}", file=name)]
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        return None, [
            Problem(
                f"invalid YAML: {what}{context}",
                file=name,
                line=mark.line + 1 if mark else None,
                col=mark.column + 1 if mark else None,
            )
        ]
    except yaml.YAMLError as exc:
        return None, [Problem(f"invalid YAML: {exc}", file=name)]
    nodes = [n for n in nodes if n is not None]
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
    builder = _Builder(name, variables, environ if environ is not None else os.environ)
    builder.doc.data = builder.build(nodes[0], ())
    return builder.doc, builder.problems
