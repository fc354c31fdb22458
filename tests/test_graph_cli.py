"""``topo graph`` on the command line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from topo.cli import _register
from topo.cli.common import run

ROOT = Path(__file__).parent.parent
IOT = str(ROOT / "topologies" / "iot.yaml")


def topo(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    _register()
    code = run(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_mermaid_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = topo(capsys, "graph", IOT, "--format", "mermaid")
    assert code == 0
    assert out == (Path(__file__).parent / "golden" / "graph" / "iot.mmd").read_text()


def test_dot_to_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "g.dot"
    code, out, _ = topo(capsys, "graph", IOT, "--vhost", "iot", "--format", "dot", "-o", str(target))
    assert code == 0 and out == ""
    assert target.read_text().startswith("digraph topology {")


def test_svg_without_graphviz(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    code, _, err = topo(capsys, "graph", IOT, "--format", "svg")
    assert code == 1
    assert "Error: --format svg needs Graphviz's `dot` program" in err
    assert "apt-get install graphviz" in err


def test_format_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = topo(capsys, "graph", IOT)
    assert code == 1 and "--format" in err


def test_unknown_vhost(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = topo(capsys, "graph", IOT, "--vhost", "nope", "--format", "dot")
    assert code == 1 and "vhost 'nope' is not declared" in err
