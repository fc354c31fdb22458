"""Helpers for the monitoring tests: Prometheus's promtool, and a golden-file check."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden" / "monitor"


def promtool() -> str:
    """The path of Prometheus's promtool. Without it the test is skipped locally and fails under CI
    (`.ci/run` installs the Debian package `prometheus`), as the broker fixture does without RabbitMQ."""
    found = shutil.which("promtool")
    if found:
        return found
    message = "promtool is not installed (Debian package `prometheus`; .ci/run installs it)"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def run_promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], input=stdin, capture_output=True, text=True, timeout=120, check=False)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("TOPO_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing golden file {path}; run with TOPO_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8"), f"{name} changed; review and run with TOPO_UPDATE_GOLDEN=1"
