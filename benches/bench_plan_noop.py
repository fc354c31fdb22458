"""Benchmark 1: a no-op ``topo plan`` over a vhost of 10,000 queues and 10,000 bindings.

Set-up (not timed): a fresh vhost gets the topology (10 topic exchanges, 10,000 classic queues with
arguments, one binding each) through one ``POST /api/definitions/{vhost}``; the same topology is
written as YAML files (``exchanges.yaml`` + one file per 1,000 queues), and the plan is checked to be
"No changes." with nothing unmanaged.

Measured, interleaved in each repetition:

* **baseline**: one ``GET /api/definitions/{vhost}`` with httpx (new client, response fully read and
  JSON-decoded): the least any tool must do to know the vhost's state;
* **topo plan (CLI)**: ``topo.cli.common.run(["plan", DIR, "--url", URL])``, the exact code path of
  the ``topo plan`` command (click, load, read, diff, render; output captured), in this process;
* **topo plan (new process)**: the same command as a user types it, in a new Python process
  (interpreter start-up and imports included);
* **topo plan, one file (new process)**: the same topology written as one file (what a generated or
  exported topology often is), the command in a new process: the read cannot wait for a first file to be
  parsed (the plan starts reading before it parses anything: ``topo/loader/prescan.py``);
* **topo plan (CLI, no name:)**: the same files without ``name:`` (no stack: no inventory is read), so
  that the ratio of the two is what the stack's inventory costs a plan (one ``GET /api/global-parameters``
  holding the ~20,000 addresses the stack owns, in about ten parameters, decoded; and ``GET /api/vhosts``);
* **breakdown**, by the library calls the command makes, one after the other: ``topo.load(DIR)``,
  ``topo.broker.reader.read(LiveBroker(client), vhosts)`` (of which: the two requests and JSON decoding, then
  ``vhost_from_definitions`` turning the JSON into the model) and ``topo.plan.diff.diff``.

Target: topo plan (CLI) / baseline <= 1.5x.

Targets (issue 10): topo plan (CLI), the new process and the one file as a new process, each <= 1.5x.
``--compare-with DIR`` (a checkout of another version of topo) also runs both new-process forms with that
version's code (``PYTHONPATH=DIR``), in the same repetitions, and prints their ratios and the ratio of this
version to that one: a before/after of a change on a busy machine.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    Bench,
    Spec,
    arguments,
    broker_url,
    broker_versions,
    create_vhost,
    definitions_document,
    delete_inventory,
    delete_vhost,
    enc,
    post_definitions,
    raw_client,
    unique_vhost,
    write_topology,
)

import topo
from topo import engine
from topo.broker.client import ManagementClient
from topo.broker.live import LiveBroker
from topo.broker.reader import read
from topo.cli import core as _commands  # registers `plan` and the other commands on the CLI
from topo.cli.common import run
from topo.definitions import vhost_from_definitions
from topo.plan.diff import diff
from topo.plan.ownership import Ownership

BASELINE = "GET /api/definitions (httpx)"
CLI = "topo plan (CLI)"
PROCESS = "topo plan (new process)"
NAMELESS = "topo plan (CLI, no name:)"
ONE_FILE = "topo plan, one file (new process)"
OTHER = "[--compare-with]"


def main() -> None:
    assert _commands

    def compare_with(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--compare-with", metavar="DIR", help="also run the commands with the topo in DIR")

    args = arguments(__doc__.splitlines()[0], queues=10_000, repeat=5, small_queues=200, extra=compare_with)
    other = str(Path(args.compare_with).resolve()) if args.compare_with else None
    bench = Bench("plan_noop", params={"queues": args.queues, "bindings": args.queues, "exchanges": 10})
    bench.start()
    with (
        broker_url() as url,
        raw_client(url) as http,
        tempfile.TemporaryDirectory(prefix="topo-bench-") as tmp,
        tempfile.TemporaryDirectory(prefix="topo-bench-one-file-") as one_file,
    ):
        bench.context.update(broker_versions(http))
        spec = Spec(vhost=unique_vhost("plan"), queues=args.queues)
        files = write_topology(spec, Path(tmp))
        single = write_one_file(spec, Path(one_file))
        create_vhost(http, spec.vhost)
        try:
            t0 = time.perf_counter()
            post_definitions(http, spec.vhost, definitions_document(spec))
            bench.note(
                f"set-up: {spec.queues} queues + {spec.queues} bindings + {spec.exchanges} exchanges imported in "
                f"{time.perf_counter() - t0:.1f} s (one POST /api/definitions); {len(files)} YAML files, or one "
                f"of {single.stat().st_size / 2**20:.1f} MiB"
            )
            with ManagementClient(url) as client:  # the stack takes over what the bench imported
                engine.apply(client, topo.load(tmp), ownership=Ownership(adopt=True))
                plan = engine.plan(client, topo.load(tmp))
                assert topo.load(one_file) == topo.load(tmp), "the one file is not the same topology"
            assert plan.empty and not plan.unmanaged, f"not a no-op plan: {len(plan.changes)} changes"
            nameless = Path(tmp + "-nameless")  # beside the files, not under them (a directory is read whole)
            nameless.mkdir()
            for path in files:
                (nameless / path.name).write_text(path.read_text().replace("name: bench\n", "", 1))
            for rep in range(args.repeat):
                once(bench, url, tmp, one_file, spec.vhost, rep % 2 == 0, str(nameless), other)
            bench.finish()
            summarise(bench, other)
            bench.dump(args.json)
        finally:
            shutil.rmtree(tmp + "-nameless", ignore_errors=True)
            delete_vhost(http, spec.vhost)
            delete_inventory(http)


def summarise(bench: Bench, other: str | None = None) -> None:
    for label in bench.samples:
        bench.report(label)
    parts = ["load", "read", "diff"]
    total = sum(bench.median(p) for p in parts)
    bench.note(
        "breakdown of the sum of medians (library calls in sequence): "
        + ", ".join(f"{p} {bench.median(p) / total:.0%}" for p in parts)
    )
    bench.ratio(CLI, BASELINE, target=1.5)
    bench.ratio(NAMELESS, BASELINE)
    bench.ratio(CLI, NAMELESS)
    bench.ratio("inventory", BASELINE)
    bench.ratio(PROCESS, BASELINE, target=1.5)
    bench.ratio(ONE_FILE, BASELINE, target=1.5)
    if other is not None:
        for label in (PROCESS, ONE_FILE):
            bench.ratio(f"{label} {OTHER}", BASELINE)
            bench.ratio(label, f"{label} {OTHER}")
    bench.ratio("read", BASELINE)
    sequential = [sum(each) for each in zip(*(bench.samples[p] for p in parts), strict=True)]
    bench.samples["load + read + diff, one after the other"] = sequential
    bench.ratio("load + read + diff, one after the other", BASELINE)


def baseline(bench: Bench, url: str, vhost: str) -> Any:
    """One GET of the vhost's definitions, fully read and decoded."""
    gc.collect()
    t0 = time.perf_counter()
    with raw_client(url) as http:
        response = http.get(f"/api/definitions/{enc(vhost)}")
        response.raise_for_status()
        definitions = response.json()
    bench.add(BASELINE, time.perf_counter() - t0)
    assert len(definitions["queues"]) >= 1
    return definitions


def cli(bench: Bench, url: str, directory: str, label: str = CLI) -> None:
    """The `topo plan DIR --url URL` command, in this process."""
    gc.collect()
    out = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = run(["plan", directory, "--url", url])
    bench.add(label, time.perf_counter() - t0)
    assert code == 0 and "No changes." in out.getvalue(), out.getvalue()[-500:]


def process(bench: Bench, url: str, directory: str, label: str = PROCESS, code: str | None = None) -> None:
    """`topo plan DIR --url URL` as a user runs it: a new Python process (start-up and imports); ``code``: the
    directory of another version of topo to run instead."""
    command = [sys.executable, "-c", "from topo.cli import main; main()", "plan", directory, "--url", url]
    env = {**os.environ, "PYTHONPATH": code} if code is not None else None
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    bench.add(label, time.perf_counter() - t0)
    assert done.returncode == 0 and "No changes." in done.stdout, (done.stdout[-500:], done.stderr[-500:])


def write_one_file(spec: Spec, directory: Path) -> Path:
    """The topology of :func:`write_topology` as one file (exchanges first, then every queue)."""
    parts = write_topology(Spec(spec.vhost, spec.queues, spec.exchanges, queues_per_file=spec.queues), directory)
    exchanges, queues = (part.read_text() for part in parts)
    body = queues.split("    queues:\n", 1)[1]
    path = directory / "topology.yaml"
    path.write_text(exchanges + "    queues:\n" + body)
    for part in parts:
        part.unlink()
    return path


def once(
    bench: Bench,
    url: str,
    directory: str,
    one_file: str,
    vhost: str,
    baseline_first: bool,
    nameless: str,
    other: str | None,
) -> None:
    # the order alternates, so neither side always runs second (after the other warmed the broker)
    if baseline_first:
        definitions = baseline(bench, url, vhost)
        cli(bench, url, directory)
        cli(bench, url, nameless, NAMELESS)
    else:
        cli(bench, url, nameless, NAMELESS)
        cli(bench, url, directory)
        definitions = baseline(bench, url, vhost)
    runs = [(directory, PROCESS, None), (one_file, ONE_FILE, None)]
    if other is not None:
        runs += [(directory, f"{PROCESS} {OTHER}", other), (one_file, f"{ONE_FILE} {OTHER}", other)]
        if not baseline_first:  # alternate which version runs first
            runs = runs[2:] + runs[:2]
    for where, label, code in runs:
        process(bench, url, where, label, code)

    # breakdown through the library
    gc.collect()
    t0 = time.perf_counter()
    desired = topo.load(directory)
    t1 = time.perf_counter()
    with ManagementClient(url) as client:
        observed = read(LiveBroker(client), desired.vhosts)
    t2 = time.perf_counter()
    t4 = time.perf_counter()
    with ManagementClient(url) as client:
        observed.topology.stacks = engine.stacks(client)
    t5 = time.perf_counter()
    t2 += t5 - t4  # the diff's clock starts after the inventory's read
    plan = diff(desired, observed.topology)
    t3 = time.perf_counter()
    assert plan.empty
    bench.add("inventory", t5 - t4)
    bench.add("load", t1 - t0)
    bench.add("read", t2 - t1)
    bench.add("diff", t3 - t2)
    # the read's model building alone (on the baseline's decoded JSON)
    t0 = time.perf_counter()
    vhost_from_definitions(vhost, {}, definitions)
    bench.add("  of read: JSON -> model", time.perf_counter() - t0)


if __name__ == "__main__":
    main()
