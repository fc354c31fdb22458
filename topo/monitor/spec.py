"""The ``monitor:`` block: what a queue is expected to look like on a live broker.

A block may stand on a queue, on a vhost (defaults for its queues) and at the top of a file (defaults
for the whole topology). Each key is one check, with a warning and a critical level::

    monitor:
      depth: {warning: 50%, critical: 80%}        # messages, or a share of the queue's length limit
      consumers: {warning: 2, critical: 1}         # minimums: fewer than 2 is WARNING, fewer than 1 CRITICAL
      unacked: {warning: 1000, critical: 5000}     # messages delivered and not yet acknowledged
      publish-rate: {warning: 800, critical: 950}  # messages per second (or % of `capacity:` msg/s)
      dead-letter-rate: {warning: 1%, critical: 5%}
      message-age: {warning: 5m, critical: 30m}    # age of the message at the head of the queue
      consumers: off                               # no such check here (`on`: back on, with the defaults)

This module holds the types, the JSON Schema of the block (:func:`monitor_schema`, used by
:mod:`topo.schemas.generate`), the built-in defaults (the production checklist's table) and :func:`parse_block`,
which the loader calls on a schema-valid block. How layers combine into one queue's expectations is
:mod:`topo.monitor.resolve`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from topo.model import Origin
from topo.units import parse_duration

__all__ = [
    "BUILTIN",
    "CHECKS",
    "LEVELS",
    "MAXIMUM_CHECKS",
    "PERCENT_PATTERN",
    "CheckName",
    "CheckSetting",
    "Level",
    "MonitorBlock",
    "Threshold",
    "monitor_schema",
    "parse_block",
]

CheckName = Literal["depth", "consumers", "unacked", "publish-rate", "dead-letter-rate", "message-age"]
CHECKS: tuple[CheckName, ...] = ("depth", "consumers", "unacked", "publish-rate", "dead-letter-rate", "message-age")
Level = Literal["warning", "critical"]
LEVELS: tuple[Level, ...] = ("warning", "critical")
MAXIMUM_CHECKS: frozenset[CheckName] = frozenset(CHECKS) - {"consumers"}
"""Checks whose levels are maximums (the state changes when the figure goes *above* the level);
``consumers`` is the one minimum (the state changes when the count goes *below* the level)."""

PERCENT_PATTERN = r"^[0-9]+(\.[0-9]+)?%$"
_PERCENT = re.compile(PERCENT_PATTERN)


@dataclass(frozen=True, slots=True)
class Threshold:
    """One level of one check. A percentage is kept as a ratio (``50%`` → ``value=0.5, relative=True``);
    a duration in seconds; counts and rates as written."""

    value: float
    relative: bool = False
    text: str = ""  # as written: "80%", "5m", "1000"

    def __str__(self) -> str:
        return self.text or f"{self.value:g}"


@dataclass(frozen=True, slots=True)
class CheckSetting:
    """One check as one block writes it: ``off``, ``on``, or levels (each level may be left out)."""

    off: bool = False
    on: bool = False  # `on`: switched (back) on, levels inherited or the built-in ones
    warning: Threshold | None = None
    critical: Threshold | None = None
    capacity: float | None = None  # publish-rate: the messages per second that 100% means

    def level(self, name: Level) -> Threshold | None:
        return self.warning if name == "warning" else self.critical


@dataclass(frozen=True, slots=True)
class MonitorBlock:
    """One ``monitor:`` block: the checks it names (the others are inherited)."""

    checks: Mapping[CheckName, CheckSetting] = field(default_factory=dict)
    origin: Origin | None = field(default=None, compare=False)


def _pct(text: str) -> Threshold:
    return Threshold(float(text[:-1]) / 100, relative=True, text=text)


BUILTIN: Mapping[CheckName, CheckSetting] = {
    "depth": CheckSetting(warning=_pct("50%"), critical=_pct("80%")),
    "consumers": CheckSetting(warning=Threshold(2, text="2"), critical=Threshold(1, text="1")),
    "unacked": CheckSetting(warning=Threshold(1000, text="1000"), critical=Threshold(5000, text="5000")),
    "publish-rate": CheckSetting(off=True),
    "dead-letter-rate": CheckSetting(warning=_pct("1%"), critical=_pct("5%")),
    "message-age": CheckSetting(off=True),
}
"""The production checklist's table: depth > 50 % / > 80 % of the length limit, fewer than 2 / no
consumers, more than 1,000 / 5,000 unacknowledged messages, more than 1 % / 5 % of messages
dead-lettered. The publish rate (whose capacity topo cannot know) and the message age have no default."""


# -- the JSON Schema of the block ---------------------------------------------------------------------

_DESCRIPTIONS: Mapping[CheckName, str] = {
    "depth": "messages in the queue (ready + unacknowledged), or a share of its length limit (80%: ready "
    "messages against max-length, ready bytes against max-length-bytes)",
    "consumers": "minimum consumers: WARNING below `warning`, CRITICAL below `critical`",
    "unacked": "messages delivered to consumers and not yet acknowledged",
    "publish-rate": "messages published to the queue per second (over the window), or a share of `capacity`",
    "dead-letter-rate": "share of the messages published to the queue that reach its dead-letter queue(s)",
    "message-age": "age of the message at the head of the queue (needs messages published with a timestamp; "
    "classic queues only)",
}


def _level_schema(check: CheckName) -> dict[str, Any]:
    percent = {"type": "string", "pattern": PERCENT_PATTERN}
    if check == "depth":
        return {
            "anyOf": [{"type": "integer", "minimum": 0}, percent],
            "description": "a number of messages, or a share of the queue's length limit such as 80%",
        }
    if check in ("consumers", "unacked"):
        return {"type": "integer", "minimum": 0}
    if check == "publish-rate":
        return {
            "anyOf": [{"type": "number", "minimum": 0}, percent],
            "description": "messages per second, or a share of `capacity` such as 80%",
        }
    if check == "dead-letter-rate":
        return {"anyOf": [percent], "description": "a share of the queue's messages, such as 1% or 0.5%"}
    return {"$ref": "#/$defs/duration"}


def monitor_schema() -> dict[str, Any]:
    """The schema of a ``monitor:`` block (``$defs/monitor`` of the topology schema)."""
    properties: dict[str, Any] = {}
    for check in CHECKS:
        levels: dict[str, Any] = {"warning": _level_schema(check), "critical": _level_schema(check)}
        if check == "publish-rate":
            levels["capacity"] = {"type": "number", "minimum": 0, "description": "messages per second that 100% is"}
        properties[check] = {
            "type": ["object", "boolean"],
            "description": _DESCRIPTIONS[check] + "; `off` switches the check off, `on` back on",
            "properties": levels,
            "additionalProperties": False,
            "minProperties": 1,
        }
    return {
        "type": "object",
        "description": "What `topo status` checks and `topo alerts` watches: warning and critical levels per check",
        "properties": properties,
        "additionalProperties": False,
    }


# -- parsing a schema-valid block ----------------------------------------------------------------------

Report = Callable[[tuple[str, ...], str, str | None], None]
"""Called with (path inside the block, message, hint) for each problem."""


def _threshold(check: CheckName, raw: Any) -> Threshold:
    """The threshold written as ``raw`` (schema-valid). ``ValueError`` for what the schema cannot say."""
    if isinstance(raw, str) and _PERCENT.match(raw):
        value = float(raw[:-1]) / 100
        if check == "depth" and value >= 1:
            raise ValueError(f"depth {raw} can never be passed: a full queue holds 100% of its limit")
        if check == "dead-letter-rate" and value > 1:
            raise ValueError(f"dead-letter-rate {raw} can never be passed: at most every message (100%) dead-letters")
        return Threshold(value, relative=True, text=raw)
    if check == "message-age":
        return Threshold(parse_duration(raw) / 1000, text=str(raw))
    return Threshold(float(raw), text=str(raw))


def parse_block(body: Mapping[str, Any], report: Report, origin: Origin | None = None) -> MonitorBlock:
    """The block as written (``body`` has passed the schema). Problems the schema cannot express go to
    ``report``; the setting they concern is left out."""
    checks: dict[CheckName, CheckSetting] = {}
    for check in CHECKS:
        if check not in body:
            continue
        raw = body[check]
        if raw is False:
            checks[check] = CheckSetting(off=True)
            continue
        if raw is True:
            if BUILTIN[check].off:
                report(
                    (check,),
                    f"{check} has no default levels, so `on` alone checks nothing",
                    "give the levels: {warning: ..., critical: ...}",
                )
                continue
            checks[check] = CheckSetting(on=True)
            continue
        levels: dict[str, Threshold] = {}
        for level in LEVELS:
            if level not in raw:
                continue
            try:
                levels[level] = _threshold(check, raw[level])
            except ValueError as exc:
                report((check, level), str(exc), "write a lower level")
        capacity = raw.get("capacity")
        if capacity is not None and capacity <= 0:
            report((check, "capacity"), "capacity must be above 0 messages per second", None)
            capacity = None
        if not levels and capacity is None:
            continue  # every level was reported above
        checks[check] = CheckSetting(
            warning=levels.get("warning"),
            critical=levels.get("critical"),
            capacity=float(capacity) if capacity is not None else None,
        )
    return MonitorBlock(checks, origin)
