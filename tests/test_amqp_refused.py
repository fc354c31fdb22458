"""When AMQP refuses the user (a wrong password, no permission on the vhost), topo says so: in the plan's
warning beside a count from the statistics, in apply's refusal, and in the runtime's errors; it does not
call that "AMQP did not answer", and a client that reconnects stops rather than retrying forever."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from topo import engine
from topo.broker.amqp_probe import count_exactly
from topo.broker.client import ManagementClient
from topo.errors import UnsafeChange
from topo.model import Queue, Topology, VHost
from topo.runtime.connection import Connection
from topo.runtime.errors import AuthenticationError, VhostAccessRefused
from topo.runtime.url import parse_url
from topo.urls import URL, parse_amqp, parse_management

pytestmark = pytest.mark.timeout(120)

PASSWORD = "pw-" + secrets.token_hex(4)


@pytest.fixture
def user(mgmt: httpx.Client) -> Iterator[Any]:
    """``user(vhost=None)``: an administrator with password PASSWORD, with every permission on ``vhost``."""
    created: list[str] = []

    def make(vhost: str | None = None) -> str:
        name = f"t-refused-{secrets.token_hex(3)}"
        mgmt.put(f"/api/users/{name}", json={"password": PASSWORD, "tags": "administrator"}).raise_for_status()
        created.append(name)
        if vhost is not None:
            mgmt.put(
                f"/api/permissions/{quote(vhost, safe='')}/{name}",
                json={"configure": ".*", "write": ".*", "read": ".*"},
            ).raise_for_status()
        return name

    yield make
    for name in created:
        mgmt.delete(f"/api/users/{name}")


def _as(url: str, user: str, password: str, path: str = "") -> str:
    parsed = parse_management(url) if url.startswith("http") else parse_amqp(url)
    return URL(parsed.scheme, parsed.host, parsed.port, path or parsed.path).with_credentials(user, password).unparse()


def _topology(vhost: str, **arguments: Any) -> Topology:
    return Topology({vhost: VHost(vhost, queues={"q": Queue("q", type="quorum", arguments=arguments)})})


def test_the_count_says_amqp_refused_the_user_access_to_the_vhost(broker: Any, vhost: str, user: Any) -> None:
    # an administrator reads every vhost through the Management API, but AMQP needs a permission on it
    name = user()
    with ManagementClient(broker.url) as admin:
        engine.apply(admin, _topology(vhost))
    with ManagementClient(_as(broker.url, name, PASSWORD), amqp_url=_as(broker.amqp_url, name, PASSWORD)) as client:
        plan = engine.plan(client, _topology(vhost, **{"x-delivery-limit": 3}))
        (change,) = [c for c in plan.changes if c.kind == "queue"]
        # a quorum queue without an exact count is blocked; the blocker says why there is no exact count
        assert change.usage is not None and not change.usage.exact
        (blocker,) = [b for b in change.blockers if b.code == "inexact-count"]
        assert f"AMQP refused user {name!r} access to vhost {vhost!r} (530)" in blocker.message, blocker.message
        assert "did not answer" not in blocker.message
        with pytest.raises(UnsafeChange) as info:
            engine.apply(client, _topology(vhost, **{"x-delivery-limit": 3}), plan)
        said = f"{info.value.message} (hint: {info.value.hint})"
        assert f"AMQP refused user {name!r} access to vhost {vhost!r} (530)" in said, said
        assert "did not answer" not in said


def test_the_count_says_amqp_refused_the_login(broker: Any, vhost: str) -> None:
    wrong = _as(broker.amqp_url, "guest", "not-the-password")
    counted = count_exactly(wrong, vhost, ["q"])
    assert not isinstance(counted, dict) and counted.refused
    assert "AMQP refused the login of user 'guest'" in counted.reason
    assert "not-the-password" not in counted.reason
    with ManagementClient(broker.url) as admin:
        engine.apply(admin, _topology(vhost))
    with ManagementClient(broker.url, amqp_url=wrong) as client:
        plan = engine.plan(client, _topology(vhost, **{"x-delivery-limit": 3}))
        (change,) = [c for c in plan.changes if c.kind == "queue"]
        said = [b.message for b in change.blockers] + list(change.warnings)
        assert any("AMQP refused the login of user 'guest'" in text for text in said), said
        assert not any("not-the-password" in text for text in said)


def test_apply_says_amqp_refused_the_user_when_it_cannot_check_a_fence(
    broker: Any, vhost: str, mgmt: httpx.Client
) -> None:
    # the plan counted exactly; AMQP refuses the user from then on: the last look before the delete says why
    desired = _topology(vhost, **{"x-delivery-limit": 3})
    with ManagementClient(broker.url, amqp_url=broker.amqp_url) as client:
        engine.apply(client, _topology(vhost))
        plan = engine.plan(client, desired)
        assert not plan.blocked
        client.amqp_url = _as(broker.amqp_url, "guest", "not-the-password")
        with pytest.raises(UnsafeChange) as info:
            engine.apply(client, desired, plan, recount=False)
    said = f"{info.value.message} (hint: {info.value.hint})"
    assert "queue 'q' in vhost" in said and "AMQP refused the login of user 'guest' at amqp://***@" in said, said
    assert "so apply could not check that its fence holds" in said and "not-the-password" not in said
    assert not [p for p in mgmt.get(f"/api/policies/{quote(vhost, safe='')}").json()]  # the fence was taken away
    assert mgmt.get(f"/api/queues/{quote(vhost, safe='')}/q").json()["arguments"].get("x-delivery-limit") is None


def test_apply_says_amqp_refused_the_user_the_delete_of_a_quorum_queue(
    broker: Any, vhost: str, user: Any, mgmt: httpx.Client
) -> None:
    # A quorum queue is deleted over AMQP (to count what goes with it): an AMQP user that may count, publish
    # and read but not configure the queue is refused the delete, and apply says so; nothing is lost.
    name = user()
    mgmt.put(
        f"/api/permissions/{quote(vhost, safe='')}/{name}", json={"configure": "^$", "write": ".*", "read": ".*"}
    ).raise_for_status()
    desired = _topology(vhost, **{"x-delivery-limit": 3})
    with ManagementClient(broker.url) as admin:
        engine.apply(admin, _topology(vhost))
    with ManagementClient(broker.url, amqp_url=_as(broker.amqp_url, name, PASSWORD)) as client:
        plan = engine.plan(client, desired)
        assert not plan.blocked  # the exact count needs no configure permission
        with pytest.raises(UnsafeChange) as info:
            engine.apply(client, desired, plan)
    said = info.value.message
    assert f"AMQP refused user {name!r} at amqp://***@" in said and "403 ACCESS_REFUSED" in said, said
    assert "so apply could not delete it over AMQP and count what went with it" in said and PASSWORD not in said
    assert mgmt.get(f"/api/queues/{quote(vhost, safe='')}/q").json()["arguments"].get("x-delivery-limit") is None
    assert count_exactly(broker.amqp_url, vhost, ["q"]) == {"q": (0, 0)}  # the queue stays; apply's probe went
    assert not mgmt.get(f"/api/policies/{quote(vhost, safe='')}").json()


def test_the_count_says_when_amqp_did_not_answer(vhost: str) -> None:
    counted = count_exactly("amqp://guest:guest@127.0.0.1:1/", vhost, ["q"])
    assert not isinstance(counted, dict) and not counted.refused
    assert counted.reason.startswith("AMQP did not answer at amqp://***@127.0.0.1:1/"), counted.reason


def test_the_runtime_says_the_user_was_refused_the_vhost(broker: Any, vhost: str, user: Any) -> None:
    name = user()  # no permission on vhost
    params = parse_url(_as(broker.amqp_url, name, PASSWORD)).with_vhost(vhost)
    with pytest.raises(VhostAccessRefused) as info:
        asyncio.run(Connection(params, reconnect=False).open())
    assert f"the broker refused user {name!r} access to vhost {vhost!r}" in info.value.message
    assert "530" in info.value.message and info.value.hint and "permission" in info.value.hint
    wrong = parse_url(_as(broker.amqp_url, name, "wrong")).with_vhost(vhost)
    with pytest.raises(AuthenticationError, match=f"refused the login of {name!r}"):
        asyncio.run(Connection(wrong, reconnect=False).open())


def test_a_reconnecting_client_stops_when_its_access_is_revoked(
    broker: Any, vhost: str, user: Any, mgmt: httpx.Client
) -> None:
    name = user(vhost)
    params = parse_url(_as(broker.amqp_url, name, PASSWORD)).with_vhost(vhost)

    async def main() -> BaseException | None:
        connection = await Connection(params, reconnect=True, reconnect_max_delay=0.2).open()
        mgmt.delete(f"/api/permissions/{quote(vhost, safe='')}/{name}").raise_for_status()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # close it from the broker's side: the client reconnects
            names = [c["name"] for c in mgmt.get("/api/connections").json() if c.get("user") == name]
            for each in names:
                mgmt.delete(f"/api/connections/{quote(each, safe='')}")
            if names:
                break
            await asyncio.sleep(0.2)
        while connection.is_open and time.monotonic() < deadline:  # the broker's Close is on its way
            await asyncio.sleep(0.05)
        try:
            await asyncio.wait_for(connection.wait_ready(), 20)  # fails at once, does not retry forever
        except Exception as exc:
            return exc
        finally:
            await connection.close()
        return None

    error = asyncio.run(main())
    assert isinstance(error, VhostAccessRefused), repr(error)
