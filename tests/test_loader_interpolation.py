"""Interpolation: ${env:X}, ${env:X:-default}, ${var:X}, $${ and how results are typed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from topo.errors import Problem, ValidationError
from topo.loader import load
from topo.model import Topology

HEAD = "version: 1\nvhosts:\n  v:\n"


def load_text(
    tmp_path: Path,
    body: str,
    variables: dict[str, str] | None = None,
    environ: dict[str, str] | None = None,
) -> Topology:
    file = tmp_path / "t.yaml"
    file.write_text(HEAD + body, encoding="utf-8")
    return load(file, variables, environ=environ or {})


def problems_of(tmp_path: Path, body: str, **kwargs: Any) -> list[Problem]:
    with pytest.raises(ValidationError) as info:
        load_text(tmp_path, body, **kwargs)
    return info.value.problems


def queue_args(topology: Topology, name: str = "q") -> dict[str, Any]:
    return dict(topology.vhosts["v"].queues[name].arguments)


def test_env(tmp_path: Path) -> None:
    t = load_text(
        tmp_path, "    queues:\n      q:\n        dead-letter-exchange: ${env:DLX}\n", environ={"DLX": "amq.direct"}
    )
    assert queue_args(t) == {"x-dead-letter-exchange": "amq.direct"}


def test_env_default_when_unset(tmp_path: Path) -> None:
    t = load_text(tmp_path, "    queues:\n      q:\n        max-length: ${env:LEN:-500}\n")
    assert queue_args(t) == {"x-max-length": 500}


def test_env_default_ignored_when_set(tmp_path: Path) -> None:
    t = load_text(tmp_path, "    queues:\n      q:\n        max-length: ${env:LEN:-500}\n", environ={"LEN": "7"})
    assert queue_args(t) == {"x-max-length": 7}


def test_env_set_to_empty_is_set(tmp_path: Path) -> None:
    # like the shell's ${X-default}: an empty value is a value
    t = load_text(tmp_path, "    description: '${env:DESC:-none}'\n", environ={"DESC": ""})
    assert t.vhosts["v"].description == ""


def test_empty_default(tmp_path: Path) -> None:
    t = load_text(tmp_path, "    description: 'a${env:DESC:-}b'\n")
    assert t.vhosts["v"].description == "ab"


def test_var(tmp_path: Path) -> None:
    t = load_text(tmp_path, "    queues:\n      q:\n        message-ttl: ${var:TTL}\n", variables={"TTL": "5m"})
    assert queue_args(t) == {"x-message-ttl": 300_000}


def test_var_is_not_env(tmp_path: Path) -> None:
    found = problems_of(tmp_path, "    description: ${var:X}\n", environ={"X": "from env"})
    assert [p.message for p in found] == ["variable X is not set"]


def test_env_is_not_var(tmp_path: Path) -> None:
    found = problems_of(tmp_path, "    description: ${env:X}\n", variables={"X": "from var"})
    assert [p.message for p in found] == ["environment variable X is not set"]


def test_environ_defaults_to_the_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOPO_TEST_DESCRIPTION", "from the environment")
    file = tmp_path / "t.yaml"
    file.write_text(HEAD + "    description: ${env:TOPO_TEST_DESCRIPTION}\n", encoding="utf-8")
    assert load(file).vhosts["v"].description == "from the environment"


def test_several_in_one_scalar_and_inside_text(tmp_path: Path) -> None:
    t = load_text(
        tmp_path,
        "    queues:\n      ${var:APP}.${env:STAGE}.jobs: {}\n    description: 'Jobs of ${var:APP} (${env:STAGE})'\n",
        variables={"APP": "billing"},
        environ={"STAGE": "prod"},
    )
    assert list(t.vhosts["v"].queues) == ["billing.prod.jobs"]
    assert t.vhosts["v"].description == "Jobs of billing (prod)"


def test_in_a_vhost_name_key(tmp_path: Path) -> None:
    file = tmp_path / "t.yaml"
    file.write_text("version: 1\nvhosts:\n  ${var:VHOST}:\n    queues:\n      q: {}\n", encoding="utf-8")
    assert list(load(file, {"VHOST": "tenant-1"}).vhosts) == ["tenant-1"]


def test_dollar_dollar_is_a_literal(tmp_path: Path) -> None:
    t = load_text(tmp_path, "    description: 'costs $${env:HOME} and $5'\n")
    assert t.vhosts["v"].description == "costs ${env:HOME} and $5"


def test_a_lone_dollar_is_plain_text(tmp_path: Path) -> None:
    t = load_text(tmp_path, "    description: $HOME and $ and {x}\n")
    assert t.vhosts["v"].description == "$HOME and $ and {x}"


def test_the_value_is_not_interpolated_again(tmp_path: Path) -> None:
    t = load_text(tmp_path, "    description: ${var:A}\n", variables={"A": "${env:SECRET}"})
    assert t.vhosts["v"].description == "${env:SECRET}"


# -- typing of the result ----------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [("100", 100), ("0", 0), ("0x10", 16)])
def test_plain_scalars_are_retyped(tmp_path: Path, value: str, expected: int) -> None:
    # `max-length: ${var:N}` is an integer, as if the file said `max-length: 100`
    t = load_text(tmp_path, "    queues:\n      q:\n        max-length: ${var:N}\n", variables={"N": value})
    length = queue_args(t)["x-max-length"]
    assert length == expected and type(length) is int


def test_a_retyped_unit_string(tmp_path: Path) -> None:
    t = load_text(tmp_path, "    queues:\n      q:\n        message-ttl: ${var:TTL}\n", variables={"TTL": "1h"})
    assert queue_args(t) == {"x-message-ttl": 3_600_000}


def test_plain_scalars_retyped_to_booleans(tmp_path: Path) -> None:
    t = load_text(
        tmp_path,
        "    queues:\n      q:\n        durable: ${var:D}\n        single-active-consumer: ${var:S}\n",
        variables={"D": "false", "S": "true"},
    )
    queue = t.vhosts["v"].queues["q"]
    assert queue.durable is False
    assert queue.arguments["x-single-active-consumer"] is True


def test_quoted_scalars_stay_strings(tmp_path: Path) -> None:
    found = problems_of(tmp_path, '    queues:\n      q:\n        max-length: "${var:N}"\n', variables={"N": "100"})
    (problem,) = found
    assert problem.path == "vhosts.v.queues.q.max-length"
    assert problem.message == "expected an integer, got the string '100'"
    assert problem.hint and "without quotes" in problem.hint


def test_quoted_string_that_looks_like_a_number(tmp_path: Path) -> None:
    t = load_text(tmp_path, "    description: '${var:N}'\n", variables={"N": "42"})
    assert t.vhosts["v"].description == "42"


def test_a_retyped_value_is_a_scalar_never_a_structure(tmp_path: Path) -> None:
    # interpolation replaces text: `[a, b]` from a variable is the string "[a, b]", never a list
    t = load_text(tmp_path, "    description: ${var:X}\n", variables={"X": "[a, b]"})
    assert t.vhosts["v"].description == "[a, b]"


# -- problems ----------------------------------------------------------------------------------------


def test_an_unset_variable_is_one_problem_naming_it_at_its_place(tmp_path: Path) -> None:
    found = problems_of(tmp_path, "    queues:\n      q:\n        max-length: ${var:MAXLEN}\n")
    (problem,) = found  # the empty result is not reported again as "expected an integer"
    assert problem.message == "variable MAXLEN is not set"
    assert problem.hint == "pass --var MAXLEN=VALUE"
    assert (problem.file, problem.line, problem.col) == (str(tmp_path / "t.yaml"), 6, 21)
    assert problem.path == "vhosts.v.queues.q.max-length"


def test_an_unset_env_variable_says_how_to_give_a_default(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, "    description: ${env:TOPO_NOT_SET}\n")
    assert problem.message == "environment variable TOPO_NOT_SET is not set"
    assert problem.hint and "${env:TOPO_NOT_SET:-default}" in problem.hint
    assert (problem.line, problem.col, problem.path) == (4, 18, "vhosts.v.description")


def test_an_unset_variable_in_a_key(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, "    queues:\n      jobs-${var:TEAM}: {}\n")
    assert problem.message == "variable TEAM is not set"
    assert (problem.line, problem.col) == (5, 7)  # the key itself


def test_every_unset_variable_is_reported(tmp_path: Path) -> None:
    found = problems_of(
        tmp_path,
        "    description: ${var:A} ${var:B}\n    queues:\n      q: {dead-letter-exchange: '${env:C}'}\n",
    )
    assert [p.message for p in found] == [
        "variable A is not set",
        "variable B is not set",
        "environment variable C is not set",
    ]


@pytest.mark.parametrize("text", ["${foo}", "${env:}", "${ENV:X}", "${var:1X}", "${env:X-y}", "${}"])
def test_a_malformed_interpolation(tmp_path: Path, text: str) -> None:
    (problem,) = problems_of(tmp_path, f"    description: '{text}'\n")
    assert problem.message == f"cannot interpolate {text!r}"
    assert problem.hint and "${env:NAME:-default}" in problem.hint and "$${" in problem.hint
    assert problem.line == 4


def test_interpolation_inside_flow_style_needs_block_style_or_quotes(tmp_path: Path) -> None:
    # `{max-length: ${var:N}}`: the `{`/`}` of ${...} are flow indicators, so YAML itself fails
    (problem,) = problems_of(tmp_path, "    queues:\n      q: {max-length: ${var:N}}\n", variables={"N": "1"})
    assert problem.message.startswith("invalid YAML")
    assert problem.line == 5
    assert problem.hint and "block style" in problem.hint


# -- values that are not UTF-8 -----------------------------------------------------------------------
# An environment variable (or a --var from the command line) holding bytes that are not UTF-8 reaches
# Python as text with surrogate escapes ("a\udcff" for b"a\xff"), which no broker request can carry.

NOT_UTF8 = "a\udcff"  # what os.environ holds for the bytes b"a\xff"


def test_a_non_utf8_env_value_in_a_name_is_a_problem_at_its_place(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, "    queues:\n      'q${env:BAD}': {}\n", environ={"BAD": NOT_UTF8})
    assert problem.message == "environment variable BAD is not UTF-8 text (it holds the byte 0xff)"
    assert problem.hint and "UTF-8" in problem.hint
    assert (problem.file, problem.line, problem.col) == (str(tmp_path / "t.yaml"), 5, 7)
    assert problem.path == 'vhosts.v.queues["q${env:BAD}"]'


@pytest.mark.parametrize(
    "body",
    [
        "    queues:\n      q:\n        arguments: {x-note: '${env:BAD}'}\n",
        "    queues:\n      q:\n        dead-letter-routing-key: '${env:BAD}'\n",
        "    policies:\n      p: {pattern: '^a${env:BAD}', definition: {max-length: 1}}\n",
        "    description: ${env:BAD}\n",
        "    exchanges:\n      x: {type: topic}\n    queues:\n"
        "      q:\n        bindings: [{exchange: x, routing-key: '${env:BAD}'}]\n",
        "    exchanges:\n      ${env:BAD}: {type: topic}\n",
        "    tags: ['${env:BAD}']\n",
    ],
    ids=["argument", "dead-letter-routing-key", "policy-pattern", "description", "routing-key", "exchange", "tag"],
)
def test_a_non_utf8_env_value_anywhere_is_one_problem(tmp_path: Path, body: str) -> None:
    (problem,) = problems_of(tmp_path, body, environ={"BAD": NOT_UTF8})
    assert problem.message.startswith("environment variable BAD is not UTF-8 text"), problem.render()
    assert problem.line is not None and problem.path


def test_a_non_utf8_var_is_a_problem_too(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, "    description: ${var:D}\n", variables={"D": "caf\udce9"})
    assert problem.message == "variable D is not UTF-8 text (it holds the byte 0xe9)"
    assert (problem.line, problem.path) == (4, "vhosts.v.description")


def test_a_lone_surrogate_that_is_not_an_escaped_byte(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, "    description: ${var:D}\n", variables={"D": "x\ud800"})
    assert problem.message == "variable D is not UTF-8 text (it holds U+D800, a lone surrogate)"


def test_non_utf8_from_the_real_environment_through_the_cli(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    file = tmp_path / "t.yaml"
    file.write_text(HEAD + "    queues:\n      'q${env:TOPO_BAD}':\n        arguments: {x-n: '${env:TOPO_BAD}'}\n")
    env = {**os.environ, "TOPO_BAD": "a\udcff"}  # os.environ encodes it back to the bytes b"a\xff"
    nowhere = ["--url", "http://guest:guest@127.0.0.1:9"]  # never reached: the files are read first
    for args in (["validate"], ["plan", *nowhere], ["apply", "--yes", *nowhere]):
        done = subprocess.run(
            [sys.executable, "-c", "from topo.cli import main; main()", *args, str(file)],
            env=env,
            capture_output=True,
            timeout=60,
        )
        err = done.stderr.decode()
        assert done.returncode == 1, err
        assert "Traceback" not in err
        assert f"{file}:5:7:" in err and "environment variable TOPO_BAD is not UTF-8 text" in err
        assert f"{file}:6:" in err  # the argument too
