"""The test helpers themselves: the golden-file check and waiting on a condition."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import support


@pytest.fixture
def golden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(support, "GOLDEN", tmp_path)
    monkeypatch.delenv("TOPO_UPDATE_GOLDEN", raising=False)
    return tmp_path


def test_golden_equal_passes(golden: Path) -> None:
    (golden / "out.txt").write_text("a\nb\n", encoding="utf-8")
    support.check_golden("out.txt", "a\nb\n")


def test_golden_difference_fails_with_the_diff(golden: Path) -> None:
    (golden / "out.txt").write_text("a\nb\n", encoding="utf-8")
    with pytest.raises(AssertionError) as info:
        support.check_golden("out.txt", "a\nc\n")
    message = str(info.value)
    assert "tests/golden/out.txt" in message and "TOPO_UPDATE_GOLDEN=1" in message
    assert "-b\n" in message and "+c\n" in message
    assert (golden / "out.txt").read_text(encoding="utf-8") == "a\nb\n"  # never rewritten without the variable


def test_golden_missing_fails(golden: Path) -> None:
    with pytest.raises(AssertionError, match=r"no golden file tests/golden/sub/new\.txt"):
        support.check_golden("sub/new.txt", "x\n")
    assert not (golden / "sub").exists()


def test_golden_update_writes_the_file(golden: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (golden / "out.txt").write_text("old\n", encoding="utf-8")
    monkeypatch.setenv("TOPO_UPDATE_GOLDEN", "1")
    support.check_golden("out.txt", "new\n")
    support.check_golden("sub/new.txt", "x\n")
    assert (golden / "out.txt").read_text(encoding="utf-8") == "new\n"
    assert (golden / "sub" / "new.txt").read_text(encoding="utf-8") == "x\n"


def test_wait_until_returns_the_first_true_value() -> None:
    calls = itertools.count()
    assert support.wait_until(lambda: next(calls) >= 3 and "done", interval=0) == "done"


def test_wait_until_fails_naming_what_never_happened() -> None:
    with pytest.raises(AssertionError, match=r"not within 0\.05 s: the queue to empty"):
        support.wait_until(lambda: False, timeout=0.05, interval=0.01, what="the queue to empty")
