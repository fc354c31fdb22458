"""How each exchange type matches: topic keys, headers tables (with Erlang's equality)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["X_MATCH_KINDS", "headers_match", "split_topic_key", "topic_matches"]

X_MATCH_KINDS = ("all", "any", "all-with-x", "any-with-x")


def split_topic_key(key: str) -> tuple[str, ...]:
    """Words of a topic key as RabbitMQ splits them: ``""`` has no words, ``"a."`` has two."""
    return () if key == "" else tuple(key.split("."))


def topic_matches(binding_key: str, routing_key: str) -> bool:
    """Whether a topic binding key matches a routing key (``*`` one word, ``#`` zero or more)."""
    pattern = split_topic_key(binding_key)
    words = split_topic_key(routing_key)
    # states: set of positions in `pattern` reachable after consuming a prefix of `words`
    states = _close({0}, pattern)
    for word in words:
        step: set[int] = set()
        for i in states:
            if i == len(pattern):
                continue
            p = pattern[i]
            if p == "#":
                step.add(i)  # '#' swallows this word and stays
            elif p == "*" or p == word:
                step.add(i + 1)
        states = _close(step, pattern)
        if not states:
            return False
    return len(pattern) in states


def _close(states: set[int], pattern: tuple[str, ...]) -> set[int]:
    """Add the positions reachable by letting a ``#`` match zero words."""
    out = set(states)
    todo = list(states)
    while todo:
        i = todo.pop()
        if i < len(pattern) and pattern[i] == "#" and i + 1 not in out:
            out.add(i + 1)
            todo.append(i + 1)
    return out


def _erlang_equal(a: Any, b: Any) -> bool:
    """Erlang's ``==`` on AMQP field values as the headers exchange compares them."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, str | bytes) and isinstance(b, str | bytes):
        return _as_bytes(a) == _as_bytes(b)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        # nested values keep their AMQP type tags: an int is not a float inside an array
        return len(a) == len(b) and all(_nested_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_nested_equal(a[k], b[k]) for k in a)
    if a is None or b is None:
        return False  # void is never equal to a value (a void *pattern* means "present", see below)
    return bool(a == b)


def _nested_equal(a: Any, b: Any) -> bool:
    """Equality inside arrays and tables, where Erlang compares the AMQP type tags too.

    ``a`` comes from the binding (imported as JSON: integers are 64-bit ``long``, strings ``longstr``),
    ``b`` from the message. Clients (pika, pamqp, the Java client) send a small integer as a 32-bit or
    smaller type and bytes as a byte array, so those never equal a binding's value inside an array.
    """
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int) and isinstance(b, int):
        return a == b and not -(2**31) <= b < 2**31
    if isinstance(a, int | float) and isinstance(b, int | float):
        return type(a) is type(b) and a == b
    if isinstance(a, str | bytes) and isinstance(b, str | bytes):
        return type(a) is type(b) and a == b
    return _erlang_equal(a, b)


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


def headers_match(arguments: Mapping[str, Any], headers: Mapping[str, Any]) -> bool:
    """Whether a headers-exchange binding (its arguments) matches a message's headers."""
    kind = arguments.get("x-match")
    mode = kind if isinstance(kind, str) and kind in X_MATCH_KINDS else "all"
    with_x = mode.endswith("-with-x")
    results = []
    for key, expected in arguments.items():
        if key == "x-match" or (key.startswith("x-") and not with_x):
            continue
        if key not in headers:
            results.append(False)
        elif expected is None:
            results.append(True)
        else:
            results.append(_erlang_equal(expected, headers[key]))
    return all(results) if mode.startswith("all") else any(results)
