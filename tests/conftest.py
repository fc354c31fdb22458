"""Shared fixtures: a real RabbitMQ broker for the tests that need one.

- ``broker`` (session): ``.url`` (Management API, with credentials), ``.amqp_url``, ``.node`` (the
  :class:`devbroker.Node`, or None for an external broker). With ``TOPO_TEST_URL`` set (and
  optionally ``TOPO_TEST_AMQP_URL``) that broker is used; otherwise a private node is started on free
  loopback ports under pytest's tmp dir, the first time a test asks for it, and stopped at the end; it has
  the shovel and federation plugins (:data:`LINK_PLUGINS`), as an external test broker must.
- ``mgmt`` (session): an ``httpx.Client`` on the Management API (base URL + basic auth) for raw calls,
  e.g. ``mgmt.get(f"/api/queues/{quote(vhost, safe='')}")``.
- ``vhost`` (function): a fresh vhost ``t-<test name>-<hex>`` the broker user may use; deleted after.
- ``tls_node`` (session): a second private node with TLS listeners for AMQP and the Management API, and
  its certificates (tests/tls_node.py); started the first time a test asks for it.

Without RabbitMQ installed, tests using these fixtures are skipped locally and fail under CI (CI set).

Every test that uses one of them (directly or through another fixture) is marked ``broker`` here, at
collection; a module that starts a node of its own marks itself. ``-m "not broker"`` (``make test-fast``)
runs the rest, and starts no node: a test that tries fails, naming the mark it lacks.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx
import pytest
from tls_node import TlsNode, make_certs, start_tls_node

import devbroker
import devbroker.node
from topo.urls import amqp_url_for, parse_management

LINK_PLUGINS = devbroker.node.DEMO_PLUGINS
"""Enabled on the test broker besides devbroker's own: shovels and federation (topologies/ declares some)."""

NODE_FIXTURES = frozenset({"broker", "mgmt", "vhost", "tls_node"})
"""The fixtures that start (or reach) a RabbitMQ node: a test using any of them is marked ``broker``."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if NODE_FIXTURES.intersection(getattr(item, "fixturenames", ())):  # the closure: indirect uses too
            item.add_marker(pytest.mark.broker)


def pytest_configure(config: pytest.Config) -> None:
    """Under ``-m "not broker"``, starting a node is an error: the run must stay fast and need no RabbitMQ."""
    if "not broker" not in (config.getoption("markexpr", "") or ""):
        return
    launch = devbroker.node._launch

    def refuse(node: devbroker.Node, *args: object, **kwargs: object) -> None:
        raise AssertionError(
            f"a test run with -m 'not broker' tried to start RabbitMQ node {node.name}: "
            "mark the test (or its module) with pytest.mark.broker"
        )

    devbroker.node._launch = refuse  # type: ignore[assignment]
    config.add_cleanup(lambda: setattr(devbroker.node, "_launch", launch))


@dataclass(frozen=True)
class Broker:
    url: str = field(repr=False)  # with a password (TOPO_TEST_URL may hold a real one)
    amqp_url: str = field(repr=False)
    node: devbroker.Node | None

    @property
    def user(self) -> str:
        return parse_management(self.url).username or "guest"


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    url = os.environ.get("TOPO_TEST_URL")
    if url:
        yield Broker(url=url, amqp_url=os.environ.get("TOPO_TEST_AMQP_URL") or amqp_url_for(url), node=None)
        return
    try:
        # owner_pid: if this run is killed before its teardown, a watcher stops the node.
        node = devbroker.start(tmp_path_factory.mktemp("broker"), owner_pid=os.getpid(), plugins=LINK_PLUGINS)
    except devbroker.DevBrokerError as exc:
        message = f"no test broker: {exc.message}" + (f" ({exc.hint})" if exc.hint else "")
        if os.environ.get("CI") or "not installed" not in exc.message:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    try:
        yield Broker(url=node.url, amqp_url=node.amqp_url, node=node)
    finally:
        try:
            node.stop()
        except devbroker.DevBrokerError as exc:  # pragma: no cover - reported, not fatal
            print(f"warning: could not stop test broker {node.name}: {exc}", file=sys.stderr)


@pytest.fixture(scope="session")
def tls_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsNode]:
    """A second private node with TLS listeners (AMQP and the Management API): see tests/tls_node.py."""
    try:
        devbroker.find_executable("rabbitmq-server")
    except devbroker.DevBrokerError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"no TLS test broker: {exc.message}", pytrace=False)
        pytest.skip(f"RabbitMQ not installed: {exc.message}")
    certs = make_certs(tmp_path_factory.mktemp("certs"))
    try:
        node = start_tls_node(tmp_path_factory.mktemp("tls-node"), certs)
    except devbroker.DevBrokerError as exc:
        pytest.fail(f"could not start a TLS node: {exc}", pytrace=False)
    try:
        yield node
    finally:
        node.node.stop()
        shutil.rmtree(certs, ignore_errors=True)


@pytest.fixture(scope="session")
def mgmt(broker: Broker) -> Iterator[httpx.Client]:
    parsed = parse_management(broker.url)
    auth = httpx.BasicAuth(parsed.username or "guest", parsed.password if parsed.password is not None else "guest")
    with httpx.Client(base_url=parsed.public().rstrip("/"), auth=auth, timeout=30, trust_env=False) as client:
        yield client


def _short(name: str) -> str:
    name = name.removeprefix("test_")
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")[:32] or "x"


@pytest.fixture
def vhost(request: pytest.FixtureRequest, broker: Broker, mgmt: httpx.Client) -> Iterator[str]:
    name = f"t-{_short(request.node.name)}-{secrets.token_hex(4)}"
    path = quote(name, safe="")
    mgmt.put(f"/api/vhosts/{path}").raise_for_status()
    mgmt.put(
        f"/api/permissions/{path}/{quote(broker.user, safe='')}",
        json={"configure": ".*", "write": ".*", "read": ".*"},
    ).raise_for_status()
    try:
        yield name
    finally:
        response = mgmt.delete(f"/api/vhosts/{path}")
        if response.status_code != 404:
            response.raise_for_status()
