"""docs/gitops.md's GitHub Actions workflow, run as written against a real node.

The workflow is read from the document (its ```yaml block with ``jobs:``); the steps that run topo are run
with bash as GitHub runs them (``bash -e``; ``$GITHUB_OUTPUT`` a file), in a checkout of a topology
repository made here; the steps that need GitHub itself (checkout, install, comment, artifacts: ``uses:``,
and fetching the pull request's artifact with ``gh``) are stood in for by the test: the plan file stays where
the pull request's job wrote it. The pull request's job plans (a Markdown comment and a saved plan); the
merge's job applies that plan; a broker changed in between makes it fail with exit 4, naming what changed;
a blocked plan fails the pull request's job.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml
from support import publish, wait_for_messages

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "gitops.md"
RUN_BY_TEST = {"plan": ("Validate", "Lint", "Plan", "Blocked"), "apply": ("Apply the reviewed plan",)}
STOOD_IN_FOR = {"Install topo", "Fetch the reviewed plan"}  # need GitHub (pip from the org's git, gh)

pytestmark = pytest.mark.timeout(300)


def workflow() -> dict[str, Any]:
    text = DOC.read_text(encoding="utf-8")
    for block in re.findall(r"```yaml\n(.*?)```", text, flags=re.S):
        data = yaml.safe_load(block)
        if isinstance(data, dict) and "jobs" in data and "plan" in data["jobs"]:
            return data
    raise AssertionError("docs/gitops.md has no GitHub Actions workflow with a plan job")


def steps(job: str) -> dict[str, dict[str, Any]]:
    return {step.get("name", step.get("uses", "")): step for step in workflow()["jobs"][job]["steps"]}


def test_every_step_that_runs_a_command_is_run_here_or_stood_in_for() -> None:
    for job, names in RUN_BY_TEST.items():
        found = steps(job)
        with_run = {name for name, step in found.items() if "run" in step}
        assert with_run == set(names) | (STOOD_IN_FOR & with_run), (job, with_run)
        assert all(name in found for name in names)


class Checkout:
    """A topology repository's checkout, and the job's environment."""

    def __init__(self, path: Path, broker: Any) -> None:
        self.path = path
        (path / "topologies").mkdir()
        self.output = path / "github_output"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TOPO_")}
        self.env.update(
            TOPO_URL=broker.url,
            TOPO_AMQP_URL=broker.amqp_url,
            GITHUB_OUTPUT=str(self.output),
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        )

    def write(self, text: str) -> None:
        (self.path / "topologies" / "shop.yaml").write_text(text)

    def step(self, job: str, name: str) -> subprocess.CompletedProcess[str]:
        self.output.write_text("")
        script = steps(job)[name]["run"]
        return subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=self.path,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def outputs(self) -> dict[str, str]:
        return dict(line.split("=", 1) for line in self.output.read_text().splitlines() if "=" in line)

    def plan_job(self) -> dict[str, str]:
        """The pull request's job up to its artifact: what each step gave."""
        for name in ("Validate", "Lint", "Plan"):
            done = self.step("plan", name)
            assert done.returncode == 0, (name, done.stdout, done.stderr)
        return self.outputs()


TOPOLOGY = """\
version: 1
vhosts:
  {vhost}:
    exchanges:
      events: {{type: topic}}
    queues:
      orders:
        bindings: [{{exchange: events, routing-key: "order.*"}}]
"""


def q(name: str) -> str:
    return quote(name, safe="")


@pytest.fixture
def checkout(tmp_path: Path, broker: Any) -> Checkout:
    return Checkout(tmp_path, broker)


def test_the_pull_request_plans_and_the_merge_applies_the_reviewed_plan(
    checkout: Checkout, vhost: str, mgmt: httpx.Client
) -> None:
    checkout.write(TOPOLOGY.format(vhost=vhost))
    outputs = checkout.plan_job()
    assert outputs["exitcode"] == "2"  # changes
    comment = (checkout.path / "plan.md").read_text()
    assert comment.startswith("### topo plan") and f"+ queue vhosts.{vhost}.queues.orders" in comment
    assert (checkout.path / "plan.json").is_file()
    applied = checkout.step("apply", "Apply the reviewed plan")
    assert applied.returncode == 0, applied.stderr
    assert "Apply complete: 3 created" in applied.stdout
    assert mgmt.get(f"/api/queues/{q(vhost)}/orders").status_code == 200
    # the next pull request with nothing to change
    assert checkout.plan_job()["exitcode"] == "0"


def test_a_broker_changed_since_the_review_fails_the_merge_with_exit_4(
    checkout: Checkout, vhost: str, mgmt: httpx.Client
) -> None:
    checkout.write(TOPOLOGY.format(vhost=vhost))
    checkout.plan_job()
    assert checkout.step("apply", "Apply the reviewed plan").returncode == 0
    checkout.write(TOPOLOGY.format(vhost=vhost) + "      payments: {}\n")
    assert checkout.plan_job()["exitcode"] == "2"
    mgmt.delete(f"/api/exchanges/{q(vhost)}/events").raise_for_status()  # by hand, after the review
    refused = checkout.step("apply", "Apply the reviewed plan")
    assert refused.returncode == 4, (refused.stdout, refused.stderr)
    assert f"vhosts.{vhost}.exchanges.events was deleted" in refused.stderr
    assert mgmt.get(f"/api/queues/{q(vhost)}/payments").status_code == 404  # nothing written


def test_a_blocked_plan_fails_the_pull_request(checkout: Checkout, vhost: str, mgmt: httpx.Client) -> None:
    checkout.write(TOPOLOGY.format(vhost=vhost))
    checkout.plan_job()
    assert checkout.step("apply", "Apply the reviewed plan").returncode == 0
    assert publish(mgmt, vhost, "", "orders", body="kept")
    wait_for_messages(mgmt, vhost, "orders")
    checkout.write(TOPOLOGY.format(vhost=vhost).replace("      orders:\n", "      orders:\n        type: quorum\n"))
    outputs = checkout.plan_job()  # the comment is still posted and the plan kept
    assert outputs["exitcode"] == "3"
    assert "blocked" in (checkout.path / "plan.md").read_text()
    blocked = checkout.step("plan", "Blocked")
    assert blocked.returncode == 1 and "::error::topo apply would refuse this plan" in blocked.stdout
