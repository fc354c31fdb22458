"""The broker port's contract, run twice: on a real node and on the in-memory broker (tests/fakebroker.py).

Each scenario drives the live adapter (topo.broker.live.LiveBroker) through the port and checks what the
engine relies on. On the node it proves the adapter; on the fake, the same assertions prove that the fake
models RabbitMQ where the fast tests (test_engine_fake.py) lean on it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fakebroker import FakeRabbit
from support import publish

from topo.broker.client import ManagementClient
from topo.broker.live import STREAM_UNCOUNTABLE, LiveBroker
from topo.broker.port import Broker, Deleted, DropCheck
from topo.definitions import binding_definition, exchange_definition, queue_definition
from topo.errors import BrokerError, PermissionDenied
from topo.model import (
    Binding,
    Exchange,
    GlobalParameter,
    PasswordHash,
    Permission,
    Policy,
    Queue,
    TopicPermission,
    TopicPermissions,
)
from topo.passwords import SHA256, SHA512, hash_password, matches
from topo.plan.safety import fence_policy
from topo.urls import parse_management


class Side:
    """One broker under test: the port, its vhost, and a way to put messages in a queue. ``http`` is its
    Management API client (for what the port never sends: the broker's traps), ``login`` the port as another
    user; ``users`` are removed afterwards (users are broker-wide: each scenario names its own)."""

    def __init__(
        self,
        broker: Broker,
        vhost: str,
        publish: Callable[[str, int], None],
        http: ManagementClient,
        login: Callable[[str, str], Broker],
    ) -> None:
        self.broker, self.vhost, self.publish, self.http, self.login = broker, vhost, publish, http, login
        self.made: list[str] = []
        self.tag = secrets.token_hex(3)

    def user(self, base: str) -> str:
        name = f"t-{base}-{self.tag}"
        self.made.append(name)
        return name

    def stored(self, name: str) -> PasswordHash | None:
        found = [u for u in self.broker.users() if u.name == name]
        return found[0].password_hash if found else None

    def declare(self, *items: Exchange | Queue | Binding) -> None:
        document: dict[str, list[dict[str, Any]]] = {"exchanges": [], "queues": [], "bindings": []}
        for item in items:
            if isinstance(item, Exchange):
                document["exchanges"].append(exchange_definition(item))
            elif isinstance(item, Queue):
                document["queues"].append(queue_definition(item))
            else:
                document["bindings"].append(binding_definition(item))
        self.broker.import_definitions(self.vhost, document)


def import_never_changes_what_exists(side: Side) -> None:
    side.declare(Exchange("ex", "topic"), Queue("q", arguments={"x-message-ttl": 1000}))
    side.declare(Exchange("ex", "fanout"), Queue("q", arguments={"x-message-ttl": 2000}), Queue("new"))
    vhost = side.broker.read_vhost(side.vhost)
    assert vhost is not None
    assert vhost.exchanges["ex"].type == "topic"
    assert vhost.queues["q"].arguments == {"x-message-ttl": 1000}
    assert set(vhost.queues) == {"q", "new"}


def a_vhost_put_replaces_its_metadata(side: Side) -> None:
    side.broker.put_vhost(side.vhost, description="d", tags=["b", "a"])
    info = side.broker.vhost_info(side.vhost)
    assert info is not None and (info.description, sorted(info.tags)) == ("d", ["a", "b"])
    side.broker.put_vhost(side.vhost, tags=["c"])
    info = side.broker.vhost_info(side.vhost)
    assert info is not None and (info.description, info.tags) == ("", ("c",))
    assert side.broker.vhost_info("no-such-vhost-" + side.vhost) is None
    assert side.broker.read_vhost("no-such-vhost-" + side.vhost) is None


def limits_are_set_and_cleared(side: Side) -> None:
    side.broker.set_vhost_limit(side.vhost, "max-queues", 10)
    vhost = side.broker.read_vhost(side.vhost)
    assert vhost is not None and vhost.limits == {"max-queues": 10}
    side.broker.clear_vhost_limit(side.vhost, "max-queues")
    side.broker.clear_vhost_limit(side.vhost, "max-queues")  # already gone: no error
    vhost = side.broker.read_vhost(side.vhost)
    assert vhost is not None and vhost.limits == {}


def bindings_are_listed_with_their_properties_key(side: Side) -> None:
    side.declare(Exchange("ex", "headers"), Queue("q"))
    plain, headers = Binding("ex", "q", routing_key="k"), Binding("ex", "q", arguments={"x-match": "all", "a": 1})
    side.broker.add_binding(side.vhost, plain)
    side.broker.add_binding(side.vhost, headers)
    listed = {item.binding.key: item for item in side.broker.bindings(side.vhost)}
    assert Binding("", "q", routing_key="q").key in listed  # the default exchange's, listed too
    assert listed[plain.key].properties_key == "k"
    assert listed[headers.key].properties_key.startswith("~")
    side.broker.delete_binding(side.vhost, listed[headers.key])
    side.broker.delete_binding(side.vhost, listed[headers.key])  # already gone: no error
    vhost = side.broker.read_vhost(side.vhost)
    assert vhost is not None and list(vhost.bindings) == [plain.key]  # no default-exchange binding read


def a_guarded_delete_is_refused_when_it_would_lose_something(side: Side) -> None:
    side.declare(Queue("cq"), Queue("qq", "quorum"))
    side.publish("cq", 1)
    with pytest.raises(BrokerError) as info:
        side.broker.delete_queue(side.vhost, "cq", if_empty=True, if_unused=True)
    assert info.value.status == 400 and "not empty" in info.value.message
    with pytest.raises(BrokerError) as info:
        side.broker.delete_queue(side.vhost, "qq", if_empty=True)
    assert info.value.status == 400 and "not supported by quorum queues" in info.value.message
    side.broker.delete_queue(side.vhost, "qq")
    side.broker.delete_queue(side.vhost, "qq")  # already gone: no error
    vhost = side.broker.read_vhost(side.vhost)
    assert vhost is not None and set(vhost.queues) == {"cq"}


def policies_are_put_read_and_deleted(side: Side) -> None:
    policy = Policy("p", "^x", "queues", 3, {"max-length": 5})
    side.broker.put_policy(side.vhost, policy)
    side.broker.put_policy(side.vhost, Policy("cap", ".*", "queues", 0, {"max-length": 9}), operator=True)
    assert side.broker.policy(side.vhost, "p") == policy
    assert side.broker.policies(side.vhost) == [policy]
    vhost = side.broker.read_vhost(side.vhost)
    assert vhost is not None and list(vhost.operator_policies) == ["cap"]
    side.broker.delete_policy(side.vhost, "p")
    side.broker.delete_policy(side.vhost, "cap", operator=True)
    side.broker.delete_policy(side.vhost, "p")  # already gone: no error
    assert side.broker.policy(side.vhost, "p") is None and side.broker.policies(side.vhost) == []


def counts_are_exact_over_amqp_except_for_a_stream(side: Side) -> None:
    side.declare(Queue("cq"), Queue("st", "stream"))
    side.publish("cq", 2)
    cluster = side.broker.overview().cluster_name
    usage = side.broker.count(side.vhost, ["cq", "st", "missing"], cluster=cluster)
    assert set(usage) == {"cq", "st"}
    assert (usage["cq"].ready, usage["cq"].consumers, usage["cq"].exact) == (2, 0, True)
    assert not usage["st"].exact and usage["st"].why_inexact == STREAM_UNCOUNTABLE
    other = side.broker.amqp.count(side.vhost, ["cq"], cluster="another-cluster")
    assert not isinstance(other, dict) and "another broker" in other.reason


def a_fence_refuses_the_second_probe_and_the_probe_comes_back_out(side: Side) -> None:
    side.declare(Queue("qq", "quorum"))
    side.broker.put_policy(side.vhost, fence_policy("qq", 1))
    checks = side.broker.amqp.check_drops(side.vhost, {"qq": True}, "topo-fence-probe:test")
    assert checks == {"qq": DropCheck(True, ready=1, consumers=0, probe="taken", fence_holds=True)}
    assert side.broker.amqp.remove_probes(side.vhost, "qq", 1, "topo-fence-probe:test") == (0, 0)
    assert side.broker.count(side.vhost, ["qq"])["qq"].ready == 0


def a_quorum_queue_is_deleted_over_amqp_only_as_counted(side: Side) -> None:
    side.declare(Queue("qq", "quorum"), Queue("full", "quorum"))
    side.publish("full", 1)
    done, failed = side.broker.amqp.delete_if_counted(side.vhost, {"qq": 0, "full": 0})
    assert failed is None
    assert done == [Deleted("qq", (0, 0), deleted=True, message_count=0), Deleted("full", (1, 0))]
    vhost = side.broker.read_vhost(side.vhost)
    assert vhost is not None and set(vhost.queues) == {"full"}


# -- users, permissions, global parameters, vhost settings ----------------------------------------------------


def a_user_is_put_with_a_hash_stored_byte_for_byte(side: Side) -> None:
    name = side.user("hash")
    made = PasswordHash(hash_password("pw-1", SHA512), SHA512)
    side.broker.put_user(name, ["management", "custom"], made)
    (user,) = [u for u in side.broker.users() if u.name == name]
    assert user.tags == ("custom", "management") and user.limits == {}
    assert user.password_hash == made  # the hash and its algorithm, as sent
    side.broker.set_user_limit(name, "max-channels", 5)
    side.broker.set_user_limit(name, "max-connections", 2)
    side.broker.clear_user_limit(name, "max-connections")
    side.broker.clear_user_limit(name, "max-connections")  # already gone: no error
    (user,) = [u for u in side.broker.users() if u.name == name]
    assert user.limits == {"max-channels": 5}


def a_user_put_without_a_password_clears_it(side: Side) -> None:
    # the traps every user PUT of topo avoids, as the broker answers them
    name = side.user("trap")
    with pytest.raises(BrokerError) as info:
        side.http.put(f"/users/{name}", {"password": "x"})  # no tags: refused
    assert info.value.status == 400
    side.http.put(f"/users/{name}", {"password": "pw", "tags": ""})
    first = side.stored(name)
    assert first is not None and first.algorithm == SHA256 and matches("pw", first.value, SHA256)
    side.http.put(f"/users/{name}", {"password": "pw", "tags": ""})
    second = side.stored(name)
    assert second is not None and second.value != first.value  # the same plaintext: a new salt
    with pytest.raises(BrokerError) as info:
        side.http.put(f"/users/{name}", {"password": "pw", "password_hash": second.value, "tags": ""})
    assert info.value.status == 400  # both at once: refused
    side.http.put(f"/users/{name}", {"tags": "monitoring"})  # tags only: the password is cleared
    assert side.stored(name) == PasswordHash("", SHA256)


def permissions_are_put_read_and_deleted(side: Side) -> None:
    name = side.user("perm")
    side.broker.put_user(name, [], PasswordHash("", SHA256))
    permission = Permission(name, side.vhost, "^$", "^a$", ".*")
    side.broker.put_permission(permission)
    assert [p for p in side.broker.permissions() if p.user == name] == [permission]
    side.broker.delete_permission(side.vhost, name)
    side.broker.delete_permission(side.vhost, name)  # already gone: no error
    assert [p for p in side.broker.permissions() if p.user == name] == []
    with pytest.raises(BrokerError) as info:  # RabbitMQ reads patterns as PCRE
        side.broker.put_permission(Permission(name, side.vhost, "(", "", ""))
    assert info.value.status == 400
    with pytest.raises(BrokerError) as info:  # a vhost that does not exist
        side.broker.put_permission(Permission(name, "no-such-vhost-" + side.vhost, "", "", ""))
    assert info.value.status == 400


def topic_permissions_are_deleted_all_at_once(side: Side) -> None:
    name = side.user("topic")
    side.broker.put_user(name, [], PasswordHash("", SHA256))
    side.broker.put_permission(Permission(name, side.vhost, "", "", ""))
    entries = {"amq.topic": TopicPermission("amq.topic", "^a", "^$"), "t": TopicPermission("t", ".*", ".*")}
    for entry in entries.values():
        side.broker.put_topic_permission(side.vhost, name, entry)
    side.broker.put_topic_permission(side.vhost, name, TopicPermission("t", "^b", ".*"))  # replaces t's entry
    mine = [t for t in side.broker.topic_permissions() if t.user == name]
    assert mine == [TopicPermissions(name, side.vhost, {**entries, "t": TopicPermission("t", "^b", ".*")})]
    side.broker.delete_topic_permissions(side.vhost, name)  # every exchange's entry
    side.broker.delete_topic_permissions(side.vhost, name)  # already gone: no error
    assert [t for t in side.broker.topic_permissions() if t.user == name] == []


def deleting_a_user_takes_what_it_may_do_along(side: Side) -> None:
    name = side.user("gone")
    side.broker.put_user(name, [], PasswordHash("", SHA256))
    side.broker.set_user_limit(name, "max-channels", 3)
    side.broker.put_permission(Permission(name, side.vhost, "", "", ""))
    side.broker.put_topic_permission(side.vhost, name, TopicPermission("amq.topic", ".*", ".*"))
    side.broker.delete_user(name)
    side.broker.delete_user(name)  # already gone: no error
    assert name not in {u.name for u in side.broker.users()}
    assert [p for p in side.broker.permissions() if p.user == name] == []
    assert [t for t in side.broker.topic_permissions() if t.user == name] == []
    side.broker.put_user(name, [], PasswordHash("", SHA256))  # back: no limit came back with it
    assert [u.limits for u in side.broker.users() if u.name == name] == [{}]


def reading_users_needs_the_administrator_tag(side: Side) -> None:
    name = side.user("watcher")
    side.broker.put_user(name, ["monitoring"], PasswordHash(hash_password("w-pw"), SHA256))
    watcher = side.login(name, "w-pw")
    assert watcher.user == name
    for read in (watcher.users, watcher.permissions, watcher.topic_permissions, watcher.global_parameters):
        with pytest.raises(PermissionDenied):
            read()


def global_parameters_are_put_read_and_deleted(side: Side) -> None:
    name = f"t-doc-{side.tag}"
    before = {p.name: p for p in side.broker.global_parameters()}
    assert "internal_cluster_id" in before  # the broker's own
    try:
        side.broker.put_global_parameter(GlobalParameter(name, {"owner": "platform", "n": [1, 2]}))
        assert GlobalParameter(name, {"owner": "platform", "n": [1, 2]}) in side.broker.global_parameters()
        side.broker.put_global_parameter(GlobalParameter("cluster_name", f"topo-port-{side.tag}"))
        assert side.broker.overview().cluster_name == f"topo-port-{side.tag}"  # the cluster's name
    finally:
        side.broker.delete_global_parameter(name)
        side.broker.delete_global_parameter(name)  # already gone: no error
        if "cluster_name" in before:
            side.broker.put_global_parameter(before["cluster_name"])
        else:
            side.broker.delete_global_parameter("cluster_name")
    assert name not in {p.name for p in side.broker.global_parameters()}


def vhost_settings_and_the_creators_grant(side: Side) -> None:
    fresh = f"{side.vhost}-new"
    try:
        side.broker.put_vhost(fresh, default_queue_type="quorum", tracing=True)
        vhost = side.broker.read_vhost(fresh)
        assert vhost is not None and (vhost.default_queue_type, vhost.tracing) == ("quorum", True)
        mine = [p for p in side.broker.permissions() if p.vhost == fresh]
        assert mine == [Permission(side.broker.user or "", fresh, ".*", ".*", ".*")]  # the creator's grant
        side.broker.put_vhost(fresh, description="d", default_queue_type="stream")  # no tracing: kept
        vhost = side.broker.read_vhost(fresh)
        assert vhost is not None and (vhost.description, vhost.default_queue_type, vhost.tracing) == (
            "d",
            "quorum",  # taken at creation only: the broker silently keeps it
            True,
        )
        side.broker.put_vhost(fresh, tracing=False)
        vhost = side.broker.read_vhost(fresh)
        assert vhost is not None and vhost.tracing is False
    finally:
        side.http.delete(f"/vhosts/{fresh}", ok_missing=True)
    vhost = side.broker.read_vhost(side.vhost)  # created without a default queue type: classic
    assert vhost is not None and (vhost.default_queue_type, vhost.tracing) == ("classic", False)


SCENARIOS = [
    import_never_changes_what_exists,
    a_vhost_put_replaces_its_metadata,
    limits_are_set_and_cleared,
    bindings_are_listed_with_their_properties_key,
    a_guarded_delete_is_refused_when_it_would_lose_something,
    policies_are_put_read_and_deleted,
    counts_are_exact_over_amqp_except_for_a_stream,
    a_fence_refuses_the_second_probe_and_the_probe_comes_back_out,
    a_quorum_queue_is_deleted_over_amqp_only_as_counted,
    a_user_is_put_with_a_hash_stored_byte_for_byte,
    a_user_put_without_a_password_clears_it,
    permissions_are_put_read_and_deleted,
    topic_permissions_are_deleted_all_at_once,
    deleting_a_user_takes_what_it_may_do_along,
    reading_users_needs_the_administrator_tag,
    global_parameters_are_put_read_and_deleted,
    vhost_settings_and_the_creators_grant,
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_on_the_in_memory_broker(scenario: Callable[[Side], None]) -> None:
    fake = FakeRabbit()
    client = fake.client()
    client.put("/vhosts/v", {})

    def login(user: str, password: str) -> Broker:
        return LiveBroker(ManagementClient(f"http://{user}:{password}@fake-rabbit:15672", transport=fake.transport()))

    scenario(Side(fake.broker(), "v", lambda queue, count: fake.publish("v", queue, count), client, login))


@pytest.fixture
def live(broker: Any, vhost: str, mgmt: httpx.Client) -> Iterator[Side]:
    def put(queue: str, count: int) -> None:
        for _ in range(count):
            assert publish(mgmt, vhost, "", queue)

    url = parse_management(broker.url)
    clients: list[ManagementClient] = []

    def login(user: str, password: str) -> Broker:
        clients.append(ManagementClient(f"http://{user}:{password}@{url.host}:{url.port}", amqp_url=""))
        return LiveBroker(clients[-1])

    with ManagementClient(broker.url, amqp_url=broker.amqp_url) as client:
        side = Side(LiveBroker(client), vhost, put, client, login)
        try:
            yield side
        finally:
            for made in side.made:
                mgmt.delete(f"/api/users/{made}")
            for other in clients:
                other.close()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_on_a_node(scenario: Callable[[Side], None], live: Side) -> None:
    scenario(live)
