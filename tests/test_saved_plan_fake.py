"""Saved plans through the engine on the in-memory broker (tests/fakebroker.py): milliseconds, no node.

The same behaviours run against a real node in tests/test_saved_plan.py and tests/test_gitops.py; these pin
the edge's logic: make → write → read → check → apply, what makes a plan stale (a managed resource changed,
the plan made now differs, another cluster), what does not (a resource no file declares), and the users'
passwords read again from their sources.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakebroker import FakeRabbit
from support import build_vhost

from topo import engine, saved
from topo.errors import StalePlan, UsageError
from topo.model import Binding, Exchange, Permission, Queue, Secret, Topology, User

V = "v"


def desired(ttl: int = 60_000, *, extra: bool = False) -> Topology:
    items: list[Exchange | Queue | Binding] = [
        Exchange("ex", "topic"),
        Queue("orders", arguments={"x-message-ttl": ttl}),
        Binding("ex", "orders", routing_key="orders.#"),
    ]
    if extra:
        items.append(Queue("payments"))
    return Topology({V: build_vhost(V, *items)})


def save(fake: FakeRabbit, topology: Topology, path: Path) -> saved.SavedPlan:
    client = fake.client()
    planned, observed = engine.plan_observed(client, topology)
    saved.write(path, saved.make(topology, engine.describe_broker(client, planned), observed))
    return saved.read(path)


def apply(fake: FakeRabbit, plan: saved.SavedPlan) -> None:
    client = fake.client()
    wanted, planned = saved.check(client, plan)
    engine.apply(client, wanted, planned, recount=False)


def test_a_saved_plan_applies_what_it_saved_and_then_is_stale(tmp_path: Path) -> None:
    fake = FakeRabbit()
    plan = save(fake, desired(), tmp_path / "plan.json")
    assert plan.plan["summary"]["create"] == 4  # the vhost, the exchange, the queue, the binding
    apply(fake, plan)
    assert fake.vhost(V).queues["orders"].arguments["x-message-ttl"] == 60_000
    with pytest.raises(StalePlan) as caught:
        saved.check(fake.client(), plan)
    assert "vhosts.v.queues.orders was created" in caught.value.changed
    assert "vhosts.v was created" in caught.value.changed


def test_what_changed_on_the_broker_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    fake = FakeRabbit()
    engine.apply(fake.broker(), desired())
    plan = save(fake, desired(120_000, extra=True), tmp_path / "plan.json")
    del fake.vhost(V).exchanges["ex"]
    writes = len(fake.writes())
    with pytest.raises(StalePlan) as caught:
        apply(fake, plan)
    assert caught.value.changed == ("vhosts.v.exchanges.ex was deleted",)
    assert caught.value.exit_code == 4 and caught.value.hint
    assert len(fake.writes()) == writes


def test_a_resource_no_file_declares_does_not_make_a_plan_stale(tmp_path: Path) -> None:
    fake = FakeRabbit()
    engine.apply(fake.broker(), desired())
    plan = save(fake, desired(extra=True), tmp_path / "plan.json")
    engine.apply(fake.broker(), Topology({V: build_vhost(V, Queue("client-own"))}))  # someone else's queue
    apply(fake, plan)
    assert "payments" in fake.vhost(V).queues and "client-own" in fake.vhost(V).queues


def test_another_cluster_is_refused(tmp_path: Path) -> None:
    plan = save(FakeRabbit("rabbit@staging"), desired(), tmp_path / "plan.json")
    with pytest.raises(StalePlan) as caught:
        saved.check(FakeRabbit("rabbit@production").client(), plan)
    assert "cluster 'rabbit@staging', and this one is cluster 'rabbit@production'" in caught.value.message


def users(password_source: str) -> Topology:
    topology = desired()
    topology.users = {"svc": User("svc", password=Secret("s3cret-pw", password_source))}
    topology.permissions = {("svc", V): Permission("svc", V, "^$", "^$", "^$")}
    return topology


def test_a_password_is_read_from_its_source_where_the_plan_is_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeRabbit()
    path = tmp_path / "plan.json"
    plan = save(fake, users("${env:SVC_PW}"), path)
    assert "s3cret-pw" not in path.read_text()
    assert json.loads(path.read_text())["desired"]["users"]["svc"]["password"] == {"source": "${env:SVC_PW}"}
    monkeypatch.delenv("SVC_PW", raising=False)
    with pytest.raises(UsageError) as missing:
        apply(fake, plan)
    assert missing.value.message.startswith(
        "users.svc: the saved plan takes a secret from ${env:SVC_PW}, which is not set"
    )
    monkeypatch.setenv("SVC_PW", "s3cret-pw")
    apply(fake, plan)
    assert fake.users["svc"].password_hash
    # the password changes where the plan is applied: the plan made now differs (an update), named
    plan = save(fake, users("${env:SVC_PW}"), path)
    assert plan.plan["changes"] == []
    monkeypatch.setenv("SVC_PW", "another-pw")
    with pytest.raises(StalePlan) as caught:
        saved.check(fake.client(), plan)
    assert caught.value.changed == ("users.svc: the broker now needs an update the saved plan does not have",)
    assert "another-pw" not in str(caught.value) and "s3cret-pw" not in str(caught.value)


def test_a_link_uri_with_a_default_is_read_again_where_the_plan_is_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from topo.loader import load

    root = Path(__file__).resolve().parent.parent
    monkeypatch.delenv("LEGACY_URI", raising=False)
    monkeypatch.setenv("COMMERCE_URI", "amqp:///elsewhere")
    topology = load(root / "topologies" / "links.yaml")
    plan = save(FakeRabbit(plugins=("rabbitmq_shovel", "rabbitmq_federation")), topology, tmp_path / "plan.json")
    text = (tmp_path / "plan.json").read_text()
    assert "${env:LEGACY_URI:-amqp:///legacy}" in text and "amqp:///elsewhere" not in text
    resolved = saved.with_secrets(plan.desired)
    for vhost in resolved.vhosts.values():
        for shovel in vhost.shovels.values():
            assert [u.value for u in shovel.source_uris] == ["amqp:///legacy"]
            assert [u.value for u in shovel.destination_uris] == ["amqp:///elsewhere"]
    elsewhere = saved.with_secrets(plan.desired, {"LEGACY_URI": "amqp:///other"})  # what the apply's environment says
    shovel = elsewhere.vhosts["legacy"].shovels["legacy-orders"]
    assert [u.value for u in shovel.source_uris] == ["amqp:///other"]
    assert [u.value for u in shovel.destination_uris] == ["amqp:///commerce"]
