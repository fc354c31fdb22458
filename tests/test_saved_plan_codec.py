"""The saved plan's file format, offline: the desired topology round-trips exactly (every field the model
has), no secret is written, a bad file is refused clearly, the fingerprint names what changed."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from topo.errors import UsageError
from topo.loader import load
from topo.model import PasswordHash, Queue, Topology, VHost
from topo.plan.model import Plan
from topo.plan.saved import (
    BadPlanFile,
    SavedPlan,
    compare_changes,
    compare_fingerprints,
    decode_topology,
    dumps,
    encode_topology,
    fingerprint,
    loads,
    managed_addresses,
)

ROOT = Path(__file__).resolve().parent.parent
SECRETS = sorted((ROOT / "topologies" / "secrets").glob("*.password"))


@pytest.mark.parametrize("path", ["topologies", "tests/fixtures/loader/example"])
def test_a_topology_round_trips_exactly(path: str) -> None:
    topology = load(ROOT / path)
    data = json.loads(json.dumps(encode_topology(topology)))
    back = decode_topology(data)
    assert back == topology
    assert encode_topology(back) == data  # the fields outside == too (origins, keep-bindings, retries, ...)
    assert any(vhost.queues for vhost in back.vhosts.values())


def test_no_password_is_written_only_where_it_comes_from() -> None:
    topology = load(ROOT / "topologies")
    assert topology.users and SECRETS
    text = dumps(SavedPlan(desired=topology, plan={}, fingerprint={}))
    for secret in SECRETS:
        assert secret.read_text().strip() not in text
    assert '"source":"password-file secrets/orders.password"' in text
    users = decode_topology(json.loads(text)["desired"]).users
    assert all(user.password is None or user.password.value is None for user in users.values())


def test_a_password_hash_is_refused_and_an_empty_one_is_no_secret() -> None:
    from topo.model import User

    hashed = Topology(users={"u": User("u", password_hash=PasswordHash("c2VjcmV0", "rabbit_password_hashing_sha256"))})
    with pytest.raises(UsageError, match=r"users\.u: the password is a password-hash"):
        encode_topology(hashed)
    empty = Topology(users={"u": User("u", password_hash=PasswordHash("", "rabbit_password_hashing_sha256"))})
    assert decode_topology(encode_topology(empty)) == empty


def test_a_url_with_a_password_is_refused() -> None:
    topology = Topology(vhosts={"v": VHost("v", description="amqp://user:s3cret@host/v")})
    with pytest.raises(UsageError, match="URL with a password"):
        encode_topology(topology)


def _saved() -> str:
    topology = Topology(vhosts={"v": VHost("v", queues={"q": Queue("q")})})
    return dumps(SavedPlan(desired=topology, plan={"changes": []}, fingerprint={"vhosts.v.queues.q": "ab"}))


def test_loads_reads_what_dumps_wrote() -> None:
    saved = loads(_saved(), "plan.json")
    assert saved.desired.vhosts["v"].queues["q"] == Queue("q")
    assert saved.fingerprint == {"vhosts.v.queues.q": "ab"}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "not JSON"),
        ("{}", "is not a saved plan"),
        (_saved().replace('"ab"', '"cd"'), "changed after topo saved it"),
        (_saved().replace('"format_version":1', '"format_version":9'), "(saved-plan format 9)"),
    ],
)
def test_a_bad_file_is_refused(text: str, words: str) -> None:
    with pytest.raises(BadPlanFile) as caught:
        loads(text, "plan.json")
    assert words in caught.value.message and caught.value.hint


def test_the_fingerprint_names_what_changed() -> None:
    desired = Topology(vhosts={"v": VHost("v", queues={"q": Queue("q"), "new": Queue("new")})})
    before = Topology(vhosts={"v": VHost("v", queues={"q": Queue("q"), "gone": Queue("gone"), "x": Queue("x")})})
    addresses = managed_addresses(desired, Plan())
    saved = fingerprint(before, desired, addresses)
    assert saved["vhosts.v.queues.new"] == ""
    assert "vhosts.v.queues.x" not in saved  # not managed: not fingerprinted
    after = dataclasses.replace(
        before,
        vhosts={
            "v": VHost(
                "v", queues={"q": Queue("q", durable=False), "new": Queue("new"), "x": Queue("x", durable=False)}
            )
        },
    )
    assert compare_fingerprints(saved, fingerprint(after, desired, addresses)) == [
        "vhosts.v.queues.new was created",
        "vhosts.v.queues.q was changed",
    ]
    assert compare_fingerprints(saved, fingerprint(before, desired, addresses)) == []


def test_compare_changes_names_each_difference() -> None:
    def change(address: str, action: str) -> dict[str, object]:
        return {"address": address, "action": action, "kind": "queue", "before": None, "after": None, "reasons": []}

    saved = {"changes": [change("a", "create"), change("b", "create")]}
    now = {"changes": [change("b", "replace"), change("c", "delete")]}
    assert compare_changes(saved, now) == [
        "a: the saved plan would create it, the broker needs no such change now",
        "b: the saved plan's create is not what the broker needs now",
        "c: the broker now needs a delete the saved plan does not have",
    ]


def test_a_flag_this_topo_does_not_know_is_refused() -> None:
    text = dumps(SavedPlan(desired=Topology(), plan={}, fingerprint={}, flags={"prune": True, "rename": True}))
    with pytest.raises(BadPlanFile, match="made with flags this topo does not know: rename"):
        loads(text, "plan.json")
