"""The pre-commit hooks (.pre-commit-hooks.yaml), run by the real ``pre-commit`` tool as a team runs them.

A git repository of topologies (in a temporary directory) uses this repository's hooks from its
.pre-commit-config.yaml; pre-commit installs topo into an environment of its own (``language: python``: a
virtualenv and ``pip install`` of the hook repository, once for all the tests here) and runs them: a good
file passes, a file with a schema error fails ``topo-validate``, a file with a lint error fails ``topo-lint``.
The hook repository is a snapshot of this one (a fresh git repository with the files pip installs and the
hooks file) so that what is tested is the working tree, committed or not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parent.parent
PRE_COMMIT = Path(sys.executable).parent / "pre-commit"

GOOD = """\
version: 1
vhosts:
  shop:
    exchanges:
      events: {type: topic}
    queues:
      orders:
        bindings: [{exchange: events, routing-key: "order.*"}]
"""

SCHEMA_ERROR = GOOD.replace("type: topic", "type: topic, durabel: true")

LINT_ERROR = """\
version: 1
vhosts:
  shop:
    exchanges:
      dlx: {type: direct}
    queues:
      orders: {dead-letter-exchange: dlx}
"""


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@t"
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A git repository holding what `pip install .` needs of this one, and the hooks file; its commit."""
    repo = tmp_path_factory.mktemp("hooks")
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        shutil.copy(ROOT / name, repo / name)
    shutil.copytree(ROOT / "topo", repo / "topo", ignore=shutil.ignore_patterns("__pycache__"))
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "snapshot")
    return repo, git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")  # the hook environment, installed once for the module


def run_hooks(tmp_path: Path, hook_repo: tuple[Path, str], home: Path, text: str) -> subprocess.CompletedProcess[str]:
    repo, rev = hook_repo
    (tmp_path / "topologies").mkdir()
    (tmp_path / "topologies" / "shop.yaml").write_text(text)
    (tmp_path / "README.md").write_text("not a topology: the hooks' `files:` leaves it out\n")
    (tmp_path / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {repo}\n    rev: {rev}\n    hooks:\n      - id: topo-validate\n      - id: topo-lint\n"
    )
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PATH": f"{PRE_COMMIT.parent}:{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)
    # the hook environment is pinned like the test environment: a new upstream release must not turn this red
    env["PIP_CONSTRAINT"] = str(ROOT / "constraints.txt")
    return subprocess.run(
        [str(PRE_COMMIT), "run", "--all-files", "--color", "never"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )


def test_a_good_topology_passes_both_hooks(tmp_path: Path, hook_repo: tuple[Path, str], home: Path) -> None:
    done = run_hooks(tmp_path, hook_repo, home, GOOD)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "topo validate" in done.stdout and "topo lint" in done.stdout
    assert "Failed" not in done.stdout


def test_a_schema_error_fails_validate_with_its_place(tmp_path: Path, hook_repo: tuple[Path, str], home: Path) -> None:
    done = run_hooks(tmp_path, hook_repo, home, SCHEMA_ERROR)
    assert done.returncode == 1, done.stdout + done.stderr
    validate = done.stdout.split("topo lint")[0]
    assert "topo validate" in validate and "Failed" in validate
    assert "topologies/shop.yaml:5:" in done.stdout and "unknown key 'durabel'" in done.stdout


def test_a_lint_error_fails_lint(tmp_path: Path, hook_repo: tuple[Path, str], home: Path) -> None:
    done = run_hooks(tmp_path, hook_repo, home, LINT_ERROR)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("topo validate") and line.endswith("Passed") for line in lines), done.stdout
    assert any(line.startswith("topo lint") and line.endswith("Failed") for line in lines), done.stdout
    assert "TL101 error [dead-letter-nowhere]" in done.stdout
