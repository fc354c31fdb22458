"""Plan rendering: text (Terraform's symbols), JSON (versioned, documented) and Markdown, pinned by golden files.

The plan is built from Topology values with the pure diff, so it is deterministic. To accept a deliberate
change in what users see, regenerate: ``TOPO_UPDATE_GOLDEN=1 pytest tests/test_render.py`` and review
the diff of tests/golden/plan/.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
from support import build_vhost, check_golden

from topo import __version__
from topo.model import Binding, Exchange, Policy, Queue, Topology, VHost
from topo.plan.diff import diff
from topo.plan.model import BrokerInfo, Plan, QueueUsage
from topo.plan.render import FORMAT_VERSION, render_json, render_markdown, render_text, summary_line
from topo.plan.safety import annotate, fence_policy

DOCS = Path(__file__).parent.parent / "docs" / "plan-json.md"


def _vhost(
    name: str, *items: Any, policies: tuple[Policy, ...] = (), ops: tuple[Policy, ...] = (), **meta: Any
) -> VHost:
    return build_vhost(name, *items, policies=policies, operator_policies=ops, **meta)


def sample_plan() -> Plan:
    """A plan with every kind of change: create, update, replace, delete of every resource kind."""
    desired = Topology(
        {
            "iot": _vhost(
                "iot",
                Exchange("sensor-data", "topic"),
                Exchange("uploads", "headers", arguments={"alternate-exchange": "unrouted"}),
                Exchange("unrouted", "fanout"),
                Exchange("audit", "fanout", internal=True),
                Queue(
                    "orders",
                    arguments={"x-message-ttl": 86_400_000, "x-max-length": 100_000, "x-dead-letter-exchange": "dlx"},
                ),
                Queue("analytics", "quorum", arguments={"x-delivery-limit": 6}),
                Queue("pdf-jobs"),
                Queue("events", "stream", arguments={"x-max-age": "7D", "x-max-length-bytes": 1_073_741_824}),
                Binding("sensor-data", "orders", routing_key="orders.#"),
                Binding("sensor-data", "orders", routing_key="orders.eu.#"),  # new, to a replaced queue
                Binding("sensor-data", "analytics", routing_key="sensor.#"),
                Binding("uploads", "pdf-jobs", arguments={"x-match": "all", "format": "pdf"}),
                Binding("sensor-data", "audit", "exchange", routing_key="#"),
                policies=(Policy("tmp-limits", "^tmp\\.", "queues", 10, {"message-ttl": 600_000}),),
                ops=(Policy("cap-length", ".*", "queues", 0, {"max-length": 1_000_000}),),
                description="Sensor ingestion",
                limits={"max-connections": 500, "max-queues": 1000},
            ),
            "billing": _vhost(
                "billing",
                Exchange("invoices", "direct"),
                Queue("invoices.pending", arguments={"x-max-priority": 10}),
                Binding("invoices", "invoices.pending", routing_key="pending"),
                policies=(Policy("ha", ".*", "all", 0, {"max-length-bytes": 10_485_760}),),
                description="Invoices",
                tags=("finance",),
            ),
        }
    )
    observed = Topology(
        {
            "iot": _vhost(
                "iot",
                Exchange("sensor-data", "topic"),
                Exchange("uploads", "headers"),  # alternate-exchange added: replace
                Exchange("audit", "direct", internal=True),  # type changed: replace
                Queue("orders", arguments={"x-message-ttl": 3_600_000, "x-max-length": 100_000}),
                Queue("analytics", "quorum", arguments={"x-delivery-limit": 5}),
                Queue("pdf-jobs"),
                Queue("legacy-jobs"),
                Exchange("someone-elses"),
                Binding("sensor-data", "orders", routing_key="orders.#"),
                Binding("sensor-data", "orders", routing_key="old.#"),  # not in the files: delete
                Binding("sensor-data", "analytics", routing_key="sensor.#"),
                Binding("uploads", "pdf-jobs", arguments={"x-match": "all", "format": "pdf"}),
                Binding("uploads", "legacy-jobs"),  # lost with the replaced exchange: a warning
                Binding("sensor-data", "audit", "exchange", routing_key="#"),
                policies=(
                    Policy("tmp-limits", "^tmp\\.", "queues", 10, {"message-ttl": 300_000}),
                    fence_policy("pdf-jobs", 11),  # left by an interrupted apply: the plan removes it
                ),
                ops=(Policy("cap-length", ".*", "queues", 0, {"max-length": 500_000}), Policy("theirs", "^x")),
                description="Sensors",
                tags=("iot",),
                limits={"max-connections": 500},
            ),
        }
    )
    plan = diff(desired, observed)
    # the engine counts the queues a plan would drop (orders holds one message; analytics is in use)
    usage = {
        ("iot", "orders"): QueueUsage(ready=1, unacked=0, consumers=0, exact=True),
        ("iot", "analytics"): QueueUsage(ready=2, unacked=1, consumers=1, exact=True),
    }
    plan = annotate(plan, usage)
    plan.broker = BrokerInfo(cluster_name="rabbit@prod-1", url="https://rabbit.example.com:15671")
    return plan


def safe_plan() -> Plan:
    """The sample plan with its queues empty and unused, counted without AMQP: nothing blocks it."""
    plan = sample_plan()
    usage = {("iot", "orders"): QueueUsage(0, 0, 0, exact=False)}
    changes = [c for c in plan.changes if c.address.name != "analytics"]
    return annotate(dataclasses.replace(plan, changes=changes), usage)


def stable_json(plan: Plan) -> str:
    return render_json(plan).replace(json.dumps(__version__), '"0.0.0-golden"')


def test_golden_text() -> None:
    check_golden("plan/plan.txt", render_text(sample_plan()))


def test_golden_json() -> None:
    check_golden("plan/plan.json", stable_json(sample_plan()))


def test_golden_markdown() -> None:
    check_golden("plan/plan.md", render_markdown(sample_plan()))


# -- beyond the golden files ----------------------------------------------------------------------------


def test_json_is_consistent_with_the_plan() -> None:
    plan = sample_plan()
    data = json.loads(render_json(plan))
    assert data["format_version"] == FORMAT_VERSION == 1
    assert data["topo_version"] == __version__
    assert data["vhosts"] == ["billing", "iot"]
    assert data["summary"] == {a: plan.count(a) for a in ("create", "update", "replace", "delete")}
    assert [c["address"] for c in data["changes"]] == [str(c.address) for c in plan.changes]
    for change in data["changes"]:
        assert (change["before"] is None) == (change["action"] == "create")
        assert (change["after"] is None) == (change["action"] == "delete")
        assert (change["messages"] is not None) == (change["kind"] == "queue" and change["action"] == "replace")
        assert (change["count"] is not None) == (change["messages"] is not None)
    assert [u["address"] for u in data["not_managed"]] == [str(u.address) for u in plan.unmanaged]
    assert data["blocked"] is True
    assert data["broker"] == {"cluster_name": "rabbit@prod-1", "url": "https://rabbit.example.com:15671"}
    blocked = {c["address"]: [b["code"] for b in c["blockers"]] for c in data["changes"] if c["blockers"]}
    assert blocked == {
        "vhosts.iot.queues.orders": ["messages"],
        "vhosts.iot.queues.analytics": ["messages", "consumers"],
    }
    assert json.loads(render_json(safe_plan()))["blocked"] is False


def documented_keys() -> set[str]:
    return set(re.findall(r"`([^`\s]+)`", DOCS.read_text()))


def test_every_json_key_is_documented() -> None:
    data = json.loads(render_json(sample_plan()))
    documented = documented_keys()
    missing = {f"top-level {k}" for k in data if k not in documented}
    missing |= {f"summary {k}" for k in data["summary"] if k not in documented}
    for change in data["changes"]:
        missing |= {f"change {k}" for k in change if k not in documented}
        for side in ("before", "after"):
            missing |= {f"{change['kind']} {k}" for k in change[side] or {} if k not in documented}
        for value in ("action", "kind"):
            if change[value] not in documented:
                missing.add(f"{value} value {change[value]}")
        for blocker in change["blockers"]:
            missing |= {f"blocker {k}" for k in blocker if k not in documented}
            if blocker["code"] not in documented:
                missing.add(f"blocker code {blocker['code']}")
        missing |= {f"count {k}" for k in change["count"] or {} if k not in documented}
    missing |= {f"broker {k}" for k in data["broker"] if k not in documented}
    for item in data["not_managed"]:
        missing |= {f"not_managed {k}" for k in item if k not in documented}
    assert not missing, f"document these in {DOCS}: {sorted(missing)}"


def test_the_documented_actions_and_kinds_are_all_there_are() -> None:
    from typing import get_args

    from topo.model import ResourceKind
    from topo.plan.model import Action

    documented = documented_keys()
    assert set(get_args(Action)) <= documented
    assert set(get_args(ResourceKind)) <= documented
    text = DOCS.read_text()
    assert "`format_version` is `1`" in text


def test_the_documented_example_is_valid_json_with_the_same_keys() -> None:
    text = DOCS.read_text()
    example = json.loads(text.split("```json\n", 1)[1].split("```", 1)[0])
    real = json.loads(render_json(sample_plan()))
    assert list(example) == list(real)
    assert all(list(change) == list(real["changes"][0]) for change in example["changes"])


def test_empty_plan() -> None:
    plan = diff(Topology({"v": VHost("v")}), Topology({"v": VHost("v")}))
    assert render_text(plan) == "No changes. The broker matches the files.\n"
    assert render_markdown(plan) == "### topo plan\n\n**No changes. The broker matches the files.**\n"
    data = json.loads(render_json(plan))
    assert data["changes"] == [] and data["not_managed"] == []
    assert data["summary"] == {"create": 0, "update": 0, "replace": 0, "delete": 0}
    assert summary_line(plan) == "No changes. The broker matches the files."


def test_empty_plan_still_lists_what_is_not_managed() -> None:
    plan = diff(Topology({"v": VHost("v")}), Topology({"v": _vhost("v", Queue("theirs"))}))
    assert render_text(plan) == (
        "No changes. The broker matches the files.\n\n"
        "Not managed (1): no file declares these; topo leaves them alone:\n"
        "      vhosts.v.queues.theirs\n"
    )


def test_text_colours_through_the_styler() -> None:
    seen: list[tuple[str, str]] = []

    def style(text: str, colour: str) -> str:
        seen.append((text, colour))
        return f"<{colour}>{text}</{colour}>"

    out = render_text(sample_plan(), style)
    colours = {colour for _text, colour in seen}
    assert colours == {"green", "yellow", "magenta", "red", "bold"}
    assert "<magenta>-/+ queue vhosts.iot.queues.orders (forces replacement)</magenta>" in out
    assert "<bold>Plan: 12 to create, 3 to update, 4 to replace, 2 to delete.</bold>" in out
    assert "\x1b[" not in render_text(sample_plan())  # plain by default


def test_markdown_diff_block_lines_start_with_a_diff_marker_or_a_blank() -> None:
    markdown = render_markdown(sample_plan())
    block = markdown.split("```diff\n", 1)[1].split("```", 1)[0].splitlines()
    assert block
    for line in block:
        assert line[0] in "+-! @", line
    assert [line for line in block if line.startswith("@")] == ['@@ in vhost "billing" @@', '@@ in vhost "iot" @@']
    heads = [line for line in block if not line.startswith((" ", "@@ "))]
    assert len(heads) == len(sample_plan().changes)
    assert "! queue vhosts.iot.queues.orders (forces replacement)" in heads
    assert "! policy vhosts.iot.policies.tmp-limits (update in place)" in heads
    assert '- binding vhosts.iot.queues.orders.bindings[sensor-data "old.#"] (will be deleted)' in heads


@pytest.mark.parametrize(
    ("before", "after", "line"),
    [
        ({"message-ttl": 300000}, {"message-ttl": 600000}, "message-ttl: 5m → 10m"),
        ({"max-length-bytes": 1048576}, {"max-length-bytes": 1000}, "max-length-bytes: 1MiB → 1000"),
        ({}, {"max-length": 5}, "max-length: (none) → 5"),
        ({"max-length": 5}, {}, "max-length: 5 → (none)"),
        ({"overflow": "drop-head"}, {"overflow": "reject-publish"}, 'overflow: "drop-head" → "reject-publish"'),
    ],
)
def test_policy_updates_show_values_as_the_files_write_them(
    before: dict[str, Any], after: dict[str, Any], line: str
) -> None:
    plan = diff(
        Topology({"v": _vhost("v", policies=(Policy("p", ".*", definition=after),))}),
        Topology({"v": _vhost("v", policies=(Policy("p", ".*", definition=before),))}),
    )
    assert f"          {line}\n" in render_text(plan)


def test_markdown_embeds_the_graph_of_what_the_plan_touches() -> None:
    from topo.graph import render_mermaid
    from topo.plan.diff import diff

    desired = Topology(
        {
            "a": VHost("a", exchanges={"x": Exchange("x", "fanout")}, queues={"q": Queue("q")}),
            "b": VHost("b", queues={"same": Queue("same")}),
        }
    )
    observed = Topology({"a": VHost("a"), "b": VHost("b", queues={"same": Queue("same")})})
    plan = diff(desired, observed)
    touched = sorted({c.vhost for c in plan.changes})
    assert touched == ["a"]
    text = render_markdown(plan, graph=render_mermaid(desired, touched))
    block = text.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert "vhost a" in block and "vhost b" not in block
    assert "<summary>Graph of the vhosts this plan changes</summary>" in text
    assert "```mermaid" not in render_markdown(diff(desired, desired), graph="flowchart LR")


# -- blocked plans (issue 9.4) and wording (issue 9.13) --------------------------------------------------


def test_a_blocked_plan_says_so_in_every_format_with_the_words_apply_refuses_with() -> None:
    from topo.plan.safety import refusal

    plan = sample_plan()
    assert plan.blocked
    refused = refusal(plan.blocked_changes)
    text, markdown, data = render_text(plan), render_markdown(plan), json.loads(render_json(plan))
    for change in plan.blocked_changes:
        for blocker in change.blockers:
            assert f"! blocked: {blocker.message}" in text
            assert f"`{change.address}` {blocker.message}" in markdown
            assert f"queue {change.address.name!r} in vhost 'iot' {blocker.message}" in refused.message
    assert text.rstrip().endswith(
        'Blocked: 2 changes are blocked (marked "! blocked"): `topo apply` refuses this plan.'
    )
    assert "> :no_entry: **Blocked: 2 changes are blocked: `topo apply` refuses this plan.**" in markdown
    assert data["blocked"] is True
    # a plan nothing blocks says nothing of the kind
    safe = safe_plan()
    assert not safe.blocked
    assert "blocked" not in render_text(safe).lower() and "no_entry" not in render_markdown(safe)


def test_wording_one_message_and_plurals() -> None:
    plan = sample_plan()
    text = render_text(plan)
    assert "! blocked: holds 1 message: replacing it would drop it\n" in text
    assert (
        "! blocked: holds 3 messages (2 ready, 1 unacknowledged; the unacknowledged figure comes from the "
        "Management API's statistics, which lag up to ~5 s): replacing it would drop them\n"
    ) in text
    assert "! blocked: has 1 consumer: RabbitMQ refuses to delete a queue in use\n" in text
    assert "1 messages" not in text and "1 consumers" not in text
    markdown = render_markdown(plan)
    assert "Not managed: 3 resources no file declares" in markdown
    one = diff(Topology({"v": VHost("v")}), Topology({"v": _vhost("v", Queue("theirs"))}))
    assert "Not managed: 1 resource no file declares" in render_markdown(one)


def test_a_new_binding_to_a_replaced_queue_is_created_not_re_created() -> None:
    changes = {str(c.address): c for c in sample_plan().changes}
    existing = changes['vhosts.iot.queues.orders.bindings[sensor-data "orders.#"]']
    new = changes['vhosts.iot.queues.orders.bindings[sensor-data "orders.eu.#"]']
    assert existing.reasons == ("re-created: queue 'orders' is replaced",)
    assert new.action == "create" and new.reasons == ()


def test_the_markdown_plan_says_which_broker_it_was_made_against() -> None:
    markdown = render_markdown(sample_plan())
    assert markdown.startswith(
        "### topo plan\n\nMade against the broker `rabbit@prod-1` at https://rabbit.example.com:15671\n\n"
    )
    assert "@rabbit" not in markdown and "***" not in markdown


def test_a_fence_left_by_an_interrupted_apply_is_deleted_by_the_plan() -> None:
    plan = sample_plan()
    (fence,) = [c for c in plan.changes if c.kind == "policy" and c.action == "delete"]
    assert fence.address.name == "topo.fence.pdf-jobs"
    assert fence.reasons == (
        "left on queue 'pdf-jobs' by an interrupted apply: this fence makes the broker refuse messages published "
        "to the queue; apply removes it, and the probe messages (header x-topo-fence-probe) it left at the head "
        "of the queue",
    )
    assert "topo.fence.pdf-jobs" not in {u.address.name for u in plan.unmanaged}
    # a policy that only looks like a fence (another pattern) is someone else's: not managed, left alone
    lookalike = Policy("topo.fence.x", ".*", "queues", 1, {"max-length": 0, "overflow": "reject-publish"})
    other = diff(Topology({"v": VHost("v")}), Topology({"v": _vhost("v", policies=(lookalike,))}))
    assert other.empty and [u.address.name for u in other.unmanaged] == ["topo.fence.x"]
