"""``topo import`` (pure part and CLI, no node): RabbitMQ 3.6 to 3.12 definitions files → topology files that
load back into the topology the definitions describe, users' hashes kept out unless asked, a report of what
the files cannot hold (each at its place), and the command's errors. The round trip through a real broker
is in tests/test_import_broker.py.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from support import check_golden

from topo.cli.common import run
from topo.definitions import VHOST_COMPONENTS
from topo.errors import UsageError
from topo.importer import ACCESS_FILE, REPORT_FILE, import_definitions, parse_definitions
from topo.loader import load
from topo.plan.diff import diff

FIXTURES = Path(__file__).parent / "fixtures" / "definitions"
OLD = FIXTURES / "rabbitmq-3.6.json"
NEW = FIXTURES / "rabbitmq-3.12.json"
OLD_HASH = "AQIDBMo4lcNgd4UOa8E+UJtH5xCZGehbFyFLDfmGWt6OBUpi"
NEW_HASH = "BQYHCPukwhJg9WbZFES0IxzaIAfjm9vzprWAkTyMH2i3b9dL+N8OtnbRjDtL1ih5NcdPZnM1au+tx9TBZj1FXp+r894="


def topo(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(list(args))
    return code, out.getvalue(), err.getvalue()


def document(path: Path) -> dict[str, Any]:
    return parse_definitions(path.read_text(), path.name)


@pytest.mark.parametrize("fixture", [OLD, NEW], ids=["3.6", "3.12"])
def test_the_files_are_the_golden_ones_and_load_back_to_the_same_topology(fixture: Path, tmp_path: Path) -> None:
    imported = import_definitions(document(fixture), source=fixture.name, password_hashes=True)
    for name, text in imported.files.items():
        check_golden(f"import/{fixture.stem}/{name}", text)
        (tmp_path / name).write_text(text)
    check_golden(f"import/{fixture.stem}/{REPORT_FILE}", imported.report(fixture.name))
    loaded = load(tmp_path, environ={"UPSTREAM_ORIGIN_URI": "amqp://fed:fed-secret@origin"})  # the 3.12 file's
    plan = diff(loaded, imported.topology)
    assert plan.empty, [(c.action, str(c.address), c.reasons) for c in plan.changes]
    for name, user in imported.topology.users.items():
        assert loaded.users[name].password_hash == user.password_hash


def test_rabbitmq_3_6_differences() -> None:
    """Tags as a comma string, no x-queue-type (classic), a vhost without metadata; what cannot be said."""
    imported = import_definitions(document(OLD))
    shop = imported.topology.vhosts["t-old-shop"]
    assert shop.queues["orders.work"].type == "classic"
    assert shop.queues["orders.work"].arguments == {"x-max-priority": 10, "x-dead-letter-exchange": "orders.dlx"}
    assert shop.limits == {"max-queues": 100}
    assert imported.topology.users["t-old-app"].tags == ("management", "monitoring")
    assert imported.topology.users["t-old-ops"].tags == ()
    assert list(shop.shovels) == ["to-archive"]  # a pre-3.7 shovel: topo manages shovels
    places = {note.place: note.message for note in imported.notes}
    assert "'acme-bridge' are not managed" in places['parameters[0] (vhost "t-old-shop", acme-bridge "legacy-bridge")']
    assert "t-old-gone" in places['queues[2] (vhost "t-old-gone", queue "elsewhere")']
    assert "undeclared" in places['bindings[2] (vhost "t-old-shop", binding "amq.topic" → "undeclared")']
    assert "elsewhere" not in json.dumps(list(imported.files.values()))


def test_rabbitmq_3_12_differences() -> None:
    """rabbitmq_version, vhost settings and limits in its entry, a queue's type field or the vhost's default."""
    imported = import_definitions(document(NEW))
    assert imported.version == "3.12.4"
    iot = imported.topology.vhosts["t-new-iot"]
    assert (iot.description, iot.tags, iot.default_queue_type) == ("Sensors", ("iot", "prod"), "quorum")
    assert iot.limits == {"max-connections": 50}
    types = {name: queue.type for name, queue in iot.queues.items()}
    assert types == {
        "readings.raw": "quorum",  # its type field
        "readings.archive": "stream",
        "readings.default": "quorum",  # neither: the vhost's default queue type
        "readings.classic": "classic",
    }
    assert set(imported.topology.global_parameters) == {"cluster_name"}  # not internal_cluster_id
    assert list(iot.federation_upstreams) == ["origin"]
    messages = " ".join(note.render() for note in imported.notes)
    assert "acme-bridge" in messages and "x-custom-flag" in messages and "internal_cluster_id" in messages
    # the upstream's URI holds a password: a variable to set, named in the report and atop the file
    assert "vhost-t-new-iot.yaml: URIs with credentials are written as ${env:NAME}" in messages
    assert "UPSTREAM_ORIGIN_URI" in messages
    text = imported.files["vhost-t-new-iot.yaml"]
    assert "# URIs with credentials are not in this file: set UPSTREAM_ORIGIN_URI" in text
    assert "uri: ${env:UPSTREAM_ORIGIN_URI}" in text
    assert "fed-secret" not in messages + "".join(imported.files.values())


def test_a_components_kind_plugs_in_through_vhost_components(monkeypatch: pytest.MonkeyPatch) -> None:
    """The extension point: the components definitions.py reads are imported (shovels and federation, added
    by their kinds), the others reported: the report follows the tuple."""
    assert {"shovel", "federation-upstream", "federation-upstream-set"} <= set(VHOST_COMPONENTS)
    monkeypatch.setattr("topo.importer.VHOST_COMPONENTS", tuple(c for c in VHOST_COMPONENTS if c != "shovel"))
    imported = import_definitions(document(OLD))
    assert any("'shovel' are not managed" in note.message for note in imported.notes)


def test_hashes_stay_out_unless_asked() -> None:
    for fixture, stored in ((OLD, OLD_HASH), (NEW, NEW_HASH)):
        plain = import_definitions(document(fixture))
        text = "".join(plain.files.values()) + plain.report(fixture.name)
        assert stored not in text
        assert "password: ${env:USER_T_" in plain.files[ACCESS_FILE]
        assert "# USER_T_" in plain.files[ACCESS_FILE]  # the comment that names the variables to set
        kept = import_definitions(document(fixture), password_hashes=True)
        assert stored in kept.files[ACCESS_FILE]
        assert "SENSITIVE" in kept.files[ACCESS_FILE]


def test_a_single_vhost_export_needs_its_name() -> None:
    single = {"rabbit_version": "3.10.8", "queues": [{"name": "q", "durable": True, "arguments": {}}]}
    with pytest.raises(UsageError, match=r"queues\[0\]: names no vhost") as info:
        import_definitions(single)
    assert "--vhost" in (info.value.hint or "")
    imported = import_definitions(single, vhost="shop")
    assert list(imported.topology.vhosts["shop"].queues) == ["q"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{\n  "queues": [\n    {"name": "q",}\n  ]\n}', r"defs.json:3:18: not valid JSON"),
        ("[]", "not a RabbitMQ definitions file"),
        ('{"version": 1, "vhosts_": {}}', "not a RabbitMQ definitions file"),
        ('{"queues": {"q": {}}}', "queues: a list was expected, not dict"),
        ('{"queues": [1]}', r"queues\[0\]: an object was expected"),
        ('{"users": [{"tags": []}]}', r"users\[0\]: no 'name'"),
    ],
)
def test_bad_input_is_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_definitions(text, "defs.json")


def test_cli_writes_reports_and_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = topo("import", str(OLD), "-o", str(out))
    assert code == 0, stderr
    assert stdout == ""
    assert sorted(p.name for p in out.iterdir()) == [ACCESS_FILE, REPORT_FILE, "vhost-t-old-shop.yaml"]
    assert stderr == (out / REPORT_FILE).read_text()
    assert 'parameters[0] (vhost "t-old-shop", acme-bridge "legacy-bridge")' in stderr
    load(out, secrets=False)
    before = (out / ACCESS_FILE).read_text()
    code, _, stderr = topo("import", str(OLD), "-o", str(out), "--include-password-hashes")
    assert code == 1
    assert f"Error: {out} already holds access-control.yaml, import-report.txt, vhost-t-old-shop.yaml" in stderr
    assert "--force" in stderr and "Traceback" not in stderr
    assert (out / ACCESS_FILE).read_text() == before
    code, _, stderr = topo("import", str(OLD), "-o", str(out), "--include-password-hashes", "--force")
    assert code == 0, stderr
    assert OLD_HASH in (out / ACCESS_FILE).read_text()


def test_cli_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"queues": [\n  {"name": "q"\n]}')
    code, _, stderr = topo("import", str(bad), "-o", str(tmp_path / "o"))
    assert code == 1 and f"Error: {bad}:3:1: not valid JSON" in stderr, stderr
    code, _, stderr = topo("import", str(tmp_path / "missing.json"), "-o", str(tmp_path / "o"))
    assert code == 1 and "cannot read" in stderr and "Traceback" not in stderr, stderr
    assert not (tmp_path / "o").exists()


def test_hashes_without_their_algorithm_and_hashes_the_broker_could_not_use() -> None:
    """Before RabbitMQ 3.6 an export named no algorithm (MD5): the hash's length says which; a hash that is no
    hash is left out (the user's password is then not managed), and each is reported without the hash."""
    from topo.passwords import hash_password, matches

    md5 = hash_password("old-md5", "rabbit_password_hashing_md5", salt=b"\x09\x09\x09\x09")
    document = {
        "rabbit_version": "3.5.7",
        "vhosts": [{"name": "/"}],
        "users": [
            {"name": "md5", "password_hash": md5, "tags": "administrator"},
            {"name": "broken", "password_hash": "not base64!", "tags": ""},
        ],
        "permissions": [{"user": "md5", "vhost": "elsewhere", "configure": ".*", "write": ".*", "read": ".*"}],
    }
    imported = import_definitions(document, password_hashes=True)
    stored = imported.topology.users["md5"].password_hash
    assert stored is not None and stored.algorithm == "rabbit_password_hashing_md5"
    assert matches("old-md5", stored.value, stored.algorithm)
    assert imported.topology.users["broken"].password_hash is None
    notes = {note.place: note.message for note in imported.notes}
    assert "as the hash's length says" in notes['users[0] (user "md5")']
    assert "not base64" in notes['users[1] (user "broken")'] and "left out" in notes['users[1] (user "broken")']
    assert "kept" in notes['permissions[0] (vhost "elsewhere", user "md5")']
    assert ("md5", "elsewhere") in imported.topology.permissions
    assert "not base64!" not in imported.report("x") and md5 not in imported.report("x")
    assert "hashing-algorithm: rabbit_password_hashing_md5" in imported.files[ACCESS_FILE]


def test_file_names_of_vhosts_are_safe_and_distinct() -> None:
    document = {"vhosts": [{"name": "/"}, {"name": "a/b"}, {"name": "a_b"}, {"name": "../etc"}, {"name": "Ünï"}]}
    names = list(import_definitions(document).files)
    assert names == [
        "vhost-default.yaml",
        "vhost-a_b.yaml",
        "vhost-a_b-2.yaml",
        "vhost-etc.yaml",
        "vhost-Ünï.yaml",
    ]


def test_files_that_would_not_load_back_are_not_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What topo writes it must read back: a bug there is one error, before any file is written."""
    monkeypatch.setattr("topo.importer.export_yaml", lambda *_a, **_k: "version: 2\n")
    code, _, stderr = topo("import", str(OLD), "-o", str(tmp_path / "out"))
    assert code == 1 and "Error: the imported files do not load back" in stderr, stderr
    assert not (tmp_path / "out").exists()
