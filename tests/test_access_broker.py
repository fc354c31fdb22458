"""Users, permissions, topic permissions, global parameters and vhost settings against the real broker.

Each trap of docs (rabbitmq-facts, "Users, permissions") has its test here: a tags-only update would clear
a password; the same plaintext sent again gets a new salt; a hash sent as such is stored byte for byte;
``/api/whoami`` needs a management tag (so logins are checked over AMQP, with pika, an independent
client); user limits; permissions need all three patterns and are regular expressions; the creator of a
vhost gets ``.*`` on it; topic permissions are deleted all at once on 3.10; reading users needs the
administrator tag. Users are broker-wide: every test names its own (``t-...-<hex>``) and removes them.
"""

from __future__ import annotations

import json
import secrets
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pika
import pika.exceptions
import pytest

from topo import engine
from topo.broker.client import ManagementClient
from topo.errors import PermissionDenied, UnsafeChange
from topo.loader import load
from topo.model import Address, PasswordHash, User
from topo.passwords import MD5, SHA256, SHA512, hash_password, matches
from topo.pcre import compile_pattern
from topo.plan.kinds.user import connecting_user_blockers
from topo.plan.model import Change, Plan
from topo.plan.render import render_json, render_markdown, render_text
from topo.urls import parse_amqp, parse_management

pytestmark = pytest.mark.timeout(180)


def q(name: str) -> str:
    return quote(name, safe="")


@pytest.fixture
def client(broker: Any) -> Iterator[ManagementClient]:
    with ManagementClient(broker.url, amqp_url=broker.amqp_url) as c:
        yield c


class Users:
    """Unique user names for one test, and their removal afterwards."""

    def __init__(self, mgmt: httpx.Client) -> None:
        self.mgmt = mgmt
        self.tag = secrets.token_hex(3)
        self.made: list[str] = []

    def name(self, base: str) -> str:
        name = f"t-{base}-{self.tag}"
        self.made.append(name)
        return name

    def stored(self, name: str) -> dict[str, Any]:
        response = self.mgmt.get(f"/api/users/{q(name)}")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


@pytest.fixture
def users(mgmt: httpx.Client) -> Iterator[Users]:
    made = Users(mgmt)
    try:
        yield made
    finally:
        for name in made.made:
            mgmt.delete(f"/api/users/{q(name)}")


@pytest.fixture
def files(tmp_path: Path, vhost: str) -> Callable[..., Any]:
    """Write a topology (``${var:VHOST}`` is the test's vhost, ``${var:U}`` ... the given users) and load it."""

    def write(text: str, environ: dict[str, str] | None = None, **names: str) -> Any:
        (tmp_path / "t.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
        return load(tmp_path / "t.yaml", {"VHOST": vhost, **names}, environ=environ or {})

    return write


def login(broker: Any, user: str, password: str, vhost: str) -> pika.BlockingConnection:
    """An AMQP connection as ``user`` (pika: an independent client); raises when the broker refuses it."""
    amqp = parse_amqp(broker.amqp_url)
    credentials = pika.PlainCredentials(user, password)
    parameters = pika.ConnectionParameters(
        host=amqp.host, port=amqp.port, virtual_host=vhost, credentials=credentials, connection_attempts=1
    )
    return pika.BlockingConnection(parameters)


def can_login(broker: Any, user: str, password: str, vhost: str) -> bool:
    try:
        login(broker, user, password, vhost).close()
    except (pika.exceptions.ProbableAuthenticationError, pika.exceptions.ProbableAccessDeniedError):
        return False
    return True


def refused(action: Callable[[], object]) -> bool:
    """Whether the broker closes the channel with 403 ACCESS_REFUSED for ``action``."""
    try:
        action()
    except pika.exceptions.ChannelClosedByBroker as exc:
        assert exc.reply_code == 403, exc
        return True
    return False


class Recording(ManagementClient):
    """A client that keeps every request it sends (method, path, body) while talking to the real broker."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[str, str, Any]] = []

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        self.sent.append((method, path, kwargs.get("json")))
        return super().request(method, path, **kwargs)


# -- passwords: checked offline, set as a hash, never rotated for nothing ---------------------------------


def test_a_broker_made_hash_is_checked_offline(mgmt: httpx.Client, users: Users) -> None:
    name = users.name("hash")
    mgmt.put(f"/api/users/{name}", json={"password": "s3cret", "tags": ""}).raise_for_status()
    stored = users.stored(name)
    assert stored["hashing_algorithm"] == SHA256
    assert matches("s3cret", stored["password_hash"], SHA256)
    assert not matches("s3cret!", stored["password_hash"], SHA256)
    # the trap: the same plaintext sent again is stored with a new salt
    mgmt.put(f"/api/users/{name}", json={"password": "s3cret", "tags": ""}).raise_for_status()
    assert users.stored(name)["password_hash"] != stored["password_hash"]


@pytest.mark.parametrize("algorithm", [SHA256, SHA512, MD5])
def test_a_hash_topo_computes_is_stored_byte_for_byte_and_logs_in(
    algorithm: str, mgmt: httpx.Client, users: Users, broker: Any, vhost: str
) -> None:
    name = users.name("algo")
    made = hash_password("pw-" + algorithm, algorithm)
    body = {"password_hash": made, "hashing_algorithm": algorithm, "tags": "management"}
    mgmt.put(f"/api/users/{name}", json=body).raise_for_status()
    mgmt.put(f"/api/permissions/{q(vhost)}/{name}", json={"configure": "", "write": "", "read": ""})
    assert users.stored(name)["password_hash"] == made
    assert can_login(broker, name, "pw-" + algorithm, vhost)
    assert not can_login(broker, name, "wrong", vhost)
    # both at once: the broker refuses (topo never sends a plaintext password)
    both = {"password": "x", "password_hash": made, "tags": ""}
    assert mgmt.put(f"/api/users/{name}", json=both).status_code == 400


NONE_ON_VHOST = "    permissions:\n      ${var:VHOST}: {configure: '', write: '', read: ''}\n"
"""A user's permissions: access to the test's vhost, and nothing in it."""


def test_the_broker_wants_tags_and_whoami_wants_a_management_tag(mgmt: httpx.Client, users: Users, broker: Any) -> None:
    name = users.name("facts")
    assert mgmt.put(f"/api/users/{name}", json={"password_hash": ""}).status_code == 400  # no tags: refused
    assert mgmt.put(f"/api/users/{name}", json={"password": "pw", "tags": ""}).status_code == 201
    url = parse_management(broker.url)
    # no API tells whether an untagged user's password is right: topo's tests log in over AMQP instead
    assert httpx.get(f"http://{url.host}:{url.port}/api/whoami", auth=(name, "pw")).status_code == 401
    body = {"tags": "a,b", "password_hash": users.stored(name)["password_hash"]}
    assert mgmt.put(f"/api/users/{name}", json=body).status_code == 204
    assert sorted(users.stored(name)["tags"]) == ["a", "b"]


def test_deleting_a_user_takes_its_permissions_and_limits_along(
    files: Any, client: ManagementClient, users: Users, vhost: str, mgmt: httpx.Client
) -> None:
    from topo.broker.live import LiveBroker
    from topo.broker.writer import execute

    name = users.name("deleted")
    topics = "    topic-permissions:\n      ${var:VHOST}:\n        amq.topic: {write: '.*', read: '.*'}\n"
    text = "version: 1\nusers:\n  ${var:U}:\n    limits: {max-channels: 3}\n" + NONE_ON_VHOST + topics
    engine.apply(client, files(text, U=name))
    assert mgmt.get(f"/api/users/{name}/permissions").json() and mgmt.get(f"/api/user-limits/{name}").json()
    delete = Plan(changes=[Change("delete", Address("user", "", name), before=User(name))])
    execute(LiveBroker(client), delete)  # what a prune will run: the user's delete executor, in its phase
    assert mgmt.get(f"/api/users/{name}").status_code == 404
    assert [p for p in mgmt.get("/api/permissions").json() if p["user"] == name] == []
    assert [p for p in mgmt.get("/api/topic-permissions").json() if p["user"] == name] == []
    assert [p for p in mgmt.get("/api/user-limits").json() if p["user"] == name] == []
    execute(LiveBroker(client), delete)  # gone already: no error


USER = """\
version: 1
vhosts:
  ${var:VHOST}:
    exchanges:
      events: {type: topic}
      audit: {type: topic}
    queues:
      orders:
        bindings: [{exchange: events, routing-key: "order.#"}]
      payments: {}
users:
  ${var:U}:
    password: ${env:APP_PASSWORD}
    tags: [%(tags)s]
    permissions:
      ${var:VHOST}: {configure: "^$", write: "^events$", read: "^orders$"}
"""


def test_a_user_is_created_applied_again_without_a_write_and_logs_in(
    files: Any, client: ManagementClient, broker: Any, users: Users, vhost: str
) -> None:
    name = users.name("app")
    desired = files(USER % {"tags": ""}, {"APP_PASSWORD": "first-pw"}, U=name)
    plan = engine.plan(client, desired)
    assert [(c.action, str(c.address)) for c in plan.changes if c.kind != "exchange" and c.kind != "queue"] == [
        ("create", f"users.{name}"),
        ("create", f"users.{name}.permissions.{vhost}"),
        ("create", f'vhosts.{vhost}.queues.orders.bindings[events "order.#"]'),
    ]
    engine.apply(client, desired, plan)
    stored = users.stored(name)
    assert stored["tags"] == [] and matches("first-pw", stored["password_hash"], stored["hashing_algorithm"])
    assert can_login(broker, name, "first-pw", vhost)
    # the trap avoided: nothing changes, nothing is written, the salt stays
    writes = client.writes
    assert engine.plan(client, desired).empty
    assert engine.apply(client, desired).empty and client.writes == writes
    assert users.stored(name)["password_hash"] == stored["password_hash"]


def test_a_tags_change_keeps_the_password_byte_for_byte(
    files: Any, client: ManagementClient, broker: Any, users: Users, vhost: str, mgmt: httpx.Client
) -> None:
    name = users.name("tags")
    engine.apply(client, files(USER % {"tags": ""}, {"APP_PASSWORD": "pw-1"}, U=name))
    before = users.stored(name)["password_hash"]
    desired = files(USER % {"tags": "monitoring, custom"}, {"APP_PASSWORD": "pw-1"}, U=name)
    (change,) = engine.plan(client, desired).changes
    assert change.action == "update" and change.reasons == ("tags change in place (none → custom, monitoring)",)
    engine.apply(client, desired)
    after = users.stored(name)
    assert sorted(after["tags"]) == ["custom", "monitoring"]
    # a tags-only PUT would have cleared the password (""): topo sent the stored hash back as it was
    assert after["password_hash"] == before != ""
    assert can_login(broker, name, "pw-1", vhost)
    # the trap itself, for the record: RabbitMQ clears the password of a user PUT without one
    mgmt.put(f"/api/users/{q(name)}", json={"tags": "monitoring"}).raise_for_status()
    assert users.stored(name)["password_hash"] == ""


def test_a_changed_password_is_planned_without_showing_it_and_set_as_a_hash(
    files: Any, broker: Any, users: Users, vhost: str
) -> None:
    name = users.name("rotate")
    with Recording(broker.url, amqp_url=broker.amqp_url) as client:
        engine.apply(client, files(USER % {"tags": ""}, {"APP_PASSWORD": "old-Pw-123"}, U=name))
        desired = files(USER % {"tags": ""}, {"APP_PASSWORD": "new-Pw-456"}, U=name)
        plan = engine.plan(client, desired)
        (change,) = plan.changes
        assert change.action == "update" and "password differs" in change.reasons[0]
        shown = render_text(plan) + render_json(plan) + render_markdown(plan) + repr(plan)
        stored = users.stored(name)["password_hash"]
        for secret in ("old-Pw-123", "new-Pw-456", stored):
            assert secret not in shown
        assert "(sensitive) → (sensitive)" in render_text(plan)
        engine.apply(client, desired, plan)
        bodies = [
            json.dumps(body) for method, path, body in client.sent if method == "PUT" and path.startswith("/users/")
        ]
    assert bodies and all('"password"' not in body and "Pw-" not in body for body in bodies)  # only hashes travel
    assert all('"password_hash"' in body for body in bodies)  # every user PUT carries one
    assert can_login(broker, name, "new-Pw-456", vhost) and not can_login(broker, name, "old-Pw-123", vhost)


def test_a_declared_hash_is_stored_as_it_is(
    files: Any, client: ManagementClient, users: Users, broker: Any, vhost: str
) -> None:
    name = users.name("declared")
    made = hash_password("hashed-pw", SHA512)
    text = f"version: 1\nusers:\n  ${{var:U}}:\n    password-hash: {made}\n" + NONE_ON_VHOST
    desired = files(text, U=name)
    engine.apply(client, desired)
    stored = users.stored(name)
    assert (stored["password_hash"], stored["hashing_algorithm"]) == (made, SHA512)
    assert engine.plan(client, desired).empty
    assert can_login(broker, name, "hashed-pw", vhost)


def test_a_user_without_a_password_source_keeps_its_own(
    files: Any, client: ManagementClient, mgmt: httpx.Client, users: Users, broker: Any, vhost: str
) -> None:
    name = users.name("kept")
    mgmt.put(f"/api/users/{name}", json={"password": "set-by-hand", "tags": ""}).raise_for_status()
    before = users.stored(name)["password_hash"]
    text = "version: 1\nusers:\n  ${var:U}:\n    tags: [monitoring]\n" + NONE_ON_VHOST
    engine.apply(client, files(text, U=name))
    assert users.stored(name)["password_hash"] == before
    assert can_login(broker, name, "set-by-hand", vhost)
    fresh = users.name("fresh")  # a new one gets none: no password logs it in
    engine.apply(client, files("version: 1\nusers:\n  ${var:U}: {}\n", U=fresh))
    assert users.stored(fresh)["password_hash"] == ""


# -- limits ------------------------------------------------------------------------------------------------


def test_user_limits_are_set_enforced_and_removed(
    files: Any, client: ManagementClient, users: Users, broker: Any, vhost: str, mgmt: httpx.Client
) -> None:
    name = users.name("limits")
    text = "version: 1\nusers:\n  ${var:U}:\n    password: ${env:P}\n    limits: %s\n" + NONE_ON_VHOST
    engine.apply(client, files(text % "{max-connections: 1, max-channels: 5}", {"P": "pw"}, U=name))
    assert users.stored(name)["limits"] == {"max-connections": 1, "max-channels": 5}
    first = login(broker, name, "pw", vhost)
    try:
        with pytest.raises(pika.exceptions.AMQPConnectionError):  # max-connections: 1 holds
            login(broker, name, "pw", vhost).close()
    finally:
        first.close()
    desired = files(text % "{max-channels: 5}", {"P": "pw"}, U=name)
    (change,) = engine.plan(client, desired).changes
    assert change.reasons == ("limits change in place",)
    engine.apply(client, desired)
    assert users.stored(name)["limits"] == {"max-channels": 5}
    engine.apply(client, files(text % "{}", {"P": "pw"}, U=name))
    assert users.stored(name)["limits"] == {}
    assert mgmt.get(f"/api/user-limits/{q(name)}").json() == []


# -- permissions -------------------------------------------------------------------------------------------


def test_least_privilege_permissions_hold_over_amqp(
    files: Any, client: ManagementClient, users: Users, broker: Any, vhost: str
) -> None:
    name = users.name("perm")
    engine.apply(client, files(USER % {"tags": ""}, {"APP_PASSWORD": "pw"}, U=name))
    connection = login(broker, name, "pw", vhost)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish("events", "order.created", b"x")  # write on events: allowed
        assert channel.basic_get("orders", auto_ack=True)[2] == b"x"  # read on orders: allowed
        assert refused(lambda: channel.basic_publish("audit", "a", b"x"))  # no write on audit
        channel = connection.channel()
        assert refused(lambda: channel.basic_get("payments"))  # no read on payments
        channel = connection.channel()
        assert refused(lambda: channel.queue_declare("mine"))  # configure "^$": nothing
    finally:
        connection.close()


def test_an_empty_pattern_grants_nothing(
    files: Any, client: ManagementClient, users: Users, broker: Any, vhost: str
) -> None:
    # RabbitMQ reads "" as "^$" (docs/topology-format.md says so): it opens the vhost and nothing in it
    name = users.name("empty")
    text = "version: 1\nvhosts:\n  ${var:VHOST}: {queues: {q: {}}}\nusers:\n  ${var:U}:\n    password: ${env:P}\n"
    engine.apply(client, files(text + NONE_ON_VHOST, {"P": "pw"}, U=name))
    connection = login(broker, name, "pw", vhost)  # the vhost is open to it
    try:
        assert refused(lambda: connection.channel().queue_declare("x"))
        assert refused(lambda: connection.channel().basic_get("q"))
        channel = connection.channel()
        channel.confirm_delivery()
        assert refused(lambda: channel.basic_publish("", "q", b"x"))  # the default exchange: amq.default
    finally:
        connection.close()


def test_a_revoked_permission_is_deleted_and_the_connecting_users_grant_is_left_alone(
    files: Any, client: ManagementClient, users: Users, broker: Any, vhost: str, mgmt: httpx.Client
) -> None:
    name = users.name("revoke")
    other = f"t-other-{secrets.token_hex(3)}"
    mgmt.put(f"/api/vhosts/{other}").raise_for_status()
    try:
        text = USER.replace(
            "      ${var:VHOST}: {configure",
            "      ${var:OTHER}: {configure: '', write: '', read: ''}\n      ${var:VHOST}: {configure",
        )
        engine.apply(client, files(text % {"tags": ""}, {"APP_PASSWORD": "pw"}, U=name, OTHER=other))
        assert {p["vhost"] for p in mgmt.get(f"/api/users/{q(name)}/permissions").json()} == {vhost, other}
        desired = files(USER % {"tags": ""}, {"APP_PASSWORD": "pw"}, U=name)
        plan = engine.plan(client, desired)
        (change,) = plan.changes
        assert (change.action, str(change.address)) == ("delete", f"users.{name}.permissions.{other}")
        engine.apply(client, desired, plan)
        assert {p["vhost"] for p in mgmt.get(f"/api/users/{q(name)}/permissions").json()} == {vhost}
    finally:
        mgmt.delete(f"/api/vhosts/{other}")


def test_the_vhost_creators_grant_is_not_drift(
    tmp_path: Path, client: ManagementClient, broker: Any, mgmt: httpx.Client
) -> None:
    # the connecting user (guest here) is declared in the files without a permission on a vhost topo creates:
    # RabbitMQ grants it .* there; the plan lists it as not managed, never as a permission to revoke
    me = parse_management(broker.url).username or "guest"
    fresh = f"t-granted-{secrets.token_hex(3)}"
    stored = mgmt.get(f"/api/users/{q(me)}").json()
    (tmp_path / "t.yaml").write_text(
        f"version: 1\nvhosts:\n  {fresh}: {{}}\nusers:\n  {me}:\n    password-hash: {stored['password_hash']}\n"
        f"    hashing-algorithm: {stored['hashing_algorithm']}\n    tags: [administrator]\n"
    )
    desired = load(tmp_path)
    try:
        engine.apply(client, desired)  # re-reads the broker to confirm: the grant must not show as drift
        assert mgmt.get(f"/api/permissions/{fresh}/{q(me)}").json()["configure"] == ".*"
        plan = engine.plan(client, desired)
        assert plan.empty
        assert f"users.{me}.permissions.{fresh}" in {str(u.address) for u in plan.unmanaged}
    finally:
        mgmt.delete(f"/api/vhosts/{fresh}")


def test_a_permission_on_a_vhost_that_exists_nowhere_is_blocked(
    files: Any, client: ManagementClient, users: Users
) -> None:
    name = users.name("nowhere")
    text = "version: 1\nusers:\n  ${var:U}:\n" + NONE_ON_VHOST.replace("${var:VHOST}", "no-such-vhost-x")
    desired = files(text, U=name)
    plan = engine.plan(client, desired)
    assert plan.blocked and [b.code for c in plan.changes for b in c.blockers] == ["missing-vhost"]
    writes = client.writes
    with pytest.raises(UnsafeChange) as info:
        engine.apply(client, desired, plan)
    assert "no-such-vhost-x" in info.value.message and client.writes == writes  # refused before any write


PATTERNS = ["", "^$", ".*", "^orders\\.", "(", "[a-", "\\Qa.b\\E", "a{2,1}", "(?<n>x)", "[[:alpha:]]+", "*", "a**"]


def test_pattern_checks_agree_with_the_broker(mgmt: httpx.Client, users: Users, vhost: str) -> None:
    name = users.name("regex")
    mgmt.put(f"/api/users/{name}", json={"password_hash": "", "tags": ""}).raise_for_status()
    for pattern in PATTERNS:
        body = {"configure": pattern, "write": "", "read": ""}
        status = mgmt.put(f"/api/permissions/{q(vhost)}/{name}", json=body).status_code
        try:
            compile_pattern(pattern)
            ours = True
        except Exception:
            ours = False
        assert ours == (status in (201, 204)), (pattern, status)
    # all three patterns, or the broker refuses
    assert mgmt.put(f"/api/permissions/{q(vhost)}/{name}", json={"configure": ""}).status_code == 400


# -- topic permissions -------------------------------------------------------------------------------------

TOPIC = """\
version: 1
vhosts:
  ${var:VHOST}:
    exchanges:
      events: {type: topic}
      audit: {type: topic}
    queues:
      orders:
        bindings: [{exchange: events, routing-key: "#"}]
users:
  ${var:U}:
    password: ${env:P}
    permissions:
      ${var:VHOST}: {configure: "^$", write: "^(events|audit)$", read: "^$"}
    topic-permissions:
      ${var:VHOST}:
%s
"""


def test_topic_permissions_hold_and_removing_one_deletes_all_then_sets_the_rest(
    files: Any, client: ManagementClient, users: Users, broker: Any, vhost: str, mgmt: httpx.Client
) -> None:
    name = users.name("topic")
    both = '        events: {write: "^order\\\\.", read: "^$"}\n        audit: {write: ".*", read: ".*"}'
    engine.apply(client, files(TOPIC % both, {"P": "pw"}, U=name))
    listed = {t["exchange"]: t["write"] for t in mgmt.get(f"/api/topic-permissions/{q(vhost)}/{name}").json()}
    assert listed == {"events": "^order\\.", "audit": ".*"}
    connection = login(broker, name, "pw", vhost)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish("events", "order.paid", b"x")
        assert refused(lambda: channel.basic_publish("events", "invoice.paid", b"x"))
    finally:
        connection.close()
    # drop the audit entry: on 3.10 there is no per-exchange delete
    desired = files(TOPIC % '        events: {write: "^order\\\\.(paid)$", read: "^$"}', {"P": "pw"}, U=name)
    (change,) = engine.plan(client, desired).changes
    assert change.kind == "topic-permission" and any("all at once" in r for r in change.reasons)
    with Recording(broker.url) as recording:
        engine.apply(recording, desired)
        sent = [(m, p) for m, p, _ in recording.sent if "/topic-permissions/" in p and m != "GET"]
    assert sent == [
        ("DELETE", f"/topic-permissions/{q(vhost)}/{name}"),
        ("PUT", f"/topic-permissions/{q(vhost)}/{name}"),
    ]
    listed = {t["exchange"]: t["write"] for t in mgmt.get(f"/api/topic-permissions/{q(vhost)}/{name}").json()}
    assert listed == {"events": "^order\\.(paid)$"}
    assert engine.plan(client, desired).empty


# -- who may read users; the user topo connects as -------------------------------------------------------


def test_a_user_that_cannot_read_users_gets_one_clear_error(
    files: Any, users: Users, broker: Any, vhost: str, mgmt: httpx.Client
) -> None:
    watcher = users.name("watcher")
    mgmt.put(f"/api/users/{watcher}", json={"password": "w-pw", "tags": "monitoring"}).raise_for_status()
    mgmt.put(f"/api/permissions/{q(vhost)}/{watcher}", json={"configure": "", "write": "", "read": ".*"})
    desired = files("version: 1\nusers:\n  ${var:U}: {}\n", U=users.name("x"))
    url = parse_management(broker.url)
    with ManagementClient(f"http://{watcher}:w-pw@{url.host}:{url.port}", amqp_url="") as client:
        with pytest.raises(PermissionDenied) as info:
            engine.plan(client, desired)
        assert "the files declare users" in info.value.message and "administrator" in info.value.message
        assert "--vhost" in (info.value.hint or "")
        assert "w-pw" not in str(info.value)


def test_the_connecting_user_cannot_lock_topo_out(
    files: Any, users: Users, broker: Any, vhost: str, mgmt: httpx.Client
) -> None:
    admin = users.name("admin")
    mgmt.put(f"/api/users/{admin}", json={"password": "a-pw", "tags": "administrator"}).raise_for_status()
    mgmt.put(f"/api/permissions/{q(vhost)}/{admin}", json={"configure": ".*", "write": ".*", "read": ".*"})
    url = parse_management(broker.url)
    with ManagementClient(f"http://{admin}:a-pw@{url.host}:{url.port}", amqp_url="") as client:
        for text, env, words in (
            ("tags: [management]", {}, "administrator tag"),
            ("tags: [administrator]\n    password: ${env:P}", {"P": "another"}, "changing its password"),
        ):
            desired = files(f"version: 1\nusers:\n  ${{var:U}}:\n    {text}\n", env, U=admin)
            plan = engine.plan(client, desired)
            assert plan.blocked and words in render_text(plan)
            with pytest.raises(UnsafeChange) as info:
                engine.apply(client, desired, plan)
            assert words in info.value.message
        # and a delete (which only a future prune can plan) is refused before any write
        have = User(admin, ("administrator",), password_hash=PasswordHash("", SHA256))
        delete = Change("delete", Address("user", "", admin), before=have)
        plan = Plan(changes=[replace(delete, blockers=connecting_user_blockers(delete, client.user))])
        writes = client.writes
        with pytest.raises(UnsafeChange) as info:
            engine.apply(client, files("version: 1\n"), plan, confirm=False)
        assert "deleting it would lock topo out" in info.value.message and client.writes == writes
    stored = users.stored(admin)
    assert stored["tags"] == ["administrator"] and matches("a-pw", stored["password_hash"], stored["hashing_algorithm"])


# -- vhost settings and global parameters ------------------------------------------------------------------


def test_default_queue_type_at_creation_and_tracing_in_place(
    tmp_path: Path, client: ManagementClient, mgmt: httpx.Client
) -> None:
    name = f"t-dqt-{secrets.token_hex(3)}"
    (tmp_path / "t.yaml").write_text(f"version: 1\nvhosts:\n  {name}: {{default-queue-type: quorum, tracing: true}}\n")
    desired = load(tmp_path)
    try:
        engine.apply(client, desired)
        info = mgmt.get(f"/api/vhosts/{name}").json()
        assert (info["default_queue_type"], info["tracing"]) == ("quorum", True)
        assert engine.plan(client, desired).empty
        (tmp_path / "t.yaml").write_text(
            f"version: 1\nvhosts:\n  {name}: {{default-queue-type: quorum, tracing: false}}\n"
        )
        engine.apply(client, load(tmp_path))
        assert mgmt.get(f"/api/vhosts/{name}").json()["tracing"] is False
        # a different type: RabbitMQ 3.10 would silently keep quorum, so the plan is blocked
        (tmp_path / "t.yaml").write_text(f"version: 1\nvhosts:\n  {name}: {{default-queue-type: stream}}\n")
        plan = engine.plan(client, load(tmp_path))
        assert plan.blocked and plan.changes[0].blockers[0].code == "fixed-at-creation"
        with pytest.raises(UnsafeChange):
            engine.apply(client, load(tmp_path), plan)
        # what the broker does with it, for the record: 204 and nothing changes
        assert mgmt.put(f"/api/vhosts/{name}", json={"defaultqueuetype": "stream"}).status_code == 204
        assert mgmt.get(f"/api/vhosts/{name}").json()["default_queue_type"] == "quorum"
    finally:
        mgmt.delete(f"/api/vhosts/{name}")


def test_global_parameters(tmp_path: Path, client: ManagementClient, mgmt: httpx.Client) -> None:
    before = mgmt.get("/api/global-parameters/cluster_name")
    doc = f"t-doc-{secrets.token_hex(3)}"
    (tmp_path / "t.yaml").write_text(
        f"version: 1\nglobal-parameters:\n  cluster_name: topo-test-cluster\n  {doc}: {{owner: platform, n: [1, 2]}}\n"
    )
    desired = load(tmp_path)
    try:
        plan = engine.plan(client, desired)
        assert {str(u.address) for u in plan.unmanaged}.isdisjoint({"global-parameters.internal_cluster_id"})
        engine.apply(client, desired, plan)
        assert (
            mgmt.get("/api/overview", params={"columns": "cluster_name"}).json()["cluster_name"] == "topo-test-cluster"
        )
        assert mgmt.get(f"/api/global-parameters/{doc}").json()["value"] == {"owner": "platform", "n": [1, 2]}
        assert engine.plan(client, desired).empty
    finally:
        mgmt.delete(f"/api/global-parameters/{doc}")
        if before.status_code == 200:
            mgmt.put("/api/global-parameters/cluster_name", json={"value": before.json()["value"]})
        else:
            mgmt.delete("/api/global-parameters/cluster_name")


# -- export --------------------------------------------------------------------------------------------------


def _topo(*args: str) -> tuple[int, str, str]:
    import contextlib
    import io

    from topo.cli import _register
    from topo.cli.common import run

    _register()
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(list(args))
    return code, out.getvalue(), err.getvalue()


def test_export_writes_users_without_hashes_unless_asked(
    files: Any, client: ManagementClient, users: Users, broker: Any, vhost: str, tmp_path: Path
) -> None:
    name = users.name("exported")
    engine.apply(client, files(TOPIC % '        events: {write: "^a", read: "^$"}', {"P": "exp-pw"}, U=name))
    stored = users.stored(name)["password_hash"]
    code, text, err = _topo("export", "--url", broker.url)
    assert code == 0, err
    assert stored not in text and "exp-pw" not in text
    variable = "USER_" + name.upper().replace("-", "_") + "_PASSWORD"
    assert f"password: ${{env:{variable}}}" in text
    code, hashed, err = _topo("export", "--url", broker.url, "--include-password-hashes")
    assert code == 0, err
    assert stored in hashed
    for exported, environ in ((text, {variable: "exp-pw"}), (hashed, {})):
        (tmp_path / "export.yaml").write_text(exported)
        everything = load(tmp_path / "export.yaml", environ={**_placeholders(exported), **environ})
        mine = everything.only([vhost])
        mine.users = {name: everything.users[name]}
        mine.permissions = {k: v for k, v in everything.permissions.items() if k[0] == name}
        mine.topic_permissions = {k: v for k, v in everything.topic_permissions.items() if k[0] == name}
        assert engine.plan(client, mine).empty
    code, text, err = _topo("export", "--url", broker.url, "--vhost", vhost)
    assert code == 0 and "users:" not in text  # --vhost: the vhost only


def _placeholders(text: str) -> dict[str, str]:
    """Any value for every other placeholder of an export (other tests' users), so that it loads."""
    import re

    return {name: "x" for name in re.findall(r"\$\{env:(USER_\w+)\}", text)}


# -- the command line ---------------------------------------------------------------------------------------


def test_the_command_line_with_users(
    files: Any, users: Users, broker: Any, vhost: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = users.name("cli")
    files(USER % {"tags": ""}, {"APP_PASSWORD": "cli-pw"}, U=name)
    file = str(tmp_path / "t.yaml")
    common = ("--var", f"VHOST={vhost}", "--var", f"U={name}", "--url", broker.url)
    monkeypatch.setenv("APP_PASSWORD", "cli-pw")
    code, out, err = _topo("plan", file, *common, "--format", "markdown")
    assert code == 0, err
    assert f"+ user users.{name}" in out and "```mermaid" in out  # the graph draws the declared vhost only
    code, out, err = _topo("plan", file, *common, "--vhost", vhost)
    assert code == 0, err
    assert "users." not in out  # --vhost: users and their permissions are left out
    code, out, err = _topo("apply", file, *common, "--yes")
    assert code == 0, err
    assert "Apply complete" in out and "cli-pw" not in out + err
    code, out, err = _topo("plan", file, *common, "--detailed-exitcode")
    assert (code, out.splitlines()[0]) == (0, "No changes. The broker matches the files."), out + err
    # a permission on a vhost that exists nowhere: blocked (exit 3), refused by apply (exit 1)
    text = (tmp_path / "t.yaml").read_text().replace("      ${var:VHOST}: {configure", "      nowhere-x: {configure")
    (tmp_path / "t.yaml").write_text(text)
    code, out, err = _topo("plan", file, *common, "--detailed-exitcode")
    assert code == 3 and "! blocked: vhost 'nowhere-x' is not on the broker" in out, out + err
    code, out, err = _topo("apply", file, *common, "--yes")
    assert code == 1 and "Error: refusing a change that apply cannot make" in err, err


def test_only_plan_and_apply_need_the_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_IN_CI", raising=False)
    file = tmp_path / "t.yaml"
    file.write_text(
        "version: 1\nvhosts:\n  v: {queues: {q: {}}}\nusers:\n  u:\n    password: ${env:NOT_SET_IN_CI}\n"
        "    permissions: {v: {configure: '^$', write: '^$', read: '^q$'}}\n"
    )
    for command in (("validate",), ("lint",), ("graph", "--format", "mermaid")):
        code, out, err = _topo(command[0], str(file), *command[1:])
        assert code == 0, (command, out, err)
    code, out, err = _topo("plan", str(file), "--url", "http://guest:guest@127.0.0.1:9")
    assert code == 1 and "environment variable NOT_SET_IN_CI is not set" in err, err
