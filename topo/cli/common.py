"""Shared pieces of the command line: the root group, the error boundary, common options."""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import click

from topo.errors import TopoError, UsageError, ValidationError
from topo.model import Topology

__all__ = [
    "DEFAULT_AMQP_URL",
    "DEFAULT_URL",
    "PATHS",
    "amqp_url_option",
    "cli",
    "echo_error",
    "load_paths",
    "parse_vars",
    "run",
    "url_option",
    "vars_option",
]

DEFAULT_URL = "http://guest:guest@localhost:15672"
DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672/"

F = TypeVar("F", bound=Callable[..., Any])


COMMANDS: dict[str, str] = {
    "validate": "topo.cli.core",
    "plan": "topo.cli.core",
    "apply": "topo.cli.core",
    "export": "topo.cli.core",
    "route": "topo.cli.analyze",
    "lint": "topo.cli.analyze",
    "graph": "topo.cli.analyze",
    "publish": "topo.cli.runtime",
    "consume": "topo.cli.runtime",
    "bench": "topo.cli.runtime",
    "rpc": "topo.cli.runtime",
    "dlq": "topo.cli.runtime",
}
"""Which module defines each command: a command's module is imported only when it runs (or for --help),
so `topo plan` does not pay for the runtime's or the graph's imports."""


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(COMMANDS[cmd_name])  # registers its commands on `cli`
        return self.commands.get(cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="topo")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """RabbitMQ topology as code: validate, plan and apply YAML topologies."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def url_option(f: F) -> F:
    return click.option(
        "--url",
        envvar="TOPO_URL",
        default=DEFAULT_URL,
        show_default="$TOPO_URL or http://guest:***@localhost:15672",
        help="Management API URL (credentials may be embedded).",
    )(f)


def amqp_url_option(f: F) -> F:
    return click.option(
        "--amqp-url",
        envvar="TOPO_AMQP_URL",
        default=None,
        help="AMQP URL of the same broker, for exact queue counts before a queue is dropped "
        "[default: $TOPO_AMQP_URL, or --url's host and credentials on port 5672].",
    )(f)


def vars_option(f: F) -> F:
    return click.option(
        "--var",
        "variables",
        multiple=True,
        metavar="NAME=VALUE",
        help="Set ${var:NAME} for interpolation (repeatable).",
    )(f)


PATHS = click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=str))
"""The topology files and directories every command that reads them takes."""


def parse_vars(items: tuple[str, ...]) -> dict[str, str]:
    """``--var NAME=VALUE`` options as a dict."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--var {item!r} is not NAME=VALUE", hint="e.g. --var ENV=prod")
        out[name] = value
    return out


def load_paths(paths: tuple[str, ...], variables: tuple[str, ...]) -> Topology:
    """The topology of the command's PATHS with its --var values (ValidationError when invalid)."""
    from topo.loader import load

    return load(paths, parse_vars(variables))


def echo_error(exc: TopoError) -> None:
    message = f"Error: {exc.message}"
    if exc.hint:
        message += f"\nHint: {exc.hint}"
    if isinstance(exc, ValidationError) and len(exc.problems) > 0:
        pass  # the problems are part of the message already
    click.echo(message, err=True)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code: 0 success, 1 error (2 only from --detailed-exitcode)."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:]) or bool(os.environ.get("TOPO_DEBUG"))
    try:
        result = cli.main(args=argv, prog_name="topo", standalone_mode=False)
    except TopoError as exc:
        if debug:
            traceback.print_exc()
        echo_error(exc)
        return 1
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return 1
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    return int(result) if isinstance(result, int) else 0
