"""A document nested too deeply gets topo's own problem, at its place, whatever the YAML library does.

PyYAML 6.0.4's libyaml stops at 1,000 levels with its own "exceeded maximum nesting depth"; 6.0.1-6.0.3
compose any depth (and crash the interpreter far enough down); PyYAML without libyaml runs out of Python
recursion. topo counts the depth itself, so the message and the place are the same under all of them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from topo.errors import Problem, ValidationError
from topo.loader import load, source
from topo.loader.source import MAX_DEPTH

MESSAGE = f"the document is nested too deeply to read: more than {MAX_DEPTH} levels"


def problems_of(tmp_path: Path, text: str) -> list[Problem]:
    file = tmp_path / "t.yaml"
    file.write_text(text, encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        load(file, environ={})
    return info.value.problems


def flow(levels: int) -> str:
    """``vhosts:`` holding ``levels`` flow sequences inside each other; the root mapping is level 1."""
    return "version: 1\nvhosts: " + "[" * (levels - 1) + "]" * (levels - 1) + "\n"


# The first `[` is at column 9 of line 2 and is level 2: level MAX_DEPTH + 1 is MAX_DEPTH - 1 further on.
TOO_DEEP_AT = (2, 9 + MAX_DEPTH - 1)


@pytest.mark.parametrize(
    "levels",
    [
        MAX_DEPTH + 1,  # composes everywhere: topo's own limit
        600,  # past pure-Python PyYAML's recursion
        1_001,  # past libyaml 0.2.6's limit (PyYAML 6.0.4)
        3_000,
        200_000,  # PyYAML 6.0.1-6.0.3 with libyaml crash here (segmentation fault) when they compose it
    ],
)
@pytest.mark.parametrize("loader", ["libyaml", "pure-python"])
def test_too_deep_flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, levels: int, loader: str) -> None:
    if loader == "pure-python":
        monkeypatch.setattr(source, "_Loader", yaml.SafeLoader)
    (problem,) = problems_of(tmp_path, flow(levels))
    assert problem.message.startswith(MESSAGE), problem.message
    assert (problem.line, problem.col) == TOO_DEEP_AT
    assert problem.hint and f"topo reads at most {MAX_DEPTH} levels" in problem.hint


@pytest.mark.parametrize("loader", ["libyaml", "pure-python"])
def test_too_deep_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loader: str) -> None:
    if loader == "pure-python":
        monkeypatch.setattr(source, "_Loader", yaml.SafeLoader)
    # `- - - x`: block sequences inside each other on one line, level 2 at column 3 of line 3
    text = "version: 1\nvhosts:\n  v:\n    tags:\n      " + "- " * 1_500 + "x\n"
    (problem,) = problems_of(tmp_path, text)
    assert problem.message.startswith(MESSAGE), problem.message
    # root, vhosts, v: levels 1-3; the outer `-` at column 7 is level 4
    assert (problem.line, problem.col) == (5, 7 + 2 * (MAX_DEPTH - 3))


def test_too_deep_through_an_alias(tmp_path: Path) -> None:
    """Each anchor is shallow; the aliases stack them past the limit when the values are built."""
    half = MAX_DEPTH // 2 + 1
    text = f"x-a: &a {'[' * half}1{']' * half}\nx-b: &b {'[' * half}*a{']' * half}\nversion: 1\nvhosts: {{}}\n"
    (problem,) = problems_of(tmp_path, text)
    assert problem.message.startswith(MESSAGE), problem.message
    assert problem.line is not None


def test_at_the_limit_is_read(tmp_path: Path) -> None:
    """MAX_DEPTH levels are fine: the schema then speaks about the value, not the nesting."""
    for problem in problems_of(tmp_path, flow(MAX_DEPTH)):
        assert "nested" not in problem.message, problem


def test_other_yaml_errors_keep_their_message(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, "version: 1\nvhosts: [[[\n")
    assert problem.message.startswith("invalid YAML: "), problem.message
    assert "nested" not in problem.message


def test_a_large_flat_file_is_not_taken_for_a_deep_one(tmp_path: Path) -> None:
    """Many brackets side by side (a JSON topology) are wide, not deep: it loads."""
    body = ", ".join(f'"q{i}": {{"durable": true, "arguments": {{"x-max-length": {i + 1}}}}}' for i in range(6_000))
    file = tmp_path / "t.yaml"
    file.write_text('{"version": 1, "vhosts": {"v": {"queues": {' + body + "}}}}\n", encoding="utf-8")
    topology = load(file, environ={})
    assert len(topology.vhosts["v"].queues) == 6_000
