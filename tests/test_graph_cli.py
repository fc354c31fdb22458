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


def _without_dot(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH has the Python that runs topo and nothing else: no Graphviz `dot`."""
    import os
    import sys

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    env = {k: v for k, v in os.environ.items() if k not in ("PATH",)}
    env["PATH"] = str(bin_dir)
    return env


def test_svg_without_graphviz_on_the_path_fails_clearly(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = _without_dot(tmp_path)
    assert shutil.which("dot", path=env["PATH"]) is None
    command = [sys.executable, "-c", "from topo.cli import main; main()", "graph", IOT, "--format", "svg"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stdout == ""  # `> f.svg` gets nothing that looks like a drawing
    assert "Error: --format svg needs Graphviz's `dot` program, which is not installed" in done.stderr
    assert "apt-get install graphviz" in done.stderr and "Traceback" not in done.stderr
    target = tmp_path / "f.svg"
    done = subprocess.run([*command, "-o", str(target)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    assert not target.exists()  # no empty file left behind
