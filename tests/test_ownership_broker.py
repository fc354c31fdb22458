"""Ownership on a real node, through the command line: two stacks in one vhost, prune, adopt, destroy, the
inventory surviving a restart of the broker, protect (a queue; a binding, a shovel and a federation upstream),
and --allow-data-loss with a queue holding messages.
The same behaviours, faster and with failures injected, on the in-memory broker: test_ownership_fake.py.
"""

from __future__ import annotations

import json
import secrets
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from support import publish, wait_for_messages

import devbroker
from topo import engine
from topo.broker.client import ManagementClient
from topo.cli import _register
from topo.cli.common import run
from topo.loader import load
from topo.model import Address
from topo.plan.ownership import PREFIX

pytestmark = pytest.mark.timeout(180)


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def topo(capsys: pytest.CaptureFixture[str], broker: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    _register()
    monkeypatch.setenv("TOPO_URL", broker.url)
    monkeypatch.setenv("TOPO_AMQP_URL", broker.amqp_url)
    monkeypatch.delenv("NO_COLOR", raising=False)

    def call(*args: str) -> Result:
        code = run(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return call


@pytest.fixture
def stacks(mgmt: httpx.Client) -> Iterator[Any]:
    """``stacks()`` gives a new unique stack name; their inventories are removed afterwards."""
    made: list[str] = []

    def new() -> str:
        made.append(f"s{secrets.token_hex(3)}")
        return made[-1]

    yield new
    for item in mgmt.get("/api/global-parameters").json():
        if any(f"{PREFIX}{name}" == item["name"] or f".{name}." in item["name"] for name in made):
            mgmt.delete(f"/api/global-parameters/{quote(item['name'], safe='')}")


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def queues(mgmt: httpx.Client, vhost: str) -> set[str]:
    return {q["name"] for q in mgmt.get(f"/api/queues/{quote(vhost, safe='')}").json()}


def state(topo: Any, stack: str) -> dict[str, Any]:
    result = topo("state", stack, "--format", "json")
    assert result.code == 0, result.err
    document: dict[str, Any] = json.loads(result.out)
    return document


def test_two_stacks_share_a_vhost_and_prune_only_their_own(
    topo: Any, vhost: str, mgmt: httpx.Client, stacks: Any, tmp_path: Path
) -> None:
    a, b = stacks(), stacks()
    file_a = write(
        tmp_path,
        "a.yaml",
        f"""\
        version: 1
        name: {a}
        vhosts:
          {vhost}:
            exchanges: {{events: {{type: topic}}}}
            queues:
              a-orders: {{bindings: [{{exchange: events, routing-key: "o.#"}}]}}
              a-audit: {{}}
        """,
    )
    file_b = write(
        tmp_path,
        "b.yaml",
        f"""\
        version: 1
        name: {b}
        vhosts:
          {vhost}:
            queues: {{b-invoices: {{}}}}
        """,
    )
    assert topo("apply", file_a, "--yes").code == 0
    assert topo("apply", file_b, "--yes").code == 0
    assert queues(mgmt, vhost) == {"a-orders", "a-audit", "b-invoices"}
    owned_a = {item["address"] for item in state(topo, a)["owned"]}
    assert f"vhosts.{vhost}.queues.a-orders" in owned_a and f"vhosts.{vhost}.queues.b-invoices" not in owned_a
    # each sees the other's as not managed, and a no-op plan of either is empty, --prune or not
    plan_b = topo("plan", file_b, "--prune", "--detailed-exitcode")
    assert plan_b.code == 0, plan_b.out
    assert "a-orders" in plan_b.out and f"owned by stack '{a}'" in plan_b.out
    # stack a drops a-audit from its files: listed, then pruned with --prune
    write(
        tmp_path,
        "a.yaml",
        f"""\
        version: 1
        name: {a}
        vhosts:
          {vhost}:
            exchanges: {{events: {{type: topic}}}}
            queues:
              a-orders: {{bindings: [{{exchange: events, routing-key: "o.#"}}]}}
        """,
    )
    listed = topo("plan", file_a, "--detailed-exitcode")
    assert listed.code == 0 and "--prune deletes it" in listed.out
    pruned = topo("plan", file_a, "--prune", "--format", "json", "--detailed-exitcode")
    assert pruned.code == 2
    document = json.loads(pruned.out)
    deletes = [c["address"] for c in document["changes"] if c["action"] == "delete"]
    assert deletes == [f"vhosts.{vhost}.queues.a-audit"]
    assert topo("apply", file_a, "--prune", "--yes").code == 0
    assert queues(mgmt, vhost) == {"a-orders", "b-invoices"}
    assert topo("plan", file_a, "--prune", "--detailed-exitcode").code == 0
    assert topo("plan", file_b, "--prune", "--detailed-exitcode").code == 0


def test_adopt_takes_over_an_existing_queue(
    topo: Any, vhost: str, mgmt: httpx.Client, stacks: Any, tmp_path: Path
) -> None:
    mgmt.put(f"/api/queues/{quote(vhost, safe='')}/legacy", json={"durable": True}).raise_for_status()
    a = stacks()
    file_a = write(
        tmp_path,
        "a.yaml",
        f"""\
        version: 1
        name: {a}
        vhosts:
          {vhost}:
            queues: {{legacy: {{}}, fresh: {{}}}}
        """,
    )
    plan = topo("plan", file_a)
    assert "Not owned (2)" in plan.out and "exists, not created by the stack: --adopt takes it over" in plan.out
    assert topo("apply", file_a, "--yes").code == 0
    owned = {item["address"] for item in state(topo, a)["owned"]}
    assert f"vhosts.{vhost}.queues.fresh" in owned and f"vhosts.{vhost}.queues.legacy" not in owned
    adopting = topo("plan", file_a, "--adopt")
    assert "Adopted" in adopting.out and f"vhosts.{vhost}.queues.legacy" in adopting.out
    assert topo("apply", file_a, "--adopt", "--yes").code == 0
    owned = {item["address"] for item in state(topo, a)["owned"]}
    assert f"vhosts.{vhost}.queues.legacy" in owned


def test_protect_and_allow_data_loss_with_a_queue_holding_messages(
    topo: Any, vhost: str, mgmt: httpx.Client, stacks: Any, tmp_path: Path
) -> None:
    a = stacks()
    file_a = write(
        tmp_path,
        "a.yaml",
        f"""\
        version: 1
        name: {a}
        vhosts:
          {vhost}:
            queues:
              precious: {{protect: true}}
              jobs: {{}}
        """,
    )
    assert topo("apply", file_a, "--yes").code == 0
    for _ in range(3):
        assert publish(mgmt, vhost, "", "jobs")
    assert wait_for_messages(mgmt, vhost, "jobs") == 3
    write(
        tmp_path,
        "a.yaml",
        f"""\
        version: 1
        name: {a}
        vhosts:
          {vhost}: {{}}
        """,
    )
    blocked = topo("plan", file_a, "--prune", "--detailed-exitcode")
    assert blocked.code == 3, blocked.out
    assert "! blocked: holds 3 messages" in blocked.out and "! blocked: is protected" in blocked.out
    markdown = topo("plan", file_a, "--prune", "--format", "markdown")
    assert ":no_entry:" in markdown.out and "protect: true" in markdown.out
    refused = topo("apply", file_a, "--prune", "--yes", "--allow-data-loss")
    assert refused.code == 1 and "protected" in refused.err  # protect holds whatever the flags
    assert queues(mgmt, vhost) == {"precious", "jobs"}
    # protect taken off first (the queue still declared), then the prune with --allow-data-loss
    write(
        tmp_path,
        "a.yaml",
        f"""\
        version: 1
        name: {a}
        vhosts:
          {vhost}:
            queues: {{precious: {{}}}}
        """,
    )
    assert topo("apply", file_a, "--yes").code == 0
    allowed = topo("plan", file_a, "--prune", "--allow-data-loss", "--format", "json", "--detailed-exitcode")
    assert allowed.code == 2
    (change,) = [c for c in json.loads(allowed.out)["changes"] if c["kind"] == "queue"]
    assert change["messages"] == 3 and change["blockers"] == []
    assert any("data loss allowed (--allow-data-loss): holds 3 messages" in w for w in change["warnings"])
    done = topo("apply", file_a, "--prune", "--allow-data-loss", "--yes")
    assert done.code == 0, done.err
    assert "Dropped queue 'jobs'" in done.err and "3 messages" in done.err
    assert queues(mgmt, vhost) == {"precious"}


def test_protected_binding_shovel_and_upstream_survive_a_prune_and_destroy(
    topo: Any, vhost: str, mgmt: httpx.Client, stacks: Any, tmp_path: Path
) -> None:
    """``protect: true`` on a binding, a shovel and a federation upstream: removed from the files, a prune of
    them is blocked in every plan form (``--detailed-exitcode`` 3), apply refuses it and deletes nothing, and
    ``topo destroy`` is blocked too."""
    a = stacks()
    here = quote(vhost, safe="")
    links = f"""\
            shovels:
              to-sink:
                source: {{uri: "amqp:///{here}", queue: outbound}}
                destination: {{uri: "amqp:///{here}", queue: sink}}
                protect: true
            federation-upstreams:
              eu: {{uri: "amqp://upstream.invalid/shop", protect: true}}
    """
    declared = f"""\
        version: 1
        name: {a}
        vhosts:
          {vhost}:
            exchanges:
              events: {{type: topic}}
            queues:
              outbound: {{}}
              sink: {{}}
              jobs:
                bindings:
                  - {{exchange: events, routing-key: "j.#", protect: true}}
    """
    file_a = write(tmp_path, "a.yaml", declared.rstrip(" ") + links)
    applied = topo("apply", file_a, "--yes")
    assert applied.code == 0, applied.err
    binding = f'vhosts.{vhost}.queues.jobs.bindings[events "j.#"]'
    protected = {binding, f"vhosts.{vhost}.shovels.to-sink", f"vhosts.{vhost}.federation-upstreams.eu"}
    assert {item["address"] for item in state(topo, a)["owned"] if item["protected"]} == protected

    def on_broker() -> tuple[list[str], int, int]:
        keys = [b["routing_key"] for b in mgmt.get(f"/api/bindings/{here}/e/events/q/jobs").json()]
        shovel = mgmt.get(f"/api/parameters/shovel/{here}/to-sink").status_code
        return keys, shovel, mgmt.get(f"/api/parameters/federation-upstream/{here}/eu").status_code

    assert on_broker() == (["j.#"], 200, 200)
    # the binding, the shovel and the upstream removed from the files (the queue jobs stays declared)
    write(tmp_path, "a.yaml", declared.replace('- {exchange: events, routing-key: "j.#", protect: true}', "[]"))
    blocked = topo("plan", file_a, "--prune", "--detailed-exitcode")
    assert blocked.code == 3, blocked.out + blocked.err
    for address in protected:
        assert f"{address} (will be deleted)" in blocked.out
    assert blocked.out.count("! blocked: is protected (`protect: true`): no plan may delete it") == 3
    as_json = topo("plan", file_a, "--prune", "--format", "json")
    blockers = {c["address"]: [b["code"] for b in c["blockers"]] for c in json.loads(as_json.out)["changes"]}
    assert {address for address, codes in blockers.items() if "protected" in codes} == protected
    markdown = topo("plan", file_a, "--prune", "--format", "markdown")
    assert ":no_entry:" in markdown.out and all(f"`{address}` is protected" in markdown.out for address in protected)
    refused = topo("apply", file_a, "--prune", "--yes", "--allow-data-loss")
    assert refused.code == 1 and "protected" in refused.err
    assert on_broker() == (["j.#"], 200, 200)  # nothing deleted
    destroyed = topo("destroy", a, "--yes", "--allow-data-loss")
    assert destroyed.code == 1 and "protected" in destroyed.err
    assert on_broker() == (["j.#"], 200, 200)
    assert {"outbound", "sink", "jobs"} <= queues(mgmt, vhost)


def test_a_protected_permission_is_not_revoked_when_the_files_stop_giving_it(
    topo: Any, vhost: str, mgmt: httpx.Client, stacks: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A declared user's permission and topic permissions that its files no longer give are revoked, unless
    protected: the stack's inventory remembers ``protect``, the plan is blocked and apply revokes nothing."""
    a, user = stacks(), f"t-prot-{secrets.token_hex(3)}"
    monkeypatch.setenv("PROT_PASSWORD", secrets.token_hex(8))
    given = f"""\
        version: 1
        name: {a}
        vhosts:
          {vhost}:
            exchanges: {{events: {{type: topic}}}}
        users:
          {user}:
            password: ${{env:PROT_PASSWORD}}
            permissions:
              {vhost}: {{configure: "^$", write: ".*", read: ".*", protect: true}}
            topic-permissions:
              {vhost}:
                events: {{write: "^order[.]", read: "^$", protect: true}}
        """
    here, who = quote(vhost, safe=""), quote(user, safe="")
    try:
        file_a = write(tmp_path, "a.yaml", given)
        applied = topo("apply", file_a, "--yes")
        assert applied.code == 0, applied.err
        held = [f"users.{user}.permissions.{vhost}", f"users.{user}.topic-permissions.{vhost}"]
        assert state(topo, a)["protected_not_owned"] == held  # no stack owns a permission; it remembers protect
        write(tmp_path, "a.yaml", given.split("            permissions:")[0])
        blocked = topo("plan", file_a, "--detailed-exitcode")
        assert blocked.code == 3, blocked.out + blocked.err
        for address in held:
            assert f"{address} (will be deleted)" in blocked.out
        assert blocked.out.count("! blocked: is protected (`protect: true`): no plan may delete it") == 2
        refused = topo("apply", file_a, "--yes")
        assert refused.code == 1 and "protected" in refused.err
        assert mgmt.get(f"/api/permissions/{here}/{who}").status_code == 200
        assert mgmt.get(f"/api/topic-permissions/{here}/{who}").status_code == 200
    finally:
        mgmt.delete(f"/api/users/{who}")


def test_destroy_asks_is_guarded_and_deletes_what_the_stack_owns(
    topo: Any, broker: Any, mgmt: httpx.Client, stacks: Any, tmp_path: Path
) -> None:
    a = stacks()
    own_vhost = f"t-destroy-{secrets.token_hex(3)}"
    file_a = write(
        tmp_path,
        "a.yaml",
        f"""\
        version: 1
        name: {a}
        vhosts:
          {own_vhost}:
            queues: {{jobs: {{}}}}
        """,
    )
    try:
        assert topo("apply", file_a, "--yes").code == 0
        publish(mgmt, own_vhost, "", "jobs")
        assert wait_for_messages(mgmt, own_vhost, "jobs") == 1
        blocked = topo("destroy", a, "--yes")
        assert blocked.code == 1 and "holds 1 message" in blocked.err
        asked = topo("destroy", a, "--allow-data-loss")
        assert asked.code == 1 and "confirmation" in asked.err  # no terminal: it never deletes silently
        assert mgmt.get(f"/api/vhosts/{own_vhost}").status_code == 200
        done = topo("destroy", a, "--yes", "--allow-data-loss")
        assert done.code == 0, done.err
        assert mgmt.get(f"/api/vhosts/{own_vhost}").status_code == 404
        assert topo("state", a).code == 1
    finally:
        mgmt.delete(f"/api/vhosts/{own_vhost}")


@pytest.mark.broker
def test_the_inventory_survives_a_restart_of_the_broker(tmp_path: Path) -> None:
    try:
        node = devbroker.start(tmp_path / "node")
    except devbroker.DevBrokerError as exc:  # pragma: no cover - no RabbitMQ here
        pytest.skip(exc.message)
    desired = load(
        [
            write(
                tmp_path,
                "a.yaml",
                """\
                version: 1
                name: survivor
                vhosts:
                  kept:
                    queues: {jobs: {}}
                """,
            )
        ]
    )
    try:
        with ManagementClient(node.url, amqp_url=node.amqp_url) as client:
            engine.apply(client, desired)
        node.stop()
        node = devbroker.start(tmp_path / "node", name=node.name)
        with ManagementClient(node.url, amqp_url=node.amqp_url) as client:
            assert Address("queue", "kept", "jobs") in engine.stacks(client)["survivor"].owned
            assert engine.plan(client, desired).empty
    finally:
        node.stop()
