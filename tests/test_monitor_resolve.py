"""Each queue's effective checks: layers, roles, length limits, dead-letter queues (pure, no broker)."""

from __future__ import annotations

from pathlib import Path

from topo.loader import load
from topo.monitor.resolve import Expectation, Limit, resolve
from topo.monitor.spec import Threshold

ROOT = Path(__file__).resolve().parent.parent


def expectations(tmp_path: Path, text: str) -> dict[str, Expectation]:
    file = tmp_path / "t.yaml"
    file.write_text("version: 1\n" + text, encoding="utf-8")
    (vhost,) = resolve(load(file)).values()
    return {e.queue: e for e in vhost.queues}


def levels(e: Expectation, check: str) -> tuple[str | None, str | None]:
    c = e.check(check)  # type: ignore[arg-type]
    assert c is not None, f"{check} not in force on {e.queue}"
    return (str(c.warning) if c.warning else None, str(c.critical) if c.critical else None)


def test_a_plain_queue_gets_the_defaults_that_apply(tmp_path: Path) -> None:
    q = expectations(tmp_path, "vhosts:\n  v:\n    queues:\n      q: {}\n")["q"]
    assert [c.name for c in q.checks] == ["consumers", "unacked"]
    assert levels(q, "consumers") == ("2", "1") and levels(q, "unacked") == ("1000", "5000")
    assert q.role == "queue" and q.limits == ()
    assert any(n.startswith("depth: not checked: no max-length") for n in q.notes)
    assert any(n.startswith("dead-letter-rate: not checked: its dead letters reach no declared queue") for n in q.notes)


def test_the_lowest_length_limit_applies_with_its_source(tmp_path: Path) -> None:
    found = expectations(
        tmp_path,
        """vhosts:
  v:
    queues:
      a: {max-length: 500}
      b: {max-length: 5000, max-length-bytes: 1MiB}
      c: {}
      s: {type: stream, max-length-bytes: 1GB}
    policies:
      cap: {pattern: "^[abs]$", apply-to: queues, definition: {max-length: 1000}}
    operator-policies:
      safety: {pattern: ".*", apply-to: queues, definition: {max-length: 2000, max-length-bytes: 2MiB}}
""",
    )
    assert found["a"].limits == (
        Limit("max-length", 500, "argument"),
        Limit("max-length-bytes", 2097152, "operator policy 'safety'"),
    )
    assert found["b"].limits == (
        Limit("max-length", 1000, "policy 'cap'"),
        Limit("max-length-bytes", 1048576, "argument"),
    )
    assert found["c"].limits == (
        Limit("max-length", 2000, "operator policy 'safety'"),
        Limit("max-length-bytes", 2097152, "operator policy 'safety'"),
    )
    assert levels(found["c"], "depth") == ("50%", "80%")
    assert found["s"].limits == () and found["s"].check("depth") is None  # retention, not capacity


def test_layers_topology_vhost_queue(tmp_path: Path) -> None:
    found = expectations(
        tmp_path,
        """monitor:
  unacked: {warning: 10, critical: 20}
  message-age: {warning: 1m, critical: 10m}
vhosts:
  v:
    monitor:
      unacked: {critical: 30}
      consumers: off
    queues:
      plain: {}
      own:
        monitor:
          unacked: off
          consumers: {critical: 1}
          message-age: {warning: 2m}
      back-on:
        monitor: {consumers: on}
""",
    )
    plain = found["plain"]
    assert levels(plain, "unacked") == ("10", "30")
    assert plain.check("consumers") is None
    assert levels(plain, "message-age") == ("1m", "10m")
    own = found["own"]
    assert own.check("unacked") is None
    assert levels(own, "consumers") == (None, "1")  # the vhost had it off: only what the queue says
    assert levels(own, "message-age") == ("2m", "10m")
    c = own.check("consumers")
    assert c is not None and c.own and c.problem is None
    assert levels(found["back-on"], "consumers") == ("2", "1")


def test_retry_queues_and_dead_letter_queues_have_no_consumer_check(tmp_path: Path) -> None:
    (vhost,) = resolve(load(ROOT / "topologies" / "work-queue.yaml")).values()
    found = {e.queue: e for e in vhost.queues}
    assert found["thumbnails"].role == "queue"
    assert [c.name for c in found["thumbnails"].checks] == ["consumers", "unacked", "dead-letter-rate"]
    assert found["thumbnails"].dead_letter_queues == ("thumbnails.failed",)
    assert levels(found["thumbnails"], "dead-letter-rate") == ("1%", "5%")
    failed = found["thumbnails.failed"]
    assert failed.role == "dead-letter" and failed.check("consumers") is None
    assert failed.check("unacked") is not None
    for retry in ("thumbnails.retry.1", "thumbnails.retry.2"):
        assert found[retry].role == "retry"
        assert found[retry].check("consumers") is None and found[retry].check("dead-letter-rate") is None
    assert vhost.dead_letter_sources == {"thumbnails.failed": ("thumbnails",)}


def test_a_dead_letter_queue_can_ask_for_consumers(tmp_path: Path) -> None:
    found = expectations(
        tmp_path,
        """vhosts:
  v:
    exchanges: {dlx: {type: fanout}}
    queues:
      work: {dead-letter-exchange: dlx}
      parked:
        bindings: [{exchange: dlx}]
        monitor: {consumers: {critical: 1}}
""",
    )
    assert found["parked"].role == "dead-letter"
    assert levels(found["parked"], "consumers") == (None, "1")


def test_dead_letters_through_the_default_exchange_are_not_measured(tmp_path: Path) -> None:
    found = expectations(
        tmp_path,
        """vhosts:
  v:
    queues:
      work: {dead-letter-exchange: "", dead-letter-routing-key: work.dlq}
      work.dlq: {}
      measured:
        dead-letter-exchange: ""
        dead-letter-routing-key: work.dlq
        monitor: {dead-letter-rate: {warning: 2%}}
""",
    )
    assert found["work.dlq"].role == "queue"  # publishers may use the default exchange too
    assert found["work"].check("dead-letter-rate") is None
    assert any("'work.dlq', which other messages reach too" in n for n in found["work"].notes)
    check = found["measured"].check("dead-letter-rate")
    assert check is not None and check.own and check.problem is not None and "'work.dlq'" in check.problem


def test_a_shared_dead_letter_queue_lists_every_source(tmp_path: Path) -> None:
    file = tmp_path / "t.yaml"
    file.write_text(
        """version: 1
vhosts:
  v:
    exchanges: {dlx: {type: fanout}}
    queues:
      a: {dead-letter-exchange: dlx}
      b: {dead-letter-exchange: dlx}
      dlq: {bindings: [{exchange: dlx}]}
""",
        encoding="utf-8",
    )
    (vhost,) = resolve(load(file)).values()
    assert vhost.dead_letter_sources == {"dlq": ("a", "b")}


def test_own_checks_that_cannot_be_measured_keep_their_problem(tmp_path: Path) -> None:
    found = expectations(
        tmp_path,
        """vhosts:
  v:
    queues:
      nolimit: {monitor: {depth: {warning: 50%, critical: 1000}}}
      qq: {type: quorum, monitor: {message-age: {critical: 1m}}}
      rate: {monitor: {publish-rate: {warning: 80%}}}
      absolute: {monitor: {depth: {warning: 10, critical: 20}, publish-rate: {warning: 100}}}
""",
    )
    depth = found["nolimit"].check("depth")
    assert depth is not None and depth.problem is not None and "no max-length" in depth.problem
    age = found["qq"].check("message-age")
    assert age is not None and age.problem == "RabbitMQ 3.10 reports no head message timestamp for a quorum queue"
    rate = found["rate"].check("publish-rate")
    assert rate is not None and rate.problem is not None and "capacity" in rate.problem
    absolute = found["absolute"]
    assert all(c.problem is None for c in absolute.checks)
    depth = absolute.check("depth")
    assert depth is not None and depth.warning == Threshold(10, text="10")
