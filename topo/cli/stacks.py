"""``topo state`` (what each stack owns on the broker) and ``topo destroy`` (delete all a stack owns)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from topo import engine
from topo.cli.common import amqp_url_option, cli, connection_options
from topo.cli.core import _client, _styler, say_data_loss
from topo.errors import UsageError
from topo.model import Inventory
from topo.plan.render import render_text
from topo.plan.safety import refused_as_planned

__all__ = ["destroy_cmd", "state_cmd"]


def _state_json(inventory: Inventory) -> dict[str, Any]:
    return {
        "stack": inventory.stack,
        "owned": [
            {
                "kind": a.kind,
                "vhost": a.vhost,
                "address": str(a),
                "protected": a in inventory.protected,
            }
            for a in sorted(inventory.owned, key=lambda a: (a.vhost, str(a)))
        ],
        "protected_not_owned": sorted(str(a) for a in inventory.protected - inventory.owned),
    }


def _state_text(inventory: Inventory) -> list[str]:
    count = len(inventory.owned)
    out = [f"stack {inventory.stack!r} owns {count} resource{'s' if count != 1 else ''}:"]
    current = None
    for a in sorted(inventory.owned, key=lambda a: (a.vhost, str(a))):
        if a.vhost != current:
            current = a.vhost
            out.append(f"  in vhost {json.dumps(a.vhost, ensure_ascii=False)}:")
        mark = "  (protected)" if a in inventory.protected else ""
        out.append(f"    {a.kind} {a}{mark}")
    held = sorted(str(a) for a in inventory.protected - inventory.owned)  # permissions: no stack owns them
    if held:
        out.append("  protected, not owned: " + ", ".join(held))
    return out


@cli.command("state")
@click.argument("stack", required=False)
@connection_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def state_cmd(stack: str | None, url: str, connection: dict[str, Any], fmt: str) -> int:
    """Show what STACK (a topology's `name:`) owns on the broker; without STACK, every stack there."""
    with _client(url, connection) as client:
        stacks = engine.stacks(client)
        where = client.display_url
    if stack is not None and stack not in stacks:
        known = ", ".join(sorted(stacks)) or "none"
        raise UsageError(f"the broker at {where} has no stack {stack!r}", hint=f"stacks on this broker: {known}")
    chosen = [stacks[stack]] if stack is not None else [stacks[n] for n in sorted(stacks)]
    if fmt == "json":
        document: Any = _state_json(chosen[0]) if stack is not None else [_state_json(i) for i in chosen]
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return 0
    if not chosen:
        click.echo(f"No stack on the broker at {where}.")
        return 0
    lines: list[str] = []
    for inventory in chosen:
        lines += _state_text(inventory) if stack is not None else [_summary(inventory)]
    click.echo("\n".join(lines))
    return 0


def _summary(inventory: Inventory) -> str:
    vhosts = sorted({a.vhost for a in inventory.owned})
    count = len(inventory.owned)
    return (
        f"{inventory.stack}: {count} resource{'s' if count != 1 else ''} in "
        f"{len(vhosts)} vhost{'s' if len(vhosts) != 1 else ''} ({', '.join(vhosts)})"
    )


@cli.command("destroy")
@click.argument("stack")
@connection_options
@amqp_url_option
@click.option("--yes", "-y", "assume_yes", is_flag=True, help="Destroy without asking for the stack's name.")
@click.option(
    "--allow-data-loss",
    is_flag=True,
    help="Let queues holding messages be deleted (the plan names each one and its count).",
)
def destroy_cmd(
    stack: str,
    url: str,
    connection: dict[str, Any],
    amqp_url: str | None,
    assume_yes: bool,
    allow_data_loss: bool,
) -> int:
    """Delete everything STACK owns on the broker (its inventory), then the inventory: shows the plan, then
    asks you to type the stack's name. Protected resources and queues holding messages block it."""
    with _client(url, connection, amqp_url) as client:
        plan = engine.plan_destroy(client, stack, allow_data_loss=allow_data_loss)
        click.echo(render_text(plan, _styler()), nl=False)
        refused = refused_as_planned(plan)
        if refused is not None:
            raise refused
        if not assume_yes:
            if not sys.stdin.isatty():
                raise UsageError(
                    "destroy needs confirmation, but there is no terminal to ask on",
                    hint=f"pass --yes to destroy stack {stack!r} without asking",
                )
            answer = click.prompt(
                f"\nDelete everything stack {stack!r} owns? Type the stack's name to confirm",
                default="",
                show_default=False,
            )
            if answer.strip() != stack:
                click.echo("Destroy cancelled. Nothing was changed.")
                return 1
        engine.destroy(client, plan)
    say_data_loss(plan)
    deleted = plan.count("delete")
    click.echo(click.style(f"Destroy complete: {deleted} deleted.", fg="green"))
    return 0
