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
``topo.*`` resource is left in the vhost; then it applies A again (same checks) for the next round.
``TOPO_INTERRUPT_ROUNDS`` sets the number of rounds (default 12).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from support import drain, publish

from topo.broker.amqp_probe import LiveAmqp

pytestmark = pytest.mark.timeout(600)

EXCHANGES = 12
QUEUES = 120  # each bound to one exchange: in both versions
GONE = 50  # queues (bound) only A declares: pruned by B
NEW = 50  # queues (bound) only B declares
KEPT = {"kept-c0": 15, "kept-c1": 15, "kept-c2": 15, "kept-q0": 15}  # queue: messages it holds throughout
ROUNDS = int(os.environ.get("TOPO_INTERRUPT_ROUNDS", "12"))


def q(name: str) -> str:
    return quote(name, safe="")


def version(stack: str, vhost: str, which: str) -> str:
    """The stack's files in version ``which`` (A or B)."""
    lines = ["version: 1", f"name: {stack}", "vhosts:", f"  {vhost}:", "    exchanges:"]
    lines += [f"      ex-{i}: {{type: topic}}" for i in range(EXCHANGES)]
    if which == "A":
        lines.append("      gone-ex: {type: fanout}")
    lines.append("    queues:")
    for i in range(QUEUES):
        lines.append(f"      q-{i:03}: {{bindings: [{{exchange: ex-{i % EXCHANGES}, routing-key: k.{i}}}]}}")
    extra = ("gone", GONE) if which == "A" else ("new", NEW)
    for i in range(extra[1]):
        exchange = "gone-ex" if which == "A" and i % 2 else f"ex-{i % EXCHANGES}"
        lines.append(f"      {extra[0]}-{i:03}: {{bindings: [{{exchange: {exchange}, routing-key: {extra[0]}.{i}}}]}}")
    for name in KEPT:
        kind = "quorum" if name.startswith("kept-q") else "classic"
        lines.append(f"      {name}: {{type: {kind}, bindings: [{{exchange: ex-0, routing-key: {name}}}]}}")
    limit = 100 if which == "A" else 200  # an argument change: B replaces both (they are empty)
    lines.append(f"      re-q: {{type: quorum, max-length: {limit}, bindings: [{{exchange: ex-1, routing-key: re}}]}}")
    lines.append(f"      re-c: {{max-length: {limit}, bindings: [{{exchange: ex-1, routing-key: re}}]}}")
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
            self.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=self.env
        )


def until_plan_shown(process: subprocess.Popen[str]) -> None:
    """Read ``process``'s output up to the plan's summary line (``Plan: ...``): its writes start next."""
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("Plan:"):
            return
    raise AssertionError("apply ended without showing its plan")


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
        done = topo.run("apply", str(path), "--prune", "--yes", *flags)
        if done.returncode == 0:
            return runs
        last = done
    raise AssertionError(f"{what}: apply did not converge in 3 runs:\n{last.stdout}\n{last.stderr}")


def check_converged(topo: Topo, path: Path, mgmt: httpx.Client, amqp: LiveAmqp, vhost: str, what: str) -> None:
    plan = topo.run("plan", str(path), "--prune", "--detailed-exitcode")
    assert plan.returncode == 0 and "No changes." in plan.stdout, (
        f"{what}: plan after apply:\n{plan.stdout}{plan.stderr}"
    )
    counts = amqp.count(vhost, [*KEPT, "re-q", "re-c"])
    assert isinstance(counts, dict), f"{what}: no exact count: {counts}"
    held = {name: counts[name][0] for name in counts}
    assert held == {**KEPT, "re-q": 0, "re-c": 0}, f"{what}: messages held: {held}"
    stray = [
        f"{kind} {item['name']}"
        for kind in ("policies", "queues", "exchanges")
        for item in mgmt.get(f"/api/{kind}/{q(vhost)}").json()
        if item["name"].startswith("topo.")
    ]
    assert stray == [], f"{what}: topo's own resources left behind: {stray}"


def test_apply_killed_at_random_points_converges_and_loses_nothing(
    topo: Topo, vhost: str, stack: str, mgmt: httpx.Client, broker: Any, seed: int, tmp_path: Path
) -> None:
    rng = random.Random(seed)
    amqp = LiveAmqp(broker.amqp_url)
    file_a, file_b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    file_a.write_text(version(stack, vhost, "A"))
    file_b.write_text(version(stack, vhost, "B"))
    assert converge(topo, file_a, what="A") == 1
    for name, count in KEPT.items():  # each message unique: a duplicate would show in the final drain
        assert all(publish(mgmt, vhost, "ex-0", name, body=f"{name}/{i}") for i in range(count))
    check_converged(topo, file_a, mgmt, amqp, vhost, "A")
    planned = topo.run("plan", str(file_b), "--prune", "--format", "json", "--detailed-exitcode")
    assert planned.returncode == 2, planned.stdout + planned.stderr
    actions = {(c["action"], c["address"].rsplit(".", 1)[-1]) for c in json.loads(planned.stdout)["changes"]}
    assert {("replace", "re-q"), ("replace", "re-c"), ("delete", "gone-000"), ("create", "new-000")} <= actions
    assert ("delete", "gone-ex") in actions
    # how long a whole apply of B takes here, and its writes (after the plan is shown): kills fall in either
    started = time.monotonic()
    process = topo.start("apply", str(file_b), "--prune", "--yes")
    until_plan_shown(process)
    shown = time.monotonic()
    assert process.wait(timeout=240) == 0
    whole, writes = time.monotonic() - started, time.monotonic() - shown
    check_converged(topo, file_b, mgmt, amqp, vhost, "B")
    print(f"whole apply of B: {whole:.2f} s, its writes {writes:.2f} s")
    converge(topo, file_a, what="back to A")
    for round_ in range(1, ROUNDS + 1):
        what = f"round {round_} (seed {seed})"
        after_plan = rng.random() < 0.7  # most kills among the writes
        delay = rng.uniform(0.0, (writes if after_plan else whole) * 1.1)
        process = topo.start("apply", str(file_b), "--prune", "--yes")
        if after_plan:
            until_plan_shown(process)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        killed = process.wait(timeout=60)
        left = topo.run("plan", str(file_b), "--prune", "--format", "json")
        assert left.returncode == 0, f"{what}: plan after the kill:\n{left.stdout}{left.stderr}"
        remaining = len(json.loads(left.stdout)["changes"])
        runs = converge(topo, file_b, what=what)
        assert runs <= 2, f"{what}: it took {runs} reruns after the kill"
        when = "after its plan was shown" if after_plan else "after it started"
        print(
            f"{what}: killed {delay:.2f} s {when} (exit {killed}), {remaining} changes left, converged in {runs} run(s)"
        )
        check_converged(topo, file_b, mgmt, amqp, vhost, what)
        converge(topo, file_a, what=f"{what}, back to A")
        check_converged(topo, file_a, mgmt, amqp, vhost, f"{what}, back to A")
    # every counted message there exactly once
    for name, count in KEPT.items():
        taken: list[str] = []
        while batch := drain(mgmt, vhost, name):
            taken += batch
        assert sorted(taken) == sorted(f"{name}/{i}" for i in range(count)), f"{name}: {taken}"
