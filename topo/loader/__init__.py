"""Files or directories → one validated, normalised :class:`~topo.model.Topology`.

``load(paths, variables=None)`` reads every ``*.yaml``/``*.yml`` below the given paths, checks each
file against the JSON Schema and the whole against the rules the schema cannot express, and raises
:class:`~topo.errors.ValidationError` carrying every problem (``file:line:col``, document path, what was
expected) when anything is wrong.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from topo.errors import Problem, ValidationError
from topo.loader.build import build_topology, retry_queue_name
from topo.loader.schema_check import check_schema
from topo.loader.source import Document, Path_, discover, read_document
from topo.model import Topology

__all__ = ["load", "load_documents", "retry_queue_name"]

PathLike = str | os.PathLike[str]


def load_documents(
    paths: PathLike | Iterable[PathLike],
    variables: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[list[tuple[Document, set[Path_]]], list[Problem]]:
    """Parse and schema-check every file; returns each parsed document with the paths that broke the
    schema, and every problem found."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    files, problems = discover(paths)
    parsed: list[tuple[Document, set[Path_]]] = []
    for file in files:
        doc, file_problems = read_document(file, variables or {}, environ)
        problems.extend(file_problems)
        if doc is None:
            continue
        schema_problems, bad_paths = check_schema(doc)
        problems.extend(schema_problems)
        parsed.append((doc, bad_paths))
    return parsed, problems


def load(
    paths: PathLike | Iterable[PathLike],
    variables: Mapping[str, str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Topology:
    """Load a topology from files and directories. Raises ValidationError listing every problem."""
    docs, problems = load_documents(paths, variables, environ)
    topology, build_problems = build_topology(docs)
    problems.extend(build_problems)
    if problems:
        raise ValidationError(problems)
    return topology
