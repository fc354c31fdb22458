"""Shared pieces of the benchmarks: a broker, raw Management API calls, generated topologies, timing.

Every benchmark script:

* uses the broker at ``TOPO_BENCH_URL`` when it is set, else starts a private RabbitMQ node with
  :func:`devbroker.start` (and stops it at the end);
* works in vhosts of its own (``bench-<what>-<hex>``) and deletes them afterwards;
* generates its topology files in a temporary directory (:func:`write_topology`) and the equivalent
  ``/api/definitions`` document independently of topo's writer (:func:`definitions_document`), so the
  baselines never go through the code they are compared with;
* prints one line per measurement and one ``ratio:`` line per comparison, of medians measured in the
  same run (contenders are interleaved, so a slow minute of the machine hits both sides alike);
* with ``--json PATH`` also writes its results as JSON (``run_all.py`` collects them).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

# Run as `python benches/bench_x.py` from anywhere: the repository root must be importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import devbroker
from topo.urls import amqp_url_for, parse_management

__all__ = [
    "Bench",
    "Spec",
    "arguments",
    "broker_url",
    "broker_versions",
    "create_vhost",
    "definitions_document",
    "delete_inventory",
    "delete_vhost",
    "describe_machine",
    "enc",
    "machine",
    "median",
    "post_definitions",
    "raw_client",
    "unique_vhost",
    "write_topology",
]


def enc(name: str) -> str:
    return quote(name, safe="")


# -- the broker ------------------------------------------------------------------------------------


@contextlib.contextmanager
def broker_url() -> Iterator[str]:
    """``TOPO_BENCH_URL`` if set, else the URL of a private node started (and stopped) here."""
    url = os.environ.get("TOPO_BENCH_URL")
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="topo-bench-node-") as tmp:
        t0 = time.perf_counter()
        node = devbroker.start(Path(tmp))
        print(f"# started private RabbitMQ node {node.name} in {time.perf_counter() - t0:.1f} s", flush=True)
        try:
            yield node.url
        finally:
            node.stop()


@contextlib.contextmanager
def broker_urls() -> Iterator[tuple[str, str]]:
    """(Management URL, AMQP URL): ``TOPO_BENCH_URL`` and ``TOPO_BENCH_AMQP_URL`` (default: the AMQP URL
    derived from it) if set, else a private node's, started (and stopped) here."""
    url = os.environ.get("TOPO_BENCH_URL")
    if url:
        yield url, os.environ.get("TOPO_BENCH_AMQP_URL") or amqp_url_for(url)
        return
    with tempfile.TemporaryDirectory(prefix="topo-bench-node-") as tmp:
        t0 = time.perf_counter()
        node = devbroker.start(Path(tmp))
        print(f"# started private RabbitMQ node {node.name} in {time.perf_counter() - t0:.1f} s", flush=True)
        try:
            yield node.url, node.amqp_url
        finally:
            node.stop()


def raw_client(url: str, timeout: float = 600.0) -> httpx.Client:
    """A plain httpx client on the Management API (``/api/...`` paths), for baselines and setup."""
    parts = parse_management(url)
    auth = httpx.BasicAuth(parts.username or "guest", parts.password if parts.password is not None else "guest")
    return httpx.Client(base_url=parts.public().rstrip("/"), auth=auth, timeout=timeout, trust_env=False)


def create_vhost(http: httpx.Client, name: str) -> None:
    """A fresh, empty vhost on which the URL's user has every permission."""
    http.put(f"/api/vhosts/{enc(name)}").raise_for_status()
    username = _username(http)
    http.put(
        f"/api/permissions/{enc(name)}/{enc(username)}", json={"configure": ".*", "write": ".*", "read": ".*"}
    ).raise_for_status()


def _username(http: httpx.Client) -> str:
    response = http.get("/api/whoami")
    response.raise_for_status()
    return str(response.json()["name"])


def delete_inventory(http: httpx.Client, stack: str = "bench") -> None:
    """Delete stack ``stack``'s inventory (global parameters topo.stack.STACK and its parts): the files of
    :func:`write_topology` name their stack ``bench``, so an apply records what it creates."""
    for item in http.get("/api/global-parameters").json():
        name = item["name"]
        if name == f"topo.stack.{stack}" or name.startswith(f"topo.stack-part.{stack}."):
            http.delete(f"/api/global-parameters/{enc(name)}")


def delete_vhost(http: httpx.Client, name: str, timeout: float = 600.0) -> None:
    """Delete a vhost and wait until it is gone (deleting 10,000 queues takes a while, and the broker
    may drop a connection that was idle too long or a request that runs that long)."""
    deadline = time.monotonic() + timeout
    for _ in range(3):  # a keep-alive connection idle for minutes may have been closed by the broker
        try:
            response = http.delete(f"/api/vhosts/{enc(name)}")
        except httpx.TransportError:
            continue
        if response.status_code not in (204, 404):
            response.raise_for_status()
        break
    while http.get(f"/api/vhosts/{enc(name)}").status_code != 404:
        if time.monotonic() > deadline:
            raise RuntimeError(f"vhost {name} still there {timeout:g} s after DELETE")
        time.sleep(0.5)


def unique_vhost(what: str) -> str:
    return f"bench-{what}-{secrets.token_hex(3)}"


def broker_versions(http: httpx.Client) -> dict[str, str]:
    data = http.get("/api/overview").json()
    return {"rabbitmq": str(data.get("rabbitmq_version", "?")), "erlang": str(data.get("erlang_version", "?"))}


def machine() -> dict[str, str]:
    """CPU, cores, memory, OS and Python of this machine, for the results table."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count() or "?"),
        "memory": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def describe_machine(info: dict[str, str]) -> str:
    return f"{info['cpu']}, {info['cores']} cores, {info['memory']}, {info['os']}, Python {info['python']}"


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on this platform
        return "?"


# -- generated topologies ------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """A generated topology: ``queues`` classic queues with one binding each to one of ``exchanges``
    topic exchanges. A third of the queues have a message TTL, a third a max-length with
    reject-publish, every fifth a dead-letter exchange: arguments like real queues have."""

    vhost: str
    queues: int
    exchanges: int = 10
    queues_per_file: int = 1000

    def exchange(self, i: int) -> str:
        return f"ex-{i:03d}"

    def queue(self, i: int) -> str:
        return f"q-{i:05d}"

    def queue_source(self, i: int) -> str:
        return self.exchange(i % self.exchanges)

    def routing_key(self, i: int) -> str:
        return f"orders.{i}.#"

    def queue_arguments(self, i: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """(keys as written in the file, the broker's arguments)."""
        written: dict[str, Any] = {}
        broker: dict[str, Any] = {}
        if i % 3 == 0:
            written["message-ttl"] = "1h"
            broker["x-message-ttl"] = 3_600_000
        elif i % 3 == 1:
            written["max-length"] = 10_000
            written["overflow"] = "reject-publish"
            broker["x-max-length"] = 10_000
            broker["x-overflow"] = "reject-publish"
        if i % 5 == 0:
            written["dead-letter-exchange"] = self.exchange(0)
            broker["x-dead-letter-exchange"] = self.exchange(0)
        return written, broker


def _yaml_key(name: str) -> str:
    return json.dumps(name) if name == "/" or not name.replace("-", "").replace("_", "").isalnum() else name


def write_topology(spec: Spec, directory: Path) -> list[Path]:
    """Write the topology as files in ``directory``: ``exchanges.yaml`` and ``queues-NNN.yaml`` (one
    per ``queues_per_file`` queues), block style as people write them. Returns the files."""
    directory.mkdir(parents=True, exist_ok=True)
    vhost = _yaml_key(spec.vhost)
    files = []
    lines = ["version: 1", "name: bench", "vhosts:", f"  {vhost}:", "    exchanges:"]
    for e in range(spec.exchanges):
        lines.append(f"      {spec.exchange(e)}:")
        lines.append("        type: topic")
    path = directory / "exchanges.yaml"
    path.write_text("\n".join(lines) + "\n")
    files.append(path)
    for start in range(0, spec.queues, spec.queues_per_file):
        lines = ["version: 1", "name: bench", "vhosts:", f"  {vhost}:", "    queues:"]
        for i in range(start, min(start + spec.queues_per_file, spec.queues)):
            lines.append(f"      {spec.queue(i)}:")
            written, _ = spec.queue_arguments(i)
            for key, value in written.items():
                lines.append(f"        {key}: {value}")
            lines.append("        bindings:")
            lines.append(f"          - exchange: {spec.queue_source(i)}")
            lines.append(f'            routing-key: "{spec.routing_key(i)}"')
        path = directory / f"queues-{start // spec.queues_per_file:03d}.yaml"
        path.write_text("\n".join(lines) + "\n")
        files.append(path)
    return files


def definitions_document(spec: Spec) -> dict[str, list[dict[str, Any]]]:
    """The same objects as :func:`write_topology`, as a ``POST /api/definitions/{vhost}`` body."""
    exchanges = [
        {
            "name": spec.exchange(e),
            "type": "topic",
            "durable": True,
            "auto_delete": False,
            "internal": False,
            "arguments": {},
        }
        for e in range(spec.exchanges)
    ]
    queues = [
        {"name": spec.queue(i), "durable": True, "auto_delete": False, "arguments": spec.queue_arguments(i)[1]}
        for i in range(spec.queues)
    ]
    bindings = [
        {
            "source": spec.queue_source(i),
            "destination": spec.queue(i),
            "destination_type": "queue",
            "routing_key": spec.routing_key(i),
            "arguments": {},
        }
        for i in range(spec.queues)
    ]
    return {"exchanges": exchanges, "queues": queues, "bindings": bindings}


def post_definitions(http: httpx.Client, vhost: str, document: dict[str, Any]) -> None:
    response = http.post(f"/api/definitions/{enc(vhost)}", json=document)
    if response.status_code >= 400:
        raise RuntimeError(f"POST /api/definitions/{vhost}: {response.status_code} {response.text[:300]}")


# -- timing and reporting ------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values)


@dataclass
class Bench:
    """Collects the measurements of one benchmark script and prints them as it goes."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    ratios: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)

    def add(self, label: str, seconds: float) -> None:
        self.samples.setdefault(label, []).append(seconds)

    def median(self, label: str) -> float:
        return median(self.samples[label])

    def report(self, label: str, description: str = "") -> float:
        values = self.samples[label]
        value = median(values)
        spread = f"  (min {min(values):.3f}, max {max(values):.3f}, n={len(values)})" if len(values) > 1 else ""
        extra = f"  {description}" if description else ""
        print(f"time: {label:<42} median {value:8.3f} s{spread}{extra}", flush=True)
        return value

    def ratio(self, label: str, baseline: str, target: float | None = None) -> float:
        """Print and record median(label) / median(baseline); with as many samples on both sides (they
        were taken in pairs, one after the other), also the median of the per-repetition ratios, which
        a machine that is busy for a while disturbs less."""
        value = self.median(label) / self.median(baseline)
        verdict = ""
        if target is not None:
            verdict = f"  (target <= {target:g}x: {'met' if value <= target else 'MISSED'})"
        paired = None
        ours, theirs = self.samples[label], self.samples[baseline]
        if len(ours) == len(theirs) and len(ours) > 1:
            each = [a / b for a, b in zip(ours, theirs, strict=True)]
            paired = median(each)
            verdict += f"  [per repetition: median {paired:.2f}x, {min(each):.2f}x..{max(each):.2f}x]"
        print(f"ratio: {label} / {baseline} = {value:.2f}x{verdict}", flush=True)
        self.ratios.append({"label": label, "baseline": baseline, "ratio": value, "paired": paired, "target": target})
        return value

    def start(self) -> None:
        """Record the machine, and how busy it is (load average), before measuring."""
        self.context["machine"] = machine()
        self.context["load_before"] = _loadavg()
        print(f"# machine: {describe_machine(self.context['machine'])}; load average {_loadavg()}", flush=True)

    def finish(self) -> None:
        self.context["load_after"] = _loadavg()
        print(f"# load average after: {self.context['load_after']}", flush=True)

    def note(self, text: str) -> None:
        print(f"# {text}", flush=True)
        self.notes.append(text)

    def dump(self, path: str | None) -> None:
        if not path:
            return
        data = {
            "name": self.name,
            "params": self.params,
            "medians": {k: median(v) for k, v in self.samples.items()},
            "samples": self.samples,
            "ratios": self.ratios,
            "notes": self.notes,
            "context": self.context,
        }
        Path(path).write_text(json.dumps(data, indent=2) + "\n")


def arguments(
    description: str,
    *,
    queues: int,
    repeat: int,
    small_queues: int,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """The command line every benchmark takes: sizes, repetitions, --small, --json (``extra`` adds its own)."""
    parser = argparse.ArgumentParser(description=description)
    if extra is not None:
        extra(parser)
    parser.add_argument("--queues", type=int, default=None, help=f"number of queues (default {queues})")
    parser.add_argument("--repeat", type=int, default=None, help=f"repetitions; the median is reported ({repeat})")
    parser.add_argument(
        "--small", action="store_true", help=f"a quick run: {small_queues} queues, 3 repetitions unless given"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    args = parser.parse_args()
    if args.queues is None:
        args.queues = small_queues if args.small else queues
    if args.repeat is None:
        args.repeat = 3 if args.small else repeat
    return args
