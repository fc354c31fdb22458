"""A subscription's circuit breaker: stop consuming after N consecutive failures of the handler, for a
while, then try one message.

States, as in Nygard's *Release It!* (and the usual libraries):

- **closed**: messages are consumed and handled. Each failure of the handler adds one to the count of
  consecutive failures; a success resets it. At ``failures`` in a row the breaker **opens** (a *trip*).
- **open**: the subscription's consumer is cancelled (``Basic.Cancel``): nothing more is taken from the
  queue, and the messages already prefetched and not handled go back to it (requeued, in order).
  After ``open_for`` it becomes **half-open**.
- **half-open**: the consumer is started again with a prefetch of 1, so that one message is tried. If
  the handler succeeds the breaker **closes** (the consumer is restarted with the queue's prefetch);
  if it fails the breaker opens again (another trip).

This module is the state machine alone (pure, with an injectable clock); :class:`~topo.runtime.consume.
Subscription` does the I/O. How it fits with the per-message back-off of :mod:`topo.runtime.failures`:
each failed message is first settled as that module says (a retry, a dead letter, or a requeue after a
back-off); the breaker only counts the failures, across messages. The back-off protects the queue from
one message that always fails; the breaker protects it from a handler that fails on every message (a
database down): without it, such a handler would spend every message's retries and dead-letter them
all; with it, after ``failures`` messages, the rest wait in the queue until the handler works again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from topo.model import CircuitBreaker

__all__ = ["Breaker", "BreakerSnapshot", "BreakerState", "CircuitBreaker"]

BreakerState = Literal["closed", "open", "half-open"]


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """A breaker at one moment: its state, how many times it opened, the failures in a row now, its
    settings, and (open only) the seconds until it tries again."""

    state: BreakerState
    trips: int
    consecutive_failures: int
    failures: int  # the setting: failures in a row that open it
    open_for: float  # the setting, in seconds
    retry_in: float | None  # open: seconds until half-open; else None


class Breaker:
    """The state machine of the module docstring. :meth:`failure` and :meth:`success` say whether the
    state changed so that the caller stops (open) or restarts (closed) its consumer."""

    def __init__(self, policy: CircuitBreaker, clock: Callable[[], float] = time.monotonic) -> None:
        if policy.failures < 1 or policy.open_for_ms <= 0:
            from topo.errors import UsageError

            raise UsageError(
                f"a circuit breaker needs failures >= 1 and open-for > 0, got {policy}",
                hint="e.g. CircuitBreaker(failures=5, open_for_ms=30_000)",
            )
        self.policy = policy
        self.open_for = policy.open_for_ms / 1000
        self.state: BreakerState = "closed"
        self.trips = 0
        self.consecutive_failures = 0
        self.opened_at: float | None = None
        self._clock = clock

    @property
    def is_open(self) -> bool:
        return self.state == "open"

    def failure(self) -> bool:
        """Count a failure of the handler; True when the breaker opens now (the caller stops consuming)."""
        self.consecutive_failures += 1
        if self.state == "half-open" or (self.state == "closed" and self.consecutive_failures >= self.policy.failures):
            self.state = "open"
            self.trips += 1
            self.opened_at = self._clock()
            return True
        return False  # closed and below the limit, or open already (a handler that was running)

    def success(self) -> bool:
        """Count a success of the handler; True when the breaker closes now (half-open: the trial worked)."""
        self.consecutive_failures = 0
        if self.state == "half-open":
            self.state = "closed"
            self.opened_at = None
            return True
        return False

    def half_open(self) -> None:
        """``open_for`` has passed: let one message through."""
        if self.state == "open":
            self.state = "half-open"

    def stay_open(self) -> None:
        """Half-open, but the message could not be tried (no consumer could start): open again, for
        another ``open_for``, without counting a trip."""
        if self.state == "half-open":
            self.state = "open"
            self.opened_at = self._clock()

    def snapshot(self) -> BreakerSnapshot:
        retry_in = None
        if self.state == "open" and self.opened_at is not None:
            retry_in = max(0.0, self.opened_at + self.open_for - self._clock())
        return BreakerSnapshot(
            self.state, self.trips, self.consecutive_failures, self.policy.failures, self.open_for, retry_in
        )
