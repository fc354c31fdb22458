"""``topo plan`` with read-only credentials (a pull-request pipeline's), on a real node.

RabbitMQ 3.10.8 shows ``GET /api/definitions/{vhost}`` and ``GET /api/vhosts/{vhost}`` to administrators
only; a user with the ``monitoring`` or ``management`` tag and a permission on the vhost (any, even one
that grants nothing) may read its listings. :class:`topo.broker.live.LiveBroker` then reads the vhost
resource by resource into the same model: these tests compare both reads of one populated vhost, and run
the command as such users.
"""

from __future__ import annotations

import json
import secrets
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pika
import pytest
from support import publish, wait_for_messages

from topo import engine
from topo.broker.client import ManagementClient
from topo.broker.live import LiveBroker
from topo.cli import _register
from topo.cli.common import run
from topo.errors import PermissionDenied
from topo.passwords import hash_password
from topo.urls import parse_management

PASSWORD = "ro-secret-pw"
HASH = hash_password("declared-pw")


def q(name: str) -> str:
    return quote(name, safe="")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TOPO_URL", "TOPO_AMQP_URL", "TOPO_DEBUG", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    _register()


@pytest.fixture
def make_user(mgmt: httpx.Client) -> Iterator[Callable[..., str]]:
    """``make_user(tags, vhost=None, patterns=("", "", ""))``: a user with ``PASSWORD``, given ``patterns``
    (configure, write, read) on ``vhost``; deleted afterwards."""
    created: list[str] = []

    def make(tags: str, vhost: str | None = None, patterns: tuple[str, str, str] = ("", "", "")) -> str:
        name = f"ro-{tags.replace(',', '-') or 'none'}-{secrets.token_hex(3)}"
        mgmt.put(f"/api/users/{name}", json={"password": PASSWORD, "tags": tags}).raise_for_status()
        created.append(name)
        if vhost is not None:
            body = dict(zip(("configure", "write", "read"), patterns, strict=True))
            mgmt.put(f"/api/permissions/{q(vhost)}/{name}", json=body).raise_for_status()
        return name

    yield make
    for name in created:
        mgmt.delete(f"/api/users/{name}")


def url_of(broker: Any, user: str) -> str:
    return parse_management(broker.url).with_credentials(user, PASSWORD).unparse()


def amqp_url_of(broker: Any, user: str) -> str:
    parsed = pika.URLParameters(broker.amqp_url)
    return f"amqp://{user}:{PASSWORD}@{parsed.host}:{parsed.port}/"


def cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = run(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- the read: resource by resource is the definitions' read ----------------------------------------------


def populate(mgmt: httpx.Client, vhost: str) -> None:
    """Every shape the export treats apart: internal, auto-delete and alternate exchanges; classic (with
    arguments), quorum, non-durable and auto-delete queues; bindings with arguments, exchange to exchange, an
    exchange to itself, from a broker exchange; policies, operator policies, limits, metadata."""
    v = q(vhost)

    def ok(response: httpx.Response) -> None:
        response.raise_for_status()

    ok(mgmt.put(f"/api/vhosts/{v}", json={"description": "shop floor", "tags": "b,a", "tracing": False}))
    ok(mgmt.put(f"/api/exchanges/{v}/events", json={"type": "topic", "durable": True}))
    ok(
        mgmt.put(
            f"/api/exchanges/{v}/inner",
            json={"type": "headers", "internal": True, "arguments": {"alternate-exchange": "events"}},
        )
    )
    ok(mgmt.put(f"/api/exchanges/{v}/brief", json={"type": "fanout", "durable": False, "auto_delete": True}))
    ok(mgmt.put(f"/api/queues/{v}/orders", json={"durable": True, "arguments": {"x-message-ttl": 60000}}))
    ok(mgmt.put(f"/api/queues/{v}/votes", json={"durable": True, "arguments": {"x-queue-type": "quorum"}}))
    ok(mgmt.put(f"/api/queues/{v}/scratch", json={"durable": False}))
    ok(mgmt.put(f"/api/queues/{v}/passing", json={"durable": False, "auto_delete": True}))
    ok(mgmt.post(f"/api/bindings/{v}/e/events/q/orders", json={"routing_key": "orders.#"}))
    ok(mgmt.post(f"/api/bindings/{v}/e/events/e/inner", json={"routing_key": "r", "arguments": {"x-match": "all"}}))
    ok(mgmt.post(f"/api/bindings/{v}/e/events/e/events", json={"routing_key": "loop"}))
    ok(mgmt.post(f"/api/bindings/{v}/e/amq.topic/q/votes", json={"routing_key": "votes.*"}))
    policy = {"pattern": "^orders$", "definition": {"max-length": 10}, "apply-to": "queues", "priority": 3}
    ok(mgmt.put(f"/api/policies/{v}/cap", json=policy))
    ok(mgmt.put(f"/api/operator-policies/{v}/ceiling", json={**policy, "definition": {"max-length": 100}}))
    ok(mgmt.put(f"/api/vhost-limits/{v}/max-queues", json={"value": 50}))


def test_reading_resource_by_resource_gives_what_the_definitions_give(
    broker: Any, mgmt: httpx.Client, vhost: str, make_user: Callable[..., str]
) -> None:
    populate(mgmt, vhost)
    # an exclusive queue and a binding to it: the export leaves both out, and so must the listings' read
    connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url.rstrip("/") + "/" + q(vhost)))
    try:
        channel = connection.channel()
        channel.queue_declare("mine", exclusive=True)
        channel.queue_bind("mine", "events", routing_key="mine.#")
        with ManagementClient(broker.url, amqp_url="") as client:
            admin = LiveBroker(client)
            expected = admin.read_vhost(vhost)
            assert not admin.read_by_resource
        assert expected is not None and len(expected.queues) == 4 and len(expected.bindings) == 4
        assert expected.operator_policies and expected.limits == {"max-queues": 50}
        for tags, patterns in (("monitoring", ("", "", "")), ("management", ("^$", "^$", ".*"))):
            user = make_user(tags, vhost, patterns)
            with ManagementClient(url_of(broker, user), amqp_url="") as client:
                reader = LiveBroker(client)
                assert reader.read_vhost(vhost) == expected, tags
                assert reader.read_by_resource
                assert reader.read_vhost(f"{vhost}-nowhere") is None  # a vhost that does not exist: 404
    finally:
        connection.close()


def test_a_user_without_a_permission_on_the_vhost_gets_one_clear_error(
    broker: Any, vhost: str, make_user: Callable[..., str]
) -> None:
    user = make_user("monitoring")  # sees every vhost's name, may read inside none
    with ManagementClient(url_of(broker, user), amqp_url="") as client, pytest.raises(PermissionDenied) as info:
        LiveBroker(client).read_vhost(vhost)
    assert f"may not read vhost {vhost!r}" in info.value.message
    assert "configure ''" in (info.value.hint or "") and "monitoring" in (info.value.hint or "")
    assert PASSWORD not in str(info.value) + (info.value.hint or "")


# -- the command, as a pull-request pipeline runs it ------------------------------------------------------

TOPOLOGY = """\
version: 1
vhosts:
  {vhost}:
    exchanges:
      events: {{type: topic}}
    queues:
      orders:
        message-ttl: {ttl}
        bindings: [{{exchange: events, routing-key: "orders.#"}}]
"""


def write(tmp_path: Path, vhost: str, ttl: str = "1m", extra: str = "") -> str:
    path = tmp_path / "topology.yaml"
    path.write_text(TOPOLOGY.format(vhost=vhost, ttl=ttl) + textwrap.dedent(extra))
    return str(path)


def test_plan_as_a_monitoring_user_reads_resource_by_resource_and_counts_exactly(
    broker: Any,
    mgmt: httpx.Client,
    vhost: str,
    tmp_path: Path,
    make_user: Callable[..., str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write(tmp_path, vhost)
    code, out, err = cli("apply", path, "--url", broker.url, "--amqp-url", broker.amqp_url, "--yes", capsys=capsys)
    assert code == 0, err
    reader = make_user("monitoring", vhost)  # a permission that grants nothing: enough to read and count
    url, amqp = url_of(broker, reader), amqp_url_of(broker, reader)

    code, out, err = cli("plan", path, "--url", url, "--amqp-url", amqp, capsys=capsys)
    assert code == 0, err
    assert out.startswith("No changes. The broker matches the files.\n")
    assert f"Note: Read resource by resource: user {reader!r} may not read the vhosts' definitions" in out
    assert PASSWORD not in out + err

    # a change that would drop messages: blocked, with the count AMQP gives this user (a passive declare)
    publish(mgmt, vhost, "events", "orders.1")
    wait_for_messages(mgmt, vhost, "orders")
    path = write(tmp_path, vhost, ttl="2m")
    code, out, err = cli(
        "plan", path, "--url", url, "--amqp-url", amqp, "--format", "json", "--detailed-exitcode", capsys=capsys
    )
    assert code == 3, err
    document = json.loads(out)
    assert document["read"]["by_resource"] is True and document["read"]["not_compared"] == []
    (replace,) = [c for c in document["changes"] if c["action"] == "replace"]
    assert replace["address"] == f"vhosts.{vhost}.queues.orders"
    assert replace["count"] == {"ready": 1, "unacknowledged": 0, "consumers": 0, "exact": True}
    assert [b["code"] for b in replace["blockers"]] == ["messages"]

    # apply needs the administrator tag: with these credentials it stops at its first write, in one error
    path = write(tmp_path, vhost)
    Path(path).write_text(Path(path).read_text() + "      more: {}\n")  # one more queue: nothing to drop
    code, out, err = cli("apply", path, "--url", url, "--amqp-url", amqp, "--yes", capsys=capsys)
    assert code == 1 and "Traceback" not in err
    (error,) = [line for line in err.splitlines() if line.startswith("Error:")]
    assert "is not an administrator" in error, err
    assert mgmt.get(f"/api/queues/{q(vhost)}/more").status_code == 404


def test_plan_as_a_management_user_with_users_in_the_files_says_what_it_did_not_compare(
    broker: Any, vhost: str, tmp_path: Path, make_user: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        vhost,
        extra=f"""
        users:
          ro-declared-{secrets.token_hex(3)}:
            password-hash: "{HASH}"
            permissions:
              {vhost}: {{configure: "", write: "", read: ".*"}}
        global-parameters:
          ro-doc: {{a: 1}}
        """,
    )
    reader = make_user("management", vhost, ("^$", "^$", ".*"))
    url = url_of(broker, reader)
    code, out, err = cli("plan", path, "--url", url, "--amqp-url", "", capsys=capsys)
    assert code == 0, err
    assert "+ exchange vhosts." in out and "user " not in out.split("Note:")[0].replace(f"user {reader!r}", "")
    assert "Note: Not compared: users, permissions, topic permissions." in out
    assert "(that needs the administrator tag)" in out
    assert "Note: Not compared: global parameters." in out and "administrator or policymaker tag" in out

    code, out, err = cli("plan", path, "--url", url, "--amqp-url", "", "--format", "markdown", capsys=capsys)
    assert code == 0, err
    assert "> :information_source: Not compared: users, permissions, topic permissions." in out

    # apply (and the library's plan without partial=True) stop with the tag named
    with ManagementClient(url, amqp_url="") as client, pytest.raises(PermissionDenied) as info:
        engine.load_and_plan(client, path)
    assert "administrator" in info.value.message


def test_an_empty_plan_that_could_not_compare_everything_does_not_say_the_broker_matches(
    broker: Any, vhost: str, tmp_path: Path, make_user: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, vhost)
    assert cli("apply", path, "--url", broker.url, "--amqp-url", "", "--yes", capsys=capsys)[0] == 0
    with_users = write(tmp_path, vhost, extra=f'users:\n  ro-someone:\n    password-hash: "{HASH}"\n')
    reader = make_user("monitoring", vhost)
    code, out, err = cli("plan", with_users, "--url", url_of(broker, reader), "--amqp-url", "", capsys=capsys)
    assert code == 0, err
    first = out.splitlines()[0]
    assert first == "No changes in what was compared (not compared: users, permissions, topic permissions)."
    assert "The broker matches the files" not in out


# -- shovels and federation: shown to policymakers and administrators only --------------------------------

LINKS = """\
version: 1
vhosts:
  {vhost}:
    queues:
      outbound: {{}}
      inbound: {{}}
    shovels:
      along:
        source: {{uri: "amqp:///{path}", queue: outbound}}
        destination: {{uri: "amqp:///{path}", queue: inbound}}
    federation-upstreams:
      self:
        uri: amqp:///{path}
        max-hops: 1
    federation-upstream-sets:
      every: [self]
"""


def test_links_are_read_by_resource_by_a_policymaker_and_noted_as_not_compared_without_one(
    broker: Any, vhost: str, tmp_path: Path, make_user: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "links.yaml"
    path.write_text(LINKS.format(vhost=vhost, path=q(vhost)))
    code, out, err = cli("apply", str(path), "--url", broker.url, "--amqp-url", "", "--yes", capsys=capsys)
    assert code == 0, err
    with ManagementClient(broker.url, amqp_url="") as client:
        expected = LiveBroker(client).read_vhost(vhost)
    assert expected is not None and expected.shovels and expected.federation_upstreams
    assert expected.federation_upstream_sets

    policymaker = make_user("policymaker", vhost)  # may read the links' parameters: the same vhost
    with ManagementClient(url_of(broker, policymaker), amqp_url="") as client:
        reader = LiveBroker(client)
        assert reader.read_vhost(vhost) == expected
        assert reader.read_by_resource and reader.unread_kinds(vhost) == frozenset()

    monitor = make_user("monitoring", vhost)  # may not: compared nowhere, and the plan says so
    with ManagementClient(url_of(broker, monitor), amqp_url="") as client:
        reader = LiveBroker(client)
        seen = reader.read_vhost(vhost)
        assert seen is not None and seen.queues == expected.queues and not seen.shovels
        assert reader.unread_kinds(vhost) == {"shovel", "federation-upstream", "federation-upstream-set"}
    code, out, err = cli("plan", str(path), "--url", url_of(broker, monitor), "--amqp-url", "", capsys=capsys)
    assert code == 0, err
    assert out.splitlines()[0] == (
        "No changes in what was compared (not compared: federation upstreams, federation upstream sets, shovels "
        f"in vhost {vhost!r})."
    )
    assert "administrator or policymaker tag" in out
    code, out, err = cli("plan", str(path), "--url", url_of(broker, monitor), "--format", "json", capsys=capsys)
    assert {(item["kind"], item["vhost"]) for item in json.loads(out)["read"]["not_compared"]} == {
        ("shovel", vhost),
        ("federation-upstream", vhost),
        ("federation-upstream-set", vhost),
    }
    with ManagementClient(url_of(broker, monitor), amqp_url="") as client, pytest.raises(PermissionDenied) as info:
        engine.load_and_plan(client, path)  # apply's read: an error naming the tag
    assert "policymaker" in (info.value.hint or "")


# -- what a user reads: the notes in every form (golden) ---------------------------------------------------


def test_golden_notes_of_a_plan_read_by_resource_that_could_not_compare_everything() -> None:
    from support import check_golden

    from topo import __version__
    from topo.model import Queue, Topology, VHost
    from topo.plan.diff import diff
    from topo.plan.model import BrokerInfo, ReadNotes
    from topo.plan.render import render_json, render_markdown, render_text

    desired = Topology({"shop": VHost("shop", queues={"orders": Queue("orders")})})
    plan = diff(desired, Topology({"shop": VHost("shop")}))
    plan.broker = BrokerInfo(cluster_name=None, url="https://rabbit.example.com:15671")
    plan.read = ReadNotes(
        user="ci-reader",
        by_resource=True,
        not_compared=(("user", None), ("permission", None), ("global-parameter", None), ("shovel", "shop")),
    )
    check_golden("plan/readonly.txt", render_text(plan))
    check_golden("plan/readonly.md", render_markdown(plan))
    check_golden("plan/readonly.json", render_json(plan).replace(json.dumps(__version__), '"0.0.0-golden"'))
    empty = diff(desired, desired)
    empty.read = ReadNotes(user="ci-reader", by_resource=True, not_compared=(("user", None),))
    check_golden("plan/readonly-empty.txt", render_text(empty))
