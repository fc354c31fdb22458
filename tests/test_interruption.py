"""Interruption (issue 10, item 6): ``topo apply`` killed with SIGKILL at random points of a large plan, many
times, on a real node; every rerun converges to "No changes." and no message is lost.

A stack (``name:``) declares version A: a few hundred queues, exchanges and bindings, queues holding
counted messages (classic and quorum, the same in both versions: they must survive every kill untouched),
a quorum queue and a classic queue (empty) whose arguments change in version B (so B replaces them: the
drop protocol's cut, fence, probe and delete), and queues, bindings and an exchange that B no longer
declares (``--prune`` deletes them); B also creates new ones. Each round starts ``topo apply B --prune
--yes`` as a real process, kills it with SIGKILL after a random delay (seeded: the seed is printed on
failure, ``TOPO_INTERRUPT_SEED=<seed>`` replays it), reruns it until it exits 0 (at most twice), then checks:
``topo plan B --prune --detailed-exitcode`` exits 0, every counted message is there exactly (AMQP passive
declare), the replaced queues hold nothing (no probe left), no fence policy (``topo.fence.*``) nor any other
``topo.*`` resource (nor the stack's apply lock, ``topo.lock.*``) is left in the vhost; then it applies A
again (same checks) for the next round.
``TOPO_INTERRUPT_ROUNDS`` sets the number of rounds (default 12).

The ``migrate`` variant applies everything with ``--migrate`` and adds a queue ``mig`` holding
:data:`MIGRATED` messages that B turns from classic into quorum (and A back): some kills fall once its
migration runs (its holding queues ``topo.migrate.*`` on the broker, the first round always), and at the end
every message is there exactly once, in its order (``TOPO_INTERRUPT_MIGRATE_ROUNDS``, default 3: each
round takes over a minute, its migrations waiting for the statistics to settle; raise it for a longer soak).

In both, a publisher (confirms, mandatory) sends to queue ``live`` (the same in every version) throughout:
nothing it sent is refused or unroutable, and the queue holds exactly what the broker confirmed, in order.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from support import drain, publish

from topo.broker.amqp_probe import LiveAmqp
from topo.plan.migrate import holding_queues

pytestmark = pytest.mark.timeout(600)

EXCHANGES = 12
QUEUES = 120  # each bound to one exchange: in both versions
GONE = 50  # queues (bound) only A declares: pruned by B
NEW = 50  # queues (bound) only B declares
KEPT = {"kept-c0": 15, "kept-c1": 15, "kept-c2": 15, "kept-q0": 15}  # queue: messages it holds throughout
ROUNDS = int(os.environ.get("TOPO_INTERRUPT_ROUNDS", "12"))
MIGRATED = 2000  # messages in the queue ``mig`` (the migration rounds)
MIGRATE_ROUNDS = int(os.environ.get("TOPO_INTERRUPT_MIGRATE_ROUNDS", "3"))


def q(name: str) -> str:
    return quote(name, safe="")


def version(stack: str, vhost: str, which: str, *, migrated: bool = False) -> str:
    """The stack's files in version ``which`` (A or B, or M: neither A's nor B's extra queues, other
    arguments of the replaced queues: both A and B have work from M); ``migrated``: with queue ``mig``, classic in A and
    quorum in B (its messages move with ``--migrate``)."""
    lines = ["version: 1", f"name: {stack}", "vhosts:", f"  {vhost}:", "    exchanges:"]
    lines += [f"      ex-{i}: {{type: topic}}" for i in range(EXCHANGES)]
    if which == "A":
        lines.append("      gone-ex: {type: fanout}")
    lines.append("    queues:")
    for i in range(QUEUES):
        lines.append(f"      q-{i:03}: {{bindings: [{{exchange: ex-{i % EXCHANGES}, routing-key: k.{i}}}]}}")
    extra = ("gone", GONE) if which == "A" else ("new", NEW) if which == "B" else ("none", 0)
    for i in range(extra[1]):
        exchange = "gone-ex" if which == "A" and i % 2 else f"ex-{i % EXCHANGES}"
        lines.append(f"      {extra[0]}-{i:03}: {{bindings: [{{exchange: {exchange}, routing-key: {extra[0]}.{i}}}]}}")
    lines.append("      live: {bindings: [{exchange: ex-0, routing-key: live}]}")  # a publisher's, throughout
    for name in KEPT:
        kind = "quorum" if name.startswith("kept-q") else "classic"
        lines.append(f"      {name}: {{type: {kind}, bindings: [{{exchange: ex-0, routing-key: {name}}}]}}")
    limit = {"A": 100, "B": 200, "M": 150}[which]  # an argument change: B replaces both (they are empty)
    lines.append(f"      re-q: {{type: quorum, max-length: {limit}, bindings: [{{exchange: ex-1, routing-key: re}}]}}")
    lines.append(f"      re-c: {{max-length: {limit}, bindings: [{{exchange: ex-1, routing-key: re}}]}}")
    if migrated:
        kind = "classic" if which == "A" else "quorum"
        lines.append(f"      mig: {{type: {kind}, bindings: [{{exchange: ex-2, routing-key: mig}}]}}")
    return "\n".join(lines) + "\n"


@dataclass
class Topo:
    """``topo`` as a real process against the test broker."""

    env: dict[str, str]

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-c", "from topo.cli import main; main()", *args]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=240, env=self.env)

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env
        )


def until_plan_shown(process: subprocess.Popen[str]) -> None:
    """Read ``process``'s output up to the plan's summary line (``Plan: ...``): its writes start next."""
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("Plan:"):
            return
    raise AssertionError("apply ended without showing its plan")


def until_migrating(amqp: LiveAmqp, vhost: str, process: subprocess.Popen[str]) -> None:
    """Until the holding queues of ``mig`` are there (its migration runs), or ``process`` ended."""
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        counted = amqp.count(vhost, list(holding_queues("mig")))
        if isinstance(counted, dict) and counted:
            return
        time.sleep(0.01)


@pytest.fixture
def topo(broker: Any) -> Topo:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOPO_")}
    env.update(TOPO_URL=broker.url, TOPO_AMQP_URL=broker.amqp_url, NO_COLOR="1", PYTHONUNBUFFERED="1")
    return Topo(env)


@pytest.fixture
def stack(mgmt: httpx.Client) -> Iterator[str]:
    name = f"int{os.getpid() % 10000}{random.randrange(10**6)}"
    yield name
    for item in mgmt.get("/api/global-parameters").json():
        if item["name"].startswith(("topo.stack." + name, "topo.stack-part." + name)):
            mgmt.delete(f"/api/global-parameters/{q(item['name'])}")


@pytest.fixture
def seed() -> Iterator[int]:
    value = int(os.environ.get("TOPO_INTERRUPT_SEED") or random.SystemRandom().randrange(2**32))
    print(f"interruption seed: {value} (replay: TOPO_INTERRUPT_SEED={value})")
    yield value


def converge(topo: Topo, path: Path, *flags: str, what: str) -> int:
    """Apply ``path`` until it exits 0 (at most three runs); how many runs it took."""
    for runs in range(1, 4):
        # a killed apply's lock goes with its connection: the broker may take a moment to see it closed
        done = topo.run("apply", str(path), "--prune", "--yes", "--lock-timeout", "30", *flags)
        if done.returncode == 0:
            return runs
        last = done
    raise AssertionError(f"{what}: apply did not converge in 3 runs:\n{last.stdout}\n{last.stderr}")


def check_converged(
    topo: Topo, path: Path, mgmt: httpx.Client, amqp: LiveAmqp, vhost: str, what: str, held: Mapping[str, int]
) -> None:
    """``path`` has nothing left to do, the queues in ``held`` hold exactly that many messages, the replaced
    ones nothing, and no ``topo.*`` resource (fence, probe policy, holding queue) is left in the vhost."""
    plan = topo.run("plan", str(path), "--prune", "--detailed-exitcode")
    assert plan.returncode == 0 and "No changes." in plan.stdout, (
        f"{what}: plan after apply:\n{plan.stdout}{plan.stderr}"
    )
    expected = {**held, "re-q": 0, "re-c": 0}
    counts = amqp.count(vhost, list(expected))
    assert isinstance(counts, dict), f"{what}: no exact count: {counts}"
    found = {name: counts[name][0] for name in counts}
    assert found == expected, f"{what}: messages held: {found}"
    stray = [
        f"{kind} {item['name']}"
        for kind in ("policies", "queues", "exchanges")
        for item in mgmt.get(f"/api/{kind}/{q(vhost)}").json()
        if item["name"].startswith("topo.")
    ]
    assert stray == [], f"{what}: topo's own resources left behind: {stray}"


@pytest.mark.parametrize("migrated", [False, True], ids=["drop", "migrate"])
def test_apply_killed_at_random_points_converges_and_loses_nothing(
    migrated: bool, topo: Topo, vhost: str, stack: str, mgmt: httpx.Client, broker: Any, seed: int, tmp_path: Path
) -> None:
    """``drop``: the replaced queues are empty (the drop protocol replaces them: cut, fence, probe, delete).
    ``migrate``: every apply has ``--migrate``, and queue ``mig`` holding :data:`MIGRATED` messages goes from
    classic (A) to quorum (B) and back each round: killed in its migration too, every message is there once,
    in its order, at the end."""
    from test_migrate_broker import Publisher, fill, read_all

    rng = random.Random(seed)
    amqp = LiveAmqp(broker.amqp_url)
    flags = ("--migrate",) if migrated else ()
    rounds = MIGRATE_ROUNDS if migrated else ROUNDS
    file_a, file_b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    file_a.write_text(version(stack, vhost, "A", migrated=migrated))
    file_b.write_text(version(stack, vhost, "B", migrated=migrated))
    assert converge(topo, file_a, *flags, what="A") == 1
    for name, count in KEPT.items():  # each message unique: a duplicate would show in the final drain
        assert all(publish(mgmt, vhost, "ex-0", name, body=f"{name}/{i}") for i in range(count))
    held = dict(KEPT)
    migrated_ids = [f"mig-{n:05d}" for n in range(MIGRATED)]
    if migrated:
        fill(broker.amqp_url, vhost, "ex-2", "mig", migrated_ids, size=256)
        held["mig"] = MIGRATED
    check_converged(topo, file_a, mgmt, amqp, vhost, "A", held)
    publisher = Publisher(broker.amqp_url, vhost, "ex-0", "live", prefix="live")  # confirms, mandatory
    publisher.start()
    planned = topo.run("plan", str(file_b), "--prune", "--format", "json", "--detailed-exitcode", *flags)
    assert planned.returncode == 2, planned.stdout + planned.stderr
    actions = {(c["action"], c["address"].rsplit(".", 1)[-1]) for c in json.loads(planned.stdout)["changes"]}
    replaced = "migrate" if migrated else "replace"  # --migrate migrates every queue it replaces
    assert {(replaced, "re-q"), (replaced, "re-c"), ("delete", "gone-000"), ("create", "new-000")} <= actions
    assert ("delete", "gone-ex") in actions and (("migrate", "mig") in actions) == migrated
    # how long a whole apply of B takes here, and its writes (after the plan is shown): kills fall in either
    started = time.monotonic()
    process = topo.start("apply", str(file_b), "--prune", "--yes", *flags)
    until_plan_shown(process)
    shown = time.monotonic()
    assert process.wait(timeout=240) == 0
    whole, writes = time.monotonic() - started, time.monotonic() - shown
    check_converged(topo, file_b, mgmt, amqp, vhost, "B", held)
    print(f"whole apply of B: {whole:.2f} s, its writes {writes:.2f} s")
    converge(topo, file_a, *flags, what="back to A")
    inside = 0  # kills that left the migration of mig half-way (its holding queues on the broker)
    for round_ in range(1, rounds + 1):
        what = f"round {round_} (seed {seed})"
        # where: after it started, or among its writes once its plan is shown, or (--migrate) once its
        # migration of mig runs (the first round always there)
        modes = ["started", "writes", "writes", "migration"] if migrated else ["started", "writes", "writes"]
        mode = "migration" if migrated and round_ == 1 else rng.choice(modes)
        delay = rng.uniform(0.0, 0.3 if mode == "migration" else (writes if mode == "writes" else whole) * 1.1)
        process = topo.start("apply", str(file_b), "--prune", "--yes", *flags)
        if mode != "started":
            until_plan_shown(process)
        if mode == "migration":
            until_migrating(amqp, vhost, process)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        killed = process.wait(timeout=60)
        holding = amqp.count(vhost, list(holding_queues("mig")))
        inside += killed == -signal.SIGKILL and isinstance(holding, dict) and bool(holding)
        left = topo.run("plan", str(file_b), "--prune", "--format", "json", *flags)
        assert left.returncode == 0, f"{what}: plan after the kill:\n{left.stdout}{left.stderr}"
        remaining = len(json.loads(left.stdout)["changes"])
        runs = converge(topo, file_b, *flags, what=what)
        assert runs <= 2, f"{what}: it took {runs} reruns after the kill"
        since = {"started": "it started", "writes": "its plan was shown", "migration": "its migration began"}[mode]
        print(f"{what}: killed {delay:.2f} s after {since} (exit {killed}), {remaining} changes left, {runs} run(s)")
        check_converged(topo, file_b, mgmt, amqp, vhost, what, held)
        converge(topo, file_a, *flags, what=f"{what}, back to A")
        check_converged(topo, file_a, mgmt, amqp, vhost, f"{what}, back to A", held)
    publisher.stop.set()
    publisher.join(timeout=30)
    assert publisher.refused == [], f"seed {seed}: refused or unroutable while topo applied: {publisher.refused[:5]}"
    assert read_all(broker.amqp_url, vhost, "live") == publisher.confirmed, f"seed {seed}: live's messages"
    # every counted message there exactly once (and the migrated ones in their order)
    for name, count in KEPT.items():
        taken: list[str] = []
        while batch := drain(mgmt, vhost, name):
            taken += batch
        assert sorted(taken) == sorted(f"{name}/{i}" for i in range(count)), f"{name}: {taken}"
    if migrated:
        assert inside, f"seed {seed}: no kill landed inside the migration"  # else this proves nothing of it
        assert read_all(broker.amqp_url, vhost, "mig") == migrated_ids, f"seed {seed}: mig's messages"


@pytest.mark.parametrize("lock_timeout", ["0", "120"])
def test_two_applies_started_together_end_in_one_declared_state(
    lock_timeout: str, topo: Topo, vhost: str, stack: str, mgmt: httpx.Client, broker: Any, seed: int, tmp_path: Path
) -> None:
    """``topo apply A`` and ``topo apply B`` of one stack started together, from M (both have work): the
    stack's lock lets one apply at a time. ``--lock-timeout 0``: the second fails at once naming the holder
    (the other process), or starts once the first is done; ``120``: it waits and applies next. Either way
    the broker ends exactly in A's or B's declared state (its plan --prune says "No changes."), never a mix,
    and the lock goes with its holder."""
    rng = random.Random(seed)
    amqp = LiveAmqp(broker.amqp_url)
    files = {which: tmp_path / f"{which}.yaml" for which in "ABM"}
    for which, path in files.items():
        path.write_text(version(stack, vhost, which))
    outcomes = []
    for round_ in range(1, 4):
        what = f"round {round_} (seed {seed}, --lock-timeout {lock_timeout})"
        converge(topo, files["M"], what=f"{what}: M")
        first, second = rng.sample("AB", 2)
        started = {
            which: topo.start("apply", str(files[which]), "--prune", "--yes", "--lock-timeout", lock_timeout)
            for which in (first, second)
        }
        ended = {which: process.communicate(timeout=240) for which, process in started.items()}
        codes = {which: started[which].returncode for which in started}
        assert 0 in codes.values(), f"{what}: neither apply succeeded: {codes} {ended}"
        for which, code in codes.items():
            if code != 0:
                other = started["B" if which == "A" else "A"]
                err = ended[which][1]
                assert lock_timeout == "0", f"{what}: {which} failed although it could wait: {err}"
                assert code == 1 and "another apply holds the lock" in err, f"{what}: {which}: {err}"
                assert f"pid {other.pid}" in err, f"{what}: {which} does not name its holder: {err}"
        states = [
            which
            for which in "AB"
            if topo.run("plan", str(files[which]), "--prune", "--detailed-exitcode").returncode == 0
        ]
        assert len(states) == 1, f"{what}: the broker is in neither A's nor B's state (a mix): {codes}"
        check_converged(topo, files[states[0]], mgmt, amqp, vhost, what, {})
        outcomes.append(f"{what}: {first} then {second} started, exits {codes}, ended in {states[0]}")
    print("\n".join(outcomes))
