"""Who may import whom (docs/architecture.md, "Layers"), checked on the source: every ``import`` of every
module of the package, those inside functions too (a lazy import is still a dependency), except those under
``if TYPE_CHECKING:`` (types only). Pure: no import is executed.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "topo"

PURE = (
    "topo.model",
    "topo.definitions",
    "topo.arguments",
    "topo.units",
    "topo.pcre",
    "topo.passwords",
    "topo.shortstr",
    "topo.errors",
    "topo.plan",
    "topo.loader",
    "topo.lint",
    "topo.routing",
    "topo.graph",
    "topo.export",
    "topo.importer",
)
"""The pure core: values in, values out."""

IO = ("httpx", "pamqp", "click", "topo.broker", "topo.runtime", "topo.engine", "topo.cli", "topo.monitor.figures")

RULES: tuple[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    # (importers, what they may not import, importers excepted)
    (PURE, IO, ()),
    # the engine's broker side: the AMQP runtime only through the AMQP adapter
    (
        ("topo.broker",),
        ("topo.runtime", "topo.engine", "topo.cli", "topo.loader"),
        ("topo.broker.amqp_probe", "topo.broker.lock"),
    ),
    # the Management API client knows HTTP only
    (("topo.broker.client",), ("topo.broker", "topo.runtime", "topo.plan", "topo.definitions"), ()),
    # what runs an apply sees the broker through the port, never through a client or an adapter
    (
        ("topo.broker.reader", "topo.broker.writer", "topo.broker.executors", "topo.broker.phases", "topo.broker.drop"),
        ("httpx", "topo.broker.client", "topo.broker.live", "topo.broker.amqp_probe", "topo.runtime"),
        (),
    ),
    (("topo.broker.port",), ("httpx", "topo.broker.", "topo.runtime"), ()),
    # the runtime stands on its own: it never needs the planner
    (("topo.runtime",), ("topo.broker", "topo.plan", "topo.engine", "topo.cli", "topo.loader", "topo.lint"), ()),
    # the CLI is the top; the private test node is tooling outside the package
    (("topo",), ("topo.cli",), ("topo.cli",)),
    (("topo",), ("devbroker",), ()),
)


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(source: str, module: str) -> Iterator[str]:
    """Every module ``source`` (the text of ``module``) imports, at run time (``from a import b`` gives ``a``
    and ``a.b``: b may be a module)."""
    package = module.rsplit(".", 1)[0] if not module.endswith("__init__") else module

    def visit(node: ast.AST) -> Iterator[str]:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                yield from visit(child)
            return
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            yield from visit(child)

    yield from visit(ast.parse(source))


def _within(name: str, prefix: str) -> bool:
    if prefix.endswith("."):
        return name.startswith(prefix)
    return name == prefix or name.startswith(prefix + ".")


def violations(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for importers, forbidden, excepted in RULES:
        for module, imported in sorted(graph.items()):
            if not any(_within(module, p) for p in importers) or any(_within(module, p) for p in excepted):
                continue
            bad = {name for name in imported if any(_within(name, p) for p in forbidden) and not _within(name, module)}
            # ``from a.b import c`` gives a.b and a.b.c: name the module (a.b), not each name taken from it
            found += [f"{module} imports {name}" for name in bad if name.rpartition(".")[0] not in bad]
    return sorted(set(found))


def package_graph() -> dict[str, set[str]]:
    return {
        _module(path): set(imports_of(path.read_text(encoding="utf-8"), _module(path)))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def test_the_layers_hold() -> None:
    assert violations(package_graph()) == []


@pytest.mark.parametrize(
    ("module", "source", "found"),
    [
        (
            "topo.broker.client",
            "def f():\n    from topo.runtime.connection import Connection\n",
            ["topo.broker.client imports topo.runtime.connection"],
        ),
        ("topo.plan.diff", "import httpx\n", ["topo.plan.diff imports httpx"]),
        ("topo.plan.diff", "from topo import engine\n", ["topo.plan.diff imports topo.engine"]),
        (
            "topo.broker.writer",
            "from topo.broker.live import LiveBroker\n",
            ["topo.broker.writer imports topo.broker.live"],
        ),
        (
            "topo.model",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from topo.engine import plan\n",
            [],
        ),
        ("topo.broker.amqp_probe", "def f():\n    from topo.runtime.errors import NotFound\n", []),
    ],
)
def test_the_check_finds_what_breaks_a_layer(module: str, source: str, found: list[str]) -> None:
    assert violations({module: set(imports_of(source, module))}) == found
