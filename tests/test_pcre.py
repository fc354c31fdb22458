"""Policy patterns are PCRE on the broker: the rewrite into Python's re, pinned by cases, then checked
against RabbitMQ itself (which queues a policy with each pattern applies to)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from topo.broker.client import enc
from topo.errors import ValidationError
from topo.loader import load
from topo.model import Policy
from topo.pcre import UNKNOWN, compile_pattern
from topo.routing.policies import policy_matches

CASES: list[tuple[str, dict[str, bool]]] = [
    (r"\Qa.b\E", {"a.b": True, "axb": False, "xa.bx": True}),
    (r"^\Qa.b", {"a.b": True, "a.bc": True, "axb": False}),
    (r"^(?<n>ord)ers$", {"orders": True, "orders2": False}),
    (r"^\x{41}", {"A": True, "a": False}),
    (r"a\z", {"a": True, "ab": False}),
    (r"a\Z", {"a": True, "ba": True, "ab": False}),
    (r"^[[:alpha:]]+$", {"abc": True, "ab1": False}),
    (r"^[[:digit:][:upper:]]+$", {"A1": True, "a1": False}),
    (r"^a\hb", {"a b": True, "ab": False}),
    (r"^(?|a|b)c", {"ac": True, "bc": True, "cc": False}),
    (r"^[]a]$", {"]": True, "a": True, "b": False}),
    (r"^[^]a]$", {"]": False, "b": True}),
    (r"^[a[]$", {"[": True, "a": True, "b": False}),
    (r"^app\.", {"app.x": True, "appx": False}),
    (r"^(?>a+)b", {"aab": True, "ac": False}),
    (r"^a++b", {"aab": True, "ac": False}),
]


@pytest.mark.parametrize(("pattern", "names"), CASES)
def test_rewritten_patterns_match_as_pcre_does(pattern: str, names: dict[str, bool]) -> None:
    compiled = compile_pattern(pattern)
    assert isinstance(compiled, re.Pattern)
    assert {name: compiled.search(name) is not None for name in names} == names


def test_newline_anchors() -> None:
    assert compile_pattern(r"a\Z").search("a\n") is not None  # type: ignore[union-attr]
    assert compile_pattern(r"a\z").search("a\n") is None  # type: ignore[union-attr]


def test_what_python_cannot_evaluate_is_unknown_not_an_error() -> None:
    for pattern in (r"\p{L}+", r"a\Kb", r"(a)(?1)", r"[[:^alpha:]]", r"(*UTF)a"):
        assert compile_pattern(pattern) is UNKNOWN, pattern
    assert not policy_matches(Policy("p", r"\p{L}", "all", 0, {}), "queue", "abc")


def test_a_broken_pattern_is_still_a_load_error(tmp_path: Path) -> None:
    file = tmp_path / "t.yaml"
    file.write_text(
        "version: 1\nvhosts:\n  v:\n    policies:\n      p: {pattern: '^(ab', definition: {max-length: 1}}\n"
    )
    with pytest.raises(ValidationError, match="invalid regular expression"):
        load(file)
    file.write_text(
        "version: 1\nvhosts:\n  v:\n    policies:\n      p: {pattern: '\\Qa.b\\E', definition: {max-length: 1}}\n"
    )
    assert load(file).vhosts["v"].policies["p"].pattern == r"\Qa.b\E"


def test_against_the_broker(vhost: str, mgmt: httpx.Client, broker: Any) -> None:
    """One vhost per pattern (only one policy applies to a queue), all checked together: the queue list's
    `policy` comes from statistics, refreshed every ~5 s."""
    vhosts = [f"{vhost}-{i}" for i in range(len(CASES))]
    expected: dict[tuple[str, str], bool] = {}
    try:
        for name, (pattern, cases) in zip(vhosts, CASES, strict=True):
            mgmt.put(f"/api/vhosts/{enc(name)}").raise_for_status()
            mgmt.put(
                f"/api/permissions/{enc(name)}/{enc(broker.user)}",
                json={"configure": ".*", "write": ".*", "read": ".*"},
            ).raise_for_status()
            for queue in cases:
                mgmt.put(f"/api/queues/{enc(name)}/{enc(queue)}", json={"durable": False}).raise_for_status()
                policy = Policy("p", pattern, "queues", 0, {})
                expected[(name, queue)] = policy_matches(policy, "queue", queue, "classic")
                assert expected[(name, queue)] == cases[queue]  # topo agrees with the table...
            body = {"pattern": pattern, "definition": {"max-length": 7}, "apply-to": "queues"}
            mgmt.put(f"/api/policies/{enc(name)}/p", json=body).raise_for_status()
        applied: dict[tuple[str, str], bool] = {}
        for _ in range(150):
            applied = {
                (q["vhost"], q["name"]): q.get("policy") == "p"
                for q in mgmt.get("/api/queues", params={"columns": "vhost,name,policy"}).json()
                if q["vhost"] in vhosts
            }
            if applied == expected:
                break
            time.sleep(0.1)
        assert applied == expected  # ...and the broker agrees with topo
    finally:
        for name in vhosts:
            mgmt.delete(f"/api/vhosts/{enc(name)}")
