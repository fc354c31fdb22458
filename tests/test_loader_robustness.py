"""Hostile and odd inputs: load() raises ValidationError with placed problems, never anything else.

A user must never see a traceback from a topology file, whatever it holds.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from topo.errors import Problem, ValidationError
from topo.loader import load

EXAMPLE = Path(__file__).parent / "fixtures" / "loader" / "example" / "iot.yaml"
HEAD = "version: 1\nvhosts:\n  v:\n"


def problems_of(file: Path) -> list[Problem]:
    try:
        load(file, {"V": "x"}, environ={})
    except ValidationError as exc:
        assert exc.problems, "a ValidationError always carries problems"
        for problem in exc.problems:
            assert problem.file == str(file), problem
            assert problem.message, problem
        return exc.problems
    raise AssertionError("expected a ValidationError")


LAUGHS = "version: 1\nx-a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"x-{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(8)
)  # nine levels of ten: a billion values from 462 bytes

NASTY: dict[str, str | bytes] = {
    "top-level-list": "- a\n- b\n",
    "top-level-scalar": "hello\n",
    "top-level-null": "null\n",
    "vhosts-null": "version: 1\nvhosts: null\n",
    "vhosts-list": "version: 1\nvhosts: [a]\n",
    "vhost-list": "version: 1\nvhosts:\n  v: [1]\n",
    "queues-null": HEAD + "    queues: null\n",
    "queues-list": HEAD + "    queues: [q]\n",
    "queue-is-a-list": HEAD + "    queues:\n      q: [1, 2]\n",
    "queue-is-a-number": HEAD + "    queues:\n      q: 5\n",
    "exchange-null": HEAD + "    exchanges:\n      e: null\n",
    "bindings-string": HEAD + "    queues:\n      q: {bindings: amq.topic}\n",
    "binding-string": HEAD + "    queues:\n      q: {bindings: [amq.topic]}\n",
    "binding-exchange-list": HEAD + "    queues:\n      q: {bindings: [{exchange: []}]}\n",
    "binding-headers-list": HEAD + "    queues:\n      q: {bindings: [{exchange: amq.headers, headers: [1]}]}\n",
    "binding-arguments-list": HEAD + "    queues:\n      q: {bindings: [{exchange: amq.headers, arguments: [1]}]}\n",
    "definition-5": HEAD + "    policies:\n      p: {pattern: x, definition: 5}\n",
    "definition-null": HEAD + "    policies:\n      p: {pattern: x, definition: null}\n",
    "policy-list": HEAD + "    policies:\n      p: [1]\n",
    "pattern-number": HEAD + "    policies:\n      p: {pattern: 5, definition: {max-length: 1}}\n",
    "arguments-list": HEAD + "    queues:\n      q: {arguments: [1]}\n",
    "x-queue-type-list": HEAD + "    queues:\n      q: {arguments: {x-queue-type: [1]}}\n",
    "tags-nested": HEAD + "    tags: [[1], {a: 1}]\n",
    "tags-string": HEAD + "    tags: iot\n",
    "limits-list": HEAD + "    limits: [1]\n",
    "lint-null": "version: 1\nlint: null\nvhosts: {}\n",
    "lint-disable-string": "version: 1\nlint: {disable: T1}\nvhosts: {}\n",
    "retry-null": HEAD + "    queues:\n      q: {retry: null}\n",
    "retry-delays-nested": HEAD + "    queues:\n      q: {retry: {delays: [[1]]}}\n",
    "name-list": "version: 1\nname: [a]\nvhosts: {}\n",
    "version-string": "version: '1'\nvhosts: {}\n",
    "non-string-key-list": "version: 1\nvhosts:\n  ? [a, b]\n  : {}\n",
    "non-string-key-map": HEAD + "    policies:\n      p: {pattern: a, definition: {{a: 1}: 1}}\n",
    "merge-scalar": HEAD + "    queues:\n      q: {<<: 5}\n",
    "merge-list-alias": HEAD + "    queues:\n      a: &l [1]\n      b: {<<: *l}\n",
    "alias-contains-itself": "version: 1\nvhosts: &a\n  v: *a\n",
    "alias-list-contains-itself": "version: 1\nvhosts:\n  v:\n    tags: &t [a, *t]\n",
    "undefined-alias": "version: 1\nvhosts: *nope\n",
    "billion-laughs": LAUGHS,
    "deep-nesting": "version: 1\nvhosts: " + "[" * 3000 + "]" * 3000 + "\n",
    "binary-value": HEAD + "    queues:\n      q: {arguments: {x-blob: !!binary aGVsbG8=}}\n",
    "nan": HEAD + "    queues:\n      q: {arguments: {x-weight: .nan}}\n",
    "float-duration": HEAD + "    queues:\n      q: {message-ttl: 1.5}\n",
    "huge-integer": HEAD + "    queues:\n      q: {max-priority: 99999999999999999999999999999}\n",
    "python-tag": "version: 1\nvhosts: !!python/object/apply:os.system [echo hacked]\n",
    "unknown-tag-scalar": HEAD + "    description: !vault abc\n",
    "tab-indentation": "version: 1\nvhosts:\n\tv: {}\n",
    "unclosed-flow": "version: 1\nvhosts: {v: [\n",
    "unclosed-quote": "version: 1\nname: 'abc\n",
    "control-character": "version: 1\nname: a\x07b\n",
    "nul-byte": "\x00version: 1\n",
    "not-utf8": b"version: 1\nname: caf\xe9\n",
    "binary-file": bytes(range(256)),
    "utf16": "version: 1\nvhosts: {}\n".encode("utf-16"),
    "bad-interpolation": HEAD + "    description: ${nope}\n",
    "unset-variable-everywhere": "version: ${var:NOPE}\nvhosts:\n  ${env:NOPE}:\n    queues:\n      q: ${var:NOPE}\n",
    "interpolated-structure": HEAD + "    queues: ${var:V}\n",
    "empty-name-and-null-body": HEAD + "    queues:\n      '':\n",
    "only-document-markers": "---\n---\n",
}


@pytest.mark.parametrize("name", list(NASTY))
def test_nasty_input_gives_problems_never_a_crash(tmp_path: Path, name: str) -> None:
    file = tmp_path / "t.yaml"
    content = NASTY[name]
    if isinstance(content, bytes):
        file.write_bytes(content)
    else:
        file.write_text(content, encoding="utf-8")
    problems_of(file)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("top-level-list", "expected a mapping, got a list"),
        ("vhosts-null", "expected a mapping, got nothing (null)"),
        ("queue-is-a-list", "expected a mapping, got a list"),
        ("bindings-string", "expected a list, got the string 'amq.topic'"),
        ("definition-5", "expected a mapping, got the number 5"),
        ("non-string-key-list", "a mapping key must be a plain string, not a list or a mapping"),
        ("merge-scalar", "cannot merge here: "),
        ("alias-contains-itself", "an alias refers to a collection that contains it"),
        ("deep-nesting", "the document is nested too deeply to read"),
        ("binary-value", "a binary value cannot be sent to RabbitMQ"),
        ("nan", ".nan is not a number RabbitMQ accepts"),
        ("not-utf8", "not a UTF-8 text file (byte 0xe9 at offset 20)"),
        ("nul-byte", "invalid YAML: character U+0000 is not allowed"),
        ("undefined-alias", "invalid YAML: found undefined alias"),
        ("billion-laughs", "its aliases expand to more than 100,"),
        ("only-document-markers", "the file is empty"),
    ],
)
def test_nasty_input_messages(tmp_path: Path, name: str, message: str) -> None:
    file = tmp_path / "t.yaml"
    content = NASTY[name]
    if isinstance(content, bytes):
        file.write_bytes(content)
    else:
        file.write_text(content, encoding="utf-8")
    (problem,) = problems_of(file)
    assert problem.message.startswith(message), problem.message
    assert "\n" not in problem.message  # one line each: no YAML library dumps with "<unicode string>"


def test_yaml_errors_have_a_line(tmp_path: Path) -> None:
    for name in ("tab-indentation", "unclosed-flow", "unclosed-quote", "control-character", "nul-byte"):
        file = tmp_path / f"{name}.yaml"
        file.write_text(str(NASTY[name]), encoding="utf-8")
        (problem,) = problems_of(file)
        assert problem.line is not None and problem.col is not None, (name, problem)
        assert "<unicode string>" not in problem.message


def test_an_unquoted_date_is_text(tmp_path: Path) -> None:
    file = tmp_path / "t.yaml"
    file.write_text(
        HEAD + "    queues:\n      q: {bindings: [{exchange: amq.headers, headers: {since: 2024-01-01}}]}\n"
    )
    (binding,) = load(file).vhosts["v"].bindings.values()
    assert binding.arguments == {"x-match": "all", "since": "2024-01-01"}


def test_python_tags_are_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    file = tmp_path / "t.yaml"
    file.write_text(f"version: 1\nvhosts: !!python/object/apply:os.system ['touch {marker}']\n", encoding="utf-8")
    problems_of(file)
    assert not marker.exists()


# -- mutations of the format's example: every value replaced by something wrong --------------------------
# The mutated documents are written as JSON, which is YAML too, and much faster to write than yaml.dump.

REPLACEMENTS: list[Any] = [None, [1, [2]], "", 5, True, {"a": [1]}, "${var:NOPE}"]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out += _paths(child, (*path, index))
    return out


def _get(document: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        document = document[part]
    return document


def _example() -> Any:
    return yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))


def _try_load(file: Path, name: str, document: Any, failures: list[str]) -> None:
    file.write_text(json.dumps(document), encoding="utf-8")
    try:
        load(file, environ={})
    except ValidationError as exc:
        unplaced = [p for p in exc.problems if p.file is None or p.line is None or p.col is None]
        if unplaced:
            failures.append(f"{name}: problems without a place: {unplaced}")
    except Exception as exc:  # pragma: no cover - this is the bug the test looks for
        failures.append(f"{name}: {type(exc).__name__}: {exc}")


def test_every_value_of_the_example_replaced_by_something_wrong(tmp_path: Path) -> None:
    # each mutation either loads or gives placed problems; none raises anything else
    base = _example()
    failures: list[str] = []
    for path in _paths(base):
        for value in REPLACEMENTS:
            document = value if not path else copy.deepcopy(base)
            if path:
                _get(document, path[:-1])[path[-1]] = value
            _try_load(tmp_path / "t.yaml", f"{'.'.join(map(str, path))}={value!r}", document, failures)
    assert not failures, "\n".join(failures[:20])


def test_odd_values_under_structural_keys_everywhere(tmp_path: Path) -> None:
    base = _example()
    # one mapping of each kind: the document, a vhost, an exchange, a queue, a binding, a policy, a definition
    mappings = [
        (),
        ("vhosts", "iot"),
        ("vhosts", "iot", "exchanges", "uploads"),
        ("vhosts", "iot", "queues", "analytics"),
        ("vhosts", "iot", "queues", "pdf-jobs", "bindings", 0),
        ("vhosts", "iot", "policies", "tmp-limits"),
        ("vhosts", "iot", "operator-policies", "cap-length", "definition"),
    ]
    keys = ["type", "arguments", "bindings", "retry", "lint", "definition", "headers", "tags", "exchange", "match"]
    failures: list[str] = []
    for path in mappings:
        for key in keys:
            for value in (None, [[1]], {"x-queue-type": [1], "alternate-exchange": 5, "x-match": {}}, "s"):
                document = copy.deepcopy(base)
                _get(document, path)[key] = value
                _try_load(tmp_path / "t.yaml", f"{'.'.join(map(str, path))}.{key}={value!r}", document, failures)
    assert not failures, "\n".join(failures[:20])


def test_merge_keys_on_every_queue_stay_within_the_alias_budget(tmp_path: Path) -> None:
    # The common, legitimate use of aliases: one block of defaults merged into many queues.
    queues = "".join(f"      q{i}: {{<<: *defaults, max-length: {i + 1}}}\n" for i in range(1, 3000))
    text = (
        "version: 1\nvhosts:\n  v:\n    exchanges:\n      dlx: {type: fanout}\n    queues:\n"
        "      q0: &defaults\n        durable: true\n        message-ttl: 60s\n        dead-letter-exchange: dlx\n"
        "        arguments: {x-overflow: reject-publish, x-queue-mode: lazy}\n" + queues
    )
    file = tmp_path / "t.yaml"
    file.write_text(text, encoding="utf-8")
    topology = load(file, {}, environ={})
    assert len(topology.vhosts["v"].queues) == 3000
    assert topology.vhosts["v"].queues["q7"].arguments["x-overflow"] == "reject-publish"


# -- size limit ------------------------------------------------------------------------------------------


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    from topo.loader import MAX_FILE_SIZE

    big = tmp_path / "big.yaml"
    with big.open("wb") as f:  # sparse: instant, takes no disk space
        f.truncate(MAX_FILE_SIZE + 1)
    small = tmp_path / "small.yaml"
    small.write_text(HEAD + "    queues:\n      q: {}\n", encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        load(tmp_path, environ={})
    (problem,) = info.value.problems  # the other file is read and fine
    assert problem.file == str(big)
    assert problem.message == (
        f"the file is 10.0 MiB ({MAX_FILE_SIZE + 1:,} bytes), over topo's limit of 10 MiB for one topology file"
    )
    assert problem.hint and "split it" in problem.hint and "several files" in problem.hint


def test_the_limit_is_a_parameter_and_holds_while_reading(tmp_path: Path) -> None:
    file = tmp_path / "t.yaml"
    file.write_text(HEAD + "    queues:\n      q: {}\n", encoding="utf-8")
    size = file.stat().st_size
    assert load(file, environ={}, max_file_size=size).vhosts["v"].queues
    with pytest.raises(ValidationError, match=f"over topo's limit of {size - 1} bytes for one topology file"):
        load(file, environ={}, max_file_size=size - 1)


def test_a_file_over_the_limit_through_the_cli(tmp_path: Path) -> None:
    import subprocess
    import sys

    from topo.loader import MAX_FILE_SIZE

    big = tmp_path / "big.yaml"
    with big.open("wb") as f:
        f.truncate(MAX_FILE_SIZE * 5)  # the 50 MiB of the report
    done = subprocess.run(
        [sys.executable, "-c", "from topo.cli import main; main()", "validate", str(big)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert f"{big}: the file is 50.0 MiB" in done.stderr
    assert "Traceback" not in done.stderr
