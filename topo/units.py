"""Durations and sizes as the file format writes them, and back.

A duration is an integer of milliseconds or a string ``500ms``, ``30s``, ``5m``, ``24h``, ``7d``.
A size is an integer of bytes or ``512B``, ``10KB`` (10 * 1000), ``10KiB`` (10 * 1024), ``MB``/``MiB``,
``GB``/``GiB``, ``TB``/``TiB``.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "DURATION_PATTERN",
    "MAX_AGE_FORM",
    "MAX_AGE_PATTERN",
    "SIZE_PATTERN",
    "format_duration",
    "format_size",
    "parse_duration",
    "parse_size",
    "unit_form",
]

DURATION_PATTERN = r"^[0-9]+(ms|s|m|h|d)$"
SIZE_PATTERN = r"^[0-9]+(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$"
MAX_AGE_PATTERN = r"^[0-9]*[1-9][0-9]*(Y|M|D|h|m|s)$"
"""A stream's ``x-max-age`` as RabbitMQ reads it (rabbit_amqqueue:check_max_age): a positive count and a unit."""
MAX_AGE_FORM = "RabbitMQ's max-age form: a positive number and one of Y, M, D, h, m, s (7D, 12h, 30m)"

_DURATION_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_SIZE_BYTES = {
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "TB": 1000**4,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "TiB": 1024**4,
}
_DURATION_RE = re.compile(r"^([0-9]+)(ms|s|m|h|d)$")
_SIZE_RE = re.compile(r"^([0-9]+)(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")


def parse_duration(value: object) -> int:
    """Milliseconds from ``30000`` or ``"30s"``. ``ValueError`` with a readable message otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration (milliseconds or e.g. 30s, 5m, 24h), got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a duration cannot be negative, got {value}")
        return value
    if isinstance(value, str):
        match = _DURATION_RE.match(value.strip())
        if match:
            return int(match.group(1)) * _DURATION_MS[match.group(2)]
    raise ValueError(f"expected a duration (milliseconds or e.g. 500ms, 30s, 5m, 24h, 7d), got {value!r}")


def parse_size(value: object) -> int:
    """Bytes from ``1048576`` or ``"1MiB"``. ``ValueError`` with a readable message otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size (bytes or e.g. 10MB, 10MiB), got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a size cannot be negative, got {value}")
        return value
    if isinstance(value, str):
        match = _SIZE_RE.match(value.strip())
        if match:
            return int(match.group(1)) * _SIZE_BYTES[match.group(2)]
    raise ValueError(f"expected a size (bytes or e.g. 512B, 10KB, 10MiB, 1GiB), got {value!r}")


def format_duration(ms: int) -> int | str:
    """The shortest exact string for a duration (``86400000`` → ``"1d"``); the integer if none is exact."""
    for unit in ("d", "h", "m", "s"):
        size = _DURATION_MS[unit]
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return ms


def format_size(n: int) -> int | str:
    """The shortest exact IEC string for a size (``10485760`` → ``"10MiB"``); the integer if none is exact."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        size = _SIZE_BYTES[unit]
        if n and n % size == 0:
            return f"{n // size}{unit}"
    return n


def unit_form(kind: str, value: Any) -> Any:
    """A number of a ``duration`` (milliseconds) or ``size`` (bytes) ``kind`` as the files write it, when
    an exact form exists (``86400000`` → ``"1d"``); anything else (another kind, a string, a bool) as it is.
    The one place that decides how topo shows such a value: export writes it, plans print it."""
    if isinstance(value, int) and not isinstance(value, bool):
        if kind == "duration":
            return format_duration(value)
        if kind == "size":
            return format_size(value)
    return value
