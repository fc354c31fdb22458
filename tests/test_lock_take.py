"""The stack lock's two places (``topo.broker.lock.take``), without a node: a vhost that does not exist yet
keeps the lock in ``/``, and an apply that finds the vhost must not run beside one that holds ``/``'s.
The live half is in tests/test_saved_plan.py (a holder process in ``/``, a real apply)."""

from __future__ import annotations

from typing import Any

import pytest

from topo.broker.lock import ApplyLock, take
from topo.errors import LockHeld


class World:
    """The broker as ``take`` sees it: which vhosts exist, which locks some other apply holds, and a
    clock that sleeping moves on; ``events`` is what happened, in order."""

    def __init__(self, vhosts: set[str], held_by_others: set[str]) -> None:
        self.vhosts, self.others, self.mine = vhosts, held_by_others, set[str]()
        self.now, self.events = 0.0, list[str]()
        self.on_sleep: list[Any] = []  # callables run at each sleep (another apply finishing, ...)
        self.on_acquire: dict[str, Any] = {}  # vhost -> callable run right after this apply takes its lock

    def exists(self, vhost: str) -> bool:
        return vhost in self.vhosts

    def held_in_default(self) -> bool:
        return "/" in self.others

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.001)
        for step in self.on_sleep:
            step()

    def make(self, vhost: str, timeout: float) -> ApplyLock:
        world = self

        class Lock(ApplyLock):
            def acquire(self) -> None:
                deadline = world.now + timeout
                while vhost in world.others:
                    if world.now >= deadline:
                        world.events.append(f"timed out on {vhost}")
                        raise self.held()
                    world.sleep(1)
                world.mine.add(vhost)
                world.events.append(f"took {vhost}")
                if vhost in world.on_acquire:
                    world.on_acquire.pop(vhost)()

            def release(self) -> None:
                world.mine.discard(vhost)
                world.events.append(f"let go of {vhost}")

        return Lock("amqp://x@h/", vhost, "topo.lock.s", timeout=timeout)

    def take(self, vhost: str = "v", timeout: float = 30) -> list[str]:
        locks = take(
            vhost,
            exists=self.exists,
            held_in_default=self.held_in_default,
            make=self.make,
            timeout=timeout,
            clock=lambda: self.now,
            sleep=self.sleep,
        )
        return [lock.vhost for lock in locks]


def test_an_existing_vhost_holds_the_lock_alone() -> None:
    world = World({"/", "v"}, set())
    assert world.take() == ["v"]
    assert world.events == ["took v"]


def test_a_missing_vhost_keeps_the_lock_in_the_default_vhost() -> None:
    world = World({"/"}, set())
    assert world.take() == ["/"]


def test_a_vhost_created_while_waiting_for_the_default_lock_is_locked_too() -> None:
    world = World({"/"}, set())
    world.on_acquire["/"] = lambda: world.vhosts.add("v")  # another apply created it meanwhile
    assert world.take() == ["/", "v"]


def test_an_apply_that_finds_the_vhost_waits_for_the_first_apply_holding_the_default_lock() -> None:
    """The race this protocol exists for: the first apply of a stack took ``/``'s lock and created the
    vhost; a second apply finds the vhost and gets its lock at once, but must not run: it lets go, waits
    until ``/``'s lock is gone (the first apply ended), and takes the vhost's lock then."""
    world = World({"/", "v"}, {"/"})
    finished_at = 5.0

    def first_apply_ends() -> None:
        if world.now >= finished_at:
            world.others.discard("/")

    world.on_sleep.append(first_apply_ends)
    assert world.take() == ["v"]
    assert world.events == ["took v", "let go of v", "took v"]
    assert world.now >= finished_at


def test_waiting_for_the_default_lock_is_bounded_and_names_where() -> None:
    world = World({"/", "v"}, {"/"})
    with pytest.raises(LockHeld) as raised:
        world.take(timeout=3)
    assert "vhost '/'" in raised.value.message and "topo.lock.s" in raised.value.message
    assert world.mine == set() and world.now >= 3


def test_a_failure_on_the_second_lock_lets_go_of_the_first() -> None:
    world = World({"/"}, {"v"})
    world.on_acquire["/"] = lambda: world.vhosts.add("v")
    with pytest.raises(LockHeld):
        world.take(timeout=2)
    assert world.mine == set() and world.events[-1] == "let go of /"


def test_a_stack_without_vhosts_locks_the_default_vhost() -> None:
    world = World({"/"}, set())
    assert world.take("/") == ["/"]
