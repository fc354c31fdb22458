"""``topo import``: a RabbitMQ definitions file → topology files (:mod:`topo.importer`)."""

from __future__ import annotations

from pathlib import Path

import click

from topo.cli.common import cli
from topo.errors import UsageError, ValidationError
from topo.importer import REPORT_FILE, import_definitions, parse_definitions

__all__ = ["import_cmd"]


@cli.command("import")
@click.argument("definitions", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    "directory",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The directory to write the topology files into (made if missing).",
)
@click.option(
    "--vhost",
    "vhost",
    metavar="NAME",
    help="The vhost of items that name none (a single vhost's export, GET /api/definitions/NAME).",
)
@click.option(
    "--include-password-hashes",
    "password_hashes",
    is_flag=True,
    help="Write each user's password hash (sensitive) instead of a ${env:...} placeholder to fill in.",
)
@click.option("--force", is_flag=True, help="Overwrite files that exist in the directory.")
def import_cmd(definitions: Path, directory: Path, vhost: str | None, password_hashes: bool, force: bool) -> int:
    """Write a RabbitMQ definitions file (GET /api/definitions, rabbitmqadmin export; RabbitMQ 3.6 to 3.12) as
    topology files: one per vhost, access-control.yaml for the users, global-parameters.yaml; and a report
    of what the files cannot hold (import-report.txt, and on stderr)."""
    try:
        text = definitions.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UsageError(f"cannot read {definitions}: {reason}", hint="give the path of a definitions file") from None
    document = parse_definitions(text, str(definitions))
    imported = import_definitions(document, source=definitions.name, vhost=vhost, password_hashes=password_hashes)
    _check(imported.files)
    targets = [*imported.files, REPORT_FILE]
    existing = sorted(name for name in targets if (directory / name).exists())
    if existing and not force:
        raise UsageError(
            f"{directory} already holds {', '.join(existing)}: not overwritten",
            hint="pass --force to overwrite them, or choose another directory with -o",
        )
    report = imported.report(definitions.name)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, content in imported.files.items():
            (directory / name).write_text(content, encoding="utf-8")
        (directory / REPORT_FILE).write_text(report, encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UsageError(f"cannot write into {directory}: {reason}", hint="check the path given to -o") from None
    click.echo(report, err=True, nl=False)
    return 0


def _check(files: dict[str, str]) -> None:
    """The files load as a topology (without their secrets): what topo writes, it must read back."""
    import tempfile

    from topo.loader import load

    with tempfile.TemporaryDirectory(prefix="topo-import-") as scratch:
        for name, text in files.items():
            (Path(scratch) / name).write_text(text, encoding="utf-8")
        try:
            load(scratch, secrets=False)
        except ValidationError as exc:  # a bug of the importer: say so, with the problems
            raise UsageError(
                "the imported files do not load back: " + exc.message.replace(scratch + "/", ""),
                hint="please report it with the definitions file (without its users' hashes)",
            ) from None
