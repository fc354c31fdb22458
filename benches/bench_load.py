"""Benchmark 3: loading and validating a 10,000-queue topology with ``topo.load``.

The topology: 10 topic exchanges and 10,000 classic queues with one binding each (and arguments on
most of them), in 11 files of block-style YAML (``exchanges.yaml`` and one file per 1,000 queues).

Measured: ``topo.load(dir)`` end to end, and its phases, timed separately by calling the loader's
stages in the order ``load`` does (``topo.loader``: discover + ``read_document``, ``check_schema``,
``build_topology``, with the cyclic GC paused as ``load`` does); the YAML phase is split further into
libyaml's composing of the node tree and topo's walk of that tree (positions of every key and value,
interpolation, scalar typing). Wall clock and CPU time (the machine may be busy with other work).

Baseline: ``yaml.load(text, Loader=yaml.CSafeLoader)`` of the same files: the bare parse, with no
positions, no validation and no model. No broker needed.
"""

from __future__ import annotations

import gc
import tempfile
import time
from pathlib import Path

import yaml
from common import Bench, Spec, arguments, write_topology

import topo
from topo.loader import _gc_paused
from topo.loader.build import build_topology
from topo.loader.schema_messages import check_schema
from topo.loader.source import _Builder, _Loader, discover  # private: for the breakdown only
from topo.loader.source import read_document as _read_document

LOAD = "topo.load"
BASELINE = "yaml.load (CSafeLoader)"


def main() -> None:
    args = arguments(__doc__.splitlines()[0], queues=10_000, repeat=5, small_queues=200)
    bench = Bench("load", params={"queues": args.queues, "bindings": args.queues, "exchanges": 10})
    bench.start()
    with tempfile.TemporaryDirectory(prefix="topo-bench-load-") as tmp:
        spec = Spec(vhost="bench", queues=args.queues)
        files = write_topology(spec, Path(tmp))
        size = sum(f.stat().st_size for f in files)
        bench.note(
            f"topology: {spec.queues} queues, {spec.queues} bindings, {spec.exchanges} exchanges "
            f"in {len(files)} files, {size / 1024:.0f} KiB of YAML"
        )
        topology = topo.load(tmp)  # warm-up: imports, schema compilation
        vhost = topology.vhosts["bench"]
        assert len(vhost.queues) == spec.queues and len(vhost.bindings) == spec.queues, "generated topology lost"
        for _ in range(args.repeat):
            gc.collect()
            # baseline: the bare libyaml parse
            t0, c0 = time.perf_counter(), time.process_time()
            for f in files:
                yaml.load(f.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
            bench.add(BASELINE, time.perf_counter() - t0)
            bench.add(BASELINE + " CPU", time.process_time() - c0)
            gc.collect()
            # topo.load end to end
            t0, c0 = time.perf_counter(), time.process_time()
            topo.load(tmp)
            bench.add(LOAD, time.perf_counter() - t0)
            bench.add(LOAD + " CPU", time.process_time() - c0)
            gc.collect()
            with _gc_paused():  # as topo.load does
                parse, schema, build = phases(tmp)
                compose, walk = yaml_split(files)
            bench.add("  parse YAML with positions", parse)
            bench.add("  schema validation", schema)
            bench.add("  build + semantic checks", build)
            bench.add("    of parse: libyaml compose", compose)
            bench.add("    of parse: walk (positions, scalars)", walk)
    bench.finish()
    for label in bench.samples:
        bench.report(label)
    per_queue = bench.median(LOAD) / args.queues * 1e6
    bench.note(f"topo.load: {per_queue:.0f} µs per queue (with its binding), wall clock")
    bench.ratio(LOAD, BASELINE)
    bench.ratio(LOAD + " CPU", BASELINE + " CPU")
    bench.dump(args.json)


def phases(directory: str) -> tuple[float, float, float]:
    """The stages of topo.load, one after the other: parse, schema validation, build."""
    t0 = time.perf_counter()
    found, _ = discover([directory])
    docs = []
    for f in found:
        doc, problems = _read_document(f, {}, {})
        assert doc is not None and not problems
        docs.append(doc)
    t1 = time.perf_counter()
    checked = []
    for doc in docs:
        problems, bad = check_schema(doc)
        assert not problems
        checked.append((doc, bad))
    t2 = time.perf_counter()
    _, problems = build_topology(checked)
    assert not problems
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2


def yaml_split(files: list[Path]) -> tuple[float, float]:
    """The parse split: libyaml composing the node tree, then topo's walk of it (positions, scalars)."""
    compose = walk = 0.0
    for f in files:
        text = f.read_text(encoding="utf-8")
        t0 = time.perf_counter()
        node = yaml.compose(text, Loader=_Loader)
        t1 = time.perf_counter()
        _Builder(str(f), {}, {}, budget=2**62).build(node, ())
        t2 = time.perf_counter()
        compose += t1 - t0
        walk += t2 - t1
    return compose, walk


if __name__ == "__main__":
    main()
