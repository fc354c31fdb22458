"""What `topo validate` says about a broken topology, pinned in tests/golden/validate/*.txt.

The fixture directories under tests/fixtures/loader/ hold the kinds of mistakes people make. The text
a user reads is compared whole, so any change to it is a visible diff in review. Files are named
relative to tests/fixtures/loader/, so the golden text is the same on every machine.

To accept a deliberate change: ``TOPO_UPDATE_GOLDEN=1 pytest tests/test_loader_golden.py``, then
read the diff of the golden file as a user would.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support import check_golden

from topo.errors import ValidationError
from topo.loader import load

FIXTURES = Path(__file__).parent / "fixtures" / "loader"
GOLDEN = Path(__file__).parent / "golden" / "validate"


def validate_text(target: str, monkeypatch: pytest.MonkeyPatch, **kwargs: object) -> str:
    monkeypatch.chdir(FIXTURES)
    with pytest.raises(ValidationError) as info:
        load(target, environ={}, **kwargs)  # type: ignore[arg-type]
    return str(info.value) + "\n"


def test_broken_topology(monkeypatch: pytest.MonkeyPatch) -> None:
    check_golden("validate/broken.txt", validate_text("broken", monkeypatch))


def test_broken_topology_with_the_variable_set(monkeypatch: pytest.MonkeyPatch) -> None:
    # REGION set: the unset-variable problem is gone and the queue is named orders.eu
    monkeypatch.chdir(FIXTURES)
    with pytest.raises(ValidationError) as info:
        load("broken", environ={"REGION": "eu"})
    text = str(info.value)
    assert "REGION" not in text
    assert 'vhosts.shop.queues["orders.eu"].message-ttl' in text


def test_golden_output_has_no_machine_paths() -> None:
    text = (GOLDEN / "broken.txt").read_text(encoding="utf-8")
    assert str(FIXTURES) not in text
    for line in text.splitlines()[1:]:
        assert line.startswith("  broken/"), line


def test_golden_output_is_sorted_by_file_and_line() -> None:
    lines = (GOLDEN / "broken.txt").read_text(encoding="utf-8").splitlines()
    places = []
    for line in lines[1:]:
        file, row, col = line.strip().split(":")[:3]
        places.append((file, int(row), int(col)))
    assert places == sorted(places)
    assert lines[0] == f"{len(places)} problems in the topology:"


def test_every_fixture_mistake_is_reported() -> None:
    # each line of the fixtures marked with a comment about a mistake has a problem on that line
    text = (GOLDEN / "broken.txt").read_text(encoding="utf-8")
    reported = {tuple(line.strip().split(":")[:2]) for line in text.splitlines()[1:]}
    for file in sorted((FIXTURES / "broken").rglob("*.y*ml")):
        relative = file.relative_to(FIXTURES).as_posix()
        if relative.startswith("broken/."):
            continue
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if "#" in line and not line.lstrip().startswith("#"):
                assert (relative, str(number)) in reported, f"{relative}:{number}: {line.strip()}"


def test_hidden_directories_and_other_files_are_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    text = validate_text("broken", monkeypatch)
    assert ".drafts" not in text and "README" not in text
