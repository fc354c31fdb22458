"""``topo lint`` on the command line: formats, --disable, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from topo.cli import _register
from topo.cli.common import run

BAD = """\
version: 1
vhosts:
  v:
    exchanges:
      h: {type: headers}
    queues:
      q:
        bindings:
          - {exchange: h, arguments: {x-match: any}}
"""


def topo(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    _register()
    code = run(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def bad(tmp_path: Path) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    return str(path)


def test_error_exits_1(capsys: pytest.CaptureFixture[str], bad: str) -> None:
    code, out, _ = topo(capsys, "lint", bad)
    assert code == 1
    assert f"{bad}:9:13: TL202 error [headers-binding-never-matches]" in out
    assert out.endswith("1 error, 0 warnings, 0 info.\n")


def test_disable_on_the_command_line(capsys: pytest.CaptureFixture[str], bad: str) -> None:
    code, out, _ = topo(capsys, "lint", bad, "--disable", "TL202,tl207")
    assert code == 0
    assert out == "No problems found.\n"


def test_unknown_code(capsys: pytest.CaptureFixture[str], bad: str) -> None:
    code, _, err = topo(capsys, "lint", bad, "--disable", "TL000")
    assert code == 1 and "unknown lint rule code: TL000" in err


def test_json_and_github(capsys: pytest.CaptureFixture[str], bad: str) -> None:
    code, out, _ = topo(capsys, "lint", bad, "--format", "json")
    data = json.loads(out)
    assert code == 1
    assert [(f["code"], f["line"]) for f in data["findings"]] == [("TL202", 9)]
    code, out, _ = topo(capsys, "lint", bad, "--format", "github")
    assert out.startswith(f"::error file={bad},line=9,col=13,title=TL202 headers-binding-never-matches::")


def test_warnings_only_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = topo(capsys, "lint", str(Path(__file__).parent.parent / "topologies"))
    assert code == 0 and "warning" in out


def test_invalid_files_are_reported_not_linted(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("version: 1\nvhosts:\n  v:\n    queues:\n      q: {message-ttl: soon}\n")
    code, out, err = topo(capsys, "lint", str(path))
    assert code == 1 and out == "" and "Error:" in err
