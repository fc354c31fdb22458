"""A private, throwaway RabbitMQ node on loopback, for the tests, the benchmarks and ``make demo``.

A development tool, not part of topo: it lives beside the package, and the wheel does not ship it
(tests/test_wheel.py checks). It is imported from the repository's root (pytest's ``pythonpath``, the
benchmarks' ``sys.path``; ``python -m devbroker`` from the root, as the Makefile does).

Library use::

    import devbroker

    node = devbroker.start(tmp_dir)          # free ports, ready when it returns (Management API answers)
    node.url, node.amqp_url                  # http://guest:guest@127.0.0.1:<port>, amqp://...
    node.stop_app(); node.start_app()        # to test reconnection
    node.stop()

Command line (``python -m devbroker``, :mod:`devbroker.cli`): ``start``, ``stop``, ``status``, ``ensure``
(the demo's broker: the one the user named with ``--url`` / ``$TOPO_URL``, else a private node; never
one nobody named) and ``env`` (the ``export TOPO_URL=... TOPO_AMQP_URL=...`` line for the private node);
see ``--help``. The node itself: :mod:`devbroker.node`.
"""

from __future__ import annotations

from devbroker.cli import main
from devbroker.node import (
    DevBrokerError,
    Node,
    dir_node_name,
    ensure,
    find_executable,
    free_port,
    load,
    management_answers,
    pid_alive,
    start,
    watch,
)

__all__ = [
    "DevBrokerError",
    "Node",
    "dir_node_name",
    "ensure",
    "find_executable",
    "free_port",
    "load",
    "main",
    "management_answers",
    "pid_alive",
    "start",
    "watch",
]
