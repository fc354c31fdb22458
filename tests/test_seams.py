"""The seams between topo's objects stay declared (issue 13.5), checked on the source with ``ast``.

- No module reaches into another object's private attributes: ``x._name`` is allowed only when ``x`` is
  ``self`` or ``cls``. The runtime's channel, connection, session and client talk through public,
  typed methods and attributes (the contracts in ``topo/runtime/contracts.py``).
- No ``assert`` in production code: ``python -O`` strips them, and a failed one is a traceback, not an
  error a user can read. A real check raises the right :class:`~topo.errors.TopoError`.
- The public API of the runtime returns real types, not ``Any`` (where the value is ours to type).
"""

from __future__ import annotations

import ast
import inspect
import typing
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "topo"


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _private_reaches(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or (name.startswith("__") and name.endswith("__")):
            continue
        owner = node.value
        if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
            continue
        found.append((node.lineno, ast.unparse(node)))
    return found


def test_the_check_finds_a_reach_into_another_object() -> None:
    code = "def f(self, other):\n    self._ok = other._secret\n    return self._ok.x, cls._fine, other.__class__\n"
    assert _private_reaches(ast.parse(code)) == [(2, "other._secret")]
    assert _private_reaches(ast.parse("def g(self):\n    return self.conn._send\n")) == [(2, "self.conn._send")]


def test_no_module_reaches_into_another_objects_private_attributes() -> None:
    offences = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {text}"
        for path in _modules()
        for line, text in _private_reaches(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert offences == [], "use a public, typed method or attribute instead:\n" + "\n".join(offences)


def test_no_assert_in_production_code() -> None:
    offences = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {ast.unparse(node)}"
        for path in _modules()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assert)
    ]
    assert offences == [], "raise the right TopoError instead (python -O strips asserts):\n" + "\n".join(offences)


def _public_methods() -> list[tuple[str, typing.Any]]:
    import topo.runtime as runtime

    found = []
    for class_name in ("Client", "Publisher", "Connection", "Channel", "MessageStream", "Subscription", "SyncClient"):
        cls = getattr(runtime, class_name)
        for name, member in inspect.getmembers(cls, inspect.isfunction):
            if not name.startswith("_") or name in ("__aenter__", "__enter__"):
                found.append((f"{class_name}.{name}", member))
    return found


# The values that are the user's own (a handler's result, a decoded reply, a header's value): Any is their type.
_ANY_ALLOWED = {"Client.rpc", "SyncClient.rpc"}


@pytest.mark.parametrize(("name", "function"), _public_methods(), ids=[n for n, _ in _public_methods()])
def test_the_public_runtime_api_returns_real_types(name: str, function: typing.Any) -> None:
    hints = typing.get_type_hints(function)
    if name in _ANY_ALLOWED:
        return
    assert hints.get("return", None) is not typing.Any, f"{name} returns Any"
