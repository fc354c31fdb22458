"""The safety rule (topo.plan.safety), pure: which counts block dropping a queue, in which words; and the
last look before a delete (topo.broker.drop._problem). No broker needed: the broker tests are in
test_drop_safety.py, test_safety_counts.py and test_engine.py."""

from __future__ import annotations

import pytest

from topo.broker.drop import Miscount, _problem, lost
from topo.broker.port import DropCheck, NoExactCount
from topo.errors import MessagesLost, UnsafeChange
from topo.model import Address, Policy, Queue
from topo.plan.model import Change, QueueUsage
from topo.plan.safety import blockers, count_warnings, fence_policy, fenced_queue, listing, refusal


def _replace(queue_type: str = "classic", action: str = "replace") -> Change:
    before = Queue("q", type=queue_type)
    return Change(action, Address("queue", "v", "q"), before=before, after=Queue("q", type=queue_type))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("queue_type", "usage", "codes"),
    [
        ("classic", QueueUsage(0, 0, 0, exact=True), []),
        ("classic", QueueUsage(0, 0, 0, exact=False), []),  # the broker's if-empty guards it
        ("quorum", QueueUsage(0, 0, 0, exact=True), []),
        ("quorum", QueueUsage(0, 0, 0, exact=False), ["inexact-count"]),
        ("classic", QueueUsage(1, 0, 0, exact=True), ["messages"]),
        ("classic", QueueUsage(0, 2, 1, exact=True), ["messages", "consumers"]),
        ("quorum", QueueUsage(0, 0, 1, exact=True), ["consumers"]),
        ("stream", QueueUsage(0, 0, 0, exact=True), ["uncountable-stream"]),
        ("stream", QueueUsage(0, 0, 0, exact=False), ["uncountable-stream"]),
        ("classic", None, []),  # not there: nothing to drop
    ],
)
def test_what_blocks_dropping_a_queue(queue_type: str, usage: QueueUsage | None, codes: list[str]) -> None:
    assert [b.code for b in blockers(_replace(queue_type), usage)] == codes


def test_the_words_say_where_a_figure_comes_from() -> None:
    (exact,) = blockers(_replace(), QueueUsage(3, 0, 0, exact=True))
    assert exact.message == "holds 3 messages: replacing it would drop them"
    (one,) = blockers(_replace(action="delete"), QueueUsage(1, 0, 0, exact=True))
    assert one.message == "holds 1 message: deleting it would drop it"
    (lagging,) = blockers(_replace(), QueueUsage(1, 0, 0, exact=False))
    assert "(counted from the Management API's statistics, which lag up to ~5 s)" in lagging.message
    (unacked,) = blockers(_replace(), QueueUsage(2, 1, 0, exact=True))
    assert "(2 ready, 1 unacknowledged; the unacknowledged figure comes from the Management API's" in unacked.message
    assert count_warnings(_replace(), QueueUsage(0, 0, 0, exact=False))
    assert not count_warnings(_replace("quorum"), QueueUsage(0, 0, 0, exact=False))  # blocked instead


def test_a_change_that_drops_no_queue_is_never_blocked() -> None:
    create = Change("create", Address("queue", "v", "q"), after=Queue("q"))
    assert blockers(create, QueueUsage(5, 0, 1, exact=True)) == ()


def test_a_refusal_names_the_first_five_and_keeps_them_all() -> None:
    changes = []
    for i in range(7):
        change = Change("replace", Address("queue", "v", f"q{i}"), before=Queue(f"q{i}"), after=Queue(f"q{i}"))
        changes.append(Change(**{**change.__dict__, "blockers": blockers(change, QueueUsage(1, 0, 0, exact=True))}))
    error = refusal(changes)
    assert error.message.startswith("refusing to replace or delete 7 queues that apply cannot drop safely: ")
    assert "queue 'q4' in vhost 'v' holds 1 message" in error.message and "'q5'" not in error.message
    assert "; and 2 more; `topo plan` lists every one" in error.message
    assert len(error.details) == 7
    assert listing(["a", "b"], limit=5) == "a; b"


def test_a_refusal_gives_each_hint_once_and_names_the_ways_through() -> None:
    replaced, deleted = _replace(), _replace(action="delete")
    changes = [
        Change(**{**c.__dict__, "blockers": blockers(c, QueueUsage(2, 0, 0, exact=True))}) for c in (replaced, deleted)
    ]
    hint = refusal(changes).hint
    assert hint.count("drain the queue first") == 1, hint
    assert "--allow-data-loss" in hint and "`topo apply --migrate`" in hint


@pytest.mark.parametrize("name", ["orders", "a.b", "with space", "x$y^z", "q\\n", "é-ü", "(a|b)*"])
def test_a_fence_names_its_queue_exactly(name: str) -> None:
    import re

    fence = fence_policy(name, 7)
    assert fence.name == f"topo.fence.{name}" and fence.priority == 7 and fence.apply_to == "queues"
    assert fenced_queue(fence) == name
    # PCRE reads the pattern as Python does here (a backslash before any ASCII symbol is a literal; \z)
    pattern = re.compile(fence.pattern.replace("\\z", "\\Z"))
    assert pattern.match(name) and not pattern.match(name + "x") and not pattern.match("x" + name)
    assert fenced_queue(Policy(fence.name, ".*", "queues", 7, dict(fence.definition))) is None


@pytest.mark.parametrize(
    ("queue_type", "check", "stops"),
    [
        ("classic", DropCheck(True), None),
        ("classic", DropCheck(True, ready=2), "2 messages arrived after apply counted it"),
        ("classic", None, None),  # no AMQP URL: the broker's if-empty still holds
        ("classic", NoExactCount("AMQP did not answer at amqp://***@h:5672/ (connection refused)"), None),
        ("quorum", None, "exact counts are off (no AMQP URL), so apply could not check that its fence holds"),
        (
            "quorum",
            NoExactCount("AMQP refused user 'u' access to vhost 'v' (530)", refused=True),
            "AMQP refused user 'u' access to vhost 'v' (530), so apply could not check that its fence holds",
        ),
        (
            "quorum",
            NoExactCount("AMQP did not answer at amqp://***@h:5672/ (connection refused)"),
            "(connection refused)",
        ),
        ("quorum", DropCheck(True, ready=1, probe="taken", fence_holds=True), None),
        ("quorum", DropCheck(True, ready=3, probe="taken", fence_holds=True), "2 messages arrived"),
        ("quorum", DropCheck(True, ready=1, probe="refused", fence_holds=True), "1 message arrived"),
        ("quorum", DropCheck(True, ready=2, probe="taken", fence_holds=False), "its fence did not hold"),
        ("quorum", DropCheck(True, ready=0, probe="taken", fence_holds=True), "did not count apply's probe"),
        ("quorum", DropCheck(True, ready=1, consumers=1, probe="taken", fence_holds=True), "1 consumer started"),
        ("quorum", DropCheck(False, probe="unroutable"), None),  # gone already
        ("stream", DropCheck(True), "it is a stream"),
    ],
)
def test_the_last_look_before_a_delete(
    queue_type: str, check: DropCheck | NoExactCount | None, stops: str | None
) -> None:
    problem = _problem("q", queue_type, check)
    if stops is None:
        assert problem is None
    else:
        assert problem is not None and stops in problem


def test_the_words_say_why_a_count_is_not_exact() -> None:
    refused = "AMQP refused user 'u' access to vhost 'v' (530)"
    (inexact,) = blockers(_replace("quorum"), QueueUsage(0, 0, 0, exact=False, why_inexact=refused))
    assert inexact.code == "inexact-count"
    assert inexact.message.startswith(f"has no exact message count ({refused}), and RabbitMQ cannot refuse")
    assert "did not answer" not in inexact.message + inexact.hint
    (warning,) = count_warnings(_replace(), QueueUsage(0, 0, 0, exact=False, why_inexact=refused))
    assert f"statistics, which lag up to ~5 s: {refused} (see --amqp-url)" in warning
    (unknown,) = blockers(_replace("quorum"), QueueUsage(0, 0, 0, exact=False))  # a count made elsewhere
    assert "(AMQP did not answer for this broker)" in unknown.message
    error = refusal([Change(**{**_replace("quorum").__dict__, "blockers": (inexact,)})])
    assert refused in error.message


def test_a_delete_that_took_more_than_the_probe_is_said_loudly() -> None:
    error = lost([Miscount("v", "qq", counted=4, expected=1), Miscount("v", "other", counted=2, expected=1)])
    assert isinstance(error, MessagesLost) and error.dropped == 4
    assert error.message.startswith(
        "apply made every change, but RabbitMQ dropped 4 messages as it deleted a quorum queue apply replaced: "
        "quorum queue 'qq' in vhost 'v': RabbitMQ deleted 3 messages with it besides apply's probe (its delete "
        "counted 4; apply's count an instant before found its probe alone); quorum queue 'other' in vhost 'v': "
        "RabbitMQ deleted 1 message with it"
    ), error.message
    assert "through the default exchange during the replacement" in error.message
    assert len(error.details) == 2


def test_a_delete_that_counted_less_than_the_probe_cannot_tell_and_says_so() -> None:
    stopped = UnsafeChange("refusing to delete a queue ...: queue 'x' ...", hint="stop it", details=("x",))
    error = lost([Miscount("v", "qq", counted=0, expected=1)], stopped=stopped)
    assert error.dropped == 0
    assert error.message.startswith(
        "refusing to delete a queue ...: queue 'x' .... Before that, apply cannot tell whether RabbitMQ dropped "
        "messages as it deleted a quorum queue apply replaced: quorum queue 'qq' in vhost 'v': RabbitMQ's delete "
        "counted 0 where apply's count an instant before found its probe"
    ), error.message
    assert "default exchange during the replacement" not in error.message  # no messages known to be lost
    assert error.hint and error.hint.startswith("stop it; ") and error.details[-1] == "x"
