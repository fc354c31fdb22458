"""JSON Schema validation of one document, with messages a person can act on.

A valid document passes the compiled check (:mod:`topo.loader.schema_compiled`) and never reaches
jsonschema; one that fails is walked by jsonschema, whose errors become problems
(:class:`~topo.errors.Problem`) with a place, a plain message and a hint.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

from topo.arguments import OPERATOR_POLICY_KEYS, POLICY_KEYS
from topo.errors import Problem
from topo.loader.schema_compiled import Check, compile_schema
from topo.loader.source import Document, Path_
from topo.schemas import load_schema

if TYPE_CHECKING:  # jsonschema is imported on first use: only a document with problems needs it
    import jsonschema
    from jsonschema.exceptions import ValidationError as SchemaError

__all__ = ["check_schema"]


@cache
def _fast_check() -> Check | None:
    return compile_schema(load_schema())


@cache
def _validator() -> jsonschema.protocols.Validator:
    import jsonschema  # 60 ms of imports that a valid document never needs

    schema = load_schema()
    cls = jsonschema.validators.validator_for(schema)
    validator: jsonschema.protocols.Validator = cls(schema)
    return validator


_TOP_HINTS = {"version": "every topology file starts with `version: 1`", "vhosts": "write `vhosts: {}` for none"}


def _subschema_properties(error: SchemaError) -> list[str]:
    props = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
    return sorted(props)


def _describe_expected(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "a valid value"
    if "$ref" in schema:
        ref = str(schema["$ref"]).rsplit("/", 1)[-1]
        return {
            "duration": "a duration (milliseconds, or e.g. 500ms, 30s, 5m, 24h, 7d)",
            "size": "a size (bytes, or e.g. 512B, 10KB, 10MiB, 1GiB)",
            "binding": "a binding {exchange: NAME, routing-key: KEY}",
            "name": "a name (a string of at most 255 bytes)",
        }.get(ref, f"a {ref}")
    if "anyOf" in schema and "description" in schema:
        return str(schema["description"])
    if "enum" in schema:
        return "one of " + ", ".join(repr(v) for v in schema["enum"])
    if "const" in schema:
        return repr(schema["const"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return str(schema["description"]) if "description" in schema else " or ".join(kind)
    names = {
        "object": "a mapping",
        "array": "a list",
        "string": "a string",
        "integer": "an integer",
        "boolean": "true or false",
        "number": "a number",
    }
    return names.get(str(kind), "a valid value")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _choices(schema: Any) -> list[str]:
    """The strings an ``enum`` accepts, directly or inside an ``anyOf``."""
    if not isinstance(schema, dict):
        return []
    found = [v for v in schema.get("enum", []) if isinstance(v, str)]
    for option in schema.get("anyOf", []):
        found += _choices(option)
    return found


def _takes_integer(schema: Any) -> bool:
    """Whether a schema accepts an integer (directly, or as a duration or size)."""
    if not isinstance(schema, dict):
        return False
    if schema.get("type") == "integer" or str(schema.get("$ref", "")).endswith(("/duration", "/size")):
        return True
    return any(_takes_integer(s) for s in schema.get("anyOf", []))


def _type_name(value: Any, path: Path_ = ()) -> str:
    if isinstance(value, str) and path[:1] == ("users",):
        return "a string"  # anything written under users may be a misplaced password: never repeated
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _fitting_branch(error: SchemaError) -> list[SchemaError] | None:
    """The errors of the one branch of an ``anyOf`` that takes a mapping or a list written there (the others
    want another type): what is wrong inside it says more than "expected one of these". None: no such branch."""
    if error.validator != "anyOf" or not isinstance(error.instance, dict | list) or not error.context:
        return None
    branches: dict[Any, list[SchemaError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    fitting = [errs for errs in branches.values() if not any(e.validator == "type" and not e.path for e in errs)]
    return fitting[0] if len(fitting) == 1 else None


def _problems(doc: Document, error: SchemaError) -> Iterator[Problem]:
    path: Path_ = tuple(error.absolute_path)
    validator = error.validator
    inside = _fitting_branch(error)
    if inside is not None:
        for sub in inside:
            yield from _problems(doc, sub)
        return
    if validator == "additionalProperties":
        allowed = _subschema_properties(error)
        extras = [k for k in error.instance if k not in allowed] if isinstance(error.instance, dict) else []
        collection = path[2] if len(path) >= 4 and path[0] == "vhosts" else None
        in_definition = len(path) == 5 and collection in ("policies", "operator-policies") and path[4] == "definition"
        for extra in extras:
            near = difflib.get_close_matches(extra, allowed, n=1, cutoff=0.6)
            if in_definition and collection == "operator-policies" and extra in POLICY_KEYS:
                hint = "an operator policy accepts only " + ", ".join(sorted(OPERATOR_POLICY_KEYS))
            elif near:
                hint = f"did you mean {near[0]!r}?"
            elif in_definition:
                hint = "RabbitMQ rejects policy keys it does not know"
            elif allowed:
                hint = "allowed here: " + ", ".join(allowed)
            else:
                hint = None
            if extra == "exclusive" and len(path) == 4 and collection == "queues":
                hint = "exclusive queues belong to one connection: declare them in the application"
            if extra.startswith("x-") and "arguments" in allowed:
                hint = f"broker arguments go under `arguments:` (or write {extra[2:]!r})"
            message = f"unknown key {extra!r}"
            if hint and hint.startswith("an operator policy"):
                message = f"{extra!r} is not allowed in an operator policy"
            yield doc.problem((*path, extra), message, hint=hint, key=True)
        return
    if validator == "required":
        required = error.validator_value if isinstance(error.validator_value, list) else []
        missing = [k for k in required if isinstance(error.instance, dict) and k not in error.instance]
        for key in missing:
            yield doc.problem(
                path, f"missing required key {key!r}", key=True, hint=None if path else _TOP_HINTS.get(key)
            )
        return
    if validator in ("anyOf", "oneOf", "type", "enum", "const", "pattern"):
        schema: Any = error.schema
        if validator == "pattern":
            schema = error.parent.schema if error.parent else schema
            if isinstance(schema, dict) and "anyOf" not in schema and "description" in schema:
                schema = {"anyOf": [], "description": schema["description"]}
        expected = _describe_expected(schema)
        hint = None
        if isinstance(error.instance, str) and error.instance.strip().isdigit() and _takes_integer(schema):
            number = error.instance.strip()
            hint = f'write it without quotes: RabbitMQ compares argument types, and "{number}" is not {number}'
        elif isinstance(error.instance, str):
            near = difflib.get_close_matches(error.instance, _choices(schema), n=1, cutoff=0.6)
            hint = f"did you mean {near[0]!r}?" if near else None
        elif _is_number(error.instance) and isinstance(schema, dict) and schema.get("type") == "string":
            hint = f'quote it to make it text: "{error.instance}"'
        if path[:1] == ("users",):
            hint = None  # hints repeat the value written
        yield doc.problem(path, f"expected {expected}, got {_type_name(error.instance, path)}", hint=hint)
        return
    if validator in ("minimum", "maximum"):
        word = "at least" if validator == "minimum" else "at most"
        yield doc.problem(path, f"must be {word} {error.validator_value}, got {error.instance}")
        return
    if validator == "maxLength":
        yield doc.problem(path, f"is longer than {error.validator_value} characters")
        return
    if validator == "minItems":
        yield doc.problem(path, "must not be empty")
        return
    if validator == "minProperties":
        yield doc.problem(path, "must not be empty")
        return
    if validator == "uniqueItems":
        yield doc.problem(path, "has the same item twice")
        return
    yield doc.problem(path, error.message)


def check_schema(doc: Document) -> tuple[list[Problem], set[Path_]]:
    """Every schema problem of the document (one readable problem each) and the paths they concern."""
    fast = _fast_check()
    if fast is not None and fast(doc.data):
        return [], set()  # valid: jsonschema would find nothing (it only runs to explain problems)
    problems: list[Problem] = []
    bad: set[Path_] = set()
    for error in _validator().iter_errors(doc.data):
        path = tuple(error.absolute_path)
        if path not in doc.unresolved:  # an unset variable is reported once, as such
            # jsonschema reports `required` once per missing key, each naming them all: keep one of each
            problems.extend(p for p in _problems(doc, error) if p not in problems)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = _subschema_properties(error)
            bad.update((*path, key) for key in error.instance if key not in allowed)
        else:
            bad.add(path)
    return problems, bad
