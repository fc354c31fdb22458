"""``benches/runtime_bench.py`` at a tiny size, so it cannot rot (no timing asserted)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benches" / "runtime_bench.py"


def test_runtime_bench_runs(amqp_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("runtime_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["runtime_bench"] = module
    spec.loader.exec_module(module)
    out = tmp_path / "r.json"
    code = module.main(["--amqp-url", amqp_url, "-n", "300", "--pika-n", "30", "--runs", "1",
                        "--memory", "2000", "--json", str(out)])  # fmt: skip
    assert code == 0
    results = json.loads(out.read_text())
    for queue_type in ("classic", "quorum"):
        assert set(results[queue_type]["ratios"]) == {
            "publish topo/aiormq", "publish topo/pika", "publish channel/aiormq", "publish raw/aiormq",
            "publish topo/raw", "publish topo/raw-as-topo", "consume topo/aiormq",
        }  # fmt: skip
        assert results[queue_type]["publish raw"]["median"] > 0
    assert len(results["memory_mb"]) == 20
    assert "[quorum] consume topo/aiormq" in capsys.readouterr().out
