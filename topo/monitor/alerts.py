"""Prometheus alerting rules from the topology: the ``monitor:`` levels on the per-queue metrics of
RabbitMQ's built-in ``rabbitmq_prometheus`` plugin (pure: no broker needed).

**Metrics** (names and labels as RabbitMQ 3.10.8 exposes them, checked against a real node). The plugin
gives per-queue metrics on two endpoints:

* ``/metrics/detailed`` (``--metrics detailed``, the default), with the metric families asked for as
  ``family`` parameters; names start with ``rabbitmq_detailed_``. These rules need
  ``queue_coarse_metrics`` (``..._queue_messages``, ``..._messages_ready``, ``..._messages_unacked``),
  ``queue_metrics`` (``..._queue_consumers``, ``..._messages_ready_bytes``,
  ``..._head_message_timestamp``), ``channel_queue_exchange_metrics``
  (``..._queue_messages_published_total``) and ``channel_queue_metrics`` (``..._channel_messages_acked_total``,
  ``..._channel_messages_delivered_total``, ``..._channel_get_total``);
* ``/metrics/per-object`` (``--metrics per-object``): every family, names starting with ``rabbitmq_``.

Queue gauges carry ``vhost`` and ``queue`` labels; the per-channel counters of what was published into
a queue carry ``queue_vhost`` and ``queue`` (and ``channel``, ``exchange_vhost``, ``exchange``), and
those of what consumers took from a queue ``vhost`` and ``queue`` (and ``channel``). Every rule
aggregates ``by (vhost, queue)`` (renaming ``queue_vhost``), so an alert has the same labels whichever
node reports the queue.

**Rules.** One group per vhost (``topo-<vhost>``); alerts ``TopoQueueDepth``, ``TopoQueueConsumers``,
``TopoQueueUnacked``, ``TopoQueuePublishRate``, ``TopoQueueDeadLetterRate``, ``TopoQueueMessageAge``
with ``severity`` ``warning`` or ``critical`` and ``check``, and ``TopoQueuesMissing`` per vhost (fewer
of the declared queues reported than declared). Queues with the same level share a rule (their names
in a regex matcher). A critical condition is a warning one too: let Alertmanager inhibit the warning
(``source_matchers: [severity="critical"]``, ``target_matchers: [severity="warning"]``,
``equal: [alertname, vhost, queue]``).

The dead-letter rate is measured as :mod:`topo.monitor.evaluate` measures it: over the window, what the
queue's dead-letter queue received (its depth's change plus what its consumers acknowledged or took
without acknowledgement) over what was published into every queue that dead-letters there.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from topo.model import Topology
from topo.monitor.evaluate import format_count, format_seconds
from topo.monitor.resolve import Check, Expectation, VHostExpectations, resolve
from topo.monitor.spec import CheckName, Threshold

__all__ = ["FAMILIES", "Metrics", "render_rules", "rules"]

Metrics = Literal["detailed", "per-object"]
FAMILIES = ("queue_coarse_metrics", "queue_metrics", "channel_queue_metrics", "channel_queue_exchange_metrics")
"""The ``family`` parameters of ``/metrics/detailed`` that the rules need."""

_NAMES = {
    "messages": "queue_messages",
    "ready": "queue_messages_ready",
    "ready_bytes": "queue_messages_ready_bytes",
    "unacked": "queue_messages_unacked",
    "consumers": "queue_consumers",
    "head": "queue_head_message_timestamp",
    "published": "queue_messages_published_total",
    "acked": "channel_messages_acked_total",
    "delivered_no_ack": "channel_messages_delivered_total",
    "got_no_ack": "channel_get_total",
}
_RE2_META = set("\\.+*?()|[]{}^$")


def metric(name: str, metrics: Metrics) -> str:
    """The plugin's name of a metric (``ready`` → ``rabbitmq_detailed_queue_messages_ready``)."""
    return ("rabbitmq_detailed_" if metrics == "detailed" else "rabbitmq_") + _NAMES[name]


def _string(value: str) -> str:
    """A PromQL string literal."""
    return json.dumps(value, ensure_ascii=False)


def _regex(names: Iterable[str]) -> str:
    """An RE2 alternation matching exactly ``names`` (label regexes are anchored)."""
    return "|".join("".join("\\" + c if c in _RE2_META else c for c in name) for name in sorted(names))


def _queues(names: list[str], label: str = "queue") -> str:
    if len(names) == 1:
        return f"{label}={_string(names[0])}"
    return f"{label}=~{_string(_regex(names))}"


def _duration(seconds: float) -> str:
    whole = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole and whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


@dataclass(frozen=True)
class _Rule:
    """One alert over queues that share a level: the expression is built for the group."""

    alert: str
    check: str
    severity: str
    expr: str
    summary: str
    description: str
    labels: tuple[tuple[str, str], ...] = ()  # besides severity and check (the series carry vhost and queue)


def _group_by(items: Iterable[tuple[tuple[Any, ...], str]]) -> dict[tuple[Any, ...], list[str]]:
    out: dict[tuple[Any, ...], list[str]] = {}
    for key, queue in items:
        out.setdefault(key, []).append(queue)
    return out


def _checks(vhost: VHostExpectations, name: CheckName) -> Iterator[tuple[Expectation, Check]]:
    for e in vhost.queues:
        check = e.check(name)
        if check is not None and check.problem is None:
            yield e, check


def _levels(check: Check) -> Iterator[tuple[str, Threshold]]:
    for level in ("warning", "critical"):
        threshold = check.level(level)
        if threshold is not None:
            yield level, threshold


def _gauge_rules(vhost: VHostExpectations, metrics: Metrics) -> Iterator[_Rule]:
    v = _string(vhost.vhost)
    items: list[tuple[tuple[Any, ...], str]] = []
    for e, check in _checks(vhost, "depth"):
        for level, t in _levels(check):
            if not t.relative:
                items.append((("depth", level, "messages", t.value, f"{format_count(t.value)} messages"), e.queue))
                continue
            for limit in e.limits:
                series = "ready" if limit.key == "max-length" else "ready_bytes"
                what = "ready messages" if limit.key == "max-length" else "bytes of ready messages"
                value = t.value * limit.value
                text = f"{format_count(value)} {what} ({t.text} of {limit.key} {format_count(limit.value)})"
                items.append((("depth", level, series, value, text), e.queue))
    counted: tuple[tuple[CheckName, str, str], ...] = (
        ("consumers", "consumers", "consumers"),
        ("unacked", "unacked", "unacknowledged messages"),
    )
    for name, series, what in counted:
        for e, check in _checks(vhost, name):
            for level, t in _levels(check):
                text = (
                    "1 consumer (none)" if name == "consumers" and t.value == 1 else f"{format_count(t.value)} {what}"
                )
                items.append(((name, level, series, t.value, text), e.queue))
    for e, check in _checks(vhost, "message-age"):
        for level, t in _levels(check):
            items.append((("message-age", level, "head", t.value, format_seconds(t.value)), e.queue))
    yield from _merged(items, v, metrics)


_GAUGES = {  # check -> (alert, comparison, words for the summary, what $value is)
    "depth": ("TopoQueueDepth", ">", "holds more than", "ready messages (bytes, against max-length-bytes)"),
    "consumers": ("TopoQueueConsumers", "<", "has fewer than", "consumers"),
    "unacked": ("TopoQueueUnacked", ">", "has more than", "unacknowledged messages"),
    "message-age": ("TopoQueueMessageAge", ">", "has a head message older than", "seconds"),
}


def _number(value: float) -> str:
    """A threshold exactly as PromQL reads it (no exponent that loses digits)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _merged(items: list[tuple[tuple[Any, ...], str]], v: str, metrics: Metrics) -> Iterator[_Rule]:
    """One rule per check and level: the queues that share a threshold in one comparison, the
    comparisons joined by ``or`` (rules of one name and the same labels would be duplicates)."""
    order = {"warning": 0, "critical": 1}
    by_rule: dict[tuple[str, str], list[tuple[tuple[Any, ...], list[str]]]] = {}
    for key, queues in _group_by(items).items():
        by_rule.setdefault((key[0], key[1]), []).append((key, queues))
    for check_name, level in sorted(by_rule, key=lambda k: (k[0], order[k[1]])):
        alert, comparison, verb, unit = _GAUGES[check_name]
        parts = []
        groups = sorted(by_rule[(check_name, level)], key=lambda kv: (kv[0][2], kv[0][3]))
        for (_, _, series, value, _text), queues in groups:
            gauge = f"max by (vhost, queue) ({metric(series, metrics)}{{vhost={v},{_queues(queues)}}})"
            figure = f"time() - {gauge}" if check_name == "message-age" else gauge
            parts.append(f"{figure} {comparison} {_number(value)}")
        expr = " or ".join(f"({part})" for part in parts) if len(parts) > 1 else parts[0]
        if len(groups) == 1:
            text = groups[0][0][4]
            summary = f"Queue {{{{ $labels.queue }}}} in vhost {{{{ $labels.vhost }}}} {verb} {text}"
            description = f"Now {{{{ $value }}}}; the topology's {level} level: {text}."
        else:
            summary = (
                f"Queue {{{{ $labels.queue }}}} in vhost {{{{ $labels.vhost }}}}: {check_name} past its {level} level"
            )
            description = (
                f"Now {{{{ $value }}}} {unit}; each queue's {level} level is in the topology "
                "(`topo status` shows it beside the figure)."
            )
        yield _Rule(alert, check_name, level, expr, summary, description)


def _publish_rules(vhost: VHostExpectations, metrics: Metrics, window: float) -> Iterator[_Rule]:
    items = []
    for e, check in _checks(vhost, "publish-rate"):
        for level, t in _levels(check):
            rate = t.value * (check.capacity or 0.0) if t.relative else t.value
            text = f"{format_count(round(rate, 3))}/s" + (
                f" ({t.text} of {format_count(check.capacity or 0)}/s)" if t.relative else ""
            )
            items.append(((level, rate, text), e.queue))
    selector = metric("published", metrics)
    w = _duration(window)
    for level in ("warning", "critical"):
        groups = sorted((key, queues) for key, queues in _group_by(items).items() if key[0] == level)
        if not groups:
            continue
        parts = []
        for (_, rate, _text), queues in groups:
            series = f"{selector}{{queue_vhost={_string(vhost.vhost)},{_queues(queues)}}}"
            renamed = f'label_replace(rate({series}[{w}]), "vhost", "$1", "queue_vhost", "(.*)")'
            parts.append(f"sum by (vhost, queue) ({renamed}) > {_number(rate)}")
        expr = " or ".join(f"({part})" for part in parts) if len(parts) > 1 else parts[0]
        text = groups[0][0][2] if len(groups) == 1 else f"its {level} level"
        yield _Rule(
            "TopoQueuePublishRate",
            "publish-rate",
            level,
            expr,
            f"Queue {{{{ $labels.queue }}}} in vhost {{{{ $labels.vhost }}}} is published to faster than {text}",
            f"Now {{{{ $value }}}} messages per second over {w}; the topology's {level} level: {text}.",
        )


def _dead_letter_rules(vhost: VHostExpectations, metrics: Metrics, window: float) -> Iterator[_Rule]:
    v = _string(vhost.vhost)
    w = _duration(window)
    for e, check in _checks(vhost, "dead-letter-rate"):
        for dlq in e.dead_letter_queues:
            sources = list(vhost.dead_letter_sources.get(dlq, (e.queue,)))
            own = f"vhost={v},queue={_string(dlq)}"
            removed = " + ".join(
                f"(sum(increase({metric(name, metrics)}{{{own}}}[{w}])) or vector(0))"
                for name in ("acked", "delivered_no_ack", "got_no_ack")
            )
            received = f"clamp_min(sum(delta({metric('messages', metrics)}{{{own}}}[{w}])) + {removed}, 0)"
            published = f"sum(increase({metric('published', metrics)}{{queue_vhost={v},{_queues(sources)}}}[{w}]))"
            shared = f" (with {', '.join(s for s in sources if s != e.queue)})" if len(sources) > 1 else ""
            for level, t in _levels(check):
                yield _Rule(
                    "TopoQueueDeadLetterRate",
                    "dead-letter-rate",
                    level,
                    f"{received} / {published} > {_number(t.value)}",
                    f"Queue {e.queue} in vhost {vhost.vhost}: more than {t.text} of its messages dead-lettered "
                    f"into {dlq}{shared}",
                    f"{{{{ $value | humanizePercentage }}}} of the messages published over {w} reached "
                    f"dead-letter queue {dlq}; the topology's {level} level is {t.text}.",
                    (("vhost", vhost.vhost), ("queue", e.queue), ("dead_letter_queue", dlq)),
                )


def _missing_rule(vhost: VHostExpectations, metrics: Metrics) -> _Rule | None:
    names = [e.queue for e in vhost.queues]
    if not names:
        return None
    selector = f"{metric('messages', metrics)}{{vhost={_string(vhost.vhost)},{_queues(names)}}}"
    count = len(names)
    return _Rule(
        "TopoQueuesMissing",
        "exists",
        "critical",
        f"(count(max by (queue) ({selector})) or vector(0)) < {count}",
        f"Vhost {vhost.vhost}: declared queues missing on the broker",
        f"{{{{ $value }}}} of the {count} queues the topology declares in vhost {vhost.vhost} are reported "
        "(`topo status` names the missing ones).",
        (("vhost", vhost.vhost),),
    )


def rules(
    topology: Topology, *, metrics: Metrics = "detailed", window: float = 300.0, for_: float = 300.0
) -> dict[str, Any]:
    """The rules file as a document (``{"groups": [...]}``)."""
    groups = []
    for name, vhost in resolve(topology).items():
        found: list[_Rule] = [
            *_gauge_rules(vhost, metrics),
            *_publish_rules(vhost, metrics, window),
            *_dead_letter_rules(vhost, metrics, window),
        ]
        missing = _missing_rule(vhost, metrics)
        if missing is not None:
            found.append(missing)
        entries = []
        for rule in found:
            entry: dict[str, Any] = {"alert": rule.alert, "expr": rule.expr}
            if for_:
                entry["for"] = _duration(for_)
            # the vhost as a static label too: the same value the series carry, and it keeps rules of one
            # name in different groups from being duplicates (promtool check rules --lint)
            entry["labels"] = {"severity": rule.severity, "check": rule.check, "vhost": name, **dict(rule.labels)}
            entry["annotations"] = {"summary": rule.summary, "description": rule.description}
            entries.append(entry)
        groups.append({"name": f"topo-{name}", "rules": entries})
    return {"groups": groups}


def _unmeasured(topology: Topology) -> list[str]:
    out = []
    for vhost in resolve(topology).values():
        for e in vhost.queues:
            for check in e.checks:
                if check.problem is not None:
                    out.append(f"{e.vhost}/{e.queue} {check.name}: {check.problem}")
    return out


def render_rules(
    topology: Topology, *, metrics: Metrics = "detailed", window: float = 300.0, for_: float = 300.0
) -> str:
    """The rules file as YAML, after a header that says how Prometheus must scrape RabbitMQ for it."""
    if metrics == "detailed":
        scrape = [
            "#   metrics_path: /metrics/detailed",
            f"#   params: {{family: [{', '.join(FAMILIES)}]}}",
        ]
    else:
        scrape = ["#   metrics_path: /metrics/per-object"]
    header = [
        "# Generated by `topo alerts` from the topology's monitor: levels. Do not edit: change the",
        "# topology files and generate it again. Check it with `promtool check rules FILE`.",
        "#",
        "# Needs Prometheus to scrape each RabbitMQ node's rabbitmq_prometheus plugin (port 15692) with:",
        *scrape,
        "# A critical alert's condition holds for the warning one too: inhibit warnings in Alertmanager",
        '# (source_matchers: [severity="critical"], target_matchers: [severity="warning"],',
        "#  equal: [alertname, vhost, queue]).",
    ]
    skipped = _unmeasured(topology)
    if skipped:
        header += ["#", "# No rule for these checks, which cannot be measured (see `topo lint`):"]
        header += [f"#   {line}" for line in skipped]
    body = yaml.safe_dump(
        rules(topology, metrics=metrics, window=window, for_=for_), sort_keys=False, width=10_000, allow_unicode=True
    )
    return "\n".join(header) + "\n" + body
