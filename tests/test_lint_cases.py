"""Table-driven lint tests: tests/lint_cases/<CODE>.yaml holds cases for one rule.

Each case is a topology in the file format (loaded by the real loader, ``version: 1`` added) and the
findings the rule must report: ``address`` exactly, ``message`` as a substring. A case with
``expect: []`` must report nothing. Every registered rule has a file with a case that fires and one
that does not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from topo.lint import RULES, iter_rules, lint
from topo.loader import load

CASES_DIR = Path(__file__).parent / "lint_cases"


def _cases() -> list[Any]:
    params = []
    for file in sorted(CASES_DIR.glob("TL*.yaml")):
        data = yaml.safe_load(file.read_text())
        for case in data["cases"]:
            params.append(pytest.param(data["rule"], case, id=f"{data['rule']}-{case['name']}"))
    return params


@pytest.mark.parametrize(("code", "case"), _cases())
def test_lint_case(code: str, case: dict[str, Any], tmp_path: Path) -> None:
    document = {"version": 1, **case["topology"]}
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    findings = lint(load(path), select={code})
    assert all(f.code == code for f in findings)
    got = [(f.address, f.message) for f in findings]
    expected = case["expect"] or []
    assert len(got) == len(expected), got
    for want in expected:
        assert any(a == want["address"] and want["message"] in m for a, m in got), (want, got)
    for finding in findings:
        assert finding.origin is not None and finding.origin.file == str(path)


def test_every_rule_has_cases_that_fire_and_cases_that_do_not() -> None:
    list(iter_rules())
    for code in RULES:
        file = CASES_DIR / f"{code}.yaml"
        assert file.exists(), f"no table of cases for {code}"
        cases = yaml.safe_load(file.read_text())["cases"]
        assert any(c["expect"] for c in cases), f"{code}: no case that fires"
        assert any(not c["expect"] for c in cases), f"{code}: no case that stays quiet"


GENERATED = """
version: 1
lint: {disable: []}
vhosts:
  v:
    exchanges:
      x: {type: topic}
      dlx: {type: direct}
    queues:
      work:
        type: quorum
        retry: {delays: [5s, 1m, 1h]}
        bindings: [{exchange: x, routing-key: "work.#"}]
      transient:
        durable: false
        max-priority: 50
        retry: {delays: [1s]}
    policies:
      everything: {pattern: ".*", apply-to: queues, priority: 1, definition: {message-ttl: 1h, max-length: 10}}
      again: {pattern: ".*", apply-to: queues, priority: 1, definition: {max-length: 20}}
    operator-policies:
      cap: {pattern: ".*", apply-to: queues, definition: {message-ttl: 2h}}
"""


def test_no_rule_reports_a_resource_topo_generated(tmp_path: Path) -> None:
    # the runner, not each rule, keeps findings about generated resources (retry delay queues) out: a user
    # cannot fix what topo declared, and `--format github` would annotate every pull request
    path = tmp_path / "t.yaml"
    path.write_text(GENERATED)
    topology = load(path)
    generated = {name for name, q in topology.vhosts["v"].queues.items() if q.generated_by is not None}
    assert generated == {"work.retry.1", "work.retry.2", "work.retry.3", "transient.retry.1"}
    findings = lint(topology)
    assert findings, "the user's own resources still get findings"
    about = {f.address for f in findings}
    assert not any("retry" in address for address in about), about
    assert "vhosts.v.queues.transient" in about  # TL501 and TL502 still see the user's queue
