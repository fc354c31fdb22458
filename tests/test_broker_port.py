"""The broker port's contract, run twice: on a real node and on the in-memory broker (tests/fakebroker.py).

Each scenario drives the live adapter (topo.broker.live.LiveBroker) through the port and checks what the
engine relies on. On the node it proves the adapter; on the fake, the same assertions prove that the fake
models RabbitMQ where the fast tests (test_engine_fake.py) lean on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fakebroker import FakeRabbit
from support import publish

from topo.broker.client import ManagementClient
from topo.broker.live import STREAM_UNCOUNTABLE, LiveBroker
from topo.broker.port import Broker, Deleted, DropCheck
from topo.definitions import binding_definition, exchange_definition, queue_definition
from topo.errors import BrokerError
from topo.model import Binding, Exchange, Policy, Queue
from topo.plan.safety import fence_policy


class Side:
    """One broker under test: the port, its vhost, and a way to put messages in a queue."""

    def __init__(self, broker: Broker, vhost: str, publish: Callable[[str, int], None]) -> None:
        self.broker, self.vhost, self.publish = broker, vhost, publish

    def declare(self, *items: Exchange | Queue | Binding) -> None:
        document: dict[str, list[dict[str, Any]]] = {"exchanges": [], "queues": [], "bindings": []}
        for item in items:
            if isinstance(item, Exchange):
                document["exchanges"].append(exchange_definition(item))
            elif isinstance(item, Queue):
                document["queues"].append(queue_definition(item))
            else:
                document["bindings"].append(binding_definition(item))
        self.broker.import_definitions(self.vhost, document)


def import_never_changes_what_exists(side: Side) -> None:
    side.declare(Exchange("ex", "topic"), Queue("q", arguments={"x-message-ttl": 1000}))
    side.declare(Exchange("ex", "fanout"), Queue("q", arguments={"x-message-ttl": 2000}), Queue("new"))
    vhost = side.broker.read_vhost(side.vhost)
    assert vhost is not None
    assert vhost.exchanges["ex"].type == "topic"
    assert vhost.queues["q"].arguments == {"x-message-ttl": 1000}
    assert set(vhost.queues) == {"q", "new"}


def a_vhost_put_replaces_its_metadata(side: Side) -> None:
    side.broker.put_vhost(side.vhost, description="d", tags=["b", "a"])
    info = side.broker.vhost_info(side.vhost)
    assert info is not None and (info.description, sorted(info.tags)) == ("d", ["a", "b"])
    side.broker.put_vhost(side.vhost, tags=["c"])
    info = side.broker.vhost_info(side.vhost)
    assert info is not None and (info.description, info.tags) == ("", ("c",))
    assert side.broker.vhost_info("no-such-vhost-" + side.vhost) is None
    assert side.broker.read_vhost("no-such-vhost-" + side.vhost) is None


def limits_are_set_and_cleared(side: Side) -> None:
    side.broker.set_vhost_limit(side.vhost, "max-queues", 10)
    vhost = side.broker.read_vhost(side.vhost)
    assert vhost is not None and vhost.limits == {"max-queues": 10}
    side.broker.clear_vhost_limit(side.vhost, "max-queues")
    side.broker.clear_vhost_limit(side.vhost, "max-queues")  # already gone: no error
    vhost = side.broker.read_vhost(side.vhost)
    assert vhost is not None and vhost.limits == {}


def bindings_are_listed_with_their_properties_key(side: Side) -> None:
    side.declare(Exchange("ex", "headers"), Queue("q"))
    plain, headers = Binding("ex", "q", routing_key="k"), Binding("ex", "q", arguments={"x-match": "all", "a": 1})
    side.broker.add_binding(side.vhost, plain)
    side.broker.add_binding(side.vhost, headers)
    listed = {item.binding.key: item for item in side.broker.bindings(side.vhost)}
    assert Binding("", "q", routing_key="q").key in listed  # the default exchange's, listed too
    assert listed[plain.key].properties_key == "k"
    assert listed[headers.key].properties_key.startswith("~")
    side.broker.delete_binding(side.vhost, listed[headers.key])
    side.broker.delete_binding(side.vhost, listed[headers.key])  # already gone: no error
    vhost = side.broker.read_vhost(side.vhost)
    assert vhost is not None and list(vhost.bindings) == [plain.key]  # no default-exchange binding read


def a_guarded_delete_is_refused_when_it_would_lose_something(side: Side) -> None:
    side.declare(Queue("cq"), Queue("qq", "quorum"))
    side.publish("cq", 1)
    with pytest.raises(BrokerError) as info:
        side.broker.delete_queue(side.vhost, "cq", if_empty=True, if_unused=True)
    assert info.value.status == 400 and "not empty" in info.value.message
    with pytest.raises(BrokerError) as info:
        side.broker.delete_queue(side.vhost, "qq", if_empty=True)
    assert info.value.status == 400 and "not supported by quorum queues" in info.value.message
    side.broker.delete_queue(side.vhost, "qq")
    side.broker.delete_queue(side.vhost, "qq")  # already gone: no error
    vhost = side.broker.read_vhost(side.vhost)
    assert vhost is not None and set(vhost.queues) == {"cq"}


def policies_are_put_read_and_deleted(side: Side) -> None:
    policy = Policy("p", "^x", "queues", 3, {"max-length": 5})
    side.broker.put_policy(side.vhost, policy)
    side.broker.put_policy(side.vhost, Policy("cap", ".*", "queues", 0, {"max-length": 9}), operator=True)
    assert side.broker.policy(side.vhost, "p") == policy
    assert side.broker.policies(side.vhost) == [policy]
    vhost = side.broker.read_vhost(side.vhost)
    assert vhost is not None and list(vhost.operator_policies) == ["cap"]
    side.broker.delete_policy(side.vhost, "p")
    side.broker.delete_policy(side.vhost, "cap", operator=True)
    side.broker.delete_policy(side.vhost, "p")  # already gone: no error
    assert side.broker.policy(side.vhost, "p") is None and side.broker.policies(side.vhost) == []


def counts_are_exact_over_amqp_except_for_a_stream(side: Side) -> None:
    side.declare(Queue("cq"), Queue("st", "stream"))
    side.publish("cq", 2)
    cluster = side.broker.overview().cluster_name
    usage = side.broker.count(side.vhost, ["cq", "st", "missing"], cluster=cluster)
    assert set(usage) == {"cq", "st"}
    assert (usage["cq"].ready, usage["cq"].consumers, usage["cq"].exact) == (2, 0, True)
    assert not usage["st"].exact and usage["st"].why_inexact == STREAM_UNCOUNTABLE
    other = side.broker.amqp.count(side.vhost, ["cq"], cluster="another-cluster")
    assert not isinstance(other, dict) and "another broker" in other.reason


def a_fence_refuses_the_second_probe_and_the_probe_comes_back_out(side: Side) -> None:
    side.declare(Queue("qq", "quorum"))
    side.broker.put_policy(side.vhost, fence_policy("qq", 1))
    checks = side.broker.amqp.check_drops(side.vhost, {"qq": True}, "topo-fence-probe:test")
    assert checks == {"qq": DropCheck(True, ready=1, consumers=0, probe="taken", fence_holds=True)}
    assert side.broker.amqp.remove_probes(side.vhost, "qq", 1, "topo-fence-probe:test") == (0, 0)
    assert side.broker.count(side.vhost, ["qq"])["qq"].ready == 0


def a_quorum_queue_is_deleted_over_amqp_only_as_counted(side: Side) -> None:
    side.declare(Queue("qq", "quorum"), Queue("full", "quorum"))
    side.publish("full", 1)
    done, failed = side.broker.amqp.delete_if_counted(side.vhost, {"qq": 0, "full": 0})
    assert failed is None
    assert done == [Deleted("qq", (0, 0), deleted=True, message_count=0), Deleted("full", (1, 0))]
    vhost = side.broker.read_vhost(side.vhost)
    assert vhost is not None and set(vhost.queues) == {"full"}


SCENARIOS = [
    import_never_changes_what_exists,
    a_vhost_put_replaces_its_metadata,
    limits_are_set_and_cleared,
    bindings_are_listed_with_their_properties_key,
    a_guarded_delete_is_refused_when_it_would_lose_something,
    policies_are_put_read_and_deleted,
    counts_are_exact_over_amqp_except_for_a_stream,
    a_fence_refuses_the_second_probe_and_the_probe_comes_back_out,
    a_quorum_queue_is_deleted_over_amqp_only_as_counted,
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_on_the_in_memory_broker(scenario: Callable[[Side], None]) -> None:
    fake = FakeRabbit()
    fake.client().put("/vhosts/v", {})
    scenario(Side(fake.broker(), "v", lambda queue, count: fake.publish("v", queue, count)))


@pytest.fixture
def live(broker: Any, vhost: str, mgmt: httpx.Client) -> Iterator[Side]:
    def put(queue: str, count: int) -> None:
        for _ in range(count):
            assert publish(mgmt, vhost, "", queue)

    with ManagementClient(broker.url, amqp_url=broker.amqp_url) as client:
        yield Side(LiveBroker(client), vhost, put)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_on_a_node(scenario: Callable[[Side], None], live: Side) -> None:
    scenario(live)
