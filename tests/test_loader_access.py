"""The loader's users, permissions, topic permissions, global parameters and vhost settings (issue 11).

Above all: a password never stands in a file in clear, and no problem message shows one (nor a hash)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from topo.errors import Problem, ValidationError
from topo.loader import load
from topo.model import GlobalParameter, Permission, TopicPermission, TopicPermissions, User
from topo.passwords import MD5, SHA256, SHA512, hash_password, matches

SECRET = "Pw-1n-Cl3ar"


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


Env = dict[str, str]


def problems(path: Path, environ: Env | None = None, variables: Env | None = None) -> list[Problem]:
    with pytest.raises(ValidationError) as info:
        load(path, variables, environ=environ or {})
    text = str(info.value) + repr(info.value) + repr(info.value.problems)
    assert SECRET not in text, text
    return info.value.problems


FULL = """\
version: 1
users:
  orders:
    password: ${env:ORDERS_PASSWORD}
    tags: [policymaker, management, management-ui]
    limits: {max-connections: 20, max-channels: 200}
    permissions:
      shop: {configure: "^orders\\\\.", write: "^(events|orders\\\\..*)$", read: "^orders\\\\."}
      "/": {configure: "", write: "", read: ".*"}
    topic-permissions:
      shop:
        events: {write: "^order\\\\.", read: "^$"}
        amq.topic: {write: ".*", read: ".*"}
  ops:
    password: ${var:OPS}
    hashing-algorithm: sha512
    tags: [administrator]
  app:
    password-file: secrets/app.password
  legacy:
    password-hash: MD5_HASH
  nobody:
    password-hash: ""
  bare: {}
global-parameters:
  cluster_name: eu-1
  my-doc: {a: [1, 2]}
"""


def test_a_full_access_file_loads(tmp_path: Path) -> None:
    legacy = hash_password("old", MD5)
    write(tmp_path, "secrets/app.password", "from-a-file\n")
    path = write(tmp_path, "access.yaml", FULL.replace("MD5_HASH", legacy))
    topology = load(path, {"OPS": "ops-pw"}, environ={"ORDERS_PASSWORD": SECRET})
    assert set(topology.users) == {"orders", "ops", "app", "legacy", "nobody", "bare"}
    assert topology.vhosts == {}  # a file may hold only users and global parameters
    orders = topology.users["orders"]
    limits = {"max-connections": 20, "max-channels": 200}
    assert orders == User("orders", ("management", "management-ui", "policymaker"), limits)
    assert orders.password is not None and orders.password.value == SECRET
    assert orders.password.source == "${env:ORDERS_PASSWORD}"
    assert orders.origin is not None and orders.origin.line == 3
    ops = topology.users["ops"]
    assert ops.password is not None and ops.password.value == "ops-pw" and ops.hashing_algorithm == SHA512
    app = topology.users["app"]
    assert app.password is not None and app.password.value == "from-a-file"  # one final newline is not part of it
    assert app.password.source == "password-file secrets/app.password"
    assert topology.users["legacy"].password_hash is not None
    assert topology.users["legacy"].password_hash.algorithm == MD5
    assert matches("old", topology.users["legacy"].password_hash.value, MD5)
    nobody = topology.users["nobody"].password_hash
    assert nobody is not None and nobody.value == "" and nobody.algorithm == SHA256
    bare = topology.users["bare"]
    assert bare.tags == () and bare.limits is None and not bare.manages_password
    assert topology.permissions == {
        ("orders", "shop"): Permission("orders", "shop", "^orders\\.", "^(events|orders\\..*)$", "^orders\\."),
        ("orders", "/"): Permission("orders", "/", "", "", ".*"),
    }
    assert topology.topic_permissions == {
        ("orders", "shop"): TopicPermissions(
            "orders",
            "shop",
            {
                "events": TopicPermission("events", "^order\\.", "^$"),
                "amq.topic": TopicPermission("amq.topic", ".*", ".*"),
            },
        )
    }
    assert topology.global_parameters == {
        "cluster_name": GlobalParameter("cluster_name", "eu-1"),
        "my-doc": GlobalParameter("my-doc", {"a": [1, 2]}),
    }
    shown = repr(topology) + str(topology.users) + repr(orders.password) + str(orders.password)
    assert SECRET not in shown and "ops-pw" not in shown and "from-a-file" not in shown and legacy not in shown
    assert "(sensitive)" in repr(orders.password)


@pytest.mark.parametrize("value", ["0123", "yes", "1e3", "null", "~", "[1]", "{a: b}", " spaced ", "#not-a-comment"])
def test_a_password_from_the_environment_is_the_text_it_holds(tmp_path: Path, value: str) -> None:
    # YAML would type `0123`, `yes`, `1e3` or `null` (a plain scalar is typed after interpolation elsewhere)
    path = write(tmp_path, "u.yaml", "version: 1\nusers:\n  u:\n    password: ${env:P}\n")
    assert load(path, environ={"P": value}).users["u"].password.value == value  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("written", "words"),
    [
        (SECRET, "cannot stand in a file in clear"),
        (f'"{SECRET}"', "cannot stand in a file in clear"),
        ("12345", "cannot stand in a file in clear"),
        (f"${{env:P:-{SECRET}}}", "one whole ${env:NAME}"),
        (f"{SECRET}${{env:P}}", "one whole ${env:NAME}"),
        ("$${env:P}", "cannot stand in a file in clear"),
        ('""', "the password is empty"),
        ("", "the password is empty"),
    ],
)
def test_a_password_in_clear_is_refused_without_showing_it(tmp_path: Path, written: str, words: str) -> None:
    path = write(tmp_path, "u.yaml", f"version: 1\nusers:\n  u:\n    password: {written}\n")
    found = problems(path, environ={"P": "x"})
    assert len(found) == 1, found
    assert words in found[0].message and found[0].line == 4 and found[0].path == "users.u.password"
    assert "${env:NAME}" in (found[0].hint or "") and "password-file" in (found[0].hint or "")
    if written and written not in ('""', "$${env:P}"):
        assert written not in found[0].render()


def test_an_empty_environment_variable_is_no_password(tmp_path: Path) -> None:
    path = write(tmp_path, "u.yaml", "version: 1\nusers:\n  u:\n    password: ${env:P}\n")
    (found,) = problems(path, environ={"P": ""})
    assert "the password from ${env:P} is empty" in found.message


def test_an_unset_variable_is_reported_once(tmp_path: Path) -> None:
    path = write(tmp_path, "u.yaml", "version: 1\nusers:\n  u:\n    password: ${env:NOT_SET_HERE}\n")
    (found,) = problems(path)
    assert "NOT_SET_HERE is not set" in found.message


def test_password_file_problems_name_the_file_never_its_content(tmp_path: Path) -> None:
    write(tmp_path, "empty.pw", "\n")
    (tmp_path / "latin1.pw").write_bytes(SECRET.encode() + b"\xe9")
    path = write(
        tmp_path,
        "u.yaml",
        """\
        version: 1
        users:
          a: {password-file: missing.pw}
          b: {password-file: empty.pw}
          c: {password-file: latin1.pw}
        """,
    )
    found = {p.path: p.message for p in problems(path)}
    assert "cannot read the password file" in found["users.a.password-file"]
    assert str(tmp_path / "missing.pw") in found["users.a.password-file"]
    assert "is empty" in found["users.b.password-file"]
    assert "not UTF-8" in found["users.c.password-file"]


def test_a_password_file_relative_to_its_file_or_absolute(tmp_path: Path) -> None:
    write(tmp_path, "conf/pw", "a\r\n")
    write(tmp_path, "abs.pw", "b\n\n")  # only one final line break is taken away
    path = write(
        tmp_path,
        "conf/u.yaml",
        f"version: 1\nusers:\n  a: {{password-file: pw}}\n  b: {{password-file: {tmp_path / 'abs.pw'}}}\n",
    )
    users = load(path, environ={}).users
    assert users["a"].password.value == "a"  # type: ignore[union-attr]
    assert users["b"].password.value == "b\n"  # type: ignore[union-attr]


def test_password_hash_problems(tmp_path: Path) -> None:
    sha256 = hash_password("x", SHA256)
    path = write(
        tmp_path,
        "u.yaml",
        f"""\
        version: 1
        users:
          a: {{password-hash: "{SECRET}!!"}}
          b: {{password-hash: "{sha256}", hashing-algorithm: md5}}
          c: {{password-hash: "{sha256}", hashing-algorithm: rabbit_password_hashing_sha256}}
          d: {{password: "${{env:P}}", password-hash: "{sha256}"}}
          e: {{hashing-algorithm: sha256}}
          f: {{password-hash: "{sha256}", hashing-algorithm: bcrypt}}
        """,
    )
    found = {p.path: p for p in problems(path, environ={"P": "p"})}
    assert "not base64" in found["users.a.password-hash"].message
    assert "36 bytes" in found["users.b.password-hash"].message
    assert "users.c.password-hash" not in found
    assert "one password source" in found["users.d.password-hash"].message
    assert "without a password source" in found["users.e.hashing-algorithm"].message
    assert "users.f.hashing-algorithm" in found  # the schema's enum
    for problem in found.values():
        assert sha256 not in problem.render()


def test_a_misplaced_password_is_not_echoed(tmp_path: Path) -> None:
    # the password written as the user's body, or under a misspelled key's neighbour: the schema check
    # reports where, but never repeats a string written under users
    path = write(tmp_path, "u.yaml", f"version: 1\nusers:\n  u: {SECRET}\n  v: {{tags: {SECRET}}}\n")
    found = problems(path)
    assert {p.path for p in found} == {"users.u", "users.v.tags"}


def test_patterns_are_checked_at_their_place(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "u.yaml",
        """\
        version: 1
        users:
          u:
            permissions:
              shop: {configure: "(", write: "", read: ""}
            topic-permissions:
              shop:
                events: {write: "[a-", read: ".*"}
        """,
    )
    found = {p.path: p for p in problems(path)}
    assert set(found) == {"users.u.permissions.shop.configure", "users.u.topic-permissions.shop.events.write"}
    assert all("invalid regular expression" in p.message for p in found.values())
    assert found["users.u.permissions.shop.configure"].line == 5


def test_permissions_need_all_three_patterns(tmp_path: Path) -> None:
    path = write(tmp_path, "u.yaml", 'version: 1\nusers:\n  u:\n    permissions:\n      shop: {read: ".*"}\n')
    messages = sorted(p.message for p in problems(path))
    assert messages == ["missing required key 'configure'", "missing required key 'write'"]


def test_tags_cannot_hold_a_comma(tmp_path: Path) -> None:
    path = write(tmp_path, "u.yaml", "version: 1\nusers:\n  u: {tags: ['a,b']}\n")
    (found,) = problems(path)
    assert found.path == "users.u.tags[0]"


def test_a_user_or_parameter_declared_twice_names_both_places(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "version: 1\nusers:\n  u: {}\nglobal-parameters:\n  cluster_name: a\n")
    write(tmp_path, "b.yaml", "version: 1\nusers:\n  u: {tags: [monitoring]}\nglobal-parameters:\n  cluster_name: b\n")
    found = problems(tmp_path)
    assert sorted(p.message.split(":")[0] for p in found) == [
        "global parameter 'cluster_name' is declared twice",
        "user 'u' is declared twice",
    ]
    assert all(str(tmp_path / "a.yaml") in p.message for p in found)


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("topo.inventory.shop", "{}", "topo's own records"),
        ("internal_cluster_id", "x", "the broker's own"),
        ("cluster_name", "42", "expected a string"),
        ("cluster_name", '""', "non-empty string"),
    ],
)
def test_global_parameters_that_cannot_be_declared(tmp_path: Path, name: str, value: str, words: str) -> None:
    path = write(tmp_path, "g.yaml", f"version: 1\nglobal-parameters:\n  {name}: {value}\n")
    (found,) = problems(path)
    assert words in found.message, found


def test_vhost_settings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "v.yaml",
        "version: 1\nvhosts:\n  a: {default-queue-type: quorum, tracing: true}\n  b: {}\n"
        "  c: {default-queue-type: lazy}\n",
    )
    (found,) = problems(path)
    assert found.path == "vhosts.c.default-queue-type"
    path.write_text("version: 1\nvhosts:\n  a: {default-queue-type: quorum, tracing: true}\n  b: {}\n")
    vhosts = load(path).vhosts
    assert (vhosts["a"].default_queue_type, vhosts["a"].tracing) == ("quorum", True)
    assert (vhosts["b"].default_queue_type, vhosts["b"].tracing) == (None, None)


def test_limited_to_vhosts_a_topology_has_no_broker_wide_kinds(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "t.yaml",
        "version: 1\nvhosts: {v: {}}\nusers:\n  u: {permissions: {v: {configure: '', write: '', read: ''}}}\n"
        "global-parameters: {x: 1}\n",
    )
    topology = load(path)
    assert topology.users and topology.permissions and topology.global_parameters
    limited = topology.only(["v"])
    assert not limited.users and not limited.permissions and not limited.global_parameters
    assert topology.only([]) is topology


def test_without_secrets_a_password_not_at_hand_is_no_error(tmp_path: Path) -> None:
    # validate, lint, graph, route, ... never send a password: CI can run them without the secrets
    path = write(
        tmp_path,
        "u.yaml",
        "version: 1\nusers:\n  a: {password: '${env:NOT_SET_HERE}'}\n  b: {password-file: /run/secrets/not-here}\n"
        "  c: {password: '${env:SET_HERE}'}\n",
    )
    (found,) = (p for p in problems(path, environ={"SET_HERE": "x"}) if p.path == "users.a.password")
    assert "NOT_SET_HERE is not set" in found.message
    users = load(path, environ={"SET_HERE": "x"}, secrets=False).users
    assert users["a"].password is not None and users["a"].password.value is None
    assert users["b"].password is not None and users["b"].password.value is None
    assert users["c"].password is not None and users["c"].password.value == "x"  # at hand: read and checked
    # what a password must never be is still refused
    path.write_text(f"version: 1\nusers:\n  a: {{password: {SECRET}}}\n")
    with pytest.raises(ValidationError) as info:
        load(path, environ={}, secrets=False)
    assert "in clear" in str(info.value) and SECRET not in str(info.value)
