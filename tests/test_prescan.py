"""The scan that lets a plan start reading the broker before the files are parsed (topo/loader/prescan.py),
and the concurrent read it feeds (topo.broker.reader.ConcurrentRead), on the in-memory broker: what the scan
guesses never changes a plan, only when its reads start."""

from __future__ import annotations

import textwrap
from pathlib import Path

from fakebroker import FakeRabbit

from topo import engine
from topo.broker.reader import ConcurrentRead
from topo.loader.prescan import Declared, prescan, scan_text
from topo.model import Topology, VHost


def scan(text: str) -> Declared:
    return scan_text(textwrap.dedent(text))


def test_block_style_names_plain_and_quoted_with_comments_and_blank_lines() -> None:
    found = scan(
        """\
        version: 1   # a comment
        vhosts:
          # the shop
          shop:
            queues:
              orders: {}
              vhosts: {}          # a queue named vhosts is no vhost

          "/":
            exchanges: {}
          'it''s': {}
          "tab\\tbed": {}
        users:
          app: {}
        """
    )
    assert found.vhosts == ["shop", "/", "it's", "tab\tbed"]
    assert {"version", "vhosts", "users"} <= found.keys
    assert "queues" not in found.keys


def test_what_the_scan_cannot_tell_is_left_out_for_the_loader() -> None:
    assert scan("vhosts: {a: {}, b: {}}\n").vhosts == []  # flow style
    assert scan("vhosts:\n  ${var:ENV}-shop: {}\n  plain: {}\n").vhosts == ["plain"]  # a variable in the name
    assert scan("vhosts:\n  *ref: {}\n  ? complex\n  : {}\n").vhosts == []  # an alias, a complex key
    assert scan("top:\n  vhosts:\n    x: {}\n").vhosts == []  # not at the top level
    assert scan("vhosts:\n").vhosts == []


def test_several_files_and_sections_each_name_once(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("vhosts:\n  one: {}\n  two: {}\n")
    (tmp_path / "b.yml").write_text("vhosts:\n    two: {}\n    three: {}\nglobal-parameters:\n  x: 1\n")
    (tmp_path / "notes.txt").write_text("vhosts:\n  nope: {}\n")
    found = prescan(tmp_path)
    assert found.vhosts == ["one", "two", "three"]
    assert "global-parameters" in found.keys


def test_a_file_it_cannot_read_is_the_loaders_to_report(tmp_path: Path) -> None:
    (tmp_path / "big.yaml").write_text("vhosts:\n  big: {}\n" + "#" * 100)
    (tmp_path / "binary.yaml").write_bytes(b"vhosts:\n  \xff\xfe: {}\n")
    assert prescan(tmp_path, max_file_size=50).vhosts == []
    assert prescan(tmp_path / "missing.yaml").vhosts == []


# -- the plan: the scan decides when reads start, never what is compared ----------------------------------


def fake_with(*vhosts: str) -> FakeRabbit:
    fake = FakeRabbit()
    client = fake.client()
    for name in vhosts:
        client.put(f"/vhosts/{name}", {})
    fake.log.clear()
    return fake


def test_a_plan_reads_what_the_files_declare_whatever_the_scan_found(tmp_path: Path) -> None:
    fake = fake_with("shop", "flow")
    # block style (the scan finds it) and flow style (only the loader's hook does): both read, once each
    (tmp_path / "a.yaml").write_text("version: 1\nvhosts:\n  shop:\n    queues:\n      orders: {}\n")
    (tmp_path / "b.yaml").write_text("version: 1\nvhosts: {flow: {queues: {jobs: {}}}}\n")
    desired, plan = engine.load_and_plan(fake.broker(), tmp_path)
    assert sorted(desired.vhosts) == ["flow", "shop"]
    assert sorted(str(c.address) for c in plan.changes) == ["vhosts.flow.queues.jobs", "vhosts.shop.queues.orders"]
    assert sorted(e for e in fake.log if e.startswith("GET /definitions")) == [
        "GET /definitions/flow",
        "GET /definitions/shop",
    ]


def test_only_the_vhosts_asked_for_are_read(tmp_path: Path) -> None:
    fake = fake_with("a", "b")
    (tmp_path / "t.yaml").write_text("version: 1\nvhosts:\n  a: {}\n  b: {}\nusers:\n  u:\n    password-hash: ''\n")
    desired, plan = engine.load_and_plan(fake.broker(), tmp_path, only=["a"])
    assert list(desired.vhosts) == ["a"] and plan.vhosts == ("a",)
    assert not [e for e in fake.log if e.endswith("/b") or e == "GET /users"]  # nor the users: --vhost


def test_a_read_started_for_a_guess_the_files_do_not_confirm_is_left_out() -> None:
    fake = fake_with("kept")
    fake.fail("GET", r"^/definitions/guessed$", status=500)
    with ConcurrentRead(fake.broker()) as reads:
        reads.vhosts(["guessed", "kept"])
        reads.collections(["users"])  # the files turn out to declare no users: its reads are not waited for
        observed = reads.observed(Topology({"kept": VHost("kept")}))
    assert list(observed.topology.vhosts) == ["kept"] and not observed.missing
    assert observed.not_compared == ()


def test_one_more_read_joins_the_others() -> None:
    fake = fake_with("v")
    broker = fake.broker()
    with ConcurrentRead(broker) as reads:
        reads.start("cluster", lambda: broker.overview().cluster_name)
        reads.vhosts(["v"])
        assert reads.result("cluster") == "rabbit@fake"
