"""A password never appears in what topo prints or raises, whatever characters it holds.

A property test over hostile passwords (unencoded ``#``, ``?``, ``/``, ``[``, ``@``, ``:``, ``%``, spaces,
newlines, non-ASCII...) drives every place a URL is printed or can end up in an exception: the CLI's
plan, apply, export, publish, consume, rpc and dlq replay errors (URL from the flag and from the
environment, with and without ``--debug``), the Management API client's errors, the runtime's connection
errors, the AMQP probe behind the safety check, and the private-node helper's command line (status,
ensure); each against a port where nothing listens and against the real test broker (where the
password is wrong, or right: a user with that password is created on the broker). It looks for the
password in stdout, stderr, ``str()`` and ``repr()`` of each exception (with its chain, as ``--debug``
would print it), ``repr()`` of the objects that hold it, and the runtime's log.

Then, table-driven (``FORMS``, one row per output form: add a row for a new one), every output a user reads
— validate, lint, plan in each format and from TOPO_URL, apply, status, export to stdout and to a file,
import's files and report, publish, and errors (closed ports, a password variable not set, files in the
way), each plainly and with --debug — is searched for every secret the run used: users' passwords from
``${env:...}`` and from a password file, the credentials of --url, --amqp-url, TOPO_URL and TOPO_AMQP_URL, the
broker's stored hashes, shovel and federation URIs' passwords (from the environment, from a uri-file, in a
definitions file).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import re
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import devbroker
from topo.broker.amqp_probe import exact_usage
from topo.broker.client import ManagementClient
from topo.cli import _register
from topo.cli.common import run
from topo.errors import TopoError
from topo.runtime.connection import Connection
from topo.runtime.url import parse_url
from topo.urls import parse_management

pytestmark = pytest.mark.timeout(600)

MARK = "Pw7Secr3t"
"""Stands between every two hostile pieces of a generated password: any leaked part that holds one is seen."""

HOSTILE = "#?/[]@:% \t\n\\\"'&=+;,$!~*()<>{}|^`äé€漢😀"
_piece = st.text(
    alphabet=st.sampled_from(HOSTILE) | st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=4,
)
passwords = st.lists(_piece, min_size=1, max_size=4).map(lambda pieces: MARK + MARK.join(pieces) + MARK)

TOPOLOGY = """\
version: 1
vhosts:
  {vhost}:
    queues:
      q: {{}}
"""

_ENV = (
    "TOPO_URL",
    "TOPO_AMQP_URL",
    "TOPO_DEBUG",
    "TOPO_TIMEOUT",
    "TOPO_CA_CERT",
    "TOPO_CLIENT_CERT",
    "TOPO_CLIENT_KEY",
)


class Seen:
    """Everything a run showed: printed text, exceptions (str, repr, formatted chain), log records."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def exception(self, exc: BaseException) -> None:
        self.parts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
        if isinstance(exc, TopoError):
            self.parts.append(exc.hint or "")

    def assert_clean(self, password: str) -> None:
        text = "\n".join(self.parts)
        for secret in {password, quote(password, safe=""), MARK}:
            assert secret not in text, f"{secret!r} leaked in:\n{text}"


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    saved = {name: os.environ.pop(name, None) for name in (*_ENV, *values)}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value


class _Records(logging.Handler):
    def __init__(self, seen: Seen) -> None:
        super().__init__(logging.DEBUG)
        self.seen = seen

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.parts.append(self.format(record))


@contextlib.contextmanager
def watching(seen: Seen) -> Iterator[None]:
    handler = _Records(seen)
    logger = logging.getLogger("topo")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def cli(seen: Seen, *args: str, **env: str) -> int:
    """``topo ARGS`` in this process; its stdout and stderr go to ``seen``. A crash fails the test."""
    out, err = io.StringIO(), io.StringIO()
    with environment(**env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(list(args))
    seen.parts += [out.getvalue(), err.getvalue()]
    assert "Traceback" not in err.getvalue() or "--debug" in args, err.getvalue()
    return code


def devbroker_cli(seen: Seen, *args: str) -> int:
    out, err = io.StringIO(), io.StringIO()
    with environment(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = devbroker.main(list(args))
    seen.parts += [out.getvalue(), err.getvalue()]
    return code


@pytest.fixture(scope="module")
def setting(broker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A vhost on the test broker, its topology file, a port where nothing listens, the broker's ports."""
    _register()
    parsed = parse_management(broker.url)
    amqp = parse_url(broker.amqp_url)
    auth = httpx.BasicAuth(parsed.username or "guest", parsed.password or "guest")
    vhost = "t-secrets-" + os.urandom(3).hex()
    directory = tmp_path_factory.mktemp("secrets")
    (directory / "t.yaml").write_text(TOPOLOGY.format(vhost=vhost))
    with httpx.Client(base_url=parsed.public().rstrip("/"), auth=auth, timeout=30) as http:
        http.put(f"/api/vhosts/{vhost}").raise_for_status()
        http.put(f"/api/queues/{vhost}/q", json={"durable": True}).raise_for_status()
        try:
            yield {
                "http": http,
                "vhost": vhost,
                "file": str(directory / "t.yaml"),
                "dir": str(directory / "devbroker"),
                "closed": devbroker.free_port(),
                "mgmt": f"{parsed.host}:{parsed.port}",
                "amqp": f"{amqp.host}:{amqp.port}",
            }
        finally:
            http.delete(f"/api/vhosts/{vhost}")
            for user in http.get("/api/users").json():
                if user["name"].startswith("t-secrets-"):
                    http.delete(f"/api/users/{quote(user['name'], safe='')}")


def _user(setting: dict[str, Any], password: str) -> str:
    """A user on the test broker with ``password``, administrator, with every permission on the vhost."""
    http: httpx.Client = setting["http"]
    name = "t-secrets-" + os.urandom(3).hex()
    http.put(f"/api/users/{name}", json={"password": password, "tags": "administrator"}).raise_for_status()
    http.put(
        f"/api/permissions/{setting['vhost']}/{name}", json={"configure": ".*", "write": ".*", "read": ".*"}
    ).raise_for_status()
    return name


def _urls(user: str, password: str, where: str, scheme: str, path: str = "") -> list[str]:
    """The URL as a user may type it (password as it is) and percent-encoded."""
    return [
        f"{scheme}://{user}:{password}@{where}{path}",
        f"{scheme}://{user}:{quote(password, safe='')}@{where}{path}",
    ]


@settings(
    max_examples=int(os.environ.get("TOPO_SECRETS_EXAMPLES", "20")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(password=passwords)
def test_a_password_never_shows(setting: dict[str, Any], password: str) -> None:
    seen = Seen()
    file, vhost = setting["file"], setting["vhost"]
    closed = f"127.0.0.1:{setting['closed']}"
    good_mgmt = f"http://guest:guest@{closed}"
    with watching(seen):
        for target in (closed, setting["mgmt"]):  # nothing listens there / the broker, with a wrong password
            for url in _urls("u", password, target, "http"):
                for debug in ((), ("--debug",)):
                    commands = (("plan", file), ("apply", file, "--yes"), ("export",)) if target == closed else ()
                    for command in commands or (("plan", file),):  # a wrong password: one path for the three
                        assert cli(seen, *debug, *command, "--url", url) == 1
                    assert cli(seen, *debug, "plan", file, **{"TOPO_URL": url}) == 1
                with pytest.raises(TopoError) as info, ManagementClient(url, timeout=10) as client:
                    seen.parts.append(repr(client))
                    client.get("/overview")
                seen.exception(info.value)
                assert devbroker_cli(seen, "status", "--url", url) == 1
                assert devbroker_cli(seen, "ensure", "--url", url, "--dir", setting["dir"]) == 1  # named: must answer
        for target in (closed, setting["amqp"]):
            for url in _urls("u", password, target, "amqp", "/"):
                common = (file, "--vhost", vhost, "--amqp-url", url)
                for debug in ((), ("--debug",)):
                    assert (
                        cli(seen, *debug, "publish", *common, "--exchange", "", "--routing-key", "q", "--body", "x")
                        == 1
                    )
                    assert cli(seen, *debug, "consume", *common, "--queue", "q", "--count", "1") == 1
                    assert cli(seen, *debug, "rpc", *common, "--queue", "q", "--body", "x") == 1
                    assert cli(seen, *debug, "dlq", "replay", *common, "--queue", "q") == 1
                    assert cli(seen, *debug, "plan", file, "--url", good_mgmt, "--amqp-url", url) == 1
                assert (
                    cli(
                        seen,
                        "publish",
                        file,
                        "--vhost",
                        vhost,
                        "--exchange",
                        "",
                        "--routing-key",
                        "q",
                        "--body",
                        "x",
                        TOPO_AMQP_URL=url,
                    )
                    == 1
                )
                try:
                    params = parse_url(url)
                    seen.parts += [repr(params), params.display()]
                    connection = Connection(params.with_vhost(vhost), reconnect=False)
                    seen.parts.append(repr(connection))
                    asyncio.run(asyncio.wait_for(connection.open(), 30))
                except TopoError as exc:
                    seen.exception(exc)
                else:
                    pytest.fail("a wrong password or a closed port was let in")
                try:
                    seen.parts.append(repr(exact_usage(url, vhost, ["q"])))
                except TopoError as exc:
                    seen.exception(exc)
        # the right password, on the real broker: it works when it can be read, and nothing shows it
        user = _user(setting, password)
        typed, encoded = _urls(user, password, setting["mgmt"], "http")
        readable = not any(c in password for c in "/?#") and not re.search("%[0-9A-Fa-f]{2}", password)
        assert cli(seen, "plan", file, "--url", typed) == (0 if readable else 1), seen.parts[-1]
        assert cli(seen, "plan", file, "--url", encoded) == 0, seen.parts[-1]
        amqp = _urls(user, password, setting["amqp"], "amqp", "/")[1]
        assert exact_usage(amqp, vhost, ["q", "missing"]) == {"q": (0, 0)}
    seen.assert_clean(password)


# -- user passwords and hashes (issue 11.6) --------------------------------------------------------------

USERS = """\
version: 1
vhosts:
  {vhost}:
    queues:
      q: {{}}
users:
  {user}:
    password: ${{env:TOPO_TEST_USER_PASSWORD}}
    tags: [{tags}]
    permissions:
      {vhost}: {{configure: "^$", write: "^$", read: "^q$"}}
"""


def _hostile_literal(directory: Any, user: str, password: str) -> str:
    """A topology with ``password`` written in clear (topo must refuse it without showing it)."""
    import yaml

    document = {"version": 1, "users": {user: {"password": password}}}
    path = directory / "literal.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return str(path)


@settings(
    max_examples=int(os.environ.get("TOPO_SECRETS_EXAMPLES", "20")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(password=passwords)
def test_a_user_password_never_shows(setting: dict[str, Any], password: str, tmp_path_factory: Any) -> None:
    """A user's password (from the environment) and its hash on the broker, in every output form: validate,
    plan (text, json, markdown), apply and its progress, a second plan, export, errors with and without
    --debug, repr() of the model and plan objects, the log."""
    from topo import engine
    from topo.loader import load
    from topo.passwords import matches
    from topo.plan.render import render_json, render_markdown, render_text

    seen = Seen()
    http: httpx.Client = setting["http"]
    vhost, good = setting["vhost"], f"http://guest:guest@{setting['mgmt']}"
    user = "t-secrets-" + os.urandom(3).hex()
    directory = tmp_path_factory.mktemp("users")
    (directory / "t.yaml").write_text(USERS.format(vhost=vhost, user=user, tags=""), encoding="utf-8")
    file = str(directory / "t.yaml")
    env = {"TOPO_TEST_USER_PASSWORD": password}
    with watching(seen):
        assert cli(seen, "validate", file, **env) == 0
        for fmt in ("text", "json", "markdown"):
            assert cli(seen, "plan", file, "--url", good, "--format", fmt, **env) == 0
        assert cli(seen, "apply", file, "--url", good, "--yes", **env) == 0
        stored = http.get(f"/api/users/{user}").json()
        assert matches(password, stored["password_hash"], stored["hashing_algorithm"]), (
            "the password set is the one declared"
        )
        seen.parts.append("\n")
        # a tags change (the stored hash goes back as it is) and a changed password (a new hash), with progress
        (directory / "t.yaml").write_text(USERS.format(vhost=vhost, user=user, tags="monitoring"), encoding="utf-8")
        with environment(**env):
            desired = load(file)
        changed = load(file, environ={"TOPO_TEST_USER_PASSWORD": password + "2"})
        with ManagementClient(good, amqp_url="") as client:
            for topology in (desired, changed, desired):
                plan = engine.plan(client, topology)
                seen.parts += [render_text(plan), render_json(plan), render_markdown(plan), repr(plan), str(plan)]
                engine.apply(client, topology, plan, progress=lambda text, _n: seen.parts.append(text))
            seen.parts += [repr(desired), str(desired.users), repr(client)]
        assert http.get(f"/api/users/{user}").json()["tags"] == ["monitoring"]
        final = http.get(f"/api/users/{user}").json()["password_hash"]
        assert cli(seen, "plan", file, "--url", good, "--detailed-exitcode", **env) == 0
        assert cli(seen, "export", "--url", good) == 0
        # errors: a password in clear; users a non-administrator may not read (with and without --debug): a plan
        # that says it did not compare them, an apply that stops
        literal = _hostile_literal(directory, user, password)
        for debug in ((), ("--debug",)):
            assert cli(seen, *debug, "validate", literal) == 1
            assert cli(seen, *debug, "plan", literal, "--url", good) == 1
        watcher = _user(setting, "watcher-pw")
        http.put(f"/api/users/{watcher}", json={"password": "watcher-pw", "tags": "monitoring"}).raise_for_status()
        limited = f"http://{watcher}:watcher-pw@{setting['mgmt']}"
        (directory / "users-only.yaml").write_text(
            f"version: 1\nusers:\n  {user}:\n    password: ${{env:TOPO_TEST_USER_PASSWORD}}\n", encoding="utf-8"
        )
        for debug in ((), ("--debug",)):  # plan: users not compared, and said so; apply: an error naming the tag
            assert cli(seen, *debug, "plan", str(directory / "users-only.yaml"), "--url", limited, **env) == 0
            assert cli(seen, *debug, "apply", str(directory / "users-only.yaml"), "--url", limited, "--yes", **env) == 1
    seen.assert_clean(password)
    text = "\n".join(seen.parts)
    for value in {stored["password_hash"], final, password + "2"}:
        assert value not in text, f"{value!r} leaked"
    assert "(sensitive)" in text


def test_a_refused_user_write_never_echoes_the_hash() -> None:
    """RabbitMQ echoes a password hash it refuses (``{"reason": ["not_base64", HASH]}``): the error topo raises
    carries ``(sensitive)`` in its place."""
    from topo.broker.live import LiveBroker
    from topo.broker.writer import execute
    from topo.model import Address, Secret, User
    from topo.plan.model import Change, Plan

    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = request.content.decode()
        sent.append(body)
        echoed = __import__("json").loads(body)["password_hash"]
        return httpx.Response(400, json={"error": "bad_request", "reason": ["not_base64", echoed]})

    user = User("u", password=Secret("Pw7Secr3t-plain", "${env:P}"))
    transport = httpx.MockTransport(handler)
    with (
        ManagementClient("http://guest:guest@b.invalid:15672", transport=transport) as client,
        pytest.raises(TopoError) as info,
    ):
        execute(LiveBroker(client, amqp=None), Plan(changes=[Change("create", Address("user", "", "u"), after=user)]))
    seen = Seen()
    seen.exception(info.value)
    hashed = __import__("json").loads(sent[0])["password_hash"]
    assert hashed and hashed not in "\n".join(seen.parts)
    assert "(sensitive)" in info.value.message
    seen.assert_clean("Pw7Secr3t-plain")


# -- every output form, table-driven (issue 11.6) --------------------------------------------------------
#
# One row per output form a user reads: the CLI arguments, the environment it adds, and the files it writes
# (their contents are read too). Each row runs plainly and with --debug, and must exit with its code and print
# something (a row that shows nothing proves nothing). Every secret the setup used is then looked for in all
# of it: the users' passwords (from ${env:...} and from a password file), the credentials of --url,
# --amqp-url and TOPO_URL (as typed and percent-encoded), the broker's stored hashes, a shovel's URI from
# ${env:...}, a federation upstream's from a uri-file, and an upstream URI's password in a definitions file.
# To cover a new output, add one row (as "plan -o", a saved plan, is), and a new secret is one more entry of
# `Forms.secrets`, set where the files or the environment are.

APP_PASSWORD = "App-pw-Env#1 ä"
FILE_PASSWORD = "File-pw:2@[x]"
URL_PASSWORD = "Url-pw@3:[y] é"
FEDERATION_PASSWORD = "Fed-pw-4"
SHOVEL_PASSWORD = "Shovel-pw-5 @"
UPSTREAM_FILE_PASSWORD = "Upstream-pw-6"

FORMS_TOPOLOGY = """\
version: 1
vhosts:
  {vhost}:
    exchanges:
      events: {{type: topic}}
    queues:
      q:
        bindings: [{{exchange: events, routing-key: "a.#"}}]
      archive: {{}}
    shovels:
      to-archive:
        source:
          uri: amqp:///{vhost}
          queue: archive
        destination:
          uri: ${{env:TOPO_TEST_SHOVEL_URI}}
          queue: archive
    federation-upstreams:
      origin:
        uri-file: secrets/upstream
users:
  {prefix}-app:
    password: ${{env:TOPO_TEST_APP_PASSWORD}}
    permissions:
      {vhost}: {{configure: "^$", write: "^events$", read: "^q$"}}
  {prefix}-filer:
    password-file: secrets/filer
    tags: [monitoring]
"""


class Forms:
    """What the rows use: the topology directory, the URLs with the admin user's password, an output
    directory; ``secrets``: every value no output may show."""

    def __init__(self, setting: dict[str, Any], directory: Any, user: str) -> None:
        self.setting = setting
        self.dir = directory
        self.files = str(directory / "topology")
        self.url = f"http://{user}:{URL_PASSWORD}@{setting['mgmt']}"
        self.encoded_url = f"http://{user}:{quote(URL_PASSWORD, safe='')}@{setting['mgmt']}"
        self.amqp_url = f"amqp://{user}:{quote(URL_PASSWORD, safe='')}@{setting['amqp']}/"
        self.closed_amqp = f"amqp://{user}:{quote(URL_PASSWORD, safe='')}@127.0.0.1:{setting['closed']}/"
        self.closed_url = f"http://{user}:{URL_PASSWORD}@127.0.0.1:{setting['closed']}"
        closed = f"127.0.0.1:{setting['closed']}"
        self.env = {
            "TOPO_TEST_APP_PASSWORD": APP_PASSWORD,
            "TOPO_TEST_SHOVEL_URI": f"amqp://shoveler:{quote(SHOVEL_PASSWORD, safe='')}@{closed}/",
        }
        self.upstream_uri = f"amqp://fed:{UPSTREAM_FILE_PASSWORD}@{closed}/"
        self.vhost = setting["vhost"]
        self.message = ["--exchange", "events", "--routing-key", "a.b", "--body", "x"]
        self.secrets = {APP_PASSWORD, FILE_PASSWORD, URL_PASSWORD, quote(URL_PASSWORD, safe=""), FEDERATION_PASSWORD}
        self.secrets |= {SHOVEL_PASSWORD, quote(SHOVEL_PASSWORD, safe=""), UPSTREAM_FILE_PASSWORD}
        self.hashes: set[str] = set()  # the broker's, once read

    def out(self, name: str) -> str:
        return str(self.dir / "out" / name)

    def definitions(self) -> str:
        """The broker's GET /api/definitions (hashes included), with a federation upstream whose URI holds a
        password (topo does not import federation: it must not show its value either)."""
        http: httpx.Client = self.setting["http"]
        document = http.get("/api/definitions").json()
        vhost = self.setting["vhost"]
        keep = {u["name"] for u in document["users"] if u["name"].startswith("t-secrets-")}
        for user in document["users"]:
            if user["name"] in keep and user["password_hash"]:
                self.hashes.add(user["password_hash"])
        document["users"] = [u for u in document["users"] if u["name"] in keep]
        document["permissions"] = [p for p in document["permissions"] if p["user"] in keep]
        document["vhosts"] = [{"name": vhost}]
        for section in ("queues", "exchanges", "bindings", "policies", "parameters"):
            document[section] = [item for item in document.get(section, []) if item.get("vhost") == vhost]
        document["parameters"].append(
            {
                "vhost": vhost,
                "component": "federation-upstream",
                "name": "origin",
                "value": {"uri": f"amqp://fed:{FEDERATION_PASSWORD}@origin.invalid"},
            }
        )
        path = self.dir / "definitions.json"
        path.write_text(json.dumps(document), encoding="utf-8")
        return str(path)


@dataclass(frozen=True)
class Form:
    name: str
    argv: Callable[[Forms], list[str]]
    code: int | tuple[int, ...] = 0  # the exit code, or the codes it may have
    env: Callable[[Forms], dict[str, str]] = lambda _c: {}
    writes: tuple[str, ...] = ()  # files (under Forms.out) whose contents are outputs too


FORMS: tuple[Form, ...] = (
    Form("validate", lambda c: ["validate", c.files]),
    Form("lint", lambda c: ["lint", c.files]),
    Form("lint json", lambda c: ["lint", c.files, "--format", "json"]),
    Form("plan text", lambda c: ["plan", c.files, "--url", c.url, "--amqp-url", c.amqp_url]),
    Form("plan json", lambda c: ["plan", c.files, "--url", c.encoded_url, "--format", "json"]),
    Form("plan markdown", lambda c: ["plan", c.files, "--url", c.url, "--format", "markdown"]),
    Form("plan TOPO_URL", lambda c: ["plan", c.files], env=lambda c: {"TOPO_URL": c.url}),
    Form("apply", lambda c: ["apply", c.files, "--url", c.url, "--yes"]),
    Form("plan after apply", lambda c: ["plan", c.files, "--url", c.url, "--format", "json"]),
    Form("plan -o", lambda c: ["plan", c.files, "--url", c.url, "-o", c.out("plan.json")], writes=("plan.json",)),
    Form("apply a saved plan", lambda c: ["apply", c.out("plan.json"), "--url", c.url]),
    Form(
        "status", lambda c: ["status", c.files, "--url", c.url], code=(2, 3)
    ),  # CRITICAL (no consumer), UNKNOWN (no figure yet)
    Form("export", lambda c: ["export", "--url", c.url]),
    Form("export -o", lambda c: ["export", "--url", c.url, "-o", c.out("export.yaml")], writes=("export.yaml",)),
    Form(
        "import",
        lambda c: ["import", c.definitions(), "-o", c.out("imported"), "--force"],
        writes=("imported",),
    ),
    Form("publish", lambda c: ["publish", c.files, "--vhost", c.vhost, "--amqp-url", c.amqp_url, *c.message]),
    Form(
        "error: AMQP closed",
        lambda c: ["publish", c.files, "--vhost", c.vhost, "--amqp-url", c.closed_amqp, *c.message],
        code=1,
    ),
    Form(
        "error: AMQP TOPO_AMQP_URL",
        lambda c: ["consume", c.files, "--vhost", c.vhost, "--queue", "q", "--count", "1"],
        code=1,
        env=lambda c: {"TOPO_AMQP_URL": c.closed_amqp},
    ),
    Form("error: closed --url", lambda c: ["plan", c.files, "--url", c.closed_url], code=1),
    Form("error: closed TOPO_URL", lambda c: ["export"], code=1, env=lambda c: {"TOPO_URL": c.closed_url}),
    Form(
        "error: no password variable",
        lambda c: ["plan", c.files, "--url", c.url],
        code=1,
        env=lambda c: {"TOPO_TEST_APP_PASSWORD": ""},
    ),
    Form("error: import over files", lambda c: ["import", c.definitions(), "-o", c.out("imported")], code=1),
)


def _contents(path: Any) -> list[str]:
    if path.is_dir():
        return [text for child in sorted(path.rglob("*")) if child.is_file() for text in _contents(child)]
    return [path.read_text(encoding="utf-8")] if path.exists() else []


def test_no_output_form_shows_a_secret(setting: dict[str, Any], tmp_path: Any) -> None:
    prefix = "t-secrets-" + os.urandom(3).hex()
    admin = _user(setting, URL_PASSWORD)
    forms = Forms(setting, tmp_path, admin)
    topology = tmp_path / "topology"
    (topology / "secrets").mkdir(parents=True)
    (topology / "secrets" / "filer").write_text(FILE_PASSWORD + "\n", encoding="utf-8")
    (topology / "secrets" / "upstream").write_text(forms.upstream_uri + "\n", encoding="utf-8")
    (topology / "t.yaml").write_text(FORMS_TOPOLOGY.format(vhost=setting["vhost"], prefix=prefix), encoding="utf-8")
    (tmp_path / "out").mkdir()
    seen = Seen()
    with watching(seen):
        for form in FORMS:
            for debug in ((), ("--debug",)):
                before = len(seen.parts)
                env = {**forms.env, **form.env(forms)}
                code = cli(seen, *debug, *form.argv(forms), **{k: v for k, v in env.items() if v})
                assert code in (form.code if isinstance(form.code, tuple) else (form.code,)), (
                    f"{form.name}{debug}: exit {code}\n{seen.parts[-2:]}"
                )
                for name in form.writes:
                    seen.parts += _contents(tmp_path / "out" / name)
                assert "".join(seen.parts[before:]).strip(), f"{form.name} showed nothing"
    http: httpx.Client = setting["http"]
    for user in (admin, f"{prefix}-app", f"{prefix}-filer"):
        stored = http.get(f"/api/users/{user}").json()["password_hash"]
        assert stored, user
        forms.hashes.add(stored)
    text = "\n".join(seen.parts)
    for secret in forms.secrets | forms.hashes:
        assert secret not in text, f"{secret!r} leaked"
    assert "${env:USER_" in text and "(sensitive)" in text  # the placeholders are there, in their place
    # the controls: the definitions file import read held the secrets in clear (the broker keeps URIs so), and
    # the one output that shows hashes, by request, shows them: the search above can see what it looks for
    given = (tmp_path / "definitions.json").read_text(encoding="utf-8")
    assert quote(SHOVEL_PASSWORD, safe="") in given and UPSTREAM_FILE_PASSWORD in given and FEDERATION_PASSWORD in given
    kept = Seen()
    assert cli(kept, "export", "--url", forms.url, "--include-password-hashes") == 0
    assert all(stored in "".join(kept.parts) for stored in forms.hashes)
