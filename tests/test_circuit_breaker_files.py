"""`circuit-breaker:` on a queue in the files (issue 12.4): a runtime-only key, like `prefetch:` and `retry:`."""

from __future__ import annotations

from pathlib import Path

import pytest

from topo.errors import ValidationError
from topo.loader import load
from topo.model import CircuitBreaker, Queue
from topo.schemas.generate import build_schema

HEAD = "version: 1\nvhosts:\n  v:\n    queues:\n"


def load_queue(tmp_path: Path, body: str) -> Queue:
    (tmp_path / "t.yaml").write_text(HEAD + body, encoding="utf-8")
    return load(tmp_path / "t.yaml", environ={}).vhost("v").queues["q"]


def problem(tmp_path: Path, body: str) -> str:
    (tmp_path / "t.yaml").write_text(HEAD + body, encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        load(tmp_path / "t.yaml", environ={})
    assert len(info.value.problems) == 1, info.value.problems
    return info.value.problems[0].render()


def test_a_queue_declares_its_circuit_breaker(tmp_path: Path) -> None:
    queue = load_queue(tmp_path, "      q:\n        circuit-breaker: {failures: 5, open-for: 30s}\n")
    assert queue.circuit_breaker == CircuitBreaker(failures=5, open_for_ms=30_000)
    assert load_queue(
        tmp_path, "      q:\n        circuit-breaker: {failures: 1, open-for: 250}\n"
    ).circuit_breaker == (CircuitBreaker(failures=1, open_for_ms=250))
    assert load_queue(tmp_path, "      q: {}\n").circuit_breaker is None


def test_it_is_runtime_only_and_never_differs_in_a_diff() -> None:
    with_breaker = Queue("q", circuit_breaker=CircuitBreaker(3, 1000))
    assert with_breaker == Queue("q")


def test_the_schema_knows_it() -> None:
    queue = build_schema()["$defs"]["queue"]["properties"]["circuit-breaker"]
    assert queue["required"] == ["failures", "open-for"]
    assert queue["properties"]["failures"]["minimum"] == 1
    assert queue["additionalProperties"] is False


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("{failures: 0, open-for: 30s}", "circuit-breaker.failures: must be at least 1, got 0"),
        ("{failures: 3}", "circuit-breaker: missing required key 'open-for'"),
        (
            "{failures: 3, open-for: 30s, half-open: 2}",
            "unknown key 'half-open' (hint: allowed here: failures, open-for)",
        ),
        ("{failures: 3, open-for: soon}", "open-for"),
    ],
)
def test_a_wrong_circuit_breaker_is_refused_at_its_place(tmp_path: Path, body: str, expected: str) -> None:
    text = problem(tmp_path, f"      q:\n        circuit-breaker: {body}\n")
    assert "t.yaml:6:" in text and "vhosts.v.queues.q.circuit-breaker" in text
    assert expected in text


def test_open_for_must_be_more_than_nothing(tmp_path: Path) -> None:
    text = problem(tmp_path, "      q:\n        circuit-breaker: {failures: 3, open-for: 0s}\n")
    assert "vhosts.v.queues.q.circuit-breaker.open-for" in text
    assert "must be more than 0" in text


def test_not_on_a_stream(tmp_path: Path) -> None:
    text = problem(tmp_path, "      q:\n        type: stream\n        circuit-breaker: {failures: 3, open-for: 1s}\n")
    assert "vhosts.v.queues.q.circuit-breaker" in text
    assert "circuit-breaker does not apply to a stream" in text
