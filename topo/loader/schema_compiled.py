"""A fast yes/no answer to "is this document valid against the schema?", so that jsonschema only runs
on documents that have problems.

jsonschema walks a valid document at about 125 µs of CPU per queue (each keyword is a validator
object, each ``$ref`` a registry lookup): 1.2 s of the 3 s that loading a 10,000-queue topology took.
This module compiles the schema once into plain closures that answer the same question in a few µs per queue.

It is **conservative**: :func:`compile_schema` returns a check that answers True only where jsonschema
finds no error; in a few corners it is stricter than JSON Schema (``1.0`` is not taken for an
integer, ``enum``/``const`` compare types too, ``uniqueItems`` only accepts lists of strings). A
False answer costs nothing but time: the caller then runs jsonschema, which alone produces the problems
users see. A keyword it does not know makes :func:`compile_schema` return None (jsonschema always runs).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Check", "compile_schema"]

Check = Callable[[Any], bool]

# Keywords that never make a document invalid.
_ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "$comment", "title", "description", "default", "examples"})
_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: type(v) is dict,
    "array": lambda v: type(v) is list,
    "string": lambda v: type(v) is str,
    "integer": lambda v: type(v) is int,
    "number": lambda v: type(v) is int or type(v) is float,
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
}


class _Unsupported(Exception):
    pass


def compile_schema(schema: Mapping[str, Any]) -> Check | None:
    """A check for ``schema`` (a 2020-12 schema whose ``$ref`` are ``#/$defs/...``), or None when the
    schema uses something this module does not handle."""
    compiler = _Compiler(schema)
    try:
        return compiler.compile(schema)
    except _Unsupported:
        return None


def _true(_: Any) -> bool:
    return True


def _is_number(value: Any) -> bool:
    return type(value) is int or type(value) is float


class _Compiler:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Check] = {}

    def compile(self, schema: Any) -> Check:
        if schema is True:
            return _true
        if schema is False:
            return lambda _: False
        if not isinstance(schema, Mapping):
            raise _Unsupported(repr(schema))
        checks: list[Check] = []
        for keyword, value in schema.items():
            if keyword in _ANNOTATIONS or keyword in ("properties", "additionalProperties"):
                continue
            method = getattr(self, "k_" + keyword.replace("$", "_"), None)
            if method is None:
                raise _Unsupported(keyword)
            checks.append(method(value, schema))
        if "properties" in schema or "additionalProperties" in schema:
            checks.append(self.object_keys(schema))
        if not checks:
            return _true
        if len(checks) == 1:
            return checks[0]
        every = tuple(checks)
        return lambda v: all(check(v) for check in every)

    # -- keywords ---------------------------------------------------------------------------------
    def k__ref(self, ref: Any, _: Mapping[str, Any]) -> Check:
        if not isinstance(ref, str) or not ref.startswith("#/$defs/") or "/" in ref[len("#/$defs/") :]:
            raise _Unsupported(f"$ref {ref!r}")
        if ref in self.refs:
            return self.refs[ref]
        target = (self.root.get("$defs") or {}).get(ref[len("#/$defs/") :])
        if target is None:
            raise _Unsupported(f"$ref {ref!r}")
        self.refs[ref] = lambda v: resolved(v)  # what a recursive $ref gets while its target compiles
        resolved = self.compile(target)
        self.refs[ref] = resolved
        return resolved

    def k_type(self, kind: Any, _: Mapping[str, Any]) -> Check:
        kinds = [kind] if isinstance(kind, str) else kind
        if not isinstance(kinds, list) or any(k not in _TYPES for k in kinds):
            raise _Unsupported(f"type {kind!r}")
        tests = tuple(_TYPES[k] for k in kinds)
        if len(tests) == 1:
            return tests[0]
        return lambda v: any(test(v) for test in tests)

    def k_enum(self, values: Any, _: Mapping[str, Any]) -> Check:
        if not isinstance(values, list) or not all(isinstance(e, str | int | float | bool) for e in values):
            raise _Unsupported("enum")
        allowed = frozenset((type(e), e) for e in values)
        return lambda v: isinstance(v, str | int | float | bool) and (type(v), v) in allowed

    def k_const(self, value: Any, _: Mapping[str, Any]) -> Check:
        if not isinstance(value, str | int | float | bool):
            raise _Unsupported("const")
        kind = type(value)
        return lambda v: type(v) is kind and v == value

    def k_required(self, keys: Any, _: Mapping[str, Any]) -> Check:
        names = tuple(keys)
        return lambda v: type(v) is not dict or all(k in v for k in names)

    def k_anyOf(self, schemas: Any, _: Mapping[str, Any]) -> Check:
        options = tuple(self.compile(s) for s in schemas)
        return lambda v: any(option(v) for option in options)

    def k_items(self, schema: Any, _: Mapping[str, Any]) -> Check:
        if isinstance(schema, list):
            raise _Unsupported("items as a list")
        item = self.compile(schema)
        return lambda v: type(v) is not list or all(item(i) for i in v)

    def k_minItems(self, n: Any, _: Mapping[str, Any]) -> Check:
        return lambda v: type(v) is not list or len(v) >= n

    def k_minProperties(self, n: Any, _: Mapping[str, Any]) -> Check:
        return lambda v: type(v) is not dict or len(v) >= n

    def k_maxLength(self, n: Any, _: Mapping[str, Any]) -> Check:
        return lambda v: type(v) is not str or len(v) <= n

    def k_minimum(self, n: Any, _: Mapping[str, Any]) -> Check:
        return lambda v: not _is_number(v) or v >= n

    def k_maximum(self, n: Any, _: Mapping[str, Any]) -> Check:
        return lambda v: not _is_number(v) or v <= n

    def k_pattern(self, pattern: Any, _: Mapping[str, Any]) -> Check:
        search = re.compile(pattern).search
        return lambda v: type(v) is not str or search(v) is not None

    def k_uniqueItems(self, unique: Any, _: Mapping[str, Any]) -> Check:
        if not unique:
            return _true
        return lambda v: (
            type(v) is not list
            or (
                all(type(i) is str for i in v) and len(set(v)) == len(v)  # other items: let jsonschema decide
            )
        )

    def object_keys(self, schema: Mapping[str, Any]) -> Check:
        """``properties`` and ``additionalProperties`` together (the second depends on the first)."""
        properties = {name: self.compile(sub) for name, sub in (schema.get("properties") or {}).items()}
        extra = schema.get("additionalProperties", True)
        other = None if extra is True else self.compile(extra)

        def check(v: Any) -> bool:
            if type(v) is not dict:
                return True
            for key, value in v.items():
                sub = properties.get(key)
                if sub is not None:
                    if not sub(value):
                        return False
                elif other is not None and not other(value):
                    return False
            return True

        return check
