"""A status report as text (a table per vhost), JSON (versioned) or Prometheus text exposition.

The text's first line is a one-line summary, as monitoring plugins print it (``CRITICAL: ...``), so a
cron mail's subject or a Nagios service's status line says the essential; the table follows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

from topo.monitor.evaluate import Bound, QueueReport, Report, Result, ShovelReport, State, format_seconds

__all__ = ["JSON_FORMAT_VERSION", "render", "render_json", "render_prometheus", "render_text", "summary"]

JSON_FORMAT_VERSION = 1
Style = Callable[[str, str], str]
_COLOURS = {State.OK: "green", State.WARNING: "yellow", State.CRITICAL: "red", State.UNKNOWN: "magenta"}


def _plain(text: str, _colour: str) -> str:
    return text


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def summary(report: Report) -> str:
    """``CRITICAL: 2 critical, 1 warning, 0 unknown, 9 ok checks on 5 queues in 2 vhosts; 1 queue missing``."""
    counts = report.counts()
    vhosts = len({q.vhost for q in report.queues})
    parts = ", ".join(f"{counts[s]} {s.name.lower()}" for s in (State.CRITICAL, State.WARNING, State.UNKNOWN, State.OK))
    text = f"{report.state.name}: {parts} checks on {_n(len(report.queues), 'queue')}"
    if report.shovels:
        text += f" and {_n(len(report.shovels), 'shovel')}"
        vhosts = len({q.vhost for q in report.queues} | {s.vhost for s in report.shovels})
    text += f" in {_n(vhosts, 'vhost')}"
    missing = sum(1 for q in report.queues if not q.present)
    if missing:
        text += f"; {_n(missing, 'declared queue')} missing"
    stopped = sum(1 for s in report.shovels if s.state == State.CRITICAL)
    if stopped:
        text += f"; {_n(stopped, 'declared shovel')} not running"
    return text


def _rows(queue: QueueReport) -> Iterator[tuple[str, str, State, str, str, str, str | None]]:
    first = True
    for r in queue.results:
        yield (
            queue.queue if first else "",
            r.check,
            r.state,
            r.shown,
            r.warning.text if r.warning else "",
            r.critical.text if r.critical else "",
            r.note,
        )
        first = False


def render_text(report: Report, style: Style = _plain) -> str:
    """The summary line, then a table per vhost: one row per check of each queue."""
    lines = [summary(report)]
    vhosts: dict[str, list[QueueReport]] = {}
    for q in report.queues:
        vhosts.setdefault(q.vhost, []).append(q)
    shovels: dict[str, list[ShovelReport]] = {}
    for shovel in report.shovels:
        shovels.setdefault(shovel.vhost, []).append(shovel)
        vhosts.setdefault(shovel.vhost, [])
    head = ("QUEUE", "CHECK", "STATE", "FIGURE", "WARNING", "CRITICAL")
    for vhost in sorted(vhosts) if report.shovels else vhosts:
        queues = vhosts[vhost]
        rows = [row for q in queues for row in _rows(q)]
        widths = [max([len(head[i])] + [len(str(r[i] if i != 2 else r[2].name)) for r in rows]) for i in range(6)]
        lines += [
            "",
            f"vhost {json.dumps(vhost, ensure_ascii=False)} (rates over the last {format_seconds(report.window)})",
        ]
        lines.append("  " + "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip())
        for queue_name, check, state, shown, warning, critical, note in rows:
            cells = [queue_name, check, state.name, shown, warning, critical]
            padded = [c.ljust(w) for c, w in zip(cells, widths, strict=True)]
            padded[2] = style(state.name, _COLOURS[state]) + " " * (widths[2] - len(state.name))
            lines.append(("  " + "  ".join(padded)).rstrip())
            if note:
                lines.append(" " * (4 + widths[0]) + f"note: {note}")
        if not queues:
            lines.append("  (no queues declared)")
        lines += _shovel_lines(shovels.get(vhost, []), style)
    return "\n".join(lines) + "\n"


def _shovel_lines(shovels: list[ShovelReport], style: Style) -> list[str]:
    """The vhost's declared shovels: one row each (check ``running``), under the queues."""
    if not shovels:
        return []
    head = ("SHOVEL", "CHECK", "STATE", "FIGURE")
    rows = [(s.shovel, "running", s.state.name, s.shown) for s in shovels]
    widths = [max(len(head[i]), *(len(r[i]) for r in rows)) for i in range(4)]
    lines = ["", "  " + "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()]
    for shovel, row in zip(shovels, rows, strict=True):
        padded = [c.ljust(w) for c, w in zip(row, widths, strict=True)]
        padded[2] = style(shovel.state.name, _COLOURS[shovel.state]) + " " * (widths[2] - len(shovel.state.name))
        lines.append(("  " + "  ".join(padded)).rstrip())
        if shovel.note:
            lines.append(" " * (4 + widths[0]) + f"note: {shovel.note}")
    return lines


def _bound(bound: Bound | None) -> dict[str, Any] | None:
    if bound is None:
        return None
    return {"unit": bound.unit, "value": bound.value, "text": bound.text}


def _number(value: float) -> float | str:
    return value if math.isfinite(value) else ("Infinity" if value > 0 else "-Infinity")


def _result_json(r: Result) -> dict[str, Any]:
    return {
        "check": r.check,
        "state": r.state.name,
        "figure": r.shown,
        "values": {unit: _number(v) for unit, v in sorted(r.values.items())},
        "warning": _bound(r.warning),
        "critical": _bound(r.critical),
        "note": r.note,
    }


def render_json(report: Report) -> str:
    """A stable, versioned document (``format_version``); numbers in the units the levels use."""
    counts = report.counts()
    data = {
        "format_version": JSON_FORMAT_VERSION,
        "state": report.state.name,
        "exit_code": int(report.state),
        "summary": summary(report),
        "window_seconds": report.window,
        "checks": {s.name: counts[s] for s in State},
        "missing_vhosts": list(report.missing_vhosts),
        "queues": [
            {
                "vhost": q.vhost,
                "queue": q.queue,
                "role": q.role,
                "present": q.present,
                "state": q.state.name,
                "declared_at": str(q.origin) if q.origin else None,
                "checks": [_result_json(r) for r in q.results],
            }
            for q in report.queues
        ],
        "shovels": [
            {
                "vhost": s.vhost,
                "shovel": s.shovel,
                "check": "running",
                "state": s.state.name,
                "figure": s.shown,
                "note": s.note,
                "declared_at": str(s.origin) if s.origin else None,
            }
            for s in report.shovels
        ],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in labels.items()) + "}"


def _value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


_FAMILIES = (
    ("topo_status", "Worst state of every check: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."),
    ("topo_queue_present", "Whether the declared queue exists on the broker (1) or not (0)."),
    ("topo_queue_check_state", "State of one check of a declared queue: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."),
    ("topo_queue_check_value", "The figure a check compares with its levels, in the unit the label names."),
    ("topo_queue_check_threshold", "A check's warning or critical level, in the unit the label names."),
    ("topo_shovel_check_state", "Whether a declared shovel runs: 0 OK (running), 2 CRITICAL, 3 UNKNOWN."),
)


def render_prometheus(report: Report) -> str:
    """Prometheus text exposition format (version 0.0.4): one gauge family each for the overall state,
    the queues' presence, each check's state, figure and levels."""
    samples: dict[str, list[str]] = {name: [] for name, _ in _FAMILIES}
    samples["topo_status"].append(f"topo_status {int(report.state)}")
    for q in report.queues:
        ids = {"vhost": q.vhost, "queue": q.queue}
        samples["topo_queue_present"].append(f"topo_queue_present{_labels(**ids)} {int(q.present)}")
        for r in q.results:
            if r.check == "exists":
                continue
            check = {**ids, "check": r.check}
            samples["topo_queue_check_state"].append(f"topo_queue_check_state{_labels(**check)} {int(r.state)}")
            for unit, value in sorted(r.values.items()):
                samples["topo_queue_check_value"].append(
                    f"topo_queue_check_value{_labels(**check, unit=unit)} {_value(value)}"
                )
            for level, bound in (("warning", r.warning), ("critical", r.critical)):
                if bound is not None:
                    labels = _labels(**check, level=level, unit=bound.unit)
                    samples["topo_queue_check_threshold"].append(
                        f"topo_queue_check_threshold{labels} {_value(bound.value)}"
                    )
    for shovel in report.shovels:
        labels = _labels(vhost=shovel.vhost, shovel=shovel.shovel, check="running")
        samples["topo_shovel_check_state"].append(f"topo_shovel_check_state{labels} {int(shovel.state)}")
    lines = []
    for name, help_text in _FAMILIES:
        if name == "topo_shovel_check_state" and not report.shovels:
            continue
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", *samples[name]]
    return "\n".join(lines) + "\n"


def render(report: Report, fmt: str, style: Style = _plain) -> str:
    if fmt == "json":
        return render_json(report)
    if fmt == "prometheus":
        return render_prometheus(report)
    return render_text(report, style)
