"""Migrations in a plan (``topo plan --migrate``): which replacements become migrations, what blocks one,
the migrations an interrupted apply left (its holding queues), and how the three forms show them (golden
files tests/golden/plan/migrate.*). Pure."""

from __future__ import annotations

import json

from support import build_vhost, check_golden

from topo import __version__
from topo.model import Binding, Exchange, Queue, Topology
from topo.plan.diff import diff
from topo.plan.migrate import as_migrations, holding_queue, holding_queues, migrating
from topo.plan.model import BrokerInfo, Plan, QueueUsage
from topo.plan.render import MIGRATE_FORMAT_VERSION, render_json, render_markdown, render_text
from topo.plan.safety import annotate


def _topologies(*observed_extra: Queue) -> tuple[Topology, Topology]:
    desired = Topology(
        {
            "shop": build_vhost(
                "shop",
                Exchange("orders", "direct"),
                Queue("orders", "quorum"),
                Queue("audit", arguments={"x-max-length": 1000}),
                Queue("events", "stream"),
                Binding("orders", "orders", routing_key="new"),
            )
        }
    )
    observed = Topology(
        {
            "shop": build_vhost(
                "shop",
                Exchange("orders", "direct"),
                Queue("orders"),
                Queue("audit"),
                Queue("events", "stream", arguments={"x-max-age": "1D"}),
                Binding("orders", "orders", routing_key="new"),
                *observed_extra,
            )
        }
    )
    return desired, observed


USAGE = {
    ("shop", "orders"): QueueUsage(ready=1200, unacked=3, consumers=2, exact=True),
    ("shop", "audit"): QueueUsage(ready=40, unacked=0, consumers=0, exact=True),
    ("shop", "events"): QueueUsage(ready=0, unacked=0, consumers=0, exact=False, why_inexact="a stream"),
}


def migration_plan(*, migrate: bool = True) -> Plan:
    desired, observed = _topologies()
    plan = annotate(diff(desired, observed), USAGE)
    plan = as_migrations(plan, desired, observed, migrate=migrate)
    plan.broker = BrokerInfo(cluster_name="rabbit@prod-1", url="https://rabbit.example.com:15671")
    return plan


def _queue_actions(plan: Plan) -> dict[str, str]:
    return {c.address.name: c.action for c in plan.changes if c.kind == "queue"}


def test_without_migrate_a_replacement_of_a_queue_holding_messages_stays_blocked_and_names_the_flag() -> None:
    plan = migration_plan(migrate=False)
    assert _queue_actions(plan) == {"orders": "replace", "audit": "replace", "events": "replace"}
    orders = next(c for c in plan.changes if c.address.name == "orders")
    [messages, _consumers] = orders.blockers
    assert messages.code == "messages"
    assert "`topo apply --migrate`" in messages.hint


def test_with_migrate_each_replaced_queue_is_migrated_and_a_stream_stays_blocked() -> None:
    plan = migration_plan()
    assert _queue_actions(plan) == {"orders": "migrate", "audit": "migrate", "events": "migrate"}
    orders = next(c for c in plan.changes if c.address.name == "orders")
    assert not orders.blockers and orders.messages == 1203
    assert any("cancels them" in w for w in orders.warnings)  # its consumers
    assert any("not acknowledged yet" in w for w in orders.warnings)
    events = next(c for c in plan.changes if c.address.name == "events")
    assert [b.code for b in events.blockers] == ["stream-migration"]
    assert plan.blocked


def test_an_interrupted_migration_is_finished_by_the_next_plan_with_or_without_the_flag() -> None:
    stash, hold = holding_queues("orders")
    assert (migrating(stash), migrating(hold), migrating("orders"), migrating("topo.migrate.old.")) == (
        "orders",
        "orders",
        None,
        None,
    )
    new = Queue("orders", "quorum")
    desired, observed = _topologies(holding_queue(new, stash), holding_queue(new, hold))
    # the old queue is gone (deleted by the migration): the plan would create it; the migration does
    del observed.vhosts["shop"].queues["orders"]
    plan = as_migrations(annotate(diff(desired, observed), USAGE), desired, observed, migrate=False)
    assert _queue_actions(plan)["orders"] == "migrate"
    # the new queue is there already: a migration still finishes (its messages are in the holding queues)
    observed.vhosts["shop"].queues["orders"] = new
    plan = as_migrations(annotate(diff(desired, observed), USAGE), desired, observed, migrate=False)
    assert _queue_actions(plan)["orders"] == "migrate"
    [change] = [c for c in plan.changes if c.action == "migrate"]
    assert change.before == change.after == new
    # holding queues of a queue no file declares any more: listed, left alone
    del desired.vhosts["shop"].queues["orders"]
    plan = as_migrations(annotate(diff(desired, observed), USAGE), desired, observed, migrate=False)
    assert "migrate" not in _queue_actions(plan).values()


def test_a_holding_queue_has_no_limit_that_could_drop_a_message() -> None:
    limited = Queue("q", "quorum", arguments={"x-max-length": 10, "x-message-ttl": 1000})
    assert holding_queue(limited, "topo.migrate.old.q") == Queue("topo.migrate.old.q", "classic")


def test_a_plan_with_a_migration_is_version_2_and_counts_it() -> None:
    data = json.loads(render_json(migration_plan()))
    assert data["format_version"] == MIGRATE_FORMAT_VERSION == 2
    assert data["summary"]["migrate"] == 3
    orders = next(c for c in data["changes"] if c["address"] == "vhosts.shop.queues.orders")
    assert orders["messages"] == 1203 and orders["count"]["ready"] == 1200
    assert json.loads(render_json(migration_plan(migrate=False)))["format_version"] == 1
    assert "migrate" not in json.loads(render_json(migration_plan(migrate=False)))["summary"]


def test_golden_text() -> None:
    check_golden("plan/migrate.txt", render_text(migration_plan()))


def test_golden_json() -> None:
    check_golden("plan/migrate.json", render_json(migration_plan()).replace(json.dumps(__version__), '"0.0.0-golden"'))


def test_golden_markdown() -> None:
    check_golden("plan/migrate.md", render_markdown(migration_plan()))
