"""``topo validate``, ``plan``, ``apply`` and ``export``."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from typing import Any

import click

from topo import engine
from topo.broker.client import ManagementClient
from topo.broker.live import LiveBroker
from topo.broker.reader import read, read_broker_wide
from topo.cli.common import PATHS, amqp_url_option, cli, connection_options, load_paths, parse_vars, vars_option
from topo.errors import BrokerError, UsageError
from topo.export import export_yaml
from topo.model import Topology
from topo.plan.kinds import kind
from topo.plan.model import Action, Plan
from topo.plan.ownership import Ownership
from topo.plan.render import render_json, render_markdown, render_text
from topo.plan.safety import data_loss_allowed, refused_as_planned

__all__ = ["apply_cmd", "export_cmd", "plan_cmd", "validate_cmd"]

_VHOST = click.option("--vhost", "vhosts", multiple=True, metavar="NAME", help="Limit to this vhost (repeatable).")
_MIGRATE = click.option(
    "--migrate",
    is_flag=True,
    help="Migrate each queue to replace: move its messages into the new queue (zero loss) rather than refuse "
    "to drop a queue that holds messages.",
)


def _guard_options(f: Any) -> Any:
    """--prune, --adopt (a stack's: files with ``name:``) and --allow-data-loss, as ``ownership`` and
    ``allow_data_loss``."""
    options = [
        click.option(
            "--prune",
            is_flag=True,
            help="Delete what the stack (name:) owns on the broker and no file declares any more.",
        ),
        click.option(
            "--adopt", is_flag=True, help="Take over existing resources the files declare (listed in the plan)."
        ),
        click.option(
            "--allow-data-loss",
            is_flag=True,
            help="Let a queue holding messages be deleted or replaced (the plan names each one and its count).",
        ),
    ]

    def wrapper(**kwargs: Any) -> Any:
        kwargs["ownership"] = Ownership(adopt=kwargs.pop("adopt"), prune=kwargs.pop("prune"))
        return f(**kwargs)

    functools.update_wrapper(wrapper, f)
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def _styler() -> Any:
    if os.environ.get("NO_COLOR"):
        return lambda text, _c: text

    def style(text: str, colour: str) -> str:
        return click.style(text, bold=True) if colour == "bold" else click.style(text, fg=colour)

    return style


@contextmanager
def _client(url: str, connection: dict[str, Any], amqp_url: str | None = None) -> Iterator[ManagementClient]:
    client = ManagementClient(url, amqp_url=amqp_url, **connection)
    try:
        yield client
    finally:
        client.close()


def _render(plan: Plan, fmt: str, desired: Topology) -> str:
    if fmt == "json":
        return render_json(plan)
    if fmt == "markdown":
        from topo.graph import render_mermaid

        touched = sorted({c.vhost for c in plan.changes if kind(c.kind).scope == "vhost"})  # not users
        return render_markdown(plan, graph=render_mermaid(desired, touched) if touched else None)
    return render_text(plan, _styler())


def say_data_loss(plan: Plan) -> None:
    """Out loud, on stderr: each queue dropped with its messages because --allow-data-loss said so."""
    for change in plan.changes:
        if data_loss_allowed(change):
            click.echo(
                click.style(
                    f"Dropped queue {change.address.name!r} in vhost {change.vhost!r} with the "
                    f"{change.messages} message{'s' if change.messages != 1 else ''} it held when planned "
                    "(--allow-data-loss).",
                    fg="red",
                ),
                err=True,
            )


@cli.command("validate")
@PATHS
@vars_option
def validate_cmd(paths: tuple[str, ...], variables: tuple[str, ...]) -> int:
    """Check topology files against the schema and the rules; print every problem."""
    topology = load_paths(paths, variables)
    counts = {"exchanges": 0, "queues": 0, "bindings": 0, "policies": 0}
    for vhost in topology.vhosts.values():
        counts["exchanges"] += len(vhost.exchanges)
        counts["queues"] += len(vhost.queues)
        counts["bindings"] += len(vhost.bindings)
        counts["policies"] += len(vhost.policies) + len(vhost.operator_policies)
    singular = {"exchanges": "exchange", "queues": "queue", "bindings": "binding", "policies": "policy"}
    if topology.users:
        counts["users"] = len(topology.users)
    if topology.global_parameters:
        counts["global parameters"] = len(topology.global_parameters)
    singular |= {"users": "user", "global parameters": "global parameter"}
    parts = ", ".join(f"{n} {k if n != 1 else singular[k]}" for k, n in counts.items())
    click.echo(f"Valid: {len(topology.vhosts)} vhost{'s' if len(topology.vhosts) != 1 else ''}, {parts}.")
    return 0


@cli.command("plan")
@PATHS
@connection_options
@amqp_url_option
@_VHOST
@vars_option
@_MIGRATE
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when there are no changes, 2 when there are (or, without the stack's inventory, may be), 3 when "
    "apply would refuse the plan (blocked).",
)
@_guard_options
@click.option(
    "-o",
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Also save the plan to FILE, for `topo apply FILE` to apply exactly (no secret is written).",
)
def plan_cmd(
    paths: tuple[str, ...],
    url: str,
    connection: dict[str, Any],
    amqp_url: str | None,
    vhosts: tuple[str, ...],
    variables: tuple[str, ...],
    migrate: bool,
    fmt: str,
    detailed_exitcode: bool,
    ownership: Ownership,
    allow_data_loss: bool,
    out: str | None,
) -> int:
    """Show what apply would change on the broker, and what it would refuse (a blocked plan)."""
    with _client(url, connection, amqp_url) as client:
        # a plan is only shown: what the user may not read (users, without the administrator tag) is a note;
        # a plan saved for apply reads all that apply reads
        desired, plan, observed = engine.load_plan_observed(
            client,
            paths,
            parse_vars(variables),
            vhosts,
            ownership=ownership,
            allow_data_loss=allow_data_loss,
            partial=not out,
            migrate=migrate,
        )
        if fmt != "text" or out:
            plan = engine.describe_broker(client, plan)
    if out:
        from topo import saved

        flags = {"vhosts": sorted(vhosts), "prune": ownership.prune, "adopt": ownership.adopt, "migrate": migrate}
        saved.write(out, saved.make(desired, plan, observed, {**flags, "allow_data_loss": allow_data_loss}))
        click.echo(f"Saved the plan to {out}: `topo apply {out}` applies exactly this plan.", err=True)
    click.echo(_render(plan, fmt, desired), nl=False)
    if not detailed_exitcode or (plan.empty and plan.read.ownership_known):
        return 0
    return 3 if plan.blocked else 2  # ownership not known: never 0 (apply may prune, or write the inventory)


@cli.command("apply")
@PATHS
@connection_options
@amqp_url_option
@_VHOST
@vars_option
@_MIGRATE
@click.option("--yes", "-y", "assume_yes", is_flag=True, help="Apply without asking.")
@_guard_options
@click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default="0: fail at once",
    metavar="SECONDS",
    help="How long to wait for another apply of the same stack to finish before failing.",
)
@click.option("--no-lock", "no_lock", is_flag=True, help="Do not take the stack's apply lock (AMQP).")
@click.option(
    "--migrate-wait",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="How long a migration waits for the old queue's consumers to settle the messages they hold.",
)
@click.option(
    "--stats-interval",
    type=click.FloatRange(min=0),
    default=None,
    show_default="5 (RabbitMQ's default)",
    metavar="SECONDS",
    help="The broker's collect_statistics_interval: a migration trusts an unacknowledged count read twice that "
    "long after it fenced the old queue.",
)
def apply_cmd(
    paths: tuple[str, ...],
    url: str,
    connection: dict[str, Any],
    amqp_url: str | None,
    vhosts: tuple[str, ...],
    variables: tuple[str, ...],
    migrate: bool,
    assume_yes: bool,
    ownership: Ownership,
    allow_data_loss: bool,
    lock_timeout: float,
    no_lock: bool,
    migrate_wait: float,
    stats_interval: float | None,
) -> int:
    """Make the broker match the files (shows the plan, then asks); or apply a saved plan (PATH is the FILE
    of `topo plan ... -o FILE`: applied as saved, with the flags it was made with, without asking; refused
    when the broker changed since)."""
    from topo import saved
    from topo.loader import load

    saved_plan = saved.read(paths[0]) if len(paths) == 1 and paths[0].endswith(".json") else None
    if saved_plan is not None:
        if vhosts or ownership.prune or ownership.adopt or allow_data_loss or migrate:
            raise UsageError(
                "--vhost, --prune, --adopt, --allow-data-loss and --migrate do not apply to a saved plan",
                hint="it applies as it was planned: give them to `topo plan ... -o FILE`",
            )
        flags = saved_plan.flags
        ownership = Ownership(adopt=bool(flags.get("adopt")), prune=bool(flags.get("prune")))
        allow_data_loss, migrate = bool(flags.get("allow_data_loss")), bool(flags.get("migrate"))
    with _client(url, connection, amqp_url) as client, ExitStack() as stack:
        if saved_plan is None and no_lock:  # the broker read while the files load
            desired, plan = engine.load_and_plan(
                client,
                paths,
                parse_vars(variables),
                vhosts,
                ownership=ownership,
                allow_data_loss=allow_data_loss,
                migrate=migrate,
            )
        else:  # the lock first (its name is the files'), then the broker read
            desired = saved_plan.desired if saved_plan is not None else load(paths, parse_vars(variables)).only(vhosts)
            if not no_lock:
                _take_lock(stack, client, desired, lock_timeout)
            if saved_plan is not None:
                desired, plan = saved.check(client, saved_plan, variables=parse_vars(variables))
                assume_yes = True  # reviewed when it was saved
            else:
                plan, _ = engine.plan_observed(
                    client,
                    desired,
                    ownership=ownership,
                    allow_data_loss=allow_data_loss,
                    migrate=migrate,
                    whole=not vhosts,
                )
        click.echo(render_text(plan, _styler()), nl=False)
        if plan.empty:
            return 0
        refused = refused_as_planned(plan)  # before asking, in the plan's words
        if refused is not None:
            raise refused
        if not assume_yes:
            if not sys.stdin.isatty():
                raise UsageError(
                    "apply needs confirmation, but there is no terminal to ask on",
                    hint="pass --yes to apply without asking (in CI, after reviewing `topo plan`)",
                )
            answer = click.prompt("\nApply these changes? Only 'yes' is accepted", default="", show_default=False)
            if answer.strip() != "yes":
                click.echo("Apply cancelled. Nothing was changed.")
                return 1
        total = len(plan.changes)
        show_bar = total >= 20 and sys.stderr.isatty()
        recount = not assume_yes or plan.blocked  # after a question, count again; with --yes the plan is fresh
        notes: list[str] = []  # each migration's figures: said also when a later change fails
        bar_or_none = (
            click.progressbar(length=total, label="Applying", file=sys.stderr) if show_bar else nullcontext(None)
        )
        try:
            with bar_or_none as bar:
                engine.apply(
                    client,
                    desired,
                    plan,
                    progress=(lambda _text, n: bar.update(n)) if bar is not None else None,
                    recount=recount,
                    ownership=ownership,
                    allow_data_loss=allow_data_loss,
                    notes=notes,
                )
        finally:
            for note in notes:
                click.echo(note[:1].upper() + note[1:])
    words: tuple[tuple[Action, str], ...] = (
        ("create", "created"),
        ("update", "updated"),
        ("replace", "replaced"),
        ("delete", "deleted"),
        ("migrate", "migrated"),
    )
    done = ", ".join(
        f"{plan.count(action)} {word}" for action, word in words if action != "migrate" or plan.count(action)
    )
    say_data_loss(plan)
    click.echo(click.style(f"Apply complete: {done}.", fg="green"))
    return 0


def _take_lock(stack: ExitStack, client: ManagementClient, desired: Topology, timeout: float) -> None:
    """Take the apply lock of ``desired``'s stack (topo.broker.lock) for the rest of ``stack``; a waiting
    apply names its holder (read through the Management API). Where AMQP cannot be asked (it does not answer,
    refuses the user, another cluster answers there), apply goes on without the lock, and says so."""
    from topo.broker.client import enc
    from topo.broker.lock import ApplyLock, LockUnavailable, lock_target, take

    vhost, name = lock_target(desired)
    broker = LiveBroker(client)

    def queue(where: str) -> Any:
        return client.get(f"/queues/{enc(where)}/{enc(name)}", vhost=where, ok_missing=True)

    def describe(where: str) -> Callable[[], Any]:
        def arguments() -> Any:
            body = queue(where)
            return body.get("arguments") if isinstance(body, dict) else None

        return arguments

    def exists(where: str) -> bool:
        return broker.vhost_info(where) is not None

    def held_in_default() -> bool:
        try:
            body = queue("/")
        except BrokerError:  # the user may not see `/`: then nothing there is its stack's lock either
            return False
        return isinstance(body, dict) and bool(body.get("exclusive"))

    try:
        cluster = broker.overview().cluster_name

        def make(where: str, wait: float) -> ApplyLock:
            return ApplyLock(
                client.amqp_url or "",
                where,
                name,
                timeout=wait,
                connect_timeout=min(client.timeout, 10.0),
                describe=describe(where),
                cluster=cluster,
            )

        for lock in take(vhost, exists=exists, held_in_default=held_in_default, make=make, timeout=timeout):
            stack.callback(lock.release)
    except LockUnavailable as exc:
        click.echo(f"Warning: applying without the stack's lock: {exc.message} ({exc.hint})", err=True)


@cli.command("export")
@connection_options
@_VHOST
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write to FILE, not stdout.")
@click.option(
    "--include-password-hashes",
    "password_hashes",
    is_flag=True,
    help="Write each user's password hash (sensitive) instead of a ${env:...} placeholder to fill in.",
)
def export_cmd(
    url: str, connection: dict[str, Any], vhosts: tuple[str, ...], output: str | None, password_hashes: bool
) -> int:
    """Write what the broker has, in the topology file format (without --vhost: users, their permissions
    and global parameters too)."""
    with _client(url, connection) as client:
        broker = LiveBroker(client)
        names = list(vhosts) or broker.vhost_names()
        observed = read(broker, names)
        if observed.missing:
            missing = ", ".join(sorted(observed.missing))
            raise UsageError(
                f"vhost(s) not on the broker at {client.display_url}: {missing}",
                hint="check the name (`topo export` without --vhost exports every vhost)",
            )
        if not vhosts:  # the whole broker: who may do what, and its global parameters, too
            read_broker_wide(broker, into=observed.topology, why="an export of the whole broker includes")
        text = export_yaml(
            observed.topology,
            header=f"exported by topo from {client.display_url}",
            password_hashes=password_hashes,
        )
    if output:
        try:
            with open(output, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            raise UsageError(
                f"cannot write {output}: {exc.strerror or exc}", hint="check the path given to -o"
            ) from None
        click.echo(f"Wrote {output}.", err=True)
    else:
        click.echo(text, nl=False)
    return 0
