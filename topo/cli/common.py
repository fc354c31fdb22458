"""Shared pieces of the command line: the root group, the error boundary, common options."""

from __future__ import annotations

import functools
import importlib
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar, cast

import click

from topo.errors import TopoError, UsageError, ValidationError
from topo.model import Topology
from topo.urls import DEFAULT_AMQP_URL, DEFAULT_TIMEOUT, DEFAULT_URL

__all__ = [
    "DEFAULT_AMQP_URL",
    "DEFAULT_URL",
    "PATHS",
    "amqp_url_option",
    "cli",
    "connection_options",
    "echo_error",
    "load_paths",
    "parse_vars",
    "run",
    "url_option",
    "vars_option",
]


F = TypeVar("F", bound=Callable[..., Any])


COMMANDS: dict[str, str] = {
    "validate": "topo.cli.core",
    "plan": "topo.cli.core",
    "apply": "topo.cli.core",
    "export": "topo.cli.core",
    "state": "topo.cli.stacks",
    "destroy": "topo.cli.stacks",
    "import": "topo.cli.transfer",
    "route": "topo.cli.analyze",
    "lint": "topo.cli.analyze",
    "graph": "topo.cli.analyze",
    "publish": "topo.cli.runtime",
    "consume": "topo.cli.runtime",
    "bench": "topo.cli.runtime",
    "rpc": "topo.cli.runtime",
    "dlq": "topo.cli.runtime",
    "health": "topo.cli.runtime",
    "status": "topo.cli.observe",
    "alerts": "topo.cli.observe",
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
        show_default="$TOPO_URL or http://guest:guest@localhost:15672",
        help="Management API URL (credentials may be embedded; never printed).",
    )(f)


def connection_options(f: F) -> F:
    """``--url`` and how to reach it: ``--timeout`` and, for ``https://``, ``--ca-cert``, ``--client-cert``,
    ``--client-key`` (each also from the environment). The command gets them as one ``connection`` dict,
    the keyword arguments of :class:`~topo.broker.client.ManagementClient` besides the URL."""
    options = [
        click.option(
            "--timeout",
            envvar="TOPO_TIMEOUT",
            type=click.FloatRange(min=0, min_open=True),
            default=DEFAULT_TIMEOUT,
            show_default="$TOPO_TIMEOUT or 60",
            metavar="SECONDS",
            help="How long the Management API may stay silent before the command fails.",
        ),
        click.option(
            "--ca-cert",
            envvar="TOPO_CA_CERT",
            type=click.Path(dir_okay=False),
            metavar="FILE",
            help="https: verify the broker against the CA certificates in this PEM file (not the system's).",
        ),
        click.option(
            "--client-cert",
            envvar="TOPO_CLIENT_CERT",
            type=click.Path(dir_okay=False),
            metavar="FILE",
            help="https: present this client certificate (PEM; may hold the key too).",
        ),
        click.option(
            "--client-key",
            envvar="TOPO_CLIENT_KEY",
            type=click.Path(dir_okay=False),
            metavar="FILE",
            help="https: the client certificate's private key (PEM, unencrypted).",
        ),
    ]

    def wrapper(**kwargs: Any) -> Any:
        kwargs["connection"] = {
            "timeout": kwargs.pop("timeout"),
            "ca_cert": kwargs.pop("ca_cert"),
            "client_cert": kwargs.pop("client_cert"),
            "client_key": kwargs.pop("client_key"),
        }
        return f(**kwargs)

    functools.update_wrapper(wrapper, f)
    decorated: Any = wrapper
    for option in reversed(options):
        decorated = option(decorated)
    return cast(F, url_option(decorated))  # --url first in --help


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
    """The topology of the command's PATHS with its --var values (ValidationError when invalid).

    For the commands that never send a user's password (every one but plan and apply, which load through
    the engine): a password not at hand (its variable not set, its file not there) is no error for them."""
    from topo.loader import load

    return load(paths, parse_vars(variables), secrets=False)


def echo_error(exc: TopoError) -> None:
    message = f"Error: {exc.message}"
    if exc.hint:
        message += f"\nHint: {exc.hint}"
    if isinstance(exc, ValidationError) and len(exc.problems) > 0:
        pass  # the problems are part of the message already
    click.echo(message, err=True)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return the exit code: 0 success, 1 error (2 and 3 only from --detailed-exitcode; 4 a
    saved plan the broker has moved away from: ``StalePlan``)."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:]) or bool(os.environ.get("TOPO_DEBUG"))
    try:
        result = cli.main(args=argv, prog_name="topo", standalone_mode=False)
    except TopoError as exc:
        if debug:
            traceback.print_exc()
        echo_error(exc)
        return exc.exit_code
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
