"""Users, permissions, topic permissions and global parameters through the engine, on the in-memory broker
(tests/fakebroker.py): the phases' order (users and permissions after the vhosts, revokes and global
parameters last), the refusals before any write, a failure at every write (the next apply converges), a
write the broker drops (the re-read compares users too, the password offline), idempotence.

The same behaviours against a real node are in test_access_broker.py; tests/test_broker_port.py checks the
fake's model of users, permissions and global parameters against a node.
"""

from __future__ import annotations

import httpx
import pytest
from fakebroker import FakeRabbit
from support import build_vhost

from topo import engine
from topo.broker.client import ManagementClient
from topo.broker.live import LiveBroker
from topo.broker.writer import execute
from topo.errors import ApplyFailed, NotConverged, PermissionDenied, TopoError, UnsafeChange
from topo.model import (
    Address,
    Exchange,
    GlobalParameter,
    PasswordHash,
    Permission,
    Policy,
    Queue,
    Secret,
    TopicPermission,
    TopicPermissions,
    Topology,
    User,
)
from topo.passwords import SHA256, matches
from topo.plan.model import Change, Plan
from topo.plan.safety import refused_as_planned

V = "v"
NOTHING = ("^$", "^$", "^$")


def topology(
    *,
    password: str = "app-pw-1",
    tags: tuple[str, ...] = (),
    limits: dict[str, int] | None = None,
    on_other: bool = True,
    topics: tuple[str, ...] = ("events", "audit"),
    cluster_name: str | None = None,
    qq_limit: int = 5,
) -> Topology:
    """A vhost with a quorum queue and a policy; user ``app`` (a password, permissions on ``v`` and, with
    ``on_other``, on the vhost ``other`` that only the broker has; topic permissions on ``v``), a global
    parameter; each keyword changes one thing."""
    vhost = build_vhost(
        V,
        Exchange("events", "topic"),
        Exchange("audit", "topic"),
        Queue("qq", "quorum", arguments={"x-delivery-limit": qq_limit}),
        policies=(Policy("p", "^x", "queues", 0, {"max-length": 5}),),
    )
    desired = Topology({V: vhost})
    desired.users = {
        "app": User("app", tags, {"max-connections": 4} if limits is None else limits, Secret(password, "${env:P}"))
    }
    desired.permissions = {("app", V): Permission("app", V, "^$", "^events$", "^qq$")}
    if on_other:
        desired.permissions[("app", "other")] = Permission("app", "other", *NOTHING)
    entries = {name: TopicPermission(name, f"^{name}\\.", "^$") for name in topics}
    if entries:
        desired.topic_permissions = {("app", V): TopicPermissions("app", V, entries)}
    desired.global_parameters = {"doc": GlobalParameter("doc", {"owner": "platform"})}
    if cluster_name is not None:
        desired.global_parameters["cluster_name"] = GlobalParameter("cluster_name", cluster_name)
    return desired


def rabbit() -> FakeRabbit:
    fake = FakeRabbit()
    fake.client().put("/vhosts/other", {})  # a vhost no file declares
    return fake


def applied(fake: FakeRabbit, desired: Topology) -> None:
    engine.apply(fake.broker(), desired)
    assert engine.plan(fake.broker(), desired).empty


# -- the order of the phases -------------------------------------------------------------------------------


def test_users_and_their_permissions_come_after_the_vhosts_global_parameters_last() -> None:
    fake = rabbit()
    plan = engine.plan(fake.broker(), topology())
    assert [str(c.address) for c in plan.changes][:6] == [
        "users.app",
        "users.app.permissions.other",
        "users.app.permissions.v",
        "users.app.topic-permissions.v",
        "global-parameters.doc",
        "vhosts.v",
    ]
    engine.apply(fake.broker(), topology(), plan)
    assert fake.writes() == [
        "PUT /vhosts/other",  # the test's own set-up
        "PUT /vhosts/v",  # vhosts
        "PUT /users/app",  # users, then what they may do
        "PUT /user-limits/app/max-connections",
        "PUT /permissions/other/app",
        "PUT /permissions/v/app",
        "PUT /topic-permissions/v/app",
        "PUT /topic-permissions/v/app",
        "POST /definitions/v",  # exchanges, queues, bindings
        "PUT /policies/v/p",  # policies
        "PUT /global-parameters/doc",  # last
    ]
    assert not fake.logs_in("app", "wrong") and fake.logs_in("app", "app-pw-1")
    assert fake.permissions[("app", V)] == {"configure": "^$", "write": "^events$", "read": "^qq$"}


def test_a_second_apply_reads_users_once_and_writes_nothing() -> None:
    fake = rabbit()
    applied(fake, topology())
    stored = fake.users["app"].password_hash
    fake.log.clear()
    engine.apply(fake.broker(), topology())
    assert fake.writes() == []
    assert sorted(fake.log) == sorted(  # each read once; the plan's reads run side by side, in any order
        [
            "GET /vhosts/v",
            "GET /definitions/v",
            "GET /users",
            "GET /permissions",
            "GET /topic-permissions",
            "GET /global-parameters",
            "GET /vhosts",
        ]
    )
    assert fake.users["app"].password_hash == stored  # no salt rotated for nothing


def test_revokes_and_a_users_delete_come_last() -> None:
    fake = rabbit()
    applied(fake, topology())
    desired = topology(on_other=False, topics=("events",), qq_limit=6, password="app-pw-2")
    plan = engine.plan(fake.broker(), desired)
    assert {(c.action, str(c.address)) for c in plan.changes if c.kind != "binding"} == {
        ("update", "users.app"),
        ("delete", "users.app.permissions.other"),
        ("update", "users.app.topic-permissions.v"),
        ("replace", "vhosts.v.queues.qq"),
    }
    fake.log.clear()
    engine.apply(fake.broker(), desired, plan)
    writes = fake.writes()
    assert writes[:3] == [
        "PUT /users/app",  # the new password, as a hash
        "DELETE /topic-permissions/v/app",  # an entry goes: all go, then the rest comes back
        "PUT /topic-permissions/v/app",
    ]
    assert writes[-1] == "DELETE /permissions/other/app"  # after the queue's drop and the creates
    assert writes.index("POST /definitions/v") < writes.index("DELETE /permissions/other/app")
    assert fake.logs_in("app", "app-pw-2") and not fake.logs_in("app", "app-pw-1")
    # a user's delete (which only a prune will plan) goes after the revokes, with what it may do
    revoke = Change("delete", Address("permission", V, "app"), before=topology().permissions[("app", V)])
    delete = Change("delete", Address("user", "", "app"), before=User("app"))
    fake.log.clear()
    execute(fake.broker(), Plan(changes=[delete, revoke]))
    assert fake.writes() == ["DELETE /permissions/v/app", "DELETE /users/app"]
    assert "app" not in fake.users and not [k for k in fake.topic_permissions if k[0] == "app"]


def test_a_new_cluster_name_waits_until_the_queues_are_dropped() -> None:
    # the drop protocol checks that AMQP answers for the cluster the plan was made against: the new name
    # must not be set before the quorum queue is dropped (the fake's AMQP answers with the name it has)
    fake = rabbit()
    applied(fake, topology())
    desired = topology(qq_limit=6, cluster_name="eu-1")
    applied(fake, desired)
    assert fake.cluster_name == "eu-1"
    assert fake.vhost(V).queues["qq"].arguments["x-delivery-limit"] == 6
    assert fake.writes()[-1] == "PUT /global-parameters/cluster_name"


# -- passwords ---------------------------------------------------------------------------------------------


def test_a_tags_change_sends_the_stored_hash_back_byte_for_byte() -> None:
    fake = rabbit()
    applied(fake, topology())
    stored = fake.users["app"].password_hash
    (change,) = engine.plan(fake.broker(), topology(tags=("monitoring",))).changes
    assert change.reasons == ("tags change in place (none → monitoring)",)
    applied(fake, topology(tags=("monitoring",)))
    assert fake.users["app"].password_hash == stored and fake.users["app"].tags == ["monitoring"]
    assert fake.logs_in("app", "app-pw-1")


def test_a_user_without_a_password_source_keeps_its_own() -> None:
    fake = rabbit()
    fake.add_user("app", "set-by-hand")
    desired = topology()
    desired.users["app"] = User("app", limits={"max-connections": 4})
    applied(fake, desired)
    assert fake.logs_in("app", "set-by-hand")


def test_a_password_write_the_broker_drops_is_caught_by_the_re_read() -> None:
    fake = rabbit()
    applied(fake, topology())
    fake.ignore("PUT", "^/users/app$")
    with pytest.raises(NotConverged) as info:
        engine.apply(fake.broker(), topology(password="app-pw-2"))
    assert "update users.app" in info.value.message
    assert "app-pw" not in str(info.value)
    applied(fake, topology(password="app-pw-2"))
    assert fake.logs_in("app", "app-pw-2")


# -- refusals before any write -----------------------------------------------------------------------------


def test_a_permission_on_a_vhost_that_exists_nowhere_is_refused_before_any_write() -> None:
    fake = rabbit()
    desired = topology()
    desired.permissions[("app", "nowhere")] = Permission("app", "nowhere", *NOTHING)
    plan = engine.plan(fake.broker(), desired)
    (blocked,) = plan.blocked_changes
    assert str(blocked.address) == "users.app.permissions.nowhere"
    assert [b.code for b in blocked.blockers] == ["missing-vhost"]
    fake.log.clear()
    with pytest.raises(UnsafeChange) as info:
        engine.apply(fake.broker(), desired, plan)
    assert fake.writes() == []
    assert blocked.blockers[0].message in info.value.message  # the plan's words
    assert info.value.message.startswith("refusing a change that apply cannot make: permission ")


def test_what_no_count_changes_is_refused_even_before_a_fence_is_repaired() -> None:
    fake = rabbit()
    applied(fake, topology())
    fake.vhost(V).policies["topo.fence.qq"] = {  # left by an interrupted apply
        "pattern": r"^qq\z",
        "apply-to": "queues",
        "priority": 1,
        "definition": {"max-length": 0, "overflow": "reject-publish"},
    }
    desired = topology()
    desired.vhosts[V].default_queue_type = "stream"  # the broker keeps the one the vhost was created with
    plan = engine.plan(fake.broker(), desired)
    assert [b.code for c in plan.blocked_changes for b in c.blockers] == ["fixed-at-creation"]
    refused = refused_as_planned(plan)  # the CLI's check before it asks, though a fence is to be repaired
    assert refused is not None and "default-queue-type cannot change" in refused.message
    fake.log.clear()
    with pytest.raises(UnsafeChange, match="default-queue-type cannot change on an existing vhost"):
        engine.apply(fake.broker(), desired, plan)
    assert fake.writes() == []  # the fence is still there: nothing was written
    assert "topo.fence.qq" in fake.vhost(V).policies


def test_topo_may_not_lock_itself_out() -> None:
    fake = rabbit()
    desired = topology()
    desired.users["guest"] = User("guest", ("management",))  # the user topo connects as, demoted
    plan = engine.plan(fake.broker(), desired)
    (blocked,) = plan.blocked_changes
    assert str(blocked.address) == "users.guest" and blocked.blockers[0].code == "connecting-user"
    with pytest.raises(UnsafeChange, match="without the administrator tag"):
        engine.apply(fake.broker(), desired, plan)
    assert fake.users["guest"].tags == ["administrator"] and "app" not in fake.users


def test_reading_users_without_the_administrator_tag_is_one_clear_error() -> None:
    fake = rabbit()
    fake.add_user("watcher", "w-pw", "monitoring")
    client = ManagementClient("http://watcher:w-pw@fake-rabbit:15672", transport=fake.transport())
    with pytest.raises(PermissionDenied) as info:
        engine.plan(LiveBroker(client), topology())
    assert info.value.message.startswith("the files declare users, and reading the broker's needs the administrator")
    assert "--vhost" in (info.value.hint or "") and "w-pw" not in str(info.value)


def test_the_grant_a_vhosts_creator_gets_is_not_drift() -> None:
    # RabbitMQ grants .* on a new vhost to the user that creates it: declared in the files without it, the
    # connecting user keeps it (not managed), and the re-read after the apply does not see it as drift
    fake = rabbit()
    desired = topology()
    desired.users["guest"] = User("guest", ("administrator",))
    desired.permissions[("guest", "other")] = Permission("guest", "other", ".*", ".*", ".*")
    applied(fake, desired)
    assert fake.permissions[("guest", V)] == {"configure": ".*", "write": ".*", "read": ".*"}
    assert "users.guest.permissions.v" in {str(u.address) for u in engine.plan(fake.broker(), desired).unmanaged}


# -- a failure at any write --------------------------------------------------------------------------------


def _changed() -> Topology:
    """A change of every access kind at once: a password, tags and limits; a revoke; topic permissions that
    lose an entry (deleted all, set again); a new global parameter; and a quorum queue replaced."""
    return topology(
        password="app-pw-2",
        tags=("monitoring",),
        limits={},
        on_other=False,
        topics=("events",),
        cluster_name="eu-1",
        qq_limit=6,
    )


def _reference_writes() -> int:
    fake = rabbit()
    applied(fake, topology())
    fake.log.clear()
    applied(fake, _changed())
    return len(fake.writes())


@pytest.mark.parametrize("number", range(_reference_writes()))
def test_a_failure_at_any_write_leaves_a_state_the_next_apply_converges_from(number: int) -> None:
    fake = rabbit()
    applied(fake, topology())
    fake.fail_write(number)
    with pytest.raises(TopoError) as info:
        engine.apply(fake.broker(), _changed())
    assert "injected failure" in info.value.message
    if isinstance(info.value, ApplyFailed):
        assert "run `topo apply` again" in (info.value.hint or "")
    assert "app-pw" not in str(info.value)
    applied(fake, _changed())  # the next apply converges ...
    user = fake.users["app"]  # ... to the password of the files, never to none
    assert matches("app-pw-2", user.password_hash, user.hashing_algorithm)
    assert (user.tags, user.limits) == (["monitoring"], {})
    assert fake.topic_permissions[("app", V)] == {"events": {"write": "^events\\.", "read": "^$"}}
    assert ("app", "other") not in fake.permissions and fake.cluster_name == "eu-1"
    assert fake.vhost(V).queues["qq"].arguments["x-delivery-limit"] == 6
    assert not [p for p in fake.vhost(V).policies if p.startswith("topo.fence")]


def test_every_user_put_carries_a_hash() -> None:
    fake = rabbit()
    bodies: list[bytes] = []
    transport = fake.transport()

    def recording(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT" and request.url.path.startswith("/api/users/"):
            bodies.append(request.content)
        return transport.handle_request(request)

    client = ManagementClient("http://guest:guest@fake-rabbit:15672", transport=httpx.MockTransport(recording))
    broker = LiveBroker(client, amqp=fake.amqp)
    for desired in (topology(), topology(tags=("x",)), topology(password="app-pw-2"), _changed()):
        engine.apply(broker, desired)
    assert len(bodies) == 4
    assert all(b'"password_hash"' in body and b'"password"' not in body and b"app-pw" not in body for body in bodies)
    assert fake.users["app"].hashing_algorithm == SHA256
    assert PasswordHash(fake.users["app"].password_hash, SHA256).value  # a password, not none
