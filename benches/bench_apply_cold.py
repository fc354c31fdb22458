"""Benchmark 2: a cold apply of 1,000 queues + 1,000 bindings + 10 exchanges.

Every contender, in every repetition, starts from a fresh, empty vhost (created and given permissions
before the clock starts, deleted afterwards) and creates the same objects: 10 topic exchanges, 1,000
classic queues (most with arguments) and one binding per queue.

* **topo apply**: ``topo.engine.apply(client, desired)`` with a new ``ManagementClient``: plan (read
  the vhost, diff), execute (the creates go in one ``POST /api/definitions/{vhost}``) and the confirming
  re-read and diff. ``desired`` is loaded from the YAML files beforehand (loading is benchmark 3).
* **baseline: one POST /api/definitions**: the same objects in one import (httpx), the broker's own
  bulk path; the document is generated independently of topo's writer.
* **baseline: one request per resource**: ``PUT /api/exchanges/{v}/{name}`` for each exchange, then
  ``PUT /api/queues/{v}/{name}`` for each queue, then ``POST /api/bindings/{v}/e/{src}/q/{dst}`` for
  each binding, one after the other on one keep-alive httpx client: what provisioners that map one
  resource to one API call do.

Target: topo apply / POST /api/definitions <= 1.3x; the ratio against one request per resource is
reported.
"""

from __future__ import annotations

import gc
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
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

TOPO = "topo apply (engine.apply)"
BULK = "POST /api/definitions (httpx)"
PER_RESOURCE = "PUT/POST per resource (httpx)"


def main() -> None:
    args = arguments(__doc__.splitlines()[0], queues=1_000, repeat=3, small_queues=50)
    bench = Bench("apply_cold", params={"queues": args.queues, "bindings": args.queues, "exchanges": 10})
    bench.start()
    with broker_url() as url, raw_client(url) as http, tempfile.TemporaryDirectory(prefix="topo-bench-") as tmp:
        bench.context.update(broker_versions(http))
        for rep in range(args.repeat):
            contenders = [topo_apply, bulk_import, per_resource]
            # rotate the order, so no contender always runs right after another one's vhost deletion
            contenders = contenders[rep % 3 :] + contenders[: rep % 3]
            for contender in contenders:
                spec = Spec(vhost=unique_vhost("apply"), queues=args.queues)
                create_vhost(http, spec.vhost)
                try:
                    gc.collect()
                    contender(bench, url, http, spec, Path(tmp) / spec.vhost)
                    check(http, spec)
                finally:
                    delete_vhost(http, spec.vhost)
                    delete_inventory(http)
    for label in bench.samples:
        bench.report(label)
    bench.ratio(TOPO, BULK, target=1.3)
    bench.ratio(TOPO, PER_RESOURCE)
    bench.ratio(PER_RESOURCE, BULK)
    bench.dump(args.json)


def topo_apply(bench: Bench, url: str, http: httpx.Client, spec: Spec, directory: Path) -> None:
    write_topology(spec, directory)
    desired = topo.load(directory)
    t0 = time.perf_counter()
    with ManagementClient(url) as client:
        t1 = time.perf_counter()
        planned = engine.plan(client, desired)
        t2 = time.perf_counter()
        engine.apply(client, desired, planned)
        t3 = time.perf_counter()
        requests = client.requests
    bench.add(TOPO, t3 - t0)
    bench.add("  of which plan", t2 - t1)
    bench.add("  of which execute + confirm", t3 - t2)
    bench.context["topo_requests"] = requests
    # every queue and its binding, the exchanges, and the stack's inventory (the files name their stack)
    assert len(planned.changes) == 2 * spec.queues + spec.exchanges + 1, len(planned.changes)


def bulk_import(bench: Bench, url: str, http: httpx.Client, spec: Spec, directory: Path) -> None:
    document = definitions_document(spec)
    t0 = time.perf_counter()
    with raw_client(url) as client:
        post_definitions(client, spec.vhost, document)
    bench.add(BULK, time.perf_counter() - t0)


def per_resource(bench: Bench, url: str, http: httpx.Client, spec: Spec, directory: Path) -> None:
    document = definitions_document(spec)
    v = enc(spec.vhost)
    t0 = time.perf_counter()
    with raw_client(url) as client:
        for exchange in document["exchanges"]:
            body = {k: exchange[k] for k in ("type", "durable", "auto_delete", "internal", "arguments")}
            _ok(client.put(f"/api/exchanges/{v}/{enc(exchange['name'])}", json=body))
        for queue in document["queues"]:
            body = {k: queue[k] for k in ("durable", "auto_delete", "arguments")}
            _ok(client.put(f"/api/queues/{v}/{enc(queue['name'])}", json=body))
        for binding in document["bindings"]:
            body = {"routing_key": binding["routing_key"], "arguments": binding["arguments"]}
            path = f"/api/bindings/{v}/e/{enc(binding['source'])}/q/{enc(binding['destination'])}"
            _ok(client.post(path, json=body))
    bench.add(PER_RESOURCE, time.perf_counter() - t0)


def _ok(response: httpx.Response) -> None:
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.method} {response.request.url.path}: {response.status_code}")


def check(http: httpx.Client, spec: Spec) -> None:
    """Every contender must have created everything (not timed)."""
    response = http.get(f"/api/definitions/{enc(spec.vhost)}")
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    counts = (len(data["exchanges"]), len(data["queues"]), len(data["bindings"]))
    assert counts == (spec.exchanges, spec.queues, spec.queues), f"{spec.vhost}: {counts}"


if __name__ == "__main__":
    main()
