"""Benchmark 4: ``topo status`` over a vhost of 10,000 declared queues.

Set-up (not timed): a fresh vhost gets the topology of benchmark 1 (10 topic exchanges, 10,000
classic queues with arguments, a third of them with ``max-length``, one binding each) through one
``POST /api/definitions/{vhost}``; the same topology is written as YAML files; one message is published
to every queue (over AMQP), so that every queue has publish statistics to sample, as on a live broker.
Default ``monitor:`` levels apply (consumers, unacknowledged messages, depth where a length limit is
set).

Measured, interleaved in each repetition:

* **baseline**: one ``GET /api/queues/{vhost}`` with the query ``topo status`` sends (the same
  ``columns=`` and sampling parameters), with httpx (new client, response fully read and
  JSON-decoded): the least any tool must do to know these queues' figures;
* **topo status (CLI)**: ``topo.cli.common.run(["status", DIR, "--url", URL])``, the exact code path
  of the command (click, load, resolve, read, evaluate, render; output captured), in this process;
* **topo status (new process)**: the same command as a user (or cron) runs it, in a new Python process;
* **topo status --page-size 500** and a **paged baseline** (20 pages of 500 with the same query):
  what paging costs the broker, which lists every queue once per page;
* **breakdown**, by the library calls, one after the other: ``topo.load``, ``resolve``, ``read_vhost``
  (the request and the parsing), ``evaluate`` and ``render_text``.

Target: topo status (CLI) / baseline <= 1.5x.
"""

from __future__ import annotations

import contextlib
import gc
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pika
from common import (
    Bench,
    Spec,
    arguments,
    broker_url,
    broker_versions,
    create_vhost,
    definitions_document,
    delete_vhost,
    enc,
    post_definitions,
    raw_client,
    unique_vhost,
    write_topology,
)

import topo
from topo.broker.client import ManagementClient
from topo.cli import observe as _commands  # registers `status` on the CLI
from topo.cli.common import run
from topo.monitor.evaluate import evaluate
from topo.monitor.figures import ManagementQueues, main_params, read_vhost
from topo.monitor.render import render_text
from topo.monitor.resolve import resolve

BASELINE = "GET /api/queues (httpx)"
PAGED_BASELINE = "GET /api/queues, pages of 500 (httpx)"
CLI = "topo status (CLI)"
PAGED = "topo status --page-size 500 (CLI)"
PROCESS = "topo status (new process)"
WINDOW = 300.0


def main() -> None:
    assert _commands
    args = arguments(__doc__.splitlines()[0], queues=10_000, repeat=5, small_queues=200)
    bench = Bench("status", params={"queues": args.queues, "window_seconds": WINDOW})
    bench.start()
    with broker_url() as url, raw_client(url) as http, tempfile.TemporaryDirectory(prefix="topo-bench-") as tmp:
        bench.context.update(broker_versions(http))
        spec = Spec(vhost=unique_vhost("status"), queues=args.queues)
        files = write_topology(spec, Path(tmp))
        create_vhost(http, spec.vhost)
        try:
            t0 = time.perf_counter()
            post_definitions(http, spec.vhost, definitions_document(spec))
            bench.note(
                f"set-up: {spec.queues} queues + {spec.queues} bindings + {spec.exchanges} exchanges imported in "
                f"{time.perf_counter() - t0:.1f} s (one POST /api/definitions); {len(files)} YAML files"
            )
            t0 = time.perf_counter()
            publish_one_each(http, url, spec.vhost, [spec.queue(i) for i in range(spec.queues)])
            wait_for_statistics(url, spec.vhost, spec.queues)
            bench.note(f"set-up: one message published to each queue, statistics in {time.perf_counter() - t0:.1f} s")
            for rep in range(args.repeat):
                once(bench, url, tmp, spec.vhost, args.queues, rotate=rep)
            bench.finish()
            summarise(bench)
            bench.dump(args.json)
        finally:
            delete_vhost(http, spec.vhost)


def publish_one_each(http: Any, url: str, vhost: str, queues: list[str]) -> None:
    """One message to each queue through the default exchange, over AMQP (the port the broker lists)."""
    listeners = http.get("/api/overview", params={"columns": "listeners"}).json()["listeners"]
    port = next(int(item["port"]) for item in listeners if item["protocol"] == "amqp")
    parts = urlsplit(url)
    credentials = pika.PlainCredentials(unquote(parts.username or "guest"), unquote(parts.password or "guest"))
    params = pika.ConnectionParameters(parts.hostname or "localhost", port, vhost, credentials)
    connection = pika.BlockingConnection(params)
    channel = connection.channel()
    for name in queues:
        channel.basic_publish("", name, b"m")
    connection.close()


def wait_for_statistics(url: str, vhost: str, queues: int, timeout: float = 300) -> None:
    """Until the broker reports the message and its publish in every queue's statistics."""
    deadline = time.monotonic() + timeout
    with raw_client(url) as http:
        while True:
            items = http.get(f"/api/queues/{enc(vhost)}", params={"columns": "name,messages,message_stats"}).json()
            ready = sum(1 for q in items if q.get("messages") == 1 and "message_stats" in q)
            if ready >= queues:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"statistics of only {ready} of {queues} queues after {timeout:g} s")
            time.sleep(2)


def summarise(bench: Bench) -> None:
    for label in bench.samples:
        bench.report(label)
    parts = ["load", "resolve", "read", "evaluate", "render"]
    total = sum(bench.median(p) for p in parts)
    bench.note(
        "breakdown of the sum of medians (library calls in sequence): "
        + ", ".join(f"{p} {bench.median(p) / total:.0%}" for p in parts)
    )
    bench.ratio(CLI, BASELINE, target=1.5)
    bench.ratio(PROCESS, BASELINE)
    bench.ratio(PAGED, BASELINE)
    bench.ratio(PAGED_BASELINE, BASELINE)
    bench.ratio("read", BASELINE)


def baseline(bench: Bench, url: str, vhost: str, queues: int) -> None:
    """The request topo status sends, once, fully read and decoded."""
    gc.collect()
    t0 = time.perf_counter()
    with raw_client(url) as http:
        response = http.get(f"/api/queues/{enc(vhost)}", params=main_params(WINDOW))
        response.raise_for_status()
        items = response.json()
    bench.add(BASELINE, time.perf_counter() - t0)
    assert len(items) == queues, len(items)


def paged_baseline(bench: Bench, url: str, vhost: str, queues: int) -> None:
    gc.collect()
    t0 = time.perf_counter()
    seen = 0
    with raw_client(url) as http:
        page = 1
        while True:
            params = {**main_params(WINDOW), "page": str(page), "page_size": "500"}
            body = http.get(f"/api/queues/{enc(vhost)}", params=params).json()
            seen += len(body["items"])
            if page >= body["page_count"]:
                break
            page += 1
    bench.add(PAGED_BASELINE, time.perf_counter() - t0)
    assert seen == queues


def cli(bench: Bench, label: str, url: str, directory: str, *extra: str) -> None:
    """The `topo status DIR --url URL` command, in this process."""
    gc.collect()
    out = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = run(["status", directory, "--url", url, *extra])
    bench.add(label, time.perf_counter() - t0)
    # no consumers anywhere: CRITICAL (exit 2) is the expected answer
    assert code == 2 and out.getvalue().startswith("CRITICAL: "), out.getvalue()[:500]


def process(bench: Bench, url: str, directory: str) -> None:
    command = [sys.executable, "-c", "from topo.cli import main; main()", "status", directory, "--url", url]
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    bench.add(PROCESS, time.perf_counter() - t0)
    assert done.returncode == 2 and done.stdout.startswith("CRITICAL: "), (done.stdout[:500], done.stderr[-500:])


def once(bench: Bench, url: str, directory: str, vhost: str, queues: int, *, rotate: int) -> None:
    # the order rotates, so no contender always runs right after another warmed the broker
    contenders: list[Any] = [
        lambda: baseline(bench, url, vhost, queues),
        lambda: cli(bench, CLI, url, directory),
        lambda: paged_baseline(bench, url, vhost, queues),
        lambda: cli(bench, PAGED, url, directory, "--page-size", "500"),
    ]
    for i in range(len(contenders)):
        contenders[(i + rotate) % len(contenders)]()
    process(bench, url, directory)

    # breakdown through the library
    gc.collect()
    t0 = time.perf_counter()
    topology = topo.load(directory)
    t1 = time.perf_counter()
    expectations = resolve(topology)
    t2 = time.perf_counter()
    with ManagementClient(url, amqp_url="") as client:
        figures = read_vhost(ManagementQueues(client), vhost, WINDOW)
    t3 = time.perf_counter()
    report = evaluate(expectations, {vhost: figures}, time.time(), WINDOW)
    t4 = time.perf_counter()
    text = render_text(report)
    t5 = time.perf_counter()
    assert len(report.queues) == queues and text.startswith("CRITICAL: ")
    for label, seconds in (("load", t1 - t0), ("resolve", t2 - t1), ("read", t3 - t2), ("evaluate", t4 - t3)):
        bench.add(label, seconds)
    bench.add("render", t5 - t4)


if __name__ == "__main__":
    main()
