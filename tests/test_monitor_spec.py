"""The ``monitor:`` block in the files: schema, parsing, located errors (no broker needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from topo.errors import ValidationError
from topo.loader import load
from topo.loader.schema_compiled import compile_schema
from topo.monitor.spec import BUILTIN, CheckSetting, Threshold
from topo.schemas import load_schema
from topo.schemas.generate import build_schema

HEAD = "version: 1\nvhosts:\n  v:\n"


def write(tmp_path: Path, text: str, name: str = "t.yaml") -> Path:
    file = tmp_path / name
    file.write_text(text, encoding="utf-8")
    return file


def test_blocks_at_three_levels_are_read(tmp_path: Path) -> None:
    file = write(
        tmp_path,
        """version: 1
monitor:
  unacked: {warning: 100, critical: 500}
vhosts:
  v:
    monitor:
      consumers: off
      message-age: {warning: 5m, critical: 1h}
    queues:
      q:
        max-length: 1000
        monitor:
          depth: {warning: 60%, critical: 900}
          consumers: on
          publish-rate: {capacity: 1000, warning: 80%, critical: 1200.5}
          dead-letter-rate: {warning: 0.5%, critical: 5%}
""",
    )
    topology = load(file)
    assert topology.monitor is not None
    assert topology.monitor.checks == {
        "unacked": CheckSetting(warning=Threshold(100, text="100"), critical=Threshold(500, text="500"))
    }
    vhost = topology.vhosts["v"]
    assert vhost.monitor is not None
    assert vhost.monitor.checks["consumers"] == CheckSetting(off=True)
    assert vhost.monitor.checks["message-age"] == CheckSetting(
        warning=Threshold(300, text="5m"), critical=Threshold(3600, text="1h")
    )
    block = vhost.queues["q"].monitor
    assert block is not None and block.origin is not None and block.origin.line == 12
    assert block.checks["depth"] == CheckSetting(
        warning=Threshold(0.6, relative=True, text="60%"), critical=Threshold(900, text="900")
    )
    assert block.checks["consumers"] == CheckSetting(on=True)
    assert block.checks["publish-rate"] == CheckSetting(
        warning=Threshold(0.8, relative=True, text="80%"), critical=Threshold(1200.5, text="1200.5"), capacity=1000
    )
    assert block.checks["dead-letter-rate"].warning == Threshold(0.005, relative=True, text="0.5%")


def test_a_queue_without_a_block_has_none(tmp_path: Path) -> None:
    topology = load(write(tmp_path, HEAD + "    queues:\n      q: {}\n"))
    assert topology.monitor is None and topology.vhosts["v"].monitor is None
    assert topology.vhosts["v"].queues["q"].monitor is None


def test_monitor_never_takes_part_in_a_diff(tmp_path: Path) -> None:
    a = load(write(tmp_path, HEAD + "    queues:\n      q: {monitor: {unacked: {warning: 1}}}\n", "a.yaml"))
    b = load(write(tmp_path, HEAD + "    queues:\n      q: {}\n", "b.yaml"))
    assert a.vhosts["v"].queues["q"] == b.vhosts["v"].queues["q"]


def test_builtin_defaults_follow_the_checklist_table() -> None:
    assert BUILTIN["depth"].warning == Threshold(0.5, relative=True, text="50%")
    assert BUILTIN["depth"].critical == Threshold(0.8, relative=True, text="80%")
    consumers = BUILTIN["consumers"]
    assert (consumers.warning, consumers.critical) == (Threshold(2, text="2"), Threshold(1, text="1"))
    assert BUILTIN["unacked"].warning is not None and BUILTIN["unacked"].warning.value == 1000
    assert BUILTIN["unacked"].critical is not None and BUILTIN["unacked"].critical.value == 5000
    assert BUILTIN["dead-letter-rate"].warning == Threshold(0.01, relative=True, text="1%")
    assert BUILTIN["dead-letter-rate"].critical == Threshold(0.05, relative=True, text="5%")
    assert BUILTIN["publish-rate"].off and BUILTIN["message-age"].off


# -- problems, each at its place -----------------------------------------------------------------------

CASES = [
    (
        "unknown-check",
        "    queues:\n      q:\n        monitor:\n          consumer: {warning: 2}   # <-\n",
        "vhosts.v.queues.q.monitor.consumer",
        "unknown key 'consumer'",
        "did you mean 'consumers'?",
    ),
    (
        "unknown-level",
        "    queues:\n      q:\n        monitor:\n          unacked: {warnin: 2}   # <-\n",
        "vhosts.v.queues.q.monitor.unacked.warnin",
        "unknown key 'warnin'",
        "did you mean 'warning'?",
    ),
    (
        "depth-not-a-number",
        "    queues:\n      q:\n        monitor:\n          depth: {warning: lots}   # <-\n",
        "vhosts.v.queues.q.monitor.depth.warning",
        "expected a number of messages, or a share of the queue's length limit such as 80%, got the string 'lots'",
        None,
    ),
    (
        "quoted-number",
        "    queues:\n      q:\n        monitor:\n          unacked: {critical: '500'}   # <-\n",
        "vhosts.v.queues.q.monitor.unacked.critical",
        "expected an integer, got the string '500'",
        "without quotes",
    ),
    (
        "percent-of-unacked",
        "    queues:\n      q:\n        monitor:\n          unacked: {critical: 5%}   # <-\n",
        "vhosts.v.queues.q.monitor.unacked.critical",
        "expected an integer, got the string '5%'",
        None,
    ),
    (
        "depth-100-percent",
        "    queues:\n      q:\n        max-length: 10\n        monitor:\n          depth: {critical: 100%}   # <-\n",
        "vhosts.v.queues.q.monitor.depth.critical",
        "depth 100% can never be passed: a full queue holds 100% of its limit",
        "lower",
    ),
    (
        "dead-letter-above-100",
        "    queues:\n      q:\n        monitor:\n          dead-letter-rate: {warning: 150%}   # <-\n",
        "vhosts.v.queues.q.monitor.dead-letter-rate.warning",
        "dead-letter-rate 150% can never be passed: at most every message (100%) dead-letters",
        None,
    ),
    (
        "dead-letter-as-number",
        "    queues:\n      q:\n        monitor:\n          dead-letter-rate: {warning: 0.01}   # <-\n",
        "vhosts.v.queues.q.monitor.dead-letter-rate.warning",
        "expected a share of the queue's messages, such as 1% or 0.5%, got the number 0.01",
        None,
    ),
    (
        "on-without-defaults",
        "    queues:\n      q:\n        monitor:\n          publish-rate: on   # <-\n",
        "vhosts.v.queues.q.monitor.publish-rate",
        "publish-rate has no default levels, so `on` alone checks nothing",
        "give the levels",
    ),
    (
        "capacity-zero",
        "    queues:\n      q:\n        monitor:\n          publish-rate: {capacity: 0, warning: 50%}   # <-\n",
        "vhosts.v.queues.q.monitor.publish-rate.capacity",
        "capacity must be above 0 messages per second",
        None,
    ),
    (
        "empty-check",
        "    queues:\n      q:\n        monitor:\n          unacked: {}   # <-\n",
        "vhosts.v.queues.q.monitor.unacked",
        "must not be empty",
        None,
    ),
    (
        "bad-age",
        "    monitor:\n      message-age: {warning: 5 minutes}   # <-\n",
        "vhosts.v.monitor.message-age.warning",
        "expected a duration: milliseconds, or a string such as 500ms, 30s, 5m, 24h, 7d, got the string '5 minutes'",
        None,
    ),
]


def _line(text: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if "# <-" in line)


@pytest.mark.parametrize(("body", "path", "message", "hint"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_problem_at_its_place(tmp_path: Path, body: str, path: str, message: str, hint: str | None) -> None:
    file = write(tmp_path, HEAD + body)
    with pytest.raises(ValidationError) as info:
        load(file)
    (problem,) = info.value.problems
    assert (problem.file, problem.line, problem.path) == (str(file), _line(HEAD + body), path), problem.render()
    assert problem.message == message
    if hint is not None:
        assert problem.hint is not None and hint in problem.hint, problem.hint


def test_a_bad_block_leaves_the_queue_checked_for_the_rest(tmp_path: Path) -> None:
    body = "    queues:\n      q:\n        max-priority: 1000\n        monitor: {unacked: {warnin: 1}}\n"
    with pytest.raises(ValidationError) as info:
        load(write(tmp_path, HEAD + body))
    paths = sorted(p.path or "" for p in info.value.problems)
    assert paths == ["vhosts.v.queues.q.max-priority", "vhosts.v.queues.q.monitor.unacked.warnin"]


def test_the_topology_wide_block_is_given_once(tmp_path: Path) -> None:
    write(tmp_path, "version: 1\nmonitor: {unacked: {warning: 1}}\nvhosts: {}\n", "a.yaml")
    write(tmp_path, "version: 1\nmonitor: {unacked: {warning: 2}}\nvhosts: {}\n", "b.yaml")
    with pytest.raises(ValidationError) as info:
        load(tmp_path)
    (problem,) = info.value.problems
    assert problem.file is not None and problem.file.endswith("b.yaml") and problem.line == 2
    assert problem.message.startswith("the topology-wide monitor block is declared twice: here and at ")
    assert "a.yaml:2" in problem.message


def test_a_vhost_block_is_given_once(tmp_path: Path) -> None:
    write(tmp_path, HEAD + "    monitor: {unacked: {warning: 1}}\n", "a.yaml")
    write(tmp_path, HEAD + "    monitor: {consumers: off}\n", "b.yaml")
    with pytest.raises(ValidationError) as info:
        load(tmp_path)
    (problem,) = info.value.problems
    assert problem.path == "vhosts.v.monitor" and "declared twice" in problem.message


# -- the schema -------------------------------------------------------------------------------------------


def test_the_schema_has_one_monitor_definition_used_at_three_levels() -> None:
    schema = build_schema()
    ref = {"$ref": "#/$defs/monitor"}
    assert schema["properties"]["monitor"] == ref
    assert schema["$defs"]["vhost"]["properties"]["monitor"] == ref
    assert schema["$defs"]["queue"]["properties"]["monitor"] == ref
    assert set(schema["$defs"]["monitor"]["properties"]) == {
        "depth",
        "consumers",
        "unacked",
        "publish-rate",
        "dead-letter-rate",
        "message-age",
    }


def test_the_fast_schema_check_still_understands_the_schema() -> None:
    fast = compile_schema(load_schema())
    assert fast is not None
    doc = {"version": 1, "monitor": {"consumers": False}, "vhosts": {"v": {"queues": {"q": {"monitor": {}}}}}}
    assert fast(doc)
    assert not fast({**doc, "monitor": {"consumers": {"warning": "2"}}})


@pytest.mark.parametrize(
    "block",
    [
        {"depth": {"warning": "50"}},
        {"depth": {"warning": -1}},
        {"depth": "off"},
        {"consumers": {"warning": 1.5}},
        {"dead-letter-rate": {"warning": "1 %"}},
        {"publish-rate": {"capacity": "1000"}},
        {"message-age": {"critical": "forever"}},
        {"unacked": {}},
    ],
)
def test_schema_rejects(block: object) -> None:
    document = {"version": 1, "vhosts": {"v": {"queues": {"q": {"monitor": block}}}}}
    assert list(Draft202012Validator(build_schema()).iter_errors(document))
    fast = compile_schema(load_schema())
    assert fast is not None and not fast(document)
