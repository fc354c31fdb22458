"""Helpers for the monitoring tests: Prometheus's promtool, and a golden-file check."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml


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


# -- promtool test rules on series shaped like a real scrape -----------------------------------------------

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)$")
_LABEL = re.compile(r'(?P<key>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"')


def scraped_series(text: str) -> list[tuple[str, dict[str, str], str]]:
    """Every sample of a Prometheus text exposition: (metric name, labels, value as written)."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        labels = {m.group("key"): m.group("value") for m in _LABEL.finditer(match.group("labels") or "")}
        out.append((match.group("name"), labels, match.group("value")))
    return out


def series_selector(name: str, labels: dict[str, str]) -> str:
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def without_annotations(rules_text: str) -> str:
    """The rules file without annotations: promtool test rules then compares labels only."""
    document = yaml.safe_load(rules_text)
    for group in document["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    return yaml.safe_dump(document, sort_keys=False)


def promtool_test(
    tmp_path: Path,
    rules_text: str,
    input_series: list[dict[str, str]],
    alerts: dict[str, list[dict[str, str]]],
    eval_time: str = "10m",
) -> subprocess.CompletedProcess[str]:
    """Run `promtool test rules` on the rules (annotations left out) with these series, expecting exactly
    these alerts (by name, each a set of labels; every name of the rules file is checked, [] for none)."""
    (tmp_path / "rules.yml").write_text(without_annotations(rules_text), encoding="utf-8")
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": input_series,
                "alert_rule_test": [
                    {
                        "eval_time": eval_time,
                        "alertname": name,
                        "exp_alerts": [{"exp_labels": labels} for labels in expected],
                    }
                    for name, expected in sorted(alerts.items())
                ],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test, sort_keys=False), encoding="utf-8")
    return subprocess.run(
        [promtool(), "test", "rules", "test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
