"""The benchmarks in ``benches/`` at a tiny size, so they cannot rot (no timing is asserted: each must
run and print its ratio line), and a guard for the optimisation they led to (the loader's fast schema
check must never call valid what jsonschema calls invalid)."""

from __future__ import annotations

import copy
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import yaml

from topo.loader.schema_compiled import compile_schema
from topo.loader.schema_messages import _validator
from topo.schemas import load_schema

if TYPE_CHECKING:
    from conftest import Broker

ROOT = Path(__file__).resolve().parent.parent
BENCHES = ROOT / "benches"


# -- every benchmark at a tiny size ---------------------------------------------------------------

_RATIO = re.compile(r"^ratio: .+ / .+ = \d+\.\d\dx", re.MULTILINE)


def _run(script: str, *args: str, url: str | None = None) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TOPO_BENCH_URL", None)
    if url is not None:
        env["TOPO_BENCH_URL"] = url
    done = subprocess.run(
        [sys.executable, str(BENCHES / script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert _RATIO.search(done.stdout), f"{script} printed no ratio line:\n{done.stdout}"
    return done.stdout


def test_bench_load_runs() -> None:
    out = _run("bench_load.py", "--queues", "30", "--repeat", "1")
    assert "ratio: topo.load / yaml.load (CSafeLoader) = " in out


def test_bench_plan_noop_runs(broker: Broker) -> None:
    out = _run("bench_plan_noop.py", "--queues", "30", "--repeat", "2", url=broker.url)
    assert "ratio: topo plan (CLI) / GET /api/definitions (httpx) = " in out
    assert "time: load " in out and "time: read " in out and "time: diff " in out


def test_bench_apply_cold_runs(broker: Broker) -> None:
    out = _run("bench_apply_cold.py", "--queues", "20", "--repeat", "1", url=broker.url)
    assert "ratio: topo apply (engine.apply) / POST /api/definitions (httpx) = " in out
    assert "ratio: topo apply (engine.apply) / PUT/POST per resource (httpx) = " in out


def test_bench_status_runs(broker: Broker) -> None:
    out = _run("bench_status.py", "--queues", "20", "--repeat", "1", url=broker.url)
    assert "ratio: topo status (CLI) / GET /api/queues (httpx) = " in out
    assert "time: load " in out and "time: read " in out and "time: evaluate " in out


def test_run_all_runs_and_prints_the_table(broker: Broker, tmp_path: Path) -> None:
    out = _run(
        "run_all.py", "--only", "load", "--small", "--repeat", "1", "--json", str(tmp_path / "r.json"), url=broker.url
    )
    assert "| load | topo.load " in out and "RabbitMQ " in out
    assert (tmp_path / "r.json").exists()


def test_benches_leave_no_vhost_behind(broker: Broker, mgmt: httpx.Client) -> None:
    _run("bench_plan_noop.py", "--queues", "5", "--repeat", "1", url=broker.url)
    names = [v["name"] for v in mgmt.get("/api/vhosts").json()]
    assert not [n for n in names if n.startswith("bench-")], names


# -- the fast schema check against jsonschema -----------------------------------------------------

_VALUES: list[Any] = [
    None, True, False, 0, 1, -1, 1.0, 2.5, "", "x", "5m", "10MiB", "1h", "7D", "abc", "classic", "quorum",
    "topic", "all", "queues", "reject-publish", 255, 256, 65536, 10**9, [], ["a"], ["a", "a"], [1], ["5s"],
    "n" * 300, {}, {"a": 1}, {"exchange": "x"}, {"disable": ["A1"]}, {"disable": ["A1", "A1"]},
]  # fmt: skip
_KEYS = [
    "x-foo", "bogus", "type", "durable", "bindings", "arguments", "match", "headers", "definition", "pattern",
    "retry", "delays", "lint", "disable", "prefetch", "max-age", "message-ttl", "limits", "max-queues",
]  # fmt: skip


def _bench_common() -> Any:
    """``benches/common.py`` (the generator of the benchmark topologies)."""
    sys.path.insert(0, str(BENCHES))
    try:
        import common  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(BENCHES))
    return common


def _seed_documents(tmp_path: Path) -> list[Any]:
    """Every example and fixture document, and a small generated benchmark topology."""
    docs = []
    files = [*ROOT.glob("topologies/**/*.y*ml"), *ROOT.glob("tests/fixtures/**/*.y*ml")]
    common = _bench_common()
    files += common.write_topology(common.Spec(vhost="v", queues=30, queues_per_file=10), tmp_path)
    for file in files:
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            continue
        if isinstance(data, dict):
            docs.append(data)
    return docs


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*path, index))
    return out


def _mutate(doc: Any, rng: random.Random) -> Any:
    doc = copy.deepcopy(doc)
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(_paths(doc))
        if not path:
            continue
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        roll = rng.random()
        if roll < 0.5:
            parent[path[-1]] = copy.deepcopy(rng.choice(_VALUES))
        elif roll < 0.7 and isinstance(parent, dict):
            del parent[path[-1]]
        elif roll < 0.85 and isinstance(parent, dict):
            parent[rng.choice(_KEYS)] = copy.deepcopy(rng.choice(_VALUES))
        elif isinstance(parent, list):
            parent.append(copy.deepcopy(rng.choice(_VALUES)))
    return doc


def test_fast_schema_check_never_accepts_what_jsonschema_rejects(tmp_path: Path) -> None:
    docs = _seed_documents(tmp_path)
    fast = compile_schema(load_schema())
    assert fast is not None, "the fast check no longer understands the schema: loading got slow again"
    validator = _validator()
    rng = random.Random(20261122)
    accepted = 0
    for index in range(3000):
        doc = docs[index % len(docs)] if index < len(docs) else _mutate(rng.choice(docs), rng)
        valid = next(iter(validator.iter_errors(doc)), None) is None
        if fast(doc):
            accepted += 1
            assert valid, f"fast check accepts a document jsonschema rejects: {doc!r}"
    assert accepted > 100  # it does accept valid documents (else it would only cost time)


def test_fast_schema_check_accepts_the_generated_benchmark_topology(tmp_path: Path) -> None:
    common = _bench_common()
    fast = compile_schema(load_schema())
    assert fast is not None
    for file in common.write_topology(common.Spec(vhost="v", queues=30, queues_per_file=10), tmp_path):
        assert fast(yaml.safe_load(file.read_text()))


def _base() -> dict[str, Any]:
    return {
        "version": 1,
        "vhosts": {
            "v": {
                "exchanges": {"e": {"type": "topic"}},
                "queues": {"q": {"message-ttl": "5m", "bindings": [{"exchange": "e", "routing-key": "k"}]}},
                "operator-policies": {"o": {"pattern": ".*", "definition": {"max-length": 10}}},
            }
        },
    }


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, last = path.split("/")
    node: Any = doc
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return doc


_DELETE = object()
_Q = "vhosts/v/queues/q"


@pytest.mark.parametrize(
    ("keyword", "path", "value"),
    [
        ("uniqueItems", "lint", {"disable": ["A1", "A1"]}),
        ("maxLength", "vhosts/v/exchanges/e/alternate-exchange", "n" * 256),
        ("enum", "vhosts/v/exchanges/e/type", "nope"),
        ("minimum", f"{_Q}/max-length", -1),
        ("maximum", f"{_Q}/max-priority", 256),
        ("required", f"{_Q}/bindings/0/exchange", _DELETE),
        ("pattern", f"{_Q}/message-ttl", "5 minutes"),
        ("anyOf", f"{_Q}/message-ttl", -5),
        ("additionalProperties", f"{_Q}/x-message-ttl", 1000),
        ("const", "version", 2),
        ("type", f"{_Q}/durable", "yes"),
        ("minItems", f"{_Q}/retry", {"delays": []}),
        ("minProperties", "vhosts/v/operator-policies/o/definition", {}),
    ],
)
def test_fast_schema_check_rejects_each_keyword(keyword: str, path: str, value: Any) -> None:
    fast = compile_schema(load_schema())
    assert fast is not None and fast(_base())
    doc = _set(_base(), path, value)
    assert next(iter(_validator().iter_errors(doc)), None) is not None, "not a violation to begin with"
    assert not fast(doc), f"{keyword}: the fast check accepts {path} = {value!r}"
