"""``make test-fast`` (``pytest -m "not broker"``): the tests that need no RabbitMQ node, and only those.

tests/conftest.py marks every test that uses a node fixture (``broker``, ``mgmt``, ``vhost``,
``tls_node``, directly or through another fixture) ``broker``; under ``-m "not broker"`` starting a node is
an error. Both are checked here on a small suite of their own, run by pytest in a subprocess with this
repository's conftest hooks and fixtures.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CONFTEST = f"""
import importlib.util
import sys

sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / "tests")!r}]
spec = importlib.util.spec_from_file_location("repo_conftest", {str(ROOT / "tests" / "conftest.py")!r})
repo = sys.modules["repo_conftest"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(repo)
pytest_configure = repo.pytest_configure
pytest_collection_modifyitems = repo.pytest_collection_modifyitems
broker, mgmt, vhost, tls_node = repo.broker, repo.mgmt, repo.vhost, repo.tls_node
"""

TESTS = """
from pathlib import Path

import pytest

import devbroker
import devbroker.node


@pytest.fixture
def through_another(vhost):
    return vhost


def test_plain():
    pass


def test_uses_the_broker(broker):
    raise AssertionError("must be deselected")


def test_uses_a_fixture_that_uses_vhost(through_another):
    raise AssertionError("must be deselected")


def test_starts_a_node_without_a_fixture(monkeypatch, tmp_path):
    # as if RabbitMQ were installed: only the guard stands between this test and a node
    monkeypatch.setattr(devbroker.node, "find_executable", lambda name: Path("/bin/true"))
    devbroker.start(tmp_path / "node", timeout=1)
"""


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    (tmp_path / "test_probe.py").write_text(textwrap.dedent(TESTS), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_not_broker_deselects_the_broker_tests_and_refuses_to_start_a_node(tmp_path: Path) -> None:
    done = _run(tmp_path, "-m", "not broker", "-o", "markers=broker: x")
    out = done.stdout + done.stderr
    assert "2 deselected" in out, out
    assert "1 passed" in out and "1 failed" in out, out
    assert "test_starts_a_node_without_a_fixture" in out
    assert "tried to start RabbitMQ node" in out and "pytest.mark.broker" in out, out


def test_the_broker_mark_selects_exactly_the_tests_using_a_node_fixture(tmp_path: Path) -> None:
    done = _run(tmp_path, "--collect-only", "-m", "broker", "-o", "markers=broker: x")
    out = done.stdout
    assert "test_uses_the_broker" in out and "test_uses_a_fixture_that_uses_vhost" in out, out
    assert "test_plain" not in out and "test_starts_a_node_without_a_fixture" not in out, out
