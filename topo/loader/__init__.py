"""Files or directories → one validated, normalised :class:`~topo.model.Topology`.

``load(paths, variables=None)`` reads every ``*.yaml``/``*.yml`` below the given paths, checks each
file against the JSON Schema and the whole against the rules the schema cannot express, and raises
:class:`~topo.errors.ValidationError` carrying every problem (``file:line:col``, document path, what was
expected) when anything is wrong.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager

from topo.errors import Problem, ValidationError
from topo.loader.build import build_topology
from topo.loader.schema_messages import check_schema
from topo.loader.source import MAX_FILE_SIZE, Document, Path_, discover, read_document
from topo.model import Topology, retry_queue_name

__all__ = ["MAX_FILE_SIZE", "load", "load_documents", "retry_queue_name"]

PathLike = str | os.PathLike[str]


VhostsHook = Callable[[list[str]], None]
"""Called while the files are parsed, before validation, with the vhost names a file declares that no
earlier file declared (so once per new name): lets a caller start reading those vhosts from the broker
while the rest is still being parsed and validated."""


def _declared_vhosts(doc: Document) -> list[str]:
    vhosts = doc.data.get("vhosts") if isinstance(doc.data, dict) else None
    if not isinstance(vhosts, dict):
        return []
    return [name for name in vhosts if isinstance(name, str) and name]


def load_documents(
    paths: PathLike | Iterable[PathLike],
    variables: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    on_vhosts: VhostsHook | None = None,
    max_file_size: int = MAX_FILE_SIZE,
    secrets: bool = True,
) -> tuple[list[tuple[Document, set[Path_]]], list[Problem]]:
    """Parse and schema-check every file; returns each parsed document with the paths that broke the
    schema, and every problem found. A file over ``max_file_size`` bytes is a problem, not read."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    files, problems = discover(paths)
    docs: list[Document] = []
    announced: set[str] = set()
    for file in files:
        doc, file_problems = read_document(file, variables or {}, environ, max_file_size, secrets=secrets)
        problems.extend(file_problems)
        if doc is not None:
            docs.append(doc)
            if on_vhosts is not None:
                new = sorted(set(_declared_vhosts(doc)) - announced)
                if new:
                    announced.update(new)
                    on_vhosts(new)
    parsed: list[tuple[Document, set[Path_]]] = []
    for doc in docs:
        schema_problems, bad_paths = check_schema(doc)
        problems.extend(schema_problems)
        parsed.append((doc, bad_paths))
    return parsed, problems


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while loading: the loader builds many long-lived objects and
    almost no cycles, and the collector's passes over them took a quarter of the time of a large load.
    Reference counting still frees everything as usual."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load(
    paths: PathLike | Iterable[PathLike],
    variables: Mapping[str, str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    on_vhosts: VhostsHook | None = None,
    max_file_size: int = MAX_FILE_SIZE,
    secrets: bool = True,
) -> Topology:
    """Load a topology from files and directories. Raises ValidationError listing every problem.

    Each file may hold at most ``max_file_size`` bytes (:data:`MAX_FILE_SIZE`, 10 MiB, by default).
    ``secrets=False`` loads it without the users' passwords that are not at hand (a variable not set, a
    password file not there): for what never sends them (validate, lint, graph, route, ...); such a
    topology cannot be planned or applied."""
    with _gc_paused():
        docs, problems = load_documents(paths, variables, environ, on_vhosts, max_file_size, secrets)
        topology, build_problems = build_topology(docs)
    problems.extend(build_problems)
    if problems:
        raise ValidationError(problems)
    return topology
