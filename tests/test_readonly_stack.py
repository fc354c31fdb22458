"""``topo plan`` of a named stack (``name:``) with read-only credentials, on a real node.

A stack's inventory is kept in global parameters (``topo.stack.NAME``). On RabbitMQ 3.10.8 (checked here) a
``monitoring`` or ``management`` user may not read them (``GET /api/global-parameters`` and
``GET /api/global-parameters/NAME``: 401), a ``policymaker`` may, and may also write them. Without the
inventory, ``topo plan`` compares what it can, says the stack's ownership is not known (text, JSON
``read.ownership``, Markdown), marks each change whose fate depends on who owns its resource, and with
``--detailed-exitcode`` never exits 0; with it (policymaker, administrator), the plan is the administrator's.
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
import pytest
from support import check_golden, publish, wait_for_messages

from topo.cli import _register
from topo.cli.common import run
from topo.plan.ownership import PREFIX
from topo.urls import parse_management

pytestmark = pytest.mark.timeout(240)

PASSWORD = "ro-stack-secret-pw"


def q(name: str) -> str:
    return quote(name, safe="")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TOPO_URL", "TOPO_AMQP_URL", "TOPO_DEBUG", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    _register()


@pytest.fixture
def make_user(mgmt: httpx.Client) -> Iterator[Callable[[str, str], str]]:
    """``make_user(tags, vhost)``: a user with ``PASSWORD`` and a permission that grants nothing on ``vhost``
    (``configure ""``, ``write ""``, ``read ""``); deleted afterwards."""
    created: list[str] = []

    def make(tags: str, vhost: str) -> str:
        name = f"ros-{tags}-{secrets.token_hex(3)}"
        mgmt.put(f"/api/users/{name}", json={"password": PASSWORD, "tags": tags}).raise_for_status()
        created.append(name)
        body = {"configure": "", "write": "", "read": ""}
        mgmt.put(f"/api/permissions/{q(vhost)}/{name}", json=body).raise_for_status()
        return name

    yield make
    for name in created:
        mgmt.delete(f"/api/users/{name}")


@pytest.fixture
def stacks(mgmt: httpx.Client) -> Iterator[Callable[[], str]]:
    """``stacks()``: a new stack name; their inventories are removed afterwards."""
    made: list[str] = []

    def new() -> str:
        made.append(f"ro{secrets.token_hex(3)}")
        return made[-1]

    yield new
    for item in mgmt.get("/api/global-parameters").json():
        if any(item["name"] == PREFIX + name or f".{name}." in item["name"] for name in made):
            mgmt.delete(f"/api/global-parameters/{q(item['name'])}")


class Topo:
    """The command line as a user ``as_user`` (``None``: the test broker's administrator) runs it."""

    def __init__(self, broker: Any, capsys: pytest.CaptureFixture[str]) -> None:
        self.broker, self.capsys = broker, capsys

    def __call__(self, *args: str, user: str | None = None) -> tuple[int, str, str]:
        url = self.broker.url
        if user is not None:
            url = parse_management(url).with_credentials(user, PASSWORD).unparse()
        amqp = ["--amqp-url", self.broker.amqp_url if user is None else ""] if args[0] != "state" else []
        code = run([*args, "--url", url, *amqp])
        captured = self.capsys.readouterr()
        assert PASSWORD not in captured.out + captured.err
        return code, captured.out, captured.err


@pytest.fixture
def topo(broker: Any, capsys: pytest.CaptureFixture[str]) -> Topo:
    return Topo(broker, capsys)


def write(path: Path, text: str) -> str:
    path.write_text(textwrap.dedent(text))
    return str(path)


def stack_files(tmp_path: Path, stack: str, vhost: str, queues: str) -> str:
    """Stack ``stack``'s file: in ``vhost``, an exchange and the ``queues`` given (YAML lines)."""
    lines = "".join(f"      {line}\n" for line in queues.splitlines())
    text = f"version: 1\nname: {stack}\nvhosts:\n  {vhost}:\n    exchanges: {{events: {{type: topic}}}}\n    queues:\n"
    return write(tmp_path / f"{stack}.yaml", text + lines)


def test_probe_which_tags_may_read_global_parameters(
    broker: Any, mgmt: httpx.Client, vhost: str, make_user: Callable[[str, str], str]
) -> None:
    """What the plan's behaviour rests on: monitoring and management may not read global parameters (the
    inventory), policymaker and administrator may; and a policymaker may write them too (not read-only)."""
    name = f"{PREFIX}ro-probe-{secrets.token_hex(3)}"
    mgmt.put(f"/api/global-parameters/{q(name)}", json={"name": name, "value": {"a": 1}}).raise_for_status()
    base = parse_management(broker.url).public().rstrip("/")
    try:
        for tags, readable in (("monitoring", False), ("management", False), ("policymaker", True)):
            user = make_user(tags, vhost)
            with httpx.Client(base_url=base, auth=(user, PASSWORD), trust_env=False) as client:
                listed = client.get("/api/global-parameters")
                one = client.get(f"/api/global-parameters/{q(name)}")
                assert (listed.status_code, one.status_code) == ((200, 200) if readable else (401, 401)), tags
                if tags == "policymaker":
                    wrote = client.put(f"/api/global-parameters/{q(name)}", json={"name": name, "value": {"a": 2}})
                    assert wrote.status_code in (201, 204)
        assert mgmt.get(f"/api/global-parameters/{q(name)}").json()["value"] == {"a": 2}
    finally:
        mgmt.delete(f"/api/global-parameters/{q(name)}")


def test_a_named_stack_planned_by_a_monitoring_user_says_its_ownership_is_not_known(
    topo: Topo,
    mgmt: httpx.Client,
    vhost: str,
    stacks: Callable[[], str],
    make_user: Callable[[str, str], str],
    tmp_path: Path,
) -> None:
    mine, other = stacks(), stacks()
    path = stack_files(tmp_path, mine, vhost, "orders: {}\nold: {}\n")
    assert topo("apply", path, "--yes")[0] == 0
    shared = write(
        tmp_path / "other.yaml",
        f"""\
        version: 1
        name: {other}
        vhosts:
          {vhost}:
            queues: {{shared: {{message-ttl: 1m}}}}
        """,
    )
    assert topo("apply", shared, "--yes")[0] == 0
    monitor, policymaker = make_user("monitoring", vhost), make_user("policymaker", vhost)

    # 1. the files as applied: the administrator's plan is empty; without the inventory, not known (never 0)
    assert topo("plan", path, "--detailed-exitcode")[0] == 0
    code, out, err = topo("plan", path, "--detailed-exitcode", user=monitor)
    assert code == 2, err
    assert out.splitlines()[0] == f"No changes in what was compared (not compared: the inventory of stack {mine!r})."
    assert f"Note: Ownership not known: the files name stack {mine!r}, and user {monitor!r} may not read" in out
    assert "Not owned" not in out and "--adopt takes it over" not in out  # no pretended ownership
    assert topo("plan", path, user=monitor)[0] == 0  # without --detailed-exitcode: 0, as any plan shown
    code, out, err = topo("plan", path, "--detailed-exitcode", user=policymaker)  # reads the inventory
    assert (code, out.splitlines()[0]) == (0, "No changes. The broker matches the files."), err

    # 2. 'old' leaves the files and holds a message; 'shared' (stack `other`'s) enters them with another TTL
    publish(mgmt, vhost, "", "old")
    wait_for_messages(mgmt, vhost, "old")
    path = stack_files(tmp_path, mine, vhost, "orders: {}\nshared: {message-ttl: 2m}\n")
    for prune in ((), ("--prune",)):
        code, out, err = topo("plan", path, *prune, "--format", "json", "--detailed-exitcode")
        admin = json.loads(out)
        assert code == 3 and admin["read"]["ownership"] == {"stack": mine, "known": True}, err
        blocked = {c["address"]: [b["code"] for b in c["blockers"]] for c in admin["changes"] if c["blockers"]}
        expected = {f"vhosts.{vhost}.queues.shared": ["owned-by-another-stack"]}
        if prune:  # the prune of 'old', which holds a message
            expected[f"vhosts.{vhost}.queues.old"] = ["messages"]
        assert blocked == expected

        for user in (policymaker,):  # reads the inventory: the administrator's plan, read resource by resource
            code, out, err = topo("plan", path, *prune, "--format", "json", "--detailed-exitcode", user=user)
            document = json.loads(out)
            assert code == 3, err
            assert [(c["action"], c["address"], [b["code"] for b in c["blockers"]]) for c in document["changes"]] == [
                (c["action"], c["address"], [b["code"] for b in c["blockers"]]) for c in admin["changes"]
            ]
            assert document["read"]["ownership"] == {"stack": mine, "known": True}
            assert document["read"]["not_compared"] == [] and document["read"]["by_resource"] is True

        code, out, err = topo("plan", path, *prune, "--format", "json", "--detailed-exitcode", user=monitor)
        assert code == 2, err  # not 0 ("no changes"), not 3: blocked is what apply refuses, and that is not known
        document = json.loads(out)
        assert document["read"]["ownership"] == {"stack": mine, "known": False}
        assert {"kind": "stack", "vhost": None} in document["read"]["not_compared"]
        assert any(note.startswith("Ownership not known:") for note in document["read"]["notes"])
        assert document["blocked"] is False and document["adopted"] == [] and document["not_owned"] == []
        assert not [c for c in document["changes"] if c["kind"] == "stack"]  # the inventory's change: not known
        # the replace of another stack's queue is shown, marked: apply refuses it if another stack owns it
        (replace,) = [c for c in document["changes"] if c["action"] == "replace"]
        assert replace["address"] == f"vhosts.{vhost}.queues.shared"
        assert (
            "ownership not known: apply refuses this change if another stack owns the resource" in replace["warnings"]
        )
        # no prune is computed: 'old' is listed as any resource no file declares, not deleted
        assert not [c for c in document["changes"] if c["action"] == "delete"]
        assert {"kind": "queue", "vhost": vhost, "address": f"vhosts.{vhost}.queues.old"} in document["not_managed"]

    code, out, err = topo("plan", path, "--prune", "--detailed-exitcode", user=monitor)
    assert code == 2, err
    assert "! ownership not known: apply refuses this change if another stack owns the resource" in out
    assert f"Ownership not known: the inventory of stack {mine!r} could not be read" in out
    assert "what --prune would delete" in out
    code, out, err = topo("plan", path, "--format", "markdown", user=monitor)
    assert code == 0 and f"> :warning: **Ownership not known: the files name stack {mine!r}" in out, err

    # 3. a saved plan (-o) is made for apply: it reads what apply reads, and stops naming the tags
    code, out, err = topo("plan", path, "-o", str(tmp_path / "plan.json"), user=monitor)
    (error,) = [line for line in err.splitlines() if line.startswith("Error:")]
    assert code == 1 and "policymaker or administrator tag" in error and "Traceback" not in err
    assert not (tmp_path / "plan.json").exists()


def test_a_plan_limited_with_vhost_still_reads_the_stacks_inventory(
    topo: Topo, vhost: str, stacks: Callable[[], str], make_user: Callable[[str, str], str], tmp_path: Path
) -> None:
    mine = stacks()
    path = stack_files(tmp_path, mine, vhost, "orders: {}\n")
    assert topo("apply", path, "--yes")[0] == 0
    whole = topo("plan", path, "--detailed-exitcode")
    assert whole[0] == 0 and whole[1].startswith("No changes. The broker matches the files.\n"), whole
    assert "owned" not in whole[1].replace("Not owned (1)", "").replace(
        "not created", ""
    )  # only the vhost, made by the fixture
    assert topo("plan", path, "--vhost", vhost, "--detailed-exitcode") == whole  # not a stack that owns nothing
    code, out, err = topo("plan", path, "--vhost", vhost, "--detailed-exitcode", user=make_user("monitoring", vhost))
    assert code == 2 and out.startswith("No changes in what was compared (not compared: the inventory of"), err


def test_topo_state_with_read_only_credentials_is_one_clear_error(
    topo: Topo, vhost: str, stacks: Callable[[], str], make_user: Callable[[str, str], str], tmp_path: Path
) -> None:
    mine = stacks()
    assert topo("apply", stack_files(tmp_path, mine, vhost, "orders: {}\n"), "--yes")[0] == 0
    monitor = make_user("monitoring", vhost)
    for args in (("state", mine), ("state",), ("destroy", mine, "--yes")):
        code, out, err = topo(*args, user=monitor)
        assert code == 1 and "Traceback" not in err, err
        (error,) = [line for line in err.splitlines() if line.startswith("Error:")]
        assert f"user {monitor!r} may not read global parameters" in error
        assert "policymaker or administrator tag" in error
        (hint,) = [line for line in err.splitlines() if line.startswith("Hint:")]
        assert "'administrator' tag" in hint
    code, out, err = topo("state", mine, "--format", "json", user=make_user("policymaker", vhost))
    assert code == 0, err
    assert f"vhosts.{vhost}.queues.orders" in {item["address"] for item in json.loads(out)["owned"]}


def test_golden_a_plan_without_the_stacks_inventory() -> None:
    from topo.model import Binding, Queue, Topology, VHost
    from topo.plan.diff import diff
    from topo.plan.model import BrokerInfo, ReadNotes
    from topo.plan.render import render_markdown, render_text

    tenant = Binding("amq.topic", "orders", routing_key="tenant.#")  # another stack's, or no one's: not known
    ttl = {"x-message-ttl": 60000}
    have = Topology(
        {"shop": VHost("shop", queues={"orders": Queue("orders", arguments=ttl)}, bindings={tenant.key: tenant})}
    )
    queues = {"orders": Queue("orders", arguments={"x-message-ttl": 120000}), "fresh": Queue("fresh")}
    want = Topology({"shop": VHost("shop", queues=queues)}, name="orders")
    plan = diff(want, have, skip=["stack"])
    plan.broker = BrokerInfo(cluster_name=None, url="https://rabbit.example.com:15671")
    plan.read = ReadNotes(user="ci-reader", by_resource=True, not_compared=(("stack", None),), stack="orders")
    check_golden("plan/readonly-stack.txt", render_text(plan))
    check_golden("plan/readonly-stack.md", render_markdown(plan))
    empty = diff(want, want, skip=["stack"])
    empty.read = ReadNotes(user="ci-reader", by_resource=True, not_compared=(("stack", None),), stack="orders")
    check_golden("plan/readonly-stack-empty.txt", render_text(empty))
