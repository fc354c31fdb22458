"""``topo status``'s command line without a broker: every failure is UNKNOWN (3), and ``--watch``.

What status reports against a real broker is tests/test_status_broker.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devbroker import free_port
from topo.cli import _register
from topo.cli.common import run
from topo.cli.observe import watch

ROOT = Path(__file__).resolve().parent.parent
SHOP = str(ROOT / "tests" / "fixtures" / "monitor" / "shop.yaml")


@pytest.fixture(autouse=True)
def _commands(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TOPO_URL", "TOPO_DEBUG", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    _register()


def unknown(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = run(["status", *args])
    captured = capsys.readouterr()
    assert code == 3, (captured.out, captured.err)
    assert "Traceback" not in captured.out + captured.err
    return captured.err


def test_an_unreachable_broker_is_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    err = unknown(capsys, SHOP, "--url", f"http://guest:s3cret@127.0.0.1:{free_port()}")
    assert err.startswith("Error: cannot reach the RabbitMQ Management API at http://***@127.0.0.1:")
    assert "s3cret" not in err


def test_invalid_files_are_unknown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nvhosts:\n  v:\n    queues:\n      q: {monitor: {unacked: {warning: lots}}}\n")
    err = unknown(capsys, str(bad), "--url", f"http://127.0.0.1:{free_port()}")
    assert "vhosts.v.queues.q.monitor.unacked.warning" in err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--window", "soon"), "--window 'soon' is not a duration"),
        (("--window", "2s"), "--window 2s is out of range"),
        (("--interval", "0s"), "--interval 0s is out of range"),
        (("--bogus",), "No such option"),
        (("--format", "xml"), "Invalid value for '--format'"),
        (("--watch", "--format", "prometheus"), "--watch does not go with --format prometheus"),
    ],
)
def test_usage_errors_are_unknown(capsys: pytest.CaptureFixture[str], args: tuple[str, ...], words: str) -> None:
    assert words in unknown(capsys, SHOP, *args)


def test_a_bug_is_unknown_too(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import topo.monitor.status

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom at http://guest:s3cret@host:15672")

    monkeypatch.setattr(topo.monitor.status, "load_and_status", broken)
    err = unknown(capsys, SHOP, "--url", f"http://127.0.0.1:{free_port()}")
    assert err.startswith("Error: internal error: RuntimeError: boom at http://***@host:15672\nHint: ")
    assert "s3cret" not in err


def test_no_paths_is_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    assert "Missing argument" in unknown(capsys)


def test_help_says_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["status", "--help"]) == 0
    out = capsys.readouterr().out
    assert "0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN" in out


def test_other_commands_keep_exit_code_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["alerts", SHOP, "--bogus"]) == 1
    assert run(["plan", SHOP, "--bogus"]) == 1
    capsys.readouterr()


# -- --watch -----------------------------------------------------------------------------------------------


def test_watch_redraws_in_place_on_a_terminal() -> None:
    shown: list[str] = []
    codes = iter([(f"round {i}\n", i % 3) for i in range(3)])
    sleeps: list[float] = []
    code = watch(
        lambda: next(codes), 5, tty=True, echo=shown.append, sleep=sleeps.append, clock=lambda: 0, iterations=3
    )
    assert code == 2  # the last round's
    assert all(text.startswith("\x1b[H\x1b[2J(every 5 s; ") for text in shown)
    assert [text.rsplit("\n\n", 1)[1] for text in shown] == ["round 0\n", "round 1\n", "round 2\n"]
    assert sleeps == [5, 5]


def test_watch_without_a_terminal_keeps_every_round() -> None:
    shown: list[str] = []
    code = watch(
        lambda: ("OK: ...\n", 0), 2, tty=False, echo=shown.append, sleep=lambda _s: None, clock=lambda: 0, iterations=2
    )
    assert code == 0
    assert all(text.startswith("--- ") and "\x1b" not in text for text in shown)
    assert len(shown) == 2


def test_watch_stops_on_ctrl_c_with_the_last_code() -> None:
    def interrupted(_seconds: float) -> None:
        raise KeyboardInterrupt

    code = watch(lambda: ("CRITICAL: ...\n", 2), 1, tty=False, echo=lambda _t: None, sleep=interrupted)
    assert code == 2
