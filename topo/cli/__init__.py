"""The ``topo`` command line. Every command module registers itself on :data:`cli` when imported; the
group imports a command's module when that command runs (``COMMANDS`` in :mod:`topo.cli.common`).

The one error boundary lives in :func:`main`: a :class:`~topo.errors.TopoError` becomes
``Error: <message>`` plus its hint and exit code 1; click's usage errors exit 1 too (2 means "changes"
to CI wrappers built for Terraform). ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import importlib
import sys

import click

from topo.cli.common import cli, run

__all__ = ["cli", "main"]

# Command modules; each adds its commands to `cli` when imported.
_COMMAND_MODULES = ("topo.cli.core", "topo.cli.analyze", "topo.cli.runtime", "topo.cli.observe", "topo.cli.transfer")


def _register() -> None:
    """Import every command module (for tests and tools that walk ``cli.commands``)."""
    for module in _COMMAND_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:  # a part not built yet
            if exc.name != module:
                raise


def main(argv: list[str] | None = None) -> None:
    sys.exit(run(argv))


if __name__ == "__main__":  # pragma: no cover
    main()

_ = click  # re-exported for command modules' convenience
