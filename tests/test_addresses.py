"""One address renderer: a validation error, a plan and a lint finding name a resource the same way.

:func:`topo.model.document_path` writes every path users read; :class:`topo.model.Address` (plans, lint)
and the loader's problems (``topo validate``) both go through it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from topo.errors import ValidationError
from topo.lint import lint
from topo.loader import load
from topo.model import Address, Binding, Topology, VHost, document_path
from topo.plan.diff import diff


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), ""),
        (("vhosts",), "vhosts"),
        (("vhosts", "iot", "queues", "orders"), "vhosts.iot.queues.orders"),
        (("vhosts", "/", "exchanges", "dlx"), 'vhosts["/"].exchanges.dlx'),
        (("vhosts", "v", "queues", "orders.eu", "message-ttl"), 'vhosts.v.queues["orders.eu"].message-ttl'),
        (("vhosts", "v", "queues", "q", "bindings", 0, "exchange"), "vhosts.v.queues.q.bindings[0].exchange"),
        (("vhosts", "v", "queues", "-dash"), 'vhosts.v.queues["-dash"]'),
        (("vhosts", "v", "queues", 'say "hi"'), 'vhosts.v.queues["say \\"hi\\""]'),
        (("vhosts", "v", "queues", "a b"), 'vhosts.v.queues["a b"]'),
        (("vhosts", "v", "queues", "été"), 'vhosts.v.queues["été"]'),
        (("vhosts", "v", "queues", "_under-score9"), "vhosts.v.queues._under-score9"),
        (("a.b",), '["a.b"]'),
    ],
)
def test_document_path(path: tuple[str | int, ...], text: str) -> None:
    assert document_path(path) == text


def test_address_is_the_document_path_of_the_resource() -> None:
    assert str(Address("vhost", "/")) == document_path(("vhosts", "/"))
    assert str(Address("queue", "v", "orders.eu")) == document_path(("vhosts", "v", "queues", "orders.eu"))
    assert str(Address("operator-policy", "v", "-p")) == document_path(("vhosts", "v", "operator-policies", "-p"))
    binding = Binding("events", 'odd "q"', routing_key="k").address("v")
    assert str(binding).startswith(document_path(("vhosts", "v", "queues", 'odd "q"')) + ".bindings[")


# Names whose two renderings used to differ: a leading '-' (the loader wrote `.-x`, plans `["-x"]`) and
# a quote (the loader wrote `["say "hi""]`, unescaped).
ODD_NAMES = ["-x", 'say "hi"', "orders.eu", "a/b"]


def _write(tmp_path: Path, vhost: str, queue: dict[str, object], name: str) -> Path:
    file = tmp_path / "t.yaml"
    document = {"version": 1, "vhosts": {vhost: {"queues": {name: queue}}}}
    file.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return file


@pytest.mark.parametrize("name", ODD_NAMES)
def test_validation_plan_and_lint_agree_on_the_address(tmp_path: Path, name: str) -> None:
    vhost = "/"
    address = str(Address("queue", vhost, name))

    # topo validate: a problem inside the queue is placed under the queue's address
    with pytest.raises(ValidationError) as info:
        load(_write(tmp_path, vhost, {"message-ttl": "soon"}, name), environ={})
    paths = [p.path for p in info.value.problems]
    assert paths == [f"{address}.message-ttl"]

    # topo lint: a finding on the queue (TL301, an argument RabbitMQ does not know) names the same address
    topology = load(_write(tmp_path, vhost, {"arguments": {"x-message-tll": 1000}}, name), environ={})
    assert [f.address for f in lint(topology, select={"TL301"})] == [address]

    # topo plan: creating the queue names the same address
    plan = diff(topology, Topology({vhost: VHost(vhost)}))
    assert address in [str(c.address) for c in plan.changes if c.kind == "queue"]
