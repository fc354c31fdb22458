"""Saved plans (``topo plan -o plan.json``, ``topo apply plan.json``) and the apply lock, on a real node.

A saved plan applies exactly what it shows; a broker that moved since is refused (exit 4) naming the
addresses; a file from elsewhere, cut short or edited is refused; no secret is ever in the file. The
apply lock: a second apply of the same stack fails naming the holder, and the lock goes with a killed
holder's connection.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from topo.broker.lock import ApplyLock, lock_target
from topo.cli import _register
from topo.cli.common import run
from topo.errors import LockHeld
from topo.loader import load

pytestmark = pytest.mark.timeout(180)

PASSWORD = "pw-" + secrets.token_hex(8)

TOPOLOGY = """\
version: 1
vhosts:
  ${var:VHOST}:
    exchanges:
      events: {type: topic}
    queues:
      orders:
        message-ttl: %s
        bindings: [{exchange: events, routing-key: "orders.#"}]
      audit: {}
"""


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, broker: Any) -> None:
    for name in ("TOPO_DEBUG", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TOPO_URL", broker.url)
    monkeypatch.setenv("TOPO_AMQP_URL", broker.amqp_url)
    _register()


@pytest.fixture
def topo(capsys: pytest.CaptureFixture[str]) -> Any:
    def call(*args: str) -> Result:
        code = run(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return call


def write(path: Path, text: str) -> str:
    path.write_text(textwrap.dedent(text))
    return str(path)


def q(name: str) -> str:
    return quote(name, safe="")


def test_saved_plan_applies_exactly_what_it_shows(topo: Any, vhost: str, tmp_path: Path, mgmt: httpx.Client) -> None:
    files = write(tmp_path / "t.yaml", TOPOLOGY % "1m")
    plan_file = str(tmp_path / "plan.json")
    made = topo("plan", files, "--var", f"VHOST={vhost}", "--format", "markdown", "-o", plan_file)
    assert made.code == 0, made.err
    assert "### topo plan" in made.out and "+ queue vhosts." in made.out
    saved = json.loads(Path(plan_file).read_text())
    assert saved["format"] == "topo-saved-plan" and saved["format_version"] == 1
    assert saved["plan"]["summary"]["create"] == 4  # an exchange, two queues, a binding
    # the files change after the plan: the saved plan still applies what it showed, not the files
    write(tmp_path / "t.yaml", TOPOLOGY % "5m")
    applied = topo("apply", plan_file)
    assert applied.code == 0, applied.err
    assert "Apply complete: 4 created" in applied.out
    body = mgmt.get(f"/api/queues/{q(vhost)}/orders").json()
    assert body["arguments"]["x-message-ttl"] == 60000
    # applied: the same plan again is stale (every create is now there)
    again = topo("apply", plan_file)
    assert again.code == 4, again.err
    assert f"vhosts.{vhost}.queues.orders was created" in again.err


def test_a_broker_changed_since_the_plan_is_refused_naming_what_changed(
    topo: Any, vhost: str, tmp_path: Path, mgmt: httpx.Client
) -> None:
    files = write(tmp_path / "t.yaml", TOPOLOGY % "1m")
    assert topo("apply", files, "--var", f"VHOST={vhost}", "--yes").code == 0
    write(tmp_path / "t.yaml", TOPOLOGY % "1m" + "      payments: {}\n")
    plan_file = str(tmp_path / "plan.json")
    made = topo("plan", files, "--var", f"VHOST={vhost}", "-o", plan_file, "--detailed-exitcode")
    assert made.code == 2, made.err
    # someone changes a resource the plan manages, and adds one it does not (a client's own queue)
    mgmt.delete(f"/api/queues/{q(vhost)}/audit").raise_for_status()
    mgmt.put(f"/api/queues/{q(vhost)}/client-own", json={"durable": False}).raise_for_status()
    refused = topo("apply", plan_file)
    assert refused.code == 4, (refused.out, refused.err)
    assert f"vhosts.{vhost}.queues.audit was deleted" in refused.err
    assert "client-own" not in refused.err  # not managed: not part of the fingerprint
    assert "Hint: " in refused.err and "Traceback" not in refused.err
    assert mgmt.get(f"/api/queues/{q(vhost)}/payments").status_code == 404  # nothing applied
    # a new plan applies
    assert topo("plan", files, "--var", f"VHOST={vhost}", "-o", plan_file).code == 0
    assert topo("apply", plan_file).code == 0
    assert mgmt.get(f"/api/queues/{q(vhost)}/payments").status_code == 200


def test_a_change_the_fingerprint_does_not_cover_is_caught_by_the_plan(
    topo: Any, vhost: str, tmp_path: Path, mgmt: httpx.Client
) -> None:
    """An undeclared binding to a declared queue appears after the plan: the plan made now would delete it."""
    files = write(tmp_path / "t.yaml", TOPOLOGY % "1m")
    assert topo("apply", files, "--var", f"VHOST={vhost}", "--yes").code == 0
    write(tmp_path / "t.yaml", TOPOLOGY % "1m" + "      payments: {}\n")
    plan_file = str(tmp_path / "plan.json")
    assert topo("plan", files, "--var", f"VHOST={vhost}", "-o", plan_file).code == 0
    mgmt.post(f"/api/bindings/{q(vhost)}/e/events/q/orders", json={"routing_key": "extra.#"}).raise_for_status()
    refused = topo("apply", plan_file)
    assert refused.code == 4, refused.err
    assert 'bindings[events "extra.#"]' in refused.err


def test_no_secret_in_a_saved_plan_and_the_password_is_read_where_it_is_applied(
    topo: Any, vhost: str, tmp_path: Path, mgmt: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = f"svc-{secrets.token_hex(3)}"
    files = write(
        tmp_path / "t.yaml",
        f"""\
        version: 1
        users:
          {user}:
            password: ${{env:SVC_PASSWORD}}
            permissions:
              {vhost}: {{configure: "^$", write: "^$", read: "^$"}}
        vhosts:
          {vhost}:
            queues: {{q: {{}}}}
        """,
    )
    monkeypatch.setenv("SVC_PASSWORD", PASSWORD)
    plan_file = tmp_path / "plan.json"
    try:
        assert topo("plan", files, "-o", str(plan_file)).code == 0
        text = plan_file.read_text()
        assert PASSWORD not in text
        assert "${env:SVC_PASSWORD}" in text
        # applied where the variable is not set: refused, naming it
        monkeypatch.delenv("SVC_PASSWORD")
        missing = topo("apply", str(plan_file))
        assert missing.code == 1 and "SVC_PASSWORD" in missing.err and "Hint: " in missing.err
        monkeypatch.setenv("SVC_PASSWORD", PASSWORD)
        applied = topo("apply", str(plan_file))
        assert applied.code == 0, applied.err
        assert PASSWORD not in applied.out + applied.err
        whoami = httpx.get(
            mgmt.base_url.join("/api/whoami"), auth=(user, PASSWORD), timeout=10
        )  # the password from the environment at apply time
        assert whoami.status_code in (200, 401)  # the user has no management tag: 401 means a wrong password too
        check = mgmt.get(f"/api/users/{user}").json()
        assert check["name"] == user
        # the password changes on the broker after a plan: the plan made now differs, refused naming the user
        assert topo("plan", files, "-o", str(plan_file)).code == 0
        mgmt.put(f"/api/users/{user}", json={"password": "other-" + PASSWORD, "tags": ""}).raise_for_status()
        stale = topo("apply", str(plan_file))
        assert stale.code == 4, stale.err
        assert f"users.{user}" in stale.err
        assert PASSWORD not in stale.out + stale.err
    finally:
        mgmt.delete(f"/api/users/{user}")


def test_a_password_hash_is_never_written(topo: Any, vhost: str, tmp_path: Path) -> None:
    files = write(
        tmp_path / "t.yaml",
        f"""\
        version: 1
        users:
          hashed:
            password-hash: "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR"
            hashing-algorithm: rabbit_password_hashing_sha256
        vhosts:
          {vhost}: {{}}
        """,
    )
    plan_file = tmp_path / "plan.json"
    result = topo("plan", files, "-o", str(plan_file))
    assert result.code == 1
    assert "users.hashed" in result.err and "password hash" in result.err and "Hint: " in result.err
    assert not plan_file.exists()


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda text: text[: len(text) // 2], "not JSON"),
        (lambda text: "[1, 2]", "is not a saved plan"),
        (lambda text: text.replace('"topo_version":"', '"topo_version":"0.0.0-'), "was saved by topo 0.0.0-"),
        (lambda text: text.replace('"format_version":1', '"format_version":2'), "format 2"),
        (lambda text: text.replace('"message-ttl"', '"x"', 1).replace("60000", "70000"), "changed after topo saved it"),
    ],
)
def test_a_bad_plan_file_is_refused_clearly(topo: Any, vhost: str, tmp_path: Path, edit: Any, words: str) -> None:
    files = write(tmp_path / "t.yaml", TOPOLOGY % "1m")
    plan_file = tmp_path / "plan.json"
    assert topo("plan", files, "--var", f"VHOST={vhost}", "-o", str(plan_file)).code == 0
    plan_file.write_text(edit(plan_file.read_text()))
    result = topo("apply", str(plan_file))
    assert result.code == 1, result.err
    assert words in result.err, result.err
    assert "Hint: " in result.err and "Traceback" not in result.err


# -- the lock ------------------------------------------------------------------------------------------

HOLDER = """\
import sys, time
from topo.broker.lock import ApplyLock
lock = ApplyLock(sys.argv[1], sys.argv[2], sys.argv[3])
lock.acquire()
print("locked", flush=True)
time.sleep(600)
"""


def test_a_second_apply_fails_naming_the_holder_and_a_killed_holder_releases_the_lock(
    topo: Any, broker: Any, vhost: str, tmp_path: Path
) -> None:
    files = write(tmp_path / "t.yaml", TOPOLOGY % "1m")
    lock_vhost, name = lock_target(load(files, {"VHOST": vhost}))
    assert lock_vhost == vhost
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, broker.amqp_url, lock_vhost, name],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        blocked = topo("apply", files, "--var", f"VHOST={vhost}", "--yes")
        assert blocked.code == 1
        assert f"pid {holder.pid}" in blocked.err and "host " in blocked.err and "since " in blocked.err, blocked.err
        assert "another apply holds the lock" in blocked.err and "--lock-timeout" in blocked.err
        # plan never takes the lock
        assert topo("plan", files, "--var", f"VHOST={vhost}").code == 0
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
        # the broker drops the exclusive queue with the dead process's connection: a waiting apply gets it
        applied = topo("apply", files, "--var", f"VHOST={vhost}", "--yes", "--lock-timeout", "60")
        assert applied.code == 0, applied.err
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(30)


def _hold(broker: Any, lock_vhost: str, name: str) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, broker.amqp_url, lock_vhost, name],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_an_apply_that_finds_its_vhost_waits_for_the_first_apply_locking_the_default_vhost(
    topo: Any, broker: Any, vhost: str, mgmt: httpx.Client, tmp_path: Path
) -> None:
    """The first apply of a stack whose vhost does not exist yet holds the lock in ``/`` (it creates the
    vhost itself); a second apply that starts once the vhost is there must not take the vhost's lock and run
    beside it. Here a process holds ``/``'s lock as that first apply would, the vhost already created: the
    second apply fails naming it (waits, with a timeout), and gets through once it is gone. And an apply of
    a vhost that is still missing waits for ``/``'s lock too."""
    stack = f"lock-{secrets.token_hex(4)}"  # one stack, so one lock's name, whatever its vhost
    files = write(tmp_path / "t.yaml", f"name: {stack}\n" + TOPOLOGY % "1m")
    _, name = lock_target(load(files, {"VHOST": vhost}))
    assert name == f"topo.lock.{stack}"
    holder = _hold(broker, "/", name)
    try:
        blocked = topo("apply", files, "--var", f"VHOST={vhost}", "--yes", "--lock-timeout", "2")
        assert blocked.code == 1, blocked.err
        assert "another apply holds the lock" in blocked.err and "vhost '/'" in blocked.err, blocked.err
        assert f"pid {holder.pid}" in blocked.err, blocked.err
        assert mgmt.get(f"/api/queues/{q(vhost)}/orders").status_code == 404  # it wrote nothing
        assert mgmt.get(f"/api/queues/{q(vhost)}/{name}").status_code == 404  # nor kept the vhost's lock
        missing = f"{vhost}-new"
        try:
            first = topo("apply", files, "--var", f"VHOST={missing}", "--yes", "--lock-timeout", "0")
            assert first.code == 1 and f"pid {holder.pid}" in first.err, first.err
            assert mgmt.get(f"/api/vhosts/{q(missing)}").status_code == 404
        finally:
            mgmt.delete(f"/api/vhosts/{q(missing)}")
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
        applied = topo("apply", files, "--var", f"VHOST={vhost}", "--yes", "--lock-timeout", "60")
        assert applied.code == 0, applied.err
        assert mgmt.get(f"/api/queues/{q(vhost)}/orders").status_code == 200
        assert topo("destroy", stack, "--yes").code == 0, "the stack's inventory is left behind"
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(30)


def test_the_lock_is_released_when_the_apply_ends(broker: Any, vhost: str, mgmt: httpx.Client) -> None:
    with ApplyLock(broker.amqp_url, vhost, "topo.lock.t") as lock:
        body = mgmt.get(f"/api/queues/{q(vhost)}/topo.lock.t").json()
        assert body["exclusive"] is True and body["arguments"]["x-topo-lock-pid"] == os.getpid()
        other = ApplyLock(broker.amqp_url, vhost, "topo.lock.t", timeout=0)
        with pytest.raises(LockHeld):
            other.acquire()
        assert lock.holder.pid == os.getpid()
    again = ApplyLock(broker.amqp_url, vhost, "topo.lock.t")
    again.acquire()
    again.release()


def test_without_amqp_apply_goes_on_without_the_lock_and_says_so(topo: Any, vhost: str, tmp_path: Path) -> None:
    from devbroker import free_port

    files = write(tmp_path / "t.yaml", TOPOLOGY % "1m")
    nothing = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    result = topo("apply", files, "--var", f"VHOST={vhost}", "--yes", "--amqp-url", nothing)
    assert result.code == 0, result.err
    assert "Warning: applying without the stack's lock: cannot take the apply lock over AMQP" in result.err
    assert "--no-lock" in result.err
    quiet = topo("apply", files, "--var", f"VHOST={vhost}", "--yes", "--amqp-url", nothing, "--no-lock")
    assert quiet.code == 0 and "lock" not in quiet.err


def test_a_plan_made_against_another_cluster_is_refused(broker: Any, vhost: str, tmp_path: Path) -> None:
    from topo import engine, saved
    from topo.broker.client import ManagementClient
    from topo.errors import StalePlan

    files = write(tmp_path / "t.yaml", TOPOLOGY % "1m")
    with ManagementClient(broker.url, amqp_url=broker.amqp_url) as client:
        desired, planned, observed = engine.load_plan_observed(client, files, {"VHOST": vhost})
        made = saved.make(desired, engine.describe_broker(client, planned), observed)
        made.plan["broker"]["cluster_name"] = "elsewhere"
        with pytest.raises(StalePlan, match="made against the broker of cluster 'elsewhere'") as caught:
            saved.check(client, made)
        assert caught.value.exit_code == 4
        assert saved.check(client, saved.make(desired, engine.describe_broker(client, planned), observed))


def test_a_waiting_apply_gives_up_naming_the_holder(broker: Any, vhost: str, mgmt: httpx.Client) -> None:
    def describe() -> Any:
        return mgmt.get(f"/api/queues/{q(vhost)}/topo.lock.w").json()["arguments"]

    with ApplyLock(broker.amqp_url, vhost, "topo.lock.w"):
        waiting = ApplyLock(broker.amqp_url, vhost, "topo.lock.w", timeout=1, poll=0.2, describe=describe)
        with pytest.raises(LockHeld) as caught:
            waiting.acquire()
        assert f"pid {os.getpid()}" in caught.value.message and "waited 1 s" in caught.value.message
        assert caught.value.holder is not None and caught.value.holder.startswith("host ")


def test_a_shovel_uri_is_recorded_by_its_source_and_read_where_the_plan_is_applied(
    topo: Any, broker: Any, vhost: str, tmp_path: Path, mgmt: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = broker.amqp_url.rstrip("/") + "/" + q(vhost)
    assert "@" in source  # it carries the credentials
    monkeypatch.setenv("SHOVEL_SOURCE", source)
    text = f"""\
        version: 1
        vhosts:
          {vhost}:
            queues: {{outbound: {{}}, inbound: {{}}}}
            shovels:
              move:
                source: {{uri: "URI", queue: outbound}}
                destination: {{uri: "amqp:///{q(vhost)}", queue: inbound}}
        """
    files = write(tmp_path / "t.yaml", text.replace("URI", "${env:SHOVEL_SOURCE}"))
    plan_file = tmp_path / "plan.json"
    assert topo("plan", files, "-o", str(plan_file)).code == 0
    saved_text = plan_file.read_text()
    assert source not in saved_text and source.split("@")[0] not in saved_text
    assert "${env:SHOVEL_SOURCE}" in saved_text and f"amqp:///{q(vhost)}" in saved_text
    applied = topo("apply", str(plan_file))
    assert applied.code == 0, applied.err
    assert mgmt.get(f"/api/parameters/shovel/{q(vhost)}/move").status_code == 200
    assert topo("plan", files, "--detailed-exitcode").code == 0
    # a password written inside a URI keeps no source of its own: refused before anything is written
    monkeypatch.setenv("LINK_PASSWORD", "pw")
    inline = write(tmp_path / "t.yaml", text.replace("URI", "amqp://guest:${env:LINK_PASSWORD}@127.0.0.1/x"))
    other = tmp_path / "other.json"
    refused = topo("plan", inline, "-o", str(other))
    assert refused.code == 1 and "a password written inside a URI" in refused.err and "t.yaml:" in refused.err
    assert "shovel 'move'" in refused.err and not other.exists()


def test_a_saved_plan_takes_no_vhost_option(topo: Any, vhost: str, tmp_path: Path) -> None:
    files = write(tmp_path / "t.yaml", TOPOLOGY % "1m")
    plan_file = str(tmp_path / "plan.json")
    assert topo("plan", files, "--var", f"VHOST={vhost}", "--vhost", vhost, "-o", plan_file).code == 0
    flags = json.loads(Path(plan_file).read_text())["flags"]
    assert flags == {"vhosts": [vhost], "prune": False, "adopt": False, "migrate": False, "allow_data_loss": False}
    result = topo("apply", plan_file, "--vhost", vhost)
    assert result.code == 1 and "do not apply to a saved plan" in result.err


def test_a_saved_plan_of_a_stack_prunes_as_planned_and_locks_by_the_stack_name(
    topo: Any, vhost: str, tmp_path: Path, mgmt: httpx.Client
) -> None:
    from topo.plan.ownership import PREFIX

    stack = f"s{secrets.token_hex(3)}"
    body = f"version: 1\nname: {stack}\nvhosts:\n  {vhost}:\n    queues: {{keep: {{}}, gone: {{}}}}\n"
    files = write(tmp_path / "t.yaml", body)
    try:
        assert topo("apply", files, "--yes").code == 0
        assert lock_target(load(files)) == (vhost, f"topo.lock.{stack}")
        write(tmp_path / "t.yaml", body.replace(", gone: {}", ""))
        plan_file = str(tmp_path / "plan.json")
        assert topo("plan", files, "--prune", "-o", plan_file).code == 0
        assert json.loads(Path(plan_file).read_text())["flags"]["prune"] is True
        refused = topo("apply", plan_file, "--prune")
        assert refused.code == 1 and "do not apply to a saved plan" in refused.err
        applied = topo("apply", plan_file)  # prunes as planned, with no flag given here
        assert applied.code == 0, applied.err
        assert mgmt.get(f"/api/queues/{q(vhost)}/gone").status_code == 404
        assert mgmt.get(f"/api/queues/{q(vhost)}/keep").status_code == 200
    finally:
        for item in mgmt.get("/api/global-parameters").json():
            if item["name"] == f"{PREFIX}{stack}" or f".{stack}." in item["name"]:
                mgmt.delete(f"/api/global-parameters/{quote(item['name'], safe='')}")
