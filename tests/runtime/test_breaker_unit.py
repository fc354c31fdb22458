"""The circuit breaker's state machine and the metrics' histogram, without a broker (issue 12.4)."""

from __future__ import annotations

import pytest

from topo.errors import UsageError
from topo.model import CircuitBreaker
from topo.runtime.breaker import Breaker
from topo.runtime.metrics import BUCKETS, Histogram


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_it_opens_after_n_failures_in_a_row_and_a_success_resets_the_count() -> None:
    breaker = Breaker(CircuitBreaker(failures=3, open_for_ms=30_000), Clock())
    assert [breaker.failure(), breaker.failure()] == [False, False]
    assert breaker.success() is False  # closed: nothing to close, the count restarts
    assert breaker.consecutive_failures == 0
    assert [breaker.failure(), breaker.failure(), breaker.failure()] == [False, False, True]
    assert breaker.state == "open" and breaker.trips == 1


def test_open_then_half_open_then_closed_by_one_success() -> None:
    clock = Clock()
    breaker = Breaker(CircuitBreaker(failures=1, open_for_ms=30_000), clock)
    assert breaker.failure() is True
    clock.now += 10
    snapshot = breaker.snapshot()
    assert snapshot.state == "open" and snapshot.retry_in == pytest.approx(20.0)
    assert breaker.failure() is False  # a handler still running when it opened: no second trip
    assert breaker.trips == 1
    breaker.half_open()
    assert breaker.state == "half-open"
    assert breaker.success() is True  # the trial worked: closed
    assert breaker.snapshot() == breaker.snapshot()
    assert breaker.state == "closed" and breaker.consecutive_failures == 0 and breaker.snapshot().retry_in is None


def test_a_failed_trial_opens_it_again_at_once() -> None:
    breaker = Breaker(CircuitBreaker(failures=5, open_for_ms=1000), Clock())
    for _ in range(5):
        breaker.failure()
    breaker.half_open()
    assert breaker.failure() is True  # one failure is enough when half-open
    assert breaker.state == "open" and breaker.trips == 2


def test_stay_open_when_the_trial_could_not_start() -> None:
    clock = Clock()
    breaker = Breaker(CircuitBreaker(failures=1, open_for_ms=1000), clock)
    breaker.failure()
    clock.now += 5
    breaker.half_open()
    breaker.stay_open()
    assert breaker.state == "open" and breaker.trips == 1 and breaker.snapshot().retry_in == pytest.approx(1.0)


def test_half_open_only_from_open() -> None:
    breaker = Breaker(CircuitBreaker(failures=2, open_for_ms=1000), Clock())
    breaker.half_open()
    assert breaker.state == "closed"


@pytest.mark.parametrize("policy", [CircuitBreaker(0, 1000), CircuitBreaker(1, 0)])
def test_nonsense_settings_are_refused(policy: CircuitBreaker) -> None:
    with pytest.raises(UsageError, match="failures >= 1 and open-for > 0"):
        Breaker(policy)


def test_the_histogram_counts_each_observation_in_its_bucket_cumulatively() -> None:
    histogram = Histogram()
    for seconds in (0.001, 0.005, 0.0051, 0.3, 20.0):
        histogram.observe(seconds)
    snapshot = histogram.snapshot()
    assert snapshot.count == 5 and snapshot.sum == pytest.approx(20.3111)
    by_bound = dict(snapshot.buckets)
    assert len(snapshot.buckets) == len(BUCKETS) + 1
    assert by_bound[0.005] == 2  # an observation on a bound counts in it (le: less or equal)
    assert by_bound[0.01] == 3
    assert by_bound[0.25] == 3 and by_bound[0.5] == 4
    assert by_bound[10.0] == 4 and by_bound[float("inf")] == 5
