"""Users, permissions, topic permissions, global parameters and vhost settings in a plan: the comparison
(the broker-wide kinds of topo.plan.kinds, through topo.plan.diff) and what each output form shows (golden
files). Pure: the broker side is in test_access_broker.py.

Whatever a plan shows, it never holds a password or a password hash."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from support import check_golden

from topo import __version__
from topo.definitions import password_to_send, user_body, user_from_definition
from topo.model import (
    Address,
    GlobalParameter,
    PasswordHash,
    Permission,
    Secret,
    TopicPermission,
    TopicPermissions,
    Topology,
    User,
    VHost,
)
from topo.passwords import MD5, SHA256, SHA512, hash_password, matches
from topo.plan.diff import diff
from topo.plan.kinds import BrokerFacts
from topo.plan.kinds.user import connecting_user_blockers, password_verdict
from topo.plan.model import Change, Plan
from topo.plan.render import render_json, render_markdown, render_text
from topo.plan.safety import refusal

PASSWORD = "Pw-0rders-S3cret"
OTHER = "Pw-M0nitor-S3cret"
SALT = bytes([9, 8, 7, 6])
STORED = hash_password(PASSWORD, SHA256, salt=SALT)
STORED_OTHER = hash_password("old-monitoring", MD5, salt=SALT)
DECLARED_HASH = hash_password("from-a-hash", SHA512, salt=SALT)
SECRETS = (PASSWORD, OTHER, STORED, STORED_OTHER, DECLARED_HASH, "from-a-hash", "old-monitoring")


def secret(value: str, source: str) -> Secret:
    return Secret(value, source)


def observed_user(name: str, tags: tuple[str, ...], stored: str, algorithm: str = SHA256, **kw: object) -> User:
    return User(name, tags, limits=kw.pop("limits", {}), password_hash=PasswordHash(stored, algorithm))  # type: ignore[arg-type]


def desired() -> Topology:
    topology = Topology({"shop": VHost("shop"), "new": VHost("new", default_queue_type="quorum", tracing=True)})
    topology.users = {
        "orders": User("orders", ("management",), {"max-connections": 10}, password=secret(PASSWORD, "${env:ORDERS}")),
        "monitoring": User("monitoring", ("monitoring",), password=secret(OTHER, "password-file /run/secrets/m")),
        "importer": User("importer", (), password_hash=PasswordHash(DECLARED_HASH, SHA512)),
        "robot": User("robot", ("policymaker",)),
        "topo": User("topo", ("administrator",)),
    }
    topology.permissions = {
        ("orders", "shop"): Permission("orders", "shop", "^$", "^events$", "^orders\\."),
        ("monitoring", "shop"): Permission("monitoring", "shop", "^$", "^$", ".*"),
        ("robot", "new"): Permission("robot", "new", ".*", ".*", ".*"),
        ("robot", "gone"): Permission("robot", "gone", "", "", ""),
    }
    topology.topic_permissions = {
        ("orders", "shop"): TopicPermissions(
            "orders",
            "shop",
            {
                "events": TopicPermission("events", "^order\\.(created|paid)$", "^$"),
                "audit": TopicPermission("audit", ".*", "^$"),
            },
        )
    }
    topology.global_parameters = {
        "cluster_name": GlobalParameter("cluster_name", "eu-1"),
        "feature-flags-doc": GlobalParameter("feature-flags-doc", {"owner": "platform"}),
    }
    return topology


def observed() -> Topology:
    topology = Topology({"shop": VHost("shop", default_queue_type="classic", tracing=False)})
    topology.users = {
        "orders": observed_user("orders", ("management",), STORED, limits={"max-connections": 10}),
        "monitoring": observed_user("monitoring", ("management",), STORED_OTHER, MD5),
        "importer": observed_user("importer", (), DECLARED_HASH, SHA512),
        "topo": observed_user("topo", ("administrator",), "x"),
        "guest": observed_user("guest", ("administrator",), "y"),
    }
    topology.permissions = {
        ("orders", "shop"): Permission("orders", "shop", "^$", "^events$", "^orders\\."),
        ("orders", "legacy"): Permission("orders", "legacy", ".*", ".*", ".*"),
        ("monitoring", "shop"): Permission("monitoring", "shop", "^$", ".*", ".*"),
        ("topo", "shop"): Permission("topo", "shop", ".*", ".*", ".*"),
        ("guest", "shop"): Permission("guest", "shop", ".*", ".*", ".*"),
        ("guest", "elsewhere"): Permission("guest", "elsewhere", ".*", ".*", ".*"),
    }
    topology.topic_permissions = {
        ("orders", "shop"): TopicPermissions(
            "orders",
            "shop",
            {"events": TopicPermission("events", "^order\\.", "^$"), "legacy": TopicPermission("legacy", ".*", ".*")},
        )
    }
    topology.global_parameters = {
        "cluster_name": GlobalParameter("cluster_name", "rabbit@old"),
        "internal_cluster_id": GlobalParameter("internal_cluster_id", "rabbitmq-cluster-id-x"),
        "topo.inventory.shop": GlobalParameter("topo.inventory.shop", {}),
        "someone-elses": GlobalParameter("someone-elses", 1),
    }
    return topology


CONTEXT = BrokerFacts(connecting_user="topo", vhosts=frozenset({"shop", "legacy", "elsewhere"}))


def sample_plan() -> Plan:
    return diff(desired(), observed(), CONTEXT)


def _by_address(plan: Plan) -> dict[str, Change]:
    return {str(c.address): c for c in plan.changes}


def test_what_changes() -> None:
    changes = _by_address(sample_plan())
    assert {address: c.action for address, c in changes.items()} == {
        "users.monitoring": "update",  # tags and password
        "users.robot": "create",
        "global-parameters.cluster_name": "update",
        "global-parameters.feature-flags-doc": "create",
        "vhosts.new": "create",
        "users.robot.permissions.new": "create",
        "users.robot.permissions.gone": "create",
        "users.monitoring.permissions.shop": "update",
        "users.orders.permissions.legacy": "delete",  # a declared user's permission no file gives it
        "users.orders.topic-permissions.shop": "update",
    }
    # unchanged: orders (same password, checked against the salted hash), importer (the same declared hash),
    # topo (no password source: not managed), orders' permission on shop
    monitoring = changes["users.monitoring"]
    assert any("password differs" in r for r in monitoring.reasons)
    assert changes["users.robot.permissions.gone"].blockers[0].code == "missing-vhost"
    assert not changes["users.robot.permissions.new"].blockers  # the plan creates that vhost
    topic = changes["users.orders.topic-permissions.shop"]
    assert any("all at once" in r for r in topic.reasons)


def test_the_order_a_person_reads() -> None:
    # the broker-wide kinds first, as the files hold them: users, what each may do (by user, then vhost),
    # global parameters; then each vhost's changes
    assert [str(c.address) for c in sample_plan().changes] == [
        "users.monitoring",
        "users.robot",
        "users.monitoring.permissions.shop",
        "users.orders.permissions.legacy",
        "users.robot.permissions.gone",
        "users.robot.permissions.new",
        "users.orders.topic-permissions.shop",
        "global-parameters.cluster_name",
        "global-parameters.feature-flags-doc",
        "vhosts.new",
    ]


def test_what_is_not_managed() -> None:
    unmanaged = sorted(str(u.address) for u in sample_plan().unmanaged)
    assert unmanaged == [
        "global-parameters.someone-elses",  # not internal_cluster_id, not topo's own topo.*
        "users.guest",
        "users.guest.permissions.shop",  # an undeclared user's permission on a planned vhost ("elsewhere": not listed)
        "users.topo.permissions.shop",  # the connecting user's: RabbitMQ granted it when topo created the vhost
    ]


def test_nothing_to_do_when_everything_matches() -> None:
    have = observed()
    want = Topology({"shop": VHost("shop")})
    want.users = {"orders": User("orders", ("management",), password=secret(PASSWORD, "${env:ORDERS}"))}
    want.permissions = {
        ("orders", "shop"): have.permissions[("orders", "shop")],
        ("orders", "legacy"): have.permissions[("orders", "legacy")],
    }
    want.topic_permissions = {("orders", "shop"): have.topic_permissions[("orders", "shop")]}
    plan = diff(want, have, CONTEXT)
    assert plan.empty, plan.changes


def test_without_users_nothing_of_theirs_is_compared() -> None:
    have = observed()
    plan = diff(Topology({"shop": VHost("shop")}), have, CONTEXT)
    assert plan.empty and not plan.unmanaged


# -- the password: offline, against the salted hash ------------------------------------------------------


def test_password_verdicts() -> None:
    have = observed_user("u", (), STORED)
    assert password_verdict(User("u", password=secret(PASSWORD, "e")), have) == "same"
    assert password_verdict(User("u", password=secret(PASSWORD + "!", "e")), have) == "changes"
    assert password_verdict(User("u", password=secret(PASSWORD, "e"), hashing_algorithm=SHA512), have) == "rehash"
    assert password_verdict(User("u", password=secret(PASSWORD, "e"), hashing_algorithm=SHA256), have) == "same"
    assert password_verdict(User("u"), have) == "not-managed"
    assert password_verdict(User("u", password_hash=PasswordHash(STORED, SHA256)), have) == "same"
    assert password_verdict(User("u", password_hash=PasswordHash(STORED, SHA512)), have) == "changes"
    nobody = observed_user("u", (), "")
    assert password_verdict(User("u", password=secret(PASSWORD, "e")), nobody) == "changes"
    assert password_verdict(User("u", password_hash=PasswordHash("", SHA256)), nobody) == "same"


def test_every_put_carries_a_password_hash_and_an_unchanged_one_byte_for_byte() -> None:
    have = observed_user("u", ("management",), STORED)
    same = User("u", ("monitoring",), password=secret(PASSWORD, "e"))
    assert user_body(same, have) == {"tags": "monitoring", "password_hash": STORED, "hashing_algorithm": SHA256}
    untouched = User("u", ("monitoring",))  # no password source: the stored hash goes back as it is
    assert user_body(untouched, have)["password_hash"] == STORED
    changed = user_body(User("u", (), password=secret("new-one", "e")), have)
    assert changed["password_hash"] != STORED and matches("new-one", changed["password_hash"], SHA256)
    assert "password" not in changed  # the plaintext never travels
    fresh = password_to_send(User("u", password=secret("p", "e"), hashing_algorithm=MD5), None)
    assert fresh.algorithm == MD5 and matches("p", fresh.value, MD5)
    assert password_to_send(User("u"), None) == PasswordHash("", SHA256)  # a new user without a source: none
    rehashed = password_to_send(User("u", password=secret(PASSWORD, "e"), hashing_algorithm=SHA512), have)
    assert rehashed.algorithm == SHA512 and matches(PASSWORD, rehashed.value, SHA512)


def test_the_broker_user_json() -> None:
    item = {
        "name": "u",
        "password_hash": STORED,
        "hashing_algorithm": SHA256,
        "tags": ["monitoring", "custom"],
        "limits": {"max-connections": 10},
    }
    user = user_from_definition(item)
    assert user == User("u", ("custom", "monitoring"), {"max-connections": 10})
    assert user.password_hash == PasswordHash(STORED, SHA256)
    assert user_from_definition({"name": "v", "tags": "a,b", "password_hash": ""}).tags == ("a", "b")


# -- the user topo connects as ---------------------------------------------------------------------------


def test_topo_never_locks_itself_out() -> None:
    have = observed_user("topo", ("administrator",), STORED)
    demoted = Change("update", Address("user", "", "topo"), have, User("topo", ("management",)))
    new_password = Change(
        "update", Address("user", "", "topo"), have, User("topo", ("administrator",), password=secret("x", "e"))
    )
    deleted = Change("delete", Address("user", "", "topo"), before=have)
    for change, words in ((demoted, "administrator tag"), (new_password, "password"), (deleted, "deleting it")):
        (blocker,) = connecting_user_blockers(change, "topo")
        assert blocker.code == "connecting-user" and words in blocker.message
        assert connecting_user_blockers(change, "someone-else") == ()
    same_password = Change(
        "update",
        Address("user", "", "topo"),
        have,
        User("topo", ("administrator", "x"), password=secret(PASSWORD, "e")),
    )
    assert connecting_user_blockers(same_password, "topo") == ()


def test_a_plan_that_demotes_the_connecting_user_is_blocked_and_refused() -> None:
    want, have = Topology(), Topology()
    want.users = {"topo": User("topo", ("monitoring",))}
    have.users = {"topo": observed_user("topo", ("administrator",), STORED)}
    plan = diff(want, have, BrokerFacts(connecting_user="topo"))
    assert plan.blocked and "! blocked: topo connects as this user" in render_text(plan)
    error = refusal(plan.blocked_changes)
    assert "user users.topo: topo connects as this user" in error.message and "administrator tag" in error.message


def test_a_changed_default_queue_type_is_blocked() -> None:
    want = Topology({"shop": VHost("shop", default_queue_type="quorum", tracing=True)})
    have = Topology({"shop": VHost("shop", default_queue_type="classic", tracing=False)})
    (change,) = diff(want, have).changes
    assert change.action == "update" and change.after == {"default-queue-type": "quorum", "tracing": True}
    assert [b.code for b in change.blockers] == ["fixed-at-creation"]
    have.vhosts["shop"].default_queue_type = "quorum"
    (change,) = diff(want, have).changes
    assert change.after == {"tracing": True} and not change.blockers
    want.vhosts["shop"].default_queue_type = "classic"  # "undefined" on the broker reads as classic
    have.vhosts["shop"].default_queue_type = "classic"
    assert [c.after for c in diff(want, have).changes] == [{"tracing": True}]


# -- what people and programs see ------------------------------------------------------------------------


def stable_json(plan: Plan) -> str:
    return render_json(plan).replace(json.dumps(__version__), '"0.0.0-golden"')


def test_golden_text() -> None:
    check_golden("plan/access.txt", render_text(sample_plan()))


def test_golden_json() -> None:
    check_golden("plan/access.json", stable_json(sample_plan()))


def test_golden_markdown() -> None:
    check_golden("plan/access.md", render_markdown(sample_plan()))


@pytest.mark.parametrize("form", ["text", "json", "markdown", "repr"])
def test_no_output_holds_a_password_or_a_hash(form: str) -> None:
    plan = sample_plan()
    new_user = replace(
        plan, changes=[*plan.changes, Change("create", Address("user", "", "x"), after=desired().users["orders"])]
    )
    text = {
        "text": render_text,
        "json": render_json,
        "markdown": render_markdown,
        "repr": lambda p: repr(p) + str(p),
    }[form](new_user)
    for value in SECRETS:
        assert value not in text, (value, form)
    assert "(sensitive)" in text or form == "repr"  # repr() leaves the password fields out


def test_json_users_are_data() -> None:
    document = json.loads(render_json(sample_plan()))
    monitoring = next(c for c in document["changes"] if c["address"] == "users.monitoring")
    assert monitoring["vhost"] is None
    assert monitoring["after"] == {
        "name": "monitoring",
        "tags": ["monitoring"],
        "limits": None,
        "password": "(sensitive)",
        "password_source": "password-file /run/secrets/m",
    }
    assert monitoring["before"]["password"] == "(sensitive)" and monitoring["before"]["password_source"] is None
    topic = next(c for c in document["changes"] if c["kind"] == "topic-permission")
    assert topic["vhost"] == "shop" and topic["after"]["exchanges"]["audit"] == {"write": ".*", "read": "^$"}
    assert {u["address"]: u["vhost"] for u in document["not_managed"]}["users.guest"] is None


def test_a_user_whose_password_was_not_read_cannot_be_planned() -> None:
    from topo.errors import UsageError

    want = Topology()
    want.users = {"u": User("u", password=Secret(None, "${env:NOT_READ}"))}
    have = Topology()
    have.users = {"u": observed_user("u", (), STORED)}
    with pytest.raises(UsageError) as info:
        diff(want, have)
    assert "${env:NOT_READ}" in info.value.message and "was not read" in info.value.message
    with pytest.raises(UsageError):
        user_body(want.users["u"], None)
