"""Lint: the cases the loader cannot express (it rejects them first), disabling, output forms, docs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from topo.errors import UsageError
from topo.lint import RULES, Finding, check_codes, iter_rules, lint
from topo.lint.docs import render_markdown
from topo.lint.output import render_github, render_json, render_text
from topo.model import Binding, Exchange, Origin, Policy, Queue, Topology, VHost

ROOT = Path(__file__).parent.parent


def vhost_of(*items: Exchange | Queue | Binding | Policy) -> VHost:
    vh = VHost("v")
    for item in items:
        if isinstance(item, Exchange):
            vh.exchanges[item.name] = item
        elif isinstance(item, Queue):
            vh.queues[item.name] = item
        elif isinstance(item, Binding):
            vh.add_binding(item)
        else:
            vh.policies[item.name] = item
    return vh


def codes(topology: Topology, disable: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    return [(f.code, f.address) for f in lint(topology, disable=disable)]


def test_missing_dead_letter_exchange_is_an_error() -> None:
    t = Topology({"v": vhost_of(Queue("q", arguments={"x-dead-letter-exchange": "gone"}), Binding("amq.direct", "q"))})
    (finding,) = [f for f in lint(t) if f.code == "TL101"]
    assert finding.severity == "error"
    assert (
        finding.message == "queue 'q' dead-letters to exchange 'gone', which is not declared: dead letters are dropped"
    )


def test_missing_alternate_exchange_argument() -> None:
    t = Topology({"v": vhost_of(Exchange("x", "fanout", arguments={"alternate-exchange": "nope"}))})
    assert ("TL206", "vhosts.v.exchanges.x") in codes(t)


def test_argument_of_another_queue_type() -> None:
    t = Topology({"v": vhost_of(Queue("q", "quorum", arguments={"x-max-priority": 5, "x-delivery-limit": 3}))})
    messages = [f.message for f in lint(t, select={"TL301"})]
    assert messages == ["argument 'x-max-priority' of quorum queue 'q' only applies to classic queues"]


def test_disable_everywhere() -> None:
    q = Queue("q", arguments={"x-message-ttl": 1000})
    t = Topology({"v": vhost_of(q)})
    assert "TL103" in {c for c, _ in codes(t)}
    assert "TL103" not in {c for c, _ in codes(t, disable=frozenset({"TL103"}))}
    t.lint_disable = frozenset({"TL103"})
    assert "TL103" not in {c for c, _ in codes(t)}
    quiet = Queue("q", arguments={"x-message-ttl": 1000}, lint_disable=frozenset({"TL103", "TL201"}))
    assert "TL103" not in {c for c, _ in codes(Topology({"v": vhost_of(quiet)}))}


def test_disable_on_the_destination_silences_its_bindings() -> None:
    x = Exchange("d", "direct")
    b = Binding("d", "q", "queue", "a.*")
    loud = Topology({"v": vhost_of(x, Queue("q"), b)})
    quiet = Topology({"v": vhost_of(x, Queue("q", lint_disable=frozenset({"TL201"})), b)})
    assert "TL201" in {c for c, _ in codes(loud)}
    assert "TL201" not in {c for c, _ in codes(quiet)}


def test_check_codes() -> None:
    assert check_codes(["tl101", " TL207 ", ""]) == {"TL101", "TL207"}
    with pytest.raises(UsageError, match="unknown lint rule code: TL999"):
        check_codes(["TL999"])


def test_every_rule_is_documented() -> None:
    for r in iter_rules():
        assert r.summary.endswith("."), r.code
        assert "**Risk.**" in r.doc and "**Fix.**" in r.doc, r.code
    assert len(RULES) >= 17


def test_docs_are_up_to_date() -> None:
    committed = (ROOT / "docs" / "lint-rules.md").read_text()
    assert committed == render_markdown(), "run: python -m topo.lint.docs > docs/lint-rules.md"


def _findings() -> list[Finding]:
    vh = vhost_of(
        Queue("q", arguments={"x-message-ttl": 1000}, origin=Origin("topo, files/a.yaml", 3, 5)),
        Exchange("lonely", "topic"),
    )
    return lint(Topology({"v": vh}), select={"TL103", "TL205"})


def test_text_output() -> None:
    assert render_text(_findings()) == (
        "vhosts.v.exchanges.lonely: TL205 warning [exchange-without-bindings] nothing is bound to exchange "
        "'lonely' and it has no alternate exchange: every message published to it is dropped\n"
        "topo, files/a.yaml:3:5: TL103 warning [limit-drops-messages] queue 'q' discards messages "
        "(message-ttl 1000) and has no dead-letter exchange: they are lost silently\n"
        "\n"
        "2 problems: 0 errors, 2 warnings, 0 info.\n"
    )
    assert render_text([]) == "No problems found.\n"


def test_json_output() -> None:
    data = json.loads(render_json(_findings()))
    assert data["summary"] == {"error": 0, "warning": 2, "info": 0}
    assert data["findings"][1] == {
        "code": "TL103",
        "name": "limit-drops-messages",
        "severity": "warning",
        "message": "queue 'q' discards messages (message-ttl 1000) and has no dead-letter exchange: "
        "they are lost silently",
        "vhost": "v",
        "address": "vhosts.v.queues.q",
        "file": "topo, files/a.yaml",
        "line": 3,
        "col": 5,
    }


def test_github_output() -> None:
    assert render_github(_findings()) == (
        "::warning title=TL205 exchange-without-bindings::vhosts.v.exchanges.lonely: nothing is bound to "
        "exchange 'lonely' and it has no alternate exchange: every message published to it is dropped\n"
        "::warning file=topo%2C files/a.yaml,line=3,col=5,title=TL103 limit-drops-messages::queue 'q' discards "
        "messages (message-ttl 1000) and has no dead-letter exchange: they are lost silently\n"
    )


def test_example_topologies_have_no_lint_errors() -> None:
    from topo.loader import load

    findings = lint(load(ROOT / "topologies"))
    assert [f for f in findings if f.severity == "error"] == []
