"""``topo status`` as a library call: expectations from the files, figures from the broker, a report.

::

    from topo.broker.client import ManagementClient
    from topo.monitor.figures import ManagementQueues
    from topo.monitor.status import status

    with ManagementClient(url) as client:
        report = status(ManagementQueues(client), topo.load("topologies/"), window=300)
    print(report.state.name)          # OK / WARNING / CRITICAL / UNKNOWN

The broker is read in parallel across vhosts; :func:`load_and_status` also starts reading each vhost
while the files are still being loaded (as ``topo plan`` does), so a large check costs about
max(load, read) rather than their sum. The declared shovels are checked too, where the source lists them
(:mod:`topo.monitor.shovels`: ``ManagementQueues`` does).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

from topo.loader import load
from topo.model import Topology
from topo.monitor.evaluate import Report, evaluate
from topo.monitor.figures import QueueSource, VHostFigures, read_depths, read_vhost
from topo.monitor.resolve import VHostExpectations, resolve
from topo.monitor.shovels import evaluate_shovels, read_shovels

__all__ = ["load_and_status", "status"]

PathLike = str | os.PathLike[str]


def _measured_dead_letter_queues(expectations: VHostExpectations) -> set[str]:
    """The dead-letter queues whose depth over the window some dead-letter-rate check needs."""
    out: set[str] = set()
    for e in expectations.queues:
        check = e.check("dead-letter-rate")
        if check is not None and check.problem is None:
            out.update(e.dead_letter_queues)
    return out


def _finish(
    source: QueueSource,
    topology: Topology,
    expectations: dict[str, VHostExpectations],
    figures: dict[str, VHostFigures],
    window: float,
    now: float | None,
) -> Report:
    needed = {name: _measured_dead_letter_queues(e) for name, e in expectations.items()}
    jobs = [(figures[name], names) for name, names in needed.items() if names and figures[name].exists]
    if jobs:
        with ThreadPoolExecutor(max_workers=min(8, len(jobs))) as pool:
            list(pool.map(lambda job: read_depths(source, job[0], job[1], window), jobs))
    report = evaluate(expectations, figures, time.time() if now is None else now, window)
    shovels = evaluate_shovels(topology, read_shovels(source, topology), report.missing_vhosts)
    return replace(report, shovels=shovels) if shovels else report


def status(
    source: QueueSource,
    topology: Topology,
    *,
    window: float = 300.0,
    page_size: int | None = None,
    now: float | None = None,
) -> Report:
    """Every declared queue of ``topology`` against the broker behind ``source``; rates over the last
    ``window`` seconds."""
    names = sorted(topology.vhosts)
    figures: dict[str, VHostFigures] = {}
    if names:
        with ThreadPoolExecutor(max_workers=min(8, len(names))) as pool:
            read = pool.map(
                lambda n: read_vhost(source, n, window, declared=topology.vhosts[n].queues, page_size=page_size), names
            )
            expectations = resolve(topology)  # while the broker answers
            figures = dict(zip(names, read, strict=True))
    else:
        expectations = {}
    return _finish(source, topology, expectations, figures, window, now)


def load_and_status(
    source: QueueSource,
    paths: PathLike | Iterable[PathLike],
    variables: Mapping[str, str] | None = None,
    only: Sequence[str] = (),
    *,
    window: float = 300.0,
    page_size: int | None = None,
) -> tuple[Topology, Report]:
    """Load the files and check the broker, reading each vhost as soon as a file declares it."""
    pool = ThreadPoolExecutor(max_workers=4)
    pending: dict[str, Future[VHostFigures]] = {}

    def start(names: list[str]) -> None:
        for name in names:
            if (not only or name in only) and name not in pending and not page_size:
                pending[name] = pool.submit(read_vhost, source, name, window)

    try:
        topology = load(paths, variables, on_vhosts=start).only(only)
        expectations = resolve(topology)  # while the broker answers
        figures: dict[str, VHostFigures] = {}
        for name in sorted(topology.vhosts):
            future = pending.get(name)
            declared = topology.vhosts[name].queues
            figures[name] = (
                future.result()
                if future is not None
                else read_vhost(source, name, window, declared=declared, page_size=page_size)
            )
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return topology, _finish(source, topology, expectations, figures, window, None)
