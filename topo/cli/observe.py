"""``topo status`` (the declared queues against the live broker) and ``topo alerts`` (Prometheus rules).

``topo status`` exits as a monitoring plugin does (Nagios, Icinga, Sensu, ...): 0 OK, 1 WARNING,
2 CRITICAL, 3 UNKNOWN. Every error (invalid files, a broker that does not answer, a wrong option) is
UNKNOWN, 3 — never 1, which would read as WARNING. (topo's other commands exit 1 on an error, and
``plan --detailed-exitcode`` 2 for changes: their codes answer "did it work"; these answer "how is it".)
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import click

from topo.cli.common import PATHS, cli, connection_options, echo_error, load_paths, parse_vars, vars_option
from topo.errors import TopoError, UsageError
from topo.units import parse_duration
from topo.urls import redact

__all__ = ["alerts_cmd", "status_cmd", "watch"]

UNKNOWN = 3
_VHOST = click.option("--vhost", "vhosts", multiple=True, metavar="NAME", help="Limit to this vhost (repeatable).")


class MonitoringCommand(click.Command):
    """A command whose every failure exits 3 (UNKNOWN), the monitoring-plugins convention."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            exc.show()
            raise click.exceptions.Exit(UNKNOWN) from None

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool((ctx.find_root().obj or {}).get("debug") or os.environ.get("TOPO_DEBUG"))
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except TopoError as exc:
            if debug:
                traceback.print_exc()
            echo_error(exc)
            raise click.exceptions.Exit(UNKNOWN) from None
        except Exception as exc:  # a bug: still UNKNOWN for the monitoring system, never WARNING
            if debug:
                traceback.print_exc()
            click.echo(f"Error: internal error: {type(exc).__name__}: {redact(str(exc))}", err=True)
            click.echo("Hint: run `topo --debug status ...` for the traceback, and please report it", err=True)
            raise click.exceptions.Exit(UNKNOWN) from None


def _seconds(value: str, option: str, low: float, high: float) -> float:
    text = value.strip()
    try:
        seconds = 0.0 if text == "0" else parse_duration(text) / 1000
    except ValueError:
        raise UsageError(f"{option} {value!r} is not a duration", hint="e.g. 30s, 5m, 1h") from None
    if not low <= seconds <= high:
        raise UsageError(
            f"{option} {value} is out of range",
            hint=f"between {low:g} s and {high:g} s",
        )
    return seconds


def _styler() -> Callable[[str, str], str]:
    if os.environ.get("NO_COLOR"):
        return lambda text, _c: text
    return lambda text, colour: click.style(text, fg=colour, bold=colour in ("red", "magenta"))


def watch(
    once: Callable[[], tuple[str, int]],
    interval: float,
    *,
    tty: bool,
    echo: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
    iterations: int | None = None,
) -> int:
    """Run ``once`` (output, exit code) every ``interval`` seconds until interrupted; return the last code.

    On a terminal each round replaces the screen (cursor home, clear); elsewhere the rounds follow one
    another, each under a line with its time, so a log or a pipe keeps every one.
    """
    code = UNKNOWN
    done = 0
    try:
        while iterations is None or done < iterations:
            text, code = once()
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(clock()))
            if tty:
                echo(f"\x1b[H\x1b[2J(every {interval:g} s; {stamp}; Ctrl-C to stop)\n\n{text}")
            else:
                echo(f"--- {stamp}\n{text}")
            done += 1
            if iterations is None or done < iterations:
                sleep(interval)
    except KeyboardInterrupt:
        pass
    return code


@cli.command("status", cls=MonitoringCommand)
@PATHS
@connection_options
@_VHOST
@vars_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "prometheus"]),
    default="text",
    show_default=True,
    help="prometheus: the text exposition format, for a textfile collector or a scrape.",
)
@click.option(
    "--window",
    default="5m",
    show_default=True,
    help="Rates (publish, dead-letter) are measured over this last stretch of time (10s to 1h).",
)
@click.option(
    "--page-size",
    type=click.IntRange(1, 500),
    default=None,
    help="Read the queue listing in pages of this many queues (one request per vhost without it).",
)
@click.option("--watch", "watching", is_flag=True, help="Refresh until interrupted (in place on a terminal).")
@click.option("--interval", default="10s", show_default=True, help="With --watch: time between refreshes.")
def status_cmd(
    paths: tuple[str, ...],
    url: str,
    connection: dict[str, Any],
    vhosts: tuple[str, ...],
    variables: tuple[str, ...],
    fmt: str,
    window: str,
    page_size: int | None,
    watching: bool,
    interval: str,
) -> int:
    """Check every declared queue on the live broker against its `monitor:` levels.

    One row per check: OK, WARNING or CRITICAL with the figure and the levels, and every declared queue
    the broker does not have. Exit code as monitoring plugins: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN
    (also for any error).
    """
    from topo.broker.client import ManagementClient
    from topo.monitor.figures import ManagementQueues
    from topo.monitor.render import render
    from topo.monitor.status import load_and_status, status

    window_s = _seconds(window, "--window", 10, 3600)
    interval_s = _seconds(interval, "--interval", 1, 86400)
    if watching and fmt == "prometheus":
        raise UsageError(
            "--watch does not go with --format prometheus",
            hint="let Prometheus (or a textfile collector's cron job) run `topo status --format prometheus`",
        )
    tty = sys.stdout.isatty()
    style = _styler() if tty else (lambda text, _c: text)
    with ManagementClient(url, amqp_url="", **connection) as client:
        source = ManagementQueues(client)
        if not watching:
            _, report = load_and_status(
                source, paths, parse_vars(variables), vhosts, window=window_s, page_size=page_size
            )
            click.echo(render(report, fmt, style), nl=False)
            return int(report.state)
        topology = load_paths(paths, variables).only(vhosts)

        def once() -> tuple[str, int]:
            try:
                report = status(source, topology, window=window_s, page_size=page_size)
            except TopoError as exc:  # the broker may come back: keep watching
                return f"UNKNOWN: {exc.message}\n", UNKNOWN
            text = render(report, fmt, style)
            if fmt == "json" and not tty:
                text = json.dumps(json.loads(text), ensure_ascii=False) + "\n"  # one JSON document per line
            return text, int(report.state)

        return watch(once, interval_s, tty=tty, echo=lambda text: click.echo(text, nl=False))


@cli.command("alerts")
@PATHS
@vars_option
@_VHOST
@click.option("--format", "fmt", type=click.Choice(["prometheus"]), default="prometheus", show_default=True)
@click.option(
    "--metrics",
    type=click.Choice(["detailed", "per-object"]),
    default="detailed",
    show_default=True,
    help="Which of the rabbitmq_prometheus plugin's per-queue endpoints Prometheus scrapes: "
    "/metrics/detailed (rabbitmq_detailed_* names) or /metrics/per-object (rabbitmq_* names).",
)
@click.option("--window", default="5m", show_default=True, help="The range of the rules' rate() and increase().")
@click.option(
    "--for", "for_", default="5m", show_default=True, help="How long a condition lasts before it fires (0: at once)."
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=str), help="Write to FILE, not stdout.")
def alerts_cmd(
    paths: tuple[str, ...],
    variables: tuple[str, ...],
    vhosts: tuple[str, ...],
    fmt: str,
    metrics: str,
    window: str,
    for_: str,
    output: str | None,
) -> int:
    """Write alerting rules for the queues' `monitor:` levels (no broker needed).

    A Prometheus rules file, one group per vhost, on the per-queue metrics of RabbitMQ's built-in
    rabbitmq_prometheus plugin. Check it with `promtool check rules FILE`.
    """
    from topo.monitor.alerts import Metrics, render_rules

    window_s = _seconds(window, "--window", 10, 86400)
    for_s = _seconds(for_, "--for", 0, 86400)
    topology = load_paths(paths, variables).only(vhosts)
    text = render_rules(topology, metrics=cast(Metrics, metrics), window=window_s, for_=for_s)
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)
    return 0
