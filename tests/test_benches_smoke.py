"""The benchmarks in ``benches/`` at a tiny size, so they cannot rot (no timing is asserted: each must
run and print its ratio line), and the loader's compiled schema check on the benchmark topology (that it
never calls valid what jsonschema calls invalid is tests/test_loader_schema.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import yaml

from topo.loader.schema_compiled import compile_schema
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
    assert "ratio: topo plan, one file (new process) / GET /api/definitions (httpx) = " in out
    assert "time: load " in out and "time: read " in out and "time: diff " in out


def test_bench_plan_noop_compares_with_another_checkout(broker: Broker) -> None:
    out = _run("bench_plan_noop.py", "--queues", "10", "--repeat", "1", "--compare-with", str(ROOT), url=broker.url)
    assert "ratio: topo plan, one file (new process) / topo plan, one file (new process) [--compare-with] = " in out


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


# -- the compiled schema check accepts what the benchmarks load ---------------------------------------------
# (that it never accepts what jsonschema rejects: tests/test_loader_schema.py)


def _bench_common() -> Any:
    """``benches/common.py`` (the generator of the benchmark topologies)."""
    sys.path.insert(0, str(BENCHES))
    try:
        import common  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(BENCHES))
    return common


def test_fast_schema_check_accepts_the_generated_benchmark_topology(tmp_path: Path) -> None:
    common = _bench_common()
    fast = compile_schema(load_schema())
    assert fast is not None
    for file in common.write_topology(common.Spec(vhost="v", queues=30, queues_per_file=10), tmp_path):
        assert fast(yaml.safe_load(file.read_text()))


def test_bench_migrate_runs(broker: Broker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOPO_BENCH_AMQP_URL", broker.amqp_url)  # the test node's AMQP port
    out = _run("bench_migrate.py", "--queues", "300", "--repeat", "1", url=broker.url)
    assert "ratio: topo apply --migrate (engine.apply) / drain and re-publish (aiormq, confirms) = " in out
    assert "messages/s" in out
