"""The JSON Schema: generated from the argument table, committed, shipped, valid 2020-12."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from topo.arguments import OPERATOR_POLICY_KEYS, POLICY_KEYS, QUEUE_ARGUMENTS
from topo.schemas import SCHEMA_ID, load_schema
from topo.schemas.generate import build_schema, main, schema_text

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "topo" / "schemas" / "topology.schema.json"
TOP_LEVEL = ROOT / "schemas" / "topology.schema.json"
EXAMPLE = Path(__file__).parent / "fixtures" / "loader" / "example" / "iot.yaml"


@pytest.mark.parametrize("copy", [COMMITTED, TOP_LEVEL], ids=["package", "top-level"])
def test_each_json_copy_is_the_generator_output_byte_for_byte(copy: Path) -> None:
    # the generator (topo/schemas/generate.py) is the one source of truth; `make schema` rewrites the copies
    assert copy.read_text(encoding="utf-8") == schema_text(), f"{copy.relative_to(ROOT)} is stale: run `make schema`"
    assert json.loads(copy.read_text(encoding="utf-8")) == build_schema()


def test_the_generator_prints_the_schema_text(capsys: pytest.CaptureFixture[str]) -> None:
    main()
    assert capsys.readouterr().out == schema_text()


def test_make_schema_writes_the_package_copy_the_top_level_one_links_to() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "-m topo.schemas.generate > topo/schemas/topology.schema.json" in makefile
    # editors find it at schemas/topology.schema.json (yaml-language-server comment): a link, not a second copy
    assert TOP_LEVEL.is_symlink() and TOP_LEVEL.resolve() == COMMITTED.resolve()


def test_schema_is_valid_draft_2020_12() -> None:
    schema = build_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == SCHEMA_ID
    Draft202012Validator.check_schema(schema)


def test_package_ships_the_schema() -> None:
    text = resources.files("topo").joinpath("schemas/topology.schema.json").read_text(encoding="utf-8")
    assert json.loads(text) == build_schema()
    assert load_schema() == build_schema()


def test_package_data_declares_the_schema() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"schemas/*.json"' in pyproject


def test_every_queue_argument_has_a_key() -> None:
    queue = build_schema()["$defs"]["queue"]["properties"]
    assert set(QUEUE_ARGUMENTS) <= set(queue)


def test_policy_keys_and_operator_policy_keys() -> None:
    defs = build_schema()["$defs"]
    policy = defs["policy"]["properties"]["definition"]["properties"]
    operator = defs["operator-policy"]["properties"]["definition"]["properties"]
    assert set(policy) == set(POLICY_KEYS)
    assert set(operator) == set(OPERATOR_POLICY_KEYS)
    assert set(operator) <= set(policy)


def test_units_are_typed_in_the_schema() -> None:
    queue = build_schema()["$defs"]["queue"]["properties"]
    assert queue["message-ttl"]["$ref"] == "#/$defs/duration"
    assert queue["max-length-bytes"]["$ref"] == "#/$defs/size"
    assert queue["max-length"]["type"] == "integer"
    assert queue["max-priority"] == {**queue["max-priority"], "minimum": 1, "maximum": 255}
    assert "pattern" in queue["max-age"]


def test_the_format_example_is_schema_valid() -> None:
    validator = Draft202012Validator(build_schema())
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert list(validator.iter_errors(data)) == []


def test_the_example_points_editors_at_the_schema() -> None:
    first = EXAMPLE.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schemas/topology.schema.json"


@pytest.mark.parametrize(
    "document",
    [
        {"vhosts": {}},  # `vhosts:` may be left out (a file of users only), `version:` not
        {"version": 2, "vhosts": {}},
        {"version": 1, "users": {"u": {"password": 1}}},
        {"version": 1, "users": {"u": {"permissions": {"v": {"read": ".*"}}}}},
        {"version": 1, "users": {"u": {"tags": "administrator"}}},
        {"version": 1, "global-parameters": {"cluster_name": 1}},
        {"version": 1, "vhosts": {"v": {"default-queue-type": "lazy"}}},
        {"version": 1, "vhosts": {"v": {"queues": {"q": {"message-ttl": "5x"}}}}},
        {"version": 1, "vhosts": {"v": {"queues": {"q": {"max-length": "10"}}}}},
        {"version": 1, "vhosts": {"v": {"queues": {"q": {"type": "lazy"}}}}},
        {"version": 1, "vhosts": {"v": {"queues": {"q": {"exclusive": True}}}}},
        {"version": 1, "vhosts": {"v": {"exchanges": {"e": {}}}}},
        {"version": 1, "vhosts": {"v": {"exchanges": {"e": {"type": "topc"}}}}},
        {"version": 1, "vhosts": {"v": {"exchanges": {"e": {"type": "x-"}}}}},
        {"version": 1, "vhosts": {"v": {"policies": {"p": {"pattern": ".*", "definition": {}}}}}},
        {"version": 1, "vhosts": {"v": {"operator-policies": {"p": {"pattern": ".", "definition": {"ha-mode": "x"}}}}}},
        {"version": 1, "vhosts": {"v": {"queues": {"q": {"bindings": [{"routing-key": "a"}]}}}}},
    ],
)
def test_schema_rejects(document: object) -> None:
    assert list(Draft202012Validator(build_schema()).iter_errors(document))
