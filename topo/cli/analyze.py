"""``topo route``, ``topo lint`` and ``topo graph``: know before you deploy (no broker needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from topo.cli.common import PATHS, cli, load_paths, vars_option
from topo.errors import UsageError
from topo.graph import render as render_graph
from topo.lint import check_codes, lint
from topo.lint.output import render as render_findings
from topo.routing import DeadLetter, Forward, RouteResult, route
from topo.shortstr import shortstr_excess, too_long_message

__all__ = ["graph_cmd", "lint_cmd", "parse_header", "render_route_text", "route_cmd"]


def parse_header(item: str) -> tuple[str, Any]:
    """``NAME=VALUE`` from ``--header``. VALUE is read as JSON when it is a JSON number, ``true``,
    ``false``, ``null``, a ``"quoted string"`` or an array; anything else is a plain string. So
    ``n=1`` sends the integer 1 and ``n='"1"'`` the string "1"."""
    name, sep, raw = item.partition("=")
    if not sep or not name:
        raise UsageError(f"--header {item!r} is not NAME=VALUE", hint="e.g. --header format=pdf --header size=3")
    try:
        value = json.loads(raw)
    except ValueError:
        return name, raw
    if isinstance(value, dict):
        return name, raw
    return name, value


# -- route ---------------------------------------------------------------------------------------------


def _key_text(result: RouteResult) -> str:
    keys = result.routing_keys
    return (
        "routing key " + json.dumps(keys[0]) if len(keys) == 1 else "routing keys " + ", ".join(map(json.dumps, keys))
    )


def render_route_text(result: RouteResult) -> str:
    exchange = result.exchange or "(default exchange)"
    with_headers = ""
    if result.headers:
        with_headers = " and headers " + json.dumps(dict(result.headers), ensure_ascii=False, default=str)
    lines = [f"Message to {exchange} in vhost {result.vhost} with {_key_text(result)}{with_headers}:"]
    if result.dropped and result.forwarded and not result.lost:
        lines.append(f"  No queue in vhost {result.vhost} ({result.reason}); a link takes it on.")
    elif result.dropped:
        lines.append(f"  Dropped: {result.reason}.")
    else:
        count = len(result.queues)
        lines.append(f"  Routed to {count} queue{'s' if count != 1 else ''}:")
        for queue in result.queues:
            paths = result.paths_to(queue)
            lines.append(f"    {queue}")
            for path in paths:
                lines.append(f"      via {path.describe()}")
    for note in result.notes:
        lines.append(f"  Note: {note}.")
    if result.dead_letters is not None:
        lines.append("  If a queue dead-letters it (rejected, expired, over a limit):")
        if not result.dead_letters:
            lines.append("    (no queue to dead-letter from)")
        for dead in result.dead_letters:
            lines.extend(_dead_letter_lines(dead, "    "))
    for forward in result.forwarded:
        lines.extend(_forward_lines(forward))
    return "\n".join(lines) + "\n"


def _forward_lines(forward: Forward) -> list[str]:
    """A shovel or federation link the message goes on through, and where it goes from there (indented)."""
    head = f"  Then {forward.describe()}"
    if forward.result is None:
        return [f"{head}: {forward.note}."]
    nested = render_route_text(forward.result).splitlines()
    return [f"{head}:", *("    " + line for line in nested)]


def _dead_letter_lines(dead: DeadLetter, indent: str) -> list[str]:
    if dead.exchange is None:
        return [f"{indent}{dead.queue}: {dead.note}"]
    via = dead.exchange or "(default exchange)"
    keys = ", ".join(json.dumps(k) for k in dead.routing_keys)
    head = f"{indent}{dead.queue} -> {via} with {keys}: "
    result = dead.result
    if result is None:
        return [head + (dead.note or "discarded")]
    lines = [head + (f"dropped ({result.reason})" if result.dropped else ", ".join(result.queues))]
    if dead.note:
        lines.append(f"{indent}  note: {dead.note}")
    for nxt in result.dead_letters or ():
        if nxt.exchange is not None or nxt.note != "no dead-letter exchange: the message is discarded":
            lines.extend(_dead_letter_lines(nxt, indent + "  "))
    return lines


@cli.command("route")
@PATHS
@click.option("--vhost", required=True, metavar="NAME", help="The vhost the message is published in.")
@click.option("--exchange", required=True, metavar="NAME", help='The exchange it is published to ("" = default).')
@click.option("--routing-key", "routing_key", default="", show_default=True, metavar="KEY", help="Its routing key.")
@click.option(
    "--header",
    "headers",
    multiple=True,
    metavar="NAME=VALUE",
    help='A message header (repeatable). VALUE is JSON when it parses as a number, true/false, null, a "quoted '
    'string" or an array (CC=["a","b"]); otherwise a plain string.',
)
@click.option("--dead-letter", is_flag=True, help="Also follow where each queue dead-letters the message.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@vars_option
def route_cmd(
    paths: tuple[str, ...],
    vhost: str,
    exchange: str,
    routing_key: str,
    headers: tuple[str, ...],
    dead_letter: bool,
    fmt: str,
    variables: tuple[str, ...],
) -> int:
    """Show where a message goes: every queue it reaches and the path it takes, or why it is dropped.

    Routing follows RabbitMQ exactly (direct, fanout, topic, headers, the default exchange,
    exchange-to-exchange bindings, alternate exchanges, internal exchanges), then on through the shovels
    and federation links between vhosts of the topology. Exit code 0 when the message reaches a queue
    (here or through a link), 1 when it is dropped.
    """
    size = shortstr_excess(routing_key)
    if size is not None:
        raise UsageError(too_long_message("routing key", size), hint="no client can publish it; shorten it")
    topology = load_paths(paths, variables)
    parsed = dict(parse_header(item) for item in headers)
    result = route(topology, vhost, exchange, routing_key, parsed or None, dead_letter=dead_letter)
    if fmt == "json":
        click.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        click.echo(render_route_text(result), nl=False)
    return 1 if result.lost else 0


# -- lint ----------------------------------------------------------------------------------------------


@cli.command("lint")
@PATHS
@click.option("--disable", "disabled", multiple=True, metavar="CODE", help="Do not run this rule (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text", show_default=True)
@vars_option
def lint_cmd(paths: tuple[str, ...], disabled: tuple[str, ...], fmt: str, variables: tuple[str, ...]) -> int:
    """Check the topology for mistakes RabbitMQ accepts silently. Exit 1 when an error-level rule fires.

    Rules are listed in docs/lint-rules.md. Disable one with --disable CODE (commas allowed), with a
    top-level `lint: {disable: [CODE]}`, or with the same key on a queue or exchange.
    """
    codes = check_codes(code for item in disabled for code in item.split(","))
    topology = load_paths(paths, variables)
    findings = lint(topology, disable=codes)
    click.echo(render_findings(findings, fmt), nl=False)
    return 1 if any(f.severity == "error" for f in findings) else 0


# -- graph ---------------------------------------------------------------------------------------------


@cli.command("graph")
@PATHS
@click.option("--vhost", "vhosts", multiple=True, metavar="NAME", help="Draw only this vhost (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot", "svg"]), required=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=str), help="Write to FILE, not stdout.")
@vars_option
def graph_cmd(
    paths: tuple[str, ...], vhosts: tuple[str, ...], fmt: str, output: str | None, variables: tuple[str, ...]
) -> int:
    """Draw exchanges, queues and bindings, with alternate-exchange and dead-letter edges.

    mermaid renders in GitHub pull requests; dot is Graphviz's language; svg needs Graphviz's `dot`.
    """
    topology = load_paths(paths, variables)
    text = render_graph(topology, fmt, vhosts or None)
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)
    return 0
