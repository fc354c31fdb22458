"""The command line: validate, plan, apply, export against a real broker; exit codes and the error boundary.

Every error is one ``Error: ...`` line plus a ``Hint: ...`` line on stderr, exit code 1, no traceback,
and never the password (each test puts a recognisable secret in the URL and looks for it in all output).
"""

from __future__ import annotations

import json
import os
import pty
import secrets
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from support import publish, wait_for_messages

from devbroker import free_port
from topo.cli import _register
from topo.cli.common import run
from topo.urls import parse_management

pytestmark = pytest.mark.timeout(120)

SECRET = "pw-S3cr3t-" + secrets.token_hex(3)

TOPOLOGY = """\
version: 1
vhosts:
  ${var:VHOST}:
    exchanges:
      events: {type: topic}
    queues:
      orders:
        message-ttl: %s
        bindings: [{exchange: events, routing-key: "orders.#"}]
"""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TOPO_URL", "TOPO_DEBUG", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    _register()


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    @property
    def errors(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("Error:")]

    def assert_one_error(self, *words: str) -> str:
        """Exit 1, exactly one ``Error:`` line (returned) and a hint; no traceback; no secret anywhere."""
        assert self.code == 1, (self.out, self.err)
        assert len(self.errors) == 1, self.err
        assert self.err.startswith("Error: ") or "\nError: " in self.err
        assert "\nHint: " in self.err, self.err
        assert "Traceback" not in self.err + self.out
        self.assert_no_secret()
        for word in words:
            assert word in self.errors[0], self.errors[0]
        return self.errors[0]

    def assert_no_secret(self) -> None:
        assert SECRET not in self.out + self.err


@pytest.fixture
def topo(capsys: pytest.CaptureFixture[str]) -> Any:
    def call(*args: str) -> Result:
        code = run(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return call


def with_credentials(url: str, user: str, password: str) -> str:
    return parse_management(url).with_credentials(user, password).unparse()


@pytest.fixture
def file(tmp_path: Path) -> Any:
    def write(text: str, name: str = "t.yaml") -> str:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return str(path)

    return write


@pytest.fixture
def user(mgmt: httpx.Client) -> Iterator[Any]:
    """``user(tags, vhost=None)`` creates a user with password SECRET (and full permissions on ``vhost``)."""
    created: list[str] = []

    def make(tags: str, vhost: str | None = None) -> str:
        name = f"topo-test-{secrets.token_hex(3)}"
        mgmt.put(f"/api/users/{name}", json={"password": SECRET, "tags": tags}).raise_for_status()
        created.append(name)
        if vhost is not None:
            mgmt.put(
                f"/api/permissions/{quote(vhost, safe='')}/{name}",
                json={"configure": ".*", "write": ".*", "read": ".*"},
            ).raise_for_status()
        return name

    yield make
    for name in created:
        mgmt.delete(f"/api/users/{name}")


# -- validate ---------------------------------------------------------------------------------------


def test_validate_ok(topo: Any, file: Any) -> None:
    result = topo("validate", file(TOPOLOGY % "1m"), "--var", "VHOST=v")
    assert result.code == 0
    assert result.out == "Valid: 1 vhost, 1 exchange, 1 queue, 1 binding, 0 policies.\n"


def test_validate_counts_read_in_the_singular_for_one(topo: Any, file: Any) -> None:
    path = file(
        """\
        version: 1
        vhosts:
          v:
            queues: {a: {}, b: {}}
            policies:
              p: {pattern: "^a$", definition: {max-length: 5}}
        """
    )
    result = topo("validate", path)
    assert result.out == "Valid: 1 vhost, 0 exchanges, 2 queues, 0 bindings, 1 policy.\n"


def test_validate_reports_every_problem_and_exits_1(topo: Any, file: Any) -> None:
    path = file(
        """\
        version: 1
        vhosts:
          v:
            queues:
              a: {message-ttl: "60000"}
              b: {bindings: [{exchange: nowhere}]}
        """
    )
    result = topo("validate", path)
    assert result.code == 1
    assert result.err.startswith("Error: 2 problems in the topology:\n")
    assert f"{path}:5:" in result.err and f"{path}:6:" in result.err
    assert "Traceback" not in result.err


def test_validate_of_an_unset_variable(topo: Any, file: Any) -> None:
    result = topo("validate", file(TOPOLOGY % "1m"))
    assert result.code == 1
    assert "VHOST" in result.err


# -- usage errors never exit 2 ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["plan"],  # missing PATHS
        ["plan", "x.yaml", "--bogus"],
        ["plan", "x.yaml", "--format", "xml"],
        ["nosuchcommand"],
        ["apply", "x.yaml", "--var", "no-equals-sign"],
        [],
    ],
)
def test_usage_errors_exit_1_not_2(topo: Any, file: Any, args: list[str]) -> None:
    args = [file(TOPOLOGY % "1m", "x.yaml") if a == "x.yaml" else a for a in args]
    result = topo(*args)
    assert result.code == 1, (result.out, result.err)
    assert "Traceback" not in result.err


def test_help_and_version_exit_0(topo: Any) -> None:
    assert topo("--help").code == 0
    assert topo("plan", "--help").code == 0
    assert topo("--version").code == 0


def test_unknown_vhost_in_scope_is_a_usage_error(topo: Any, file: Any, broker: Any) -> None:
    result = topo("plan", file(TOPOLOGY % "1m"), "--var", "VHOST=v", "--vhost", "nope", "--url", broker.url)
    result.assert_one_error("vhost 'nope' is not declared")


# -- plan and apply ---------------------------------------------------------------------------------


def test_plan_apply_plan_with_exit_codes(topo: Any, file: Any, broker: Any, vhost: str, mgmt: httpx.Client) -> None:
    path = file(TOPOLOGY % "1m")
    common = ["--var", f"VHOST={vhost}", "--url", broker.url]

    result = topo("plan", path, *common)
    assert result.code == 0
    assert "+ queue" in result.out
    assert result.out.rstrip().endswith("Plan: 3 to create, 0 to update, 0 to replace, 0 to delete.")
    assert "\x1b[" not in result.out  # colour only on a terminal

    assert topo("plan", path, *common, "--detailed-exitcode").code == 2

    result = topo("apply", path, *common, "--yes")
    assert result.code == 0, result.err
    assert "Apply complete: 3 created, 0 updated, 0 replaced, 0 deleted." in result.out
    assert mgmt.get(f"/api/queues/{quote(vhost, safe='')}/orders").status_code == 200

    result = topo("plan", path, *common, "--detailed-exitcode")
    assert result.code == 0
    assert result.out == "No changes. The broker matches the files.\n"

    result = topo("apply", path, *common)  # nothing to do: no question asked
    assert result.code == 0
    assert result.out == "No changes. The broker matches the files.\n"


def test_plan_formats(topo: Any, file: Any, broker: Any, vhost: str, mgmt: httpx.Client) -> None:
    common = [file(TOPOLOGY % "1m"), "--var", f"VHOST={vhost}", "--url", broker.url]
    data = json.loads(topo("plan", *common, "--format", "json").out)
    assert data["format_version"] == 1
    assert data["summary"] == {"create": 3, "update": 0, "replace": 0, "delete": 0}
    assert {c["kind"] for c in data["changes"]} == {"exchange", "queue", "binding"}
    markdown = topo("plan", *common, "--format", "markdown").out
    assert markdown.startswith("### topo plan\n")
    assert "```diff\n" in markdown
    # which broker the plan was made against: its cluster name and URL, without the credentials
    cluster = mgmt.get("/api/overview").json()
    address = parse_management(broker.url)
    url = f"http://{address.host}:{address.port}"
    assert f"\nMade against the broker `{cluster['cluster_name']}` at {url}\n" in markdown
    assert data["broker"] == {"cluster_name": cluster["cluster_name"], "url": url}
    assert "guest" not in markdown


def test_vhost_option_limits_the_scope(topo: Any, file: Any, broker: Any, vhost: str, mgmt: httpx.Client) -> None:
    other = f"t-never-created-{secrets.token_hex(3)}"
    path = file(
        """\
        version: 1
        vhosts:
          ${var:VHOST}:
            queues: {a: {}}
          ${var:OTHER}:
            queues: {b: {}}
        """
    )
    common = [path, "--var", f"VHOST={vhost}", "--var", f"OTHER={other}", "--url", broker.url]
    everything = topo("plan", *common)
    assert other in everything.out and vhost in everything.out
    scoped = topo("plan", *common, "--vhost", vhost)
    assert other not in scoped.out
    assert "Plan: 1 to create" in scoped.out
    assert topo("apply", *common, "--vhost", vhost, "--yes").code == 0
    assert mgmt.get(f"/api/vhosts/{quote(other, safe='')}").status_code == 404
    assert topo("plan", *common, "--vhost", vhost, "--detailed-exitcode").code == 0
    assert topo("plan", *common, "--detailed-exitcode").code == 2


def test_a_replace_shows_its_reason_and_apply_refuses_a_queue_with_messages(
    topo: Any, file: Any, broker: Any, vhost: str, mgmt: httpx.Client
) -> None:
    common = ["--var", f"VHOST={vhost}", "--url", broker.url]
    assert topo("apply", file(TOPOLOGY % "1m"), *common, "--yes").code == 0
    assert publish(mgmt, vhost, "events", "orders.1")
    assert wait_for_messages(mgmt, vhost, "orders") == 1
    path = file(TOPOLOGY % "2m")
    result = topo("plan", path, *common)
    assert "-/+ queue vhosts." in result.out and "(forces replacement)" in result.out
    assert "# x-message-ttl cannot change on an existing queue (1m → 2m)" in result.out
    assert "! blocked: holds 1 message (counted from the Management API's statistics" in result.out
    result = topo("apply", path, *common, "--yes")
    result.assert_one_error("refusing to replace or delete a queue that apply cannot drop safely", "holds 1 message")


def test_a_replace_with_a_consumer_is_blocked_in_every_plan_format_and_apply_refuses_it_in_the_same_words(
    topo: Any, file: Any, broker: Any, vhost: str, mgmt: httpx.Client
) -> None:
    # Issue 9.4: the plan said fine (exit 0), apply refused ("in use"): a green pull request, a red merge.
    import pika  # type: ignore[import-untyped]

    common = ["--var", f"VHOST={vhost}", "--url", broker.url, "--amqp-url", broker.amqp_url]
    assert topo("apply", file(TOPOLOGY % "1m"), *common, "--yes").code == 0
    path = file(TOPOLOGY % "2m")
    connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url.rstrip("/") + "/" + quote(vhost, safe="")))
    try:
        connection.channel().basic_consume("orders", lambda *_args: None)
        words = "has 1 consumer: RabbitMQ refuses to delete a queue in use"

        text = topo("plan", path, *common, "--detailed-exitcode")
        assert text.code == 3
        assert f"! blocked: {words}\n" in text.out
        assert 'Blocked: 1 change is blocked (marked "! blocked"): `topo apply` refuses this plan.' in text.out
        assert topo("plan", path, *common).code == 0  # without --detailed-exitcode a plan is a success

        result = topo("plan", path, *common, "--format", "json", "--detailed-exitcode")
        assert result.code == 3
        data = json.loads(result.out)
        assert data["blocked"] is True
        (replaced,) = [c for c in data["changes"] if c["action"] == "replace"]
        assert replaced["blockers"] == [
            {
                "code": "consumers",
                "message": words,
                "hint": "stop its consumers first: RabbitMQ refuses to delete a queue in use",
            }
        ]
        assert replaced["count"] == {"ready": 0, "unacknowledged": 0, "consumers": 1, "exact": True}

        result = topo("plan", path, *common, "--format", "markdown", "--detailed-exitcode")
        assert result.code == 3
        assert f"> - `vhosts.{vhost}.queues.orders` {words}" in result.out

        result = topo("apply", path, *common, "--yes")
        error = result.assert_one_error(f"queue 'orders' in vhost {vhost!r} {words}")
        assert "stop its consumers first" in result.err
        assert error
        assert mgmt.get(f"/api/queues/{quote(vhost, safe='')}/orders").json()["arguments"]["x-message-ttl"] == 60000
    finally:
        connection.close()


# -- no terminal, no --yes ----------------------------------------------------------------------------


def topo_process(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TOPO_URL", "TOPO_DEBUG")}
    return subprocess.run(
        [sys.executable, "-c", "from topo.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, **kwargs.pop("env", {})},
        **kwargs,
    )


def test_apply_without_a_terminal_and_without_yes_is_an_error_not_a_hang(
    file: Any, broker: Any, vhost: str, mgmt: httpx.Client
) -> None:
    args = ["apply", file(TOPOLOGY % "1m"), "--var", f"VHOST={vhost}", "--url", broker.url]
    done = topo_process(args, stdin=subprocess.DEVNULL)
    assert done.returncode == 1
    assert "Error: apply needs confirmation, but there is no terminal to ask on" in done.stderr
    assert "Hint: pass --yes" in done.stderr
    assert "Plan: 3 to create" in done.stdout  # the plan was shown
    assert mgmt.get(f"/api/queues/{quote(vhost, safe='')}/orders").status_code == 404


@pytest.mark.parametrize(("answer", "applied"), [("no", False), ("yes", True)])
def test_apply_asks_on_a_terminal(
    file: Any, broker: Any, vhost: str, mgmt: httpx.Client, answer: str, applied: bool
) -> None:
    main, secondary = pty.openpty()
    try:
        os.write(main, f"{answer}\n".encode())
        args = ["apply", file(TOPOLOGY % "1m"), "--var", f"VHOST={vhost}", "--url", broker.url]
        done = topo_process(args, stdin=secondary)
    finally:
        os.close(main)
        os.close(secondary)
    assert "Apply these changes? Only 'yes' is accepted" in done.stdout
    assert mgmt.get(f"/api/queues/{quote(vhost, safe='')}/orders").status_code == (200 if applied else 404)
    if applied:
        assert done.returncode == 0 and "Apply complete: 3 created" in done.stdout
    else:
        assert done.returncode == 1 and "Apply cancelled. Nothing was changed." in done.stdout


def test_apply_of_many_changes_shows_a_progress_bar_on_a_terminal(
    file: Any, broker: Any, vhost: str, mgmt: httpx.Client
) -> None:
    queues = "".join(f"      q{i}: {{bindings: [{{exchange: ex}}]}}\n" for i in range(12))
    path = file("version: 1\nvhosts:\n  ${var:VHOST}:\n    exchanges: {ex: {type: fanout}}\n    queues:\n" + queues)
    args = ["apply", path, "--var", f"VHOST={vhost}", "--url", broker.url, "--yes"]
    main, secondary = pty.openpty()
    chunks = []
    with subprocess.Popen(
        [sys.executable, "-c", "from topo.cli import main; main()", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=secondary,
        text=True,
    ) as process:
        os.close(secondary)
        while True:  # read the terminal while topo writes to it
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: topo closed its end
                break
            if not chunk:
                break
            chunks.append(chunk)
        stdout = process.stdout.read() if process.stdout else ""
        code = process.wait(timeout=60)
    os.close(main)
    terminal = b"".join(chunks).decode(errors="replace")
    assert code == 0, terminal
    assert "Applying" in terminal and "100%" in terminal
    assert "Apply complete: 25 created" in stdout


# -- broker errors: one line, a hint, exit 1, no password --------------------------------------------


def test_unreachable_broker(topo: Any, file: Any) -> None:
    url = f"http://guest:{SECRET}@127.0.0.1:{free_port()}"
    for command in (["plan"], ["apply", "--yes"]):
        result = topo(*command, file(TOPOLOGY % "1m"), "--var", "VHOST=v", "--url", url)
        line = result.assert_one_error("cannot reach the RabbitMQ Management API", "connection refused")
        assert "http://***@127.0.0.1:" in line
    result = topo("export", "--url", url)
    result.assert_one_error("cannot reach")


def test_unreachable_broker_through_topo_url(topo: Any, file: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOPO_URL", f"http://admin:{SECRET}@127.0.0.1:{free_port()}")
    result = topo("plan", file(TOPOLOGY % "1m"), "--var", "VHOST=v")
    result.assert_one_error("http://***@127.0.0.1:")


def test_a_server_that_is_not_rabbitmq(topo: Any, file: Any) -> None:
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://guest:{SECRET}@127.0.0.1:{server.server_address[1]}"
        for args in (["plan", file(TOPOLOGY % "1m"), "--var", "VHOST=v"], ["export", "--vhost", "v"]):
            result = topo(*args, "--url", url)
            result.assert_one_error("is not the RabbitMQ Management API")
            assert "Plan:" not in result.out  # not "create everything"
    finally:
        server.shutdown()
        server.server_close()


def test_wrong_password(topo: Any, file: Any, broker: Any, vhost: str) -> None:
    url = with_credentials(broker.url, "guest", SECRET)
    for args in (["plan", file(TOPOLOGY % "1m"), "--var", f"VHOST={vhost}"], ["export", "--vhost", vhost]):
        result = topo(*args, "--url", url)
        result.assert_one_error("refused the credentials of user 'guest'")
        assert "Hint: check the user and password" in result.err


def test_wrong_password_with_debug_shows_a_traceback_but_no_password(
    topo: Any, file: Any, broker: Any, vhost: str
) -> None:
    url = with_credentials(broker.url, "guest", SECRET)
    result = topo("--debug", "plan", file(TOPOLOGY % "1m"), "--var", f"VHOST={vhost}", "--url", url)
    assert result.code == 1
    assert "Traceback" in result.err
    result.assert_no_secret()


def test_a_bad_url_is_one_line_without_the_password(topo: Any, file: Any) -> None:
    url = f"http://guest:{SECRET}/x@127.0.0.1:15672"  # an unencoded / in the password
    result = topo("plan", file(TOPOLOGY % "1m"), "--var", "VHOST=v", "--url", url)
    result.assert_one_error("cannot be read", "ambiguous")
    assert SECRET.split("-")[-1] not in result.err


def test_a_user_without_the_management_tag(topo: Any, file: Any, broker: Any, vhost: str, user: Any) -> None:
    name = user("", vhost)
    url = with_credentials(broker.url, name, SECRET)
    result = topo("plan", file(TOPOLOGY % "1m"), "--var", f"VHOST={vhost}", "--url", url)
    result.assert_one_error(f"user {name!r} may not use the Management API")
    assert "administrator" in result.err


@pytest.mark.parametrize("tag", ["management", "policymaker", "monitoring"])
def test_a_user_who_is_not_an_administrator_may_plan_and_export_not_apply(
    topo: Any, file: Any, broker: Any, vhost: str, user: Any, tag: str
) -> None:
    name = user(tag, vhost)
    url = with_credentials(broker.url, name, SECRET)
    args = [file(TOPOLOGY % "1m"), "--var", f"VHOST={vhost}", "--url", url]
    planned = topo("plan", *args)  # read resource by resource (tests/test_readonly_plan.py), and said so
    assert planned.code == 0 and "Note: Read resource by resource" in planned.out, planned.err
    planned.assert_no_secret()
    assert topo("export", "--vhost", vhost, "--url", url).code == 0
    result = topo("apply", *args, "--yes")
    result.assert_one_error(f"user {name!r} is not an administrator")
    assert "Hint: topo reads and writes whole vhost definitions" in result.err


def test_an_administrator_without_permissions_on_the_vhost(
    topo: Any, file: Any, broker: Any, vhost: str, user: Any, mgmt: httpx.Client
) -> None:
    common = ["--var", f"VHOST={vhost}"]
    assert topo("apply", file(TOPOLOGY % "1m"), *common, "--url", broker.url, "--yes").code == 0
    name = user("administrator")  # no permissions on the vhost
    url = with_credentials(broker.url, name, SECRET)
    result = topo("apply", file(TOPOLOGY % "2m"), *common, "--url", url, "--yes")
    line = result.assert_one_error("apply stopped after 0 of 2 changes", f"user {name!r} is not allowed to DELETE")
    assert vhost in line
    assert "permissions on the vhost" in result.err
    assert mgmt.get(f"/api/queues/{quote(vhost, safe='')}/orders").json()["arguments"]["x-message-ttl"] == 60000


# -- export ---------------------------------------------------------------------------------------------

ROUND_TRIP = """\
version: 1
vhosts:
  ${var:VHOST}:
    description: Round trip
    tags: [a, b]
    limits: {max-queues: 100}
    exchanges:
      events: {type: topic}
      uploads: {type: headers, alternate-exchange: unrouted}
      unrouted: {type: fanout}
      audit:
        type: fanout
        internal: true
        bindings: [{exchange: events, routing-key: "#"}, {exchange: amq.topic, routing-key: "x.*"}]
      custom: {type: direct, durable: false, arguments: {x-note: "kept"}}
    queues:
      analytics:
        type: quorum
        delivery-limit: 5
        dead-letter-exchange: events
        bindings: [{exchange: events, routing-key: "sensor.#"}]
      orders: {message-ttl: 1d, max-length-bytes: 10MiB, expires: 1500, overflow: reject-publish}
      stream: {type: stream, max-age: 7D, stream-max-segment-size-bytes: 50MB}
      pdf:
        bindings:
          - {exchange: uploads, match: all, headers: {format: pdf, pages: 3}}
          - {exchange: uploads, match: any-with-x, headers: {x-kind: report}}
          - {exchange: uploads, arguments: {plain: true}}
      log:
        arguments: {x-queue-mode: lazy, x-custom: [1, "a"]}
        bindings: [{exchange: audit}, {exchange: unrouted}]
      temp: {durable: false, auto-delete: true}
    policies:
      limits: {pattern: ^orders$, apply-to: queues, priority: 5, definition: {message-ttl: 5m, max-length-bytes: 1GiB}}
    operator-policies:
      cap: {pattern: .*, apply-to: queues, definition: {max-length: 1000000, expires: 7d}}
"""


def test_export_then_plan_shows_no_changes(topo: Any, file: Any, broker: Any, vhost: str, tmp_path: Path) -> None:
    common = ["--var", f"VHOST={vhost}", "--url", broker.url]
    assert topo("apply", file(ROUND_TRIP), *common, "--yes").code == 0, "the fixture topology applies"

    result = topo("export", "--vhost", vhost, "--url", broker.url)
    assert result.code == 0
    exported = result.out
    assert exported.startswith("# exported by topo from http://***@")
    assert "guest:guest@" not in exported
    (tmp_path / "exported").mkdir()
    (tmp_path / "exported" / "export.yaml").write_text(exported)

    result = topo("plan", str(tmp_path / "exported"), "--url", broker.url, "--detailed-exitcode")
    assert result.code == 0, result.out + result.err
    assert result.out == "No changes. The broker matches the files.\n"
    # readable forms come back out
    for text in ("message-ttl: 1d", "max-length-bytes: 10MiB", "max-age: 7D", "match: all", "expires: 7d"):
        assert text in exported

    result = topo("export", "--vhost", vhost, "--url", broker.url, "-o", str(tmp_path / "out.yaml"))
    assert result.code == 0 and result.out == ""
    assert (tmp_path / "out.yaml").read_text() == exported


def test_export_of_a_missing_vhost(topo: Any, broker: Any) -> None:
    result = topo("export", "--vhost", "no-such-vhost-here", "--url", broker.url)
    result.assert_one_error("no-such-vhost-here")


def test_export_to_a_path_that_cannot_be_written(topo: Any, broker: Any, vhost: str, tmp_path: Path) -> None:
    result = topo("export", "--vhost", vhost, "--url", broker.url, "-o", str(tmp_path / "no" / "such" / "dir.yaml"))
    result.assert_one_error("cannot write", "No such file or directory")
