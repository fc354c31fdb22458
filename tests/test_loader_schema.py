"""The loader's two schema checks agree: the compiled yes/no check never calls valid what jsonschema rejects.

``topo.loader.schema_compiled`` answers "valid?" in a few µs per queue, so that jsonschema
(``topo.loader.schema_messages``, which alone writes the messages users read) only walks documents with
problems. It may be stricter than JSON Schema in a few documented corners (then jsonschema runs for
nothing), never looser (then a problem would go unreported). Hypothesis generates the documents: from
the schema itself (valid by construction: both must accept them), and near-valid ones (a valid document,
an example or a fixture with one to three things changed: a wrong value, a key removed, a key added).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from topo.loader.schema_compiled import Check, compile_schema
from topo.loader.schema_messages import _validator
from topo.schemas import load_schema

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = load_schema()


def _fast() -> Check:
    fast = compile_schema(SCHEMA)
    assert fast is not None, "the compiled check no longer understands the schema: loading got slow again"
    return fast


FAST = _fast()


def jsonschema_valid(document: Any) -> bool:
    return next(iter(_validator().iter_errors(document)), None) is None


# -- documents generated from the schema ------------------------------------------------------------------

_NAMES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=6)
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.text(max_size=6))


def _from_schema(schema: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values valid against ``schema`` (a subschema of the topology schema, ``$ref`` into its ``$defs``).

    Kept within the conventions the compiled check holds to (integers are ``int``, ``uniqueItems`` lists
    hold strings), where it may be stricter than JSON Schema.
    """
    if "$ref" in schema:
        target = SCHEMA["$defs"][schema["$ref"].removeprefix("#/$defs/")]
        return st.deferred(lambda: _from_schema(target, depth + 1))
    if "anyOf" in schema:
        return st.one_of([_from_schema(option, depth) for option in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    kinds = schema.get("type", "object")
    if isinstance(kinds, list):
        return st.one_of([_from_schema({**schema, "type": kind}, depth) for kind in kinds])
    if kinds == "object":
        return _object(schema, depth)
    if kinds == "array":
        items = _from_schema(schema["items"], depth + 1) if "items" in schema else st.integers(0, 5)
        unique = bool(schema.get("uniqueItems"))
        return st.lists(items, min_size=schema.get("minItems", 0), max_size=3, unique=unique)
    if kinds == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True)
        return st.text(max_size=min(schema.get("maxLength", 12), 12))
    if kinds in ("integer", "number"):
        ints = st.integers(schema.get("minimum", -(10**6)), schema.get("maximum", 10**9))
        if kinds == "number":
            low, high = schema.get("minimum"), schema.get("maximum")
            return st.one_of(ints, st.floats(low, high, allow_nan=False, allow_infinity=False))
        return ints
    if kinds == "boolean":
        return st.booleans()
    raise AssertionError(f"a schema keyword this generator does not know: {schema}")


def _object(schema: dict[str, Any], depth: int) -> st.SearchStrategy[dict[str, Any]]:
    properties: dict[str, Any] = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    required = set(schema.get("required", ()))
    if not properties:
        if not isinstance(extra, dict):  # arguments, headers: any small table
            return st.dictionaries(_NAMES, _SCALARS, min_size=schema.get("minProperties", 0), max_size=2)
        # vhosts, queues, exchanges, policies: at least one, so that documents hold something to check
        return st.dictionaries(_NAMES, _from_schema(extra, depth + 1), min_size=1, max_size=3)
    result = st.fixed_dictionaries(
        {key: _from_schema(sub, depth + 1) for key, sub in properties.items() if key in required},
        optional={key: _from_schema(sub, depth + 1) for key, sub in properties.items() if key not in required},
    )
    least = schema.get("minProperties", 0)
    return result.filter(lambda d: len(d) >= least) if least else result


VALID_DOCUMENTS = _from_schema(SCHEMA)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(VALID_DOCUMENTS)
def test_both_accept_what_the_schema_describes(document: dict[str, Any]) -> None:
    assert jsonschema_valid(document), f"the generator made an invalid document: {document!r}"
    assert FAST(document), f"the compiled check rejects a valid document: {document!r}"


# -- near-valid documents: one to three things changed ----------------------------------------------------

_WRONG: list[Any] = [
    None, True, False, 0, 1, -1, 1.0, 2.5, "", "x", "5m", "5 m", "10MiB", "10mb", "1h", "7D", "abc", "classic",
    "quorum", "lazy", "topic", "topc", "all", "queues", "reject-publish", 255, 256, 65536, 10**9, [], ["a"],
    ["a", "a"], [1], [1, 1], ["5s"], "n" * 300, {}, {"a": 1}, {"exchange": "x"}, {"disable": ["A1", "A1"]},
    {"warning": "2"}, {"warning": 1, "critical": 2}, "50%", "50 %", "x-", "x-consistent-hash",
]  # fmt: skip
_KEYS = [
    "x-foo", "bogus", "type", "durable", "bindings", "arguments", "match", "headers", "definition", "pattern",
    "retry", "delays", "lint", "disable", "prefetch", "max-age", "message-ttl", "mesage-ttl", "limits",
    "max-queues", "monitor", "keep-bindings", "exchange", "routing-key", "x-message-ttl", "exclusive",
]  # fmt: skip


def _seed_documents() -> list[Any]:
    """Every example and fixture document that parses to a mapping (the broken fixtures too)."""
    docs = []
    for file in sorted([*ROOT.glob("topologies/**/*.y*ml"), *ROOT.glob("tests/fixtures/**/*.y*ml")]):
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            continue
        if isinstance(data, dict):
            docs.append(data)
    return docs


SEEDS = _seed_documents()


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*path, index))
    return out


@st.composite
def near_valid(draw: st.DrawFn) -> Any:
    document = copy.deepcopy(draw(st.one_of(VALID_DOCUMENTS, st.sampled_from(SEEDS))))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(document)))
        if not path:
            continue
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        how = draw(st.sampled_from(["replace", "delete", "add", "append"]))
        if how == "replace" or not isinstance(parent, dict | list):
            parent[path[-1]] = copy.deepcopy(draw(st.sampled_from(_WRONG)))
        elif how == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        elif how == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(_KEYS))] = copy.deepcopy(draw(st.sampled_from(_WRONG)))
        elif isinstance(parent, list):
            parent.append(copy.deepcopy(draw(st.sampled_from(_WRONG))))
        else:
            parent[path[-1]] = copy.deepcopy(draw(st.sampled_from(_WRONG)))
    return document


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(near_valid())
def test_the_compiled_check_never_accepts_what_jsonschema_rejects(document: Any) -> None:
    if FAST(document):
        assert jsonschema_valid(document), f"the compiled check accepts a document jsonschema rejects: {document!r}"


def test_the_seeds_hold_valid_and_invalid_documents() -> None:
    # the near-valid documents start from both: examples that load, fixtures of mistakes
    verdicts = {jsonschema_valid(doc) for doc in SEEDS}
    assert verdicts == {True, False}
    assert all(FAST(doc) for doc in SEEDS if jsonschema_valid(doc))


# -- one violation of each keyword the schema uses ---------------------------------------------------------


def _base() -> dict[str, Any]:
    return {
        "version": 1,
        "vhosts": {
            "v": {
                "exchanges": {"e": {"type": "topic"}},
                "queues": {"q": {"message-ttl": "5m", "bindings": [{"exchange": "e", "routing-key": "k"}]}},
                "operator-policies": {"o": {"pattern": ".*", "definition": {"max-length": 10}}},
            }
        },
    }


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, last = path.split("/")
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return doc


_DELETE = object()
_Q = "vhosts/v/queues/q"


@pytest.mark.parametrize(
    ("keyword", "path", "value"),
    [
        ("uniqueItems", "lint", {"disable": ["A1", "A1"]}),
        ("maxLength", "vhosts/v/exchanges/e/alternate-exchange", "n" * 256),
        ("enum", "vhosts/v/exchanges/e/type", "nope"),
        ("minimum", f"{_Q}/max-length", -1),
        ("maximum", f"{_Q}/max-priority", 256),
        ("required", f"{_Q}/bindings/0/exchange", _DELETE),
        ("pattern", f"{_Q}/message-ttl", "5 minutes"),
        ("anyOf", f"{_Q}/message-ttl", -5),
        ("additionalProperties", f"{_Q}/x-message-ttl", 1000),
        ("const", "version", 2),
        ("type", f"{_Q}/durable", "yes"),
        ("minItems", f"{_Q}/retry", {"delays": []}),
        ("minProperties", "vhosts/v/operator-policies/o/definition", {}),
    ],
)
def test_the_compiled_check_rejects_each_keyword(keyword: str, path: str, value: Any) -> None:
    assert FAST(_base())
    doc = _set(_base(), path, value)
    assert not jsonschema_valid(doc), "not a violation to begin with"
    assert not FAST(doc), f"{keyword}: the compiled check accepts {path} = {value!r}"
