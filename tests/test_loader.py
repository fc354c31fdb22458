"""The loader end to end: the format's full example, several files, discovery, YAML-level problems.

Checks of single rules are in test_loader_checks.py, interpolation in test_loader_interpolation.py,
hostile inputs in test_loader_robustness.py, the pinned output in test_loader_golden.py.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import topo
from topo.errors import Problem, ValidationError
from topo.loader import load
from topo.model import Binding, Exchange, Origin, Policy, Queue, Topology, VHost

FIXTURES = Path(__file__).parent / "fixtures" / "loader"
EXAMPLE = FIXTURES / "example"


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(paths: object, **kwargs: object) -> list[Problem]:
    with pytest.raises(ValidationError) as info:
        load(paths, **kwargs)  # type: ignore[arg-type]
    return info.value.problems


# -- the format's example ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example() -> Topology:
    return load(EXAMPLE)


def expected_iot() -> VHost:
    vhost = VHost(
        "iot",
        description="Sensor ingestion",
        tags=("iot",),
        limits={"max-connections": 500, "max-queues": 1000},
        exchanges={
            "sensor-data": Exchange("sensor-data", "topic"),
            "dlx": Exchange("dlx", "direct"),
            "unrouted": Exchange("unrouted", "fanout"),
            "uploads": Exchange("uploads", "headers", arguments={"alternate-exchange": "unrouted"}),
            "audit": Exchange("audit", "fanout", internal=True),
        },
        queues={
            "analytics": Queue(
                "analytics",
                type="quorum",
                arguments={
                    "x-dead-letter-exchange": "dlx",
                    "x-dead-letter-routing-key": "analytics.failed",
                    "x-delivery-limit": 5,
                },
            ),
            "orders": Queue(
                "orders",
                arguments={
                    "x-message-ttl": 86_400_000,
                    "x-max-length": 100_000,
                    "x-overflow": "reject-publish",
                    "x-dead-letter-exchange": "dlx",
                    "x-dead-letter-routing-key": "orders.failed",
                },
            ),
            "tasks": Queue("tasks", arguments={"x-max-priority": 10}),
            "pdf-jobs": Queue("pdf-jobs"),
            "dead-letters": Queue("dead-letters"),
            "legacy": Queue("legacy", arguments={"x-queue-mode": "lazy"}),
        },
        policies={
            "tmp-limits": Policy(
                "tmp-limits",
                pattern=r"^tmp\.",
                apply_to="queues",
                priority=10,
                definition={"message-ttl": 300_000, "max-length-bytes": 10_485_760},
            )
        },
        operator_policies={
            "cap-length": Policy("cap-length", pattern=".*", apply_to="queues", definition={"max-length": 1_000_000})
        },
    )
    for binding in (
        Binding("sensor-data", "audit", "exchange", "#"),
        Binding("sensor-data", "analytics", "queue", "sensor.#"),
        Binding("uploads", "pdf-jobs", "queue", "", {"x-match": "all", "format": "pdf", "kind": "report"}),
        Binding("dlx", "dead-letters", "queue", "orders.failed"),
        Binding("dlx", "dead-letters", "queue", "analytics.failed"),
    ):
        vhost.add_binding(binding)
    return vhost


def test_example_loads_to_the_expected_topology(example: Topology) -> None:
    assert example.name == "iot-platform"
    assert example.version == 1
    assert list(example.vhosts) == ["iot"]
    assert example.vhosts["iot"] == expected_iot()


def test_example_units_reach_the_broker_types(example: Topology) -> None:
    iot = example.vhosts["iot"]
    ttl = iot.queues["orders"].arguments["x-message-ttl"]
    assert ttl == 86_400_000 and type(ttl) is int  # 24h
    size = iot.policies["tmp-limits"].definition["max-length-bytes"]
    assert size == 10_485_760 and type(size) is int  # 10MiB
    assert iot.policies["tmp-limits"].definition["message-ttl"] == 300_000  # 5m


def test_example_defaults_are_the_production_ones(example: Topology) -> None:
    iot = example.vhosts["iot"]
    for exchange in iot.exchanges.values():
        assert exchange.durable and not exchange.auto_delete
    for queue in iot.queues.values():
        assert queue.durable and not queue.auto_delete
    assert not iot.exchanges["sensor-data"].internal
    assert iot.queues["orders"].type == "classic"


def test_example_quorum_queue_type_is_not_an_argument(example: Topology) -> None:
    analytics = example.vhosts["iot"].queues["analytics"]
    assert analytics.type == "quorum"
    assert "x-queue-type" not in analytics.arguments
    assert analytics.dead_letter_exchange == "dlx"
    assert analytics.dead_letter_routing_key == "analytics.failed"


def test_example_headers_binding(example: Topology) -> None:
    (binding,) = example.vhosts["iot"].bindings_to("pdf-jobs", "queue")
    assert binding.source == "uploads"
    assert binding.routing_key == ""
    assert dict(binding.arguments) == {"x-match": "all", "format": "pdf", "kind": "report"}


def test_example_exchange_to_exchange_binding(example: Topology) -> None:
    (binding,) = example.vhosts["iot"].bindings_to("audit", "exchange")
    assert (binding.source, binding.destination_type, binding.routing_key) == ("sensor-data", "exchange", "#")
    assert {b.destination for b in example.vhosts["iot"].bindings_from("sensor-data")} == {"audit", "analytics"}


def test_example_alternate_exchange(example: Topology) -> None:
    assert example.vhosts["iot"].exchanges["uploads"].alternate_exchange == "unrouted"


def test_example_origins_point_at_the_declarations(example: Topology) -> None:
    iot = example.vhosts["iot"]
    file = str(EXAMPLE / "iot.yaml")
    lines = (EXAMPLE / "iot.yaml").read_text(encoding="utf-8").splitlines()

    def line_of(text: str) -> int:
        return next(i for i, line in enumerate(lines, start=1) if line.strip().startswith(text))

    assert iot.origin == Origin(file, line_of("iot:"), 3)
    assert iot.queues["orders"].origin == Origin(file, line_of("orders:"), 7)
    assert iot.exchanges["audit"].origin == Origin(file, line_of("audit:"), 7)
    assert iot.policies["tmp-limits"].origin == Origin(file, line_of("tmp-limits:"), 7)
    (binding,) = iot.bindings_to("pdf-jobs", "queue")
    assert binding.origin is not None and binding.origin.line == line_of("- {exchange: uploads")


def test_library_entry_point() -> None:
    # topo.load is the documented entry point; a single path or a list of paths
    assert topo.load(EXAMPLE) == load([EXAMPLE])
    assert topo.load(str(EXAMPLE / "iot.yaml")).name == "iot-platform"


def test_origins_never_take_part_in_comparisons(tmp_path: Path) -> None:
    body = "version: 1\nvhosts:\n  v:\n    queues:\n      q: {max-length: 5}\n"
    a = write(tmp_path, "a.yaml", body)
    b = write(tmp_path, "b.yaml", "\n\n" + body)
    assert load(a) == load(b)


# -- several files -----------------------------------------------------------------------------------


def test_a_vhost_spread_over_files_merges(tmp_path: Path) -> None:
    write(
        tmp_path,
        "exchanges.yaml",
        """\
        version: 1
        vhosts:
          iot:
            description: sensors
            exchanges:
              events: {type: topic}
        """,
    )
    write(
        tmp_path,
        "queues.yaml",
        """\
        version: 1
        vhosts:
          iot:
            queues:
              q: {bindings: [{exchange: events, routing-key: "a.#"}]}   # declared in the other file
          other:
            queues:
              r: {}
        """,
    )
    topology = load(tmp_path)
    iot = topology.vhosts["iot"]
    assert iot.description == "sensors"
    assert list(iot.exchanges) == ["events"]
    assert list(iot.queues) == ["q"]
    assert [b.key[:4] for b in iot.bindings.values()] == [("events", "queue", "q", "a.#")]
    assert sorted(topology.vhosts) == ["iot", "other"]


def test_a_resource_declared_in_two_files_names_both_places(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "version: 1\nvhosts:\n  v:\n    queues:\n      orders: {}\n")
    write(tmp_path, "b.yaml", "version: 1\nvhosts:\n  v:\n\n    queues:\n      orders: {max-length: 1}\n")
    (problem,) = problems(tmp_path)
    assert (problem.file, problem.line, problem.col) == (str(tmp_path / "b.yaml"), 6, 7)
    assert problem.path == "vhosts.v.queues.orders"
    assert "queue 'orders' is declared twice" in problem.message
    assert f"{tmp_path / 'a.yaml'}:5:7" in problem.message


@pytest.mark.parametrize(
    ("collection", "body"),
    [
        ("exchanges", "{type: direct}"),
        ("policies", "{pattern: a, definition: {max-length: 1}}"),
        ("operator-policies", "{pattern: a, definition: {max-length: 1}}"),
    ],
)
def test_every_kind_of_resource_declared_twice(tmp_path: Path, collection: str, body: str) -> None:
    text = f"version: 1\nvhosts:\n  v:\n    {collection}:\n      x: {body}\n"
    write(tmp_path, "a.yaml", text)
    write(tmp_path, "b.yaml", text)
    (problem,) = problems(tmp_path)
    assert "declared twice" in problem.message
    assert problem.file == str(tmp_path / "b.yaml")
    assert f"{tmp_path / 'a.yaml'}:5:7" in problem.message


def test_a_policy_and_an_operator_policy_may_share_a_name(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        """\
        version: 1
        vhosts:
          v:
            policies:
              limits: {pattern: a, definition: {max-length: 1}}
            operator-policies:
              limits: {pattern: a, definition: {max-length: 2}}
        """,
    )
    v = load(tmp_path).vhosts["v"]
    assert v.policies["limits"].definition == {"max-length": 1}
    assert v.operator_policies["limits"].definition == {"max-length": 2}


def test_vhost_metadata_declared_in_two_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "version: 1\nvhosts:\n  v:\n    limits: {max-queues: 1}\n")
    write(tmp_path, "b.yaml", "version: 1\nvhosts:\n  v:\n    limits: {max-queues: 2}\n")
    (problem,) = problems(tmp_path)
    assert problem.path == "vhosts.v.limits"
    assert "declared twice" in problem.message and str(tmp_path / "a.yaml") in problem.message


def test_files_disagreeing_on_the_stack_name(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "version: 1\nname: shop\nvhosts: {}\n")
    write(tmp_path, "b.yaml", "version: 1\nname: shop\nvhosts: {}\n")
    write(tmp_path, "c.yaml", "version: 1\nname: other\nvhosts: {}\n")
    (problem,) = problems(tmp_path)
    assert problem.file == str(tmp_path / "c.yaml") and problem.path == "name"
    assert "'other'" in problem.message and "'shop'" in problem.message


def test_a_file_without_vhosts_entries(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "version: 1\nvhosts: {}\n")
    assert load(tmp_path) == Topology()


# -- every problem at once, each with its place ------------------------------------------------------


def test_all_problems_of_all_files_are_reported_sorted(tmp_path: Path) -> None:
    write(
        tmp_path,
        "b.yaml",
        """\
        version: 1
        vhosts:
          v:
            queues:
              q1: {message-ttl: soon}
              q2: {type: quorum, max-priority: 5}
              q3: {bindings: [{exchange: missing}]}
        """,
    )
    write(
        tmp_path,
        "a.yaml",
        """\
        version: 1
        vhosts:
          v:
            exchanges:
              e: {type: direct, alternate-exchange: nowhere}
            queues:
              qa: {mesage-ttl: 5}
        """,
    )
    found = problems(tmp_path)
    assert [(Path(p.file or "").name, p.line) for p in found] == [
        ("a.yaml", 5),
        ("a.yaml", 7),
        ("b.yaml", 5),
        ("b.yaml", 6),
        ("b.yaml", 7),
    ]
    for problem in found:
        assert problem.file and problem.line and problem.col and problem.path, problem


def test_the_error_text_lists_each_problem_with_its_place(tmp_path: Path) -> None:
    file = write(tmp_path, "a.yaml", "version: 1\nvhosts:\n  v:\n    queues:\n      q: {max-length: -1, expires: 0}\n")
    with pytest.raises(ValidationError) as info:
        load(file)
    lines = str(info.value).splitlines()
    assert lines[0] == "2 problems in the topology:"
    assert lines[1] == f"  {file}:5:23: vhosts.v.queues.q.max-length: must be at least 0, got -1"
    assert lines[2] == f"  {file}:5:36: vhosts.v.queues.q.expires: must be at least 1, got 0"


def test_a_broken_resource_does_not_hide_problems_elsewhere(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        """\
        version: 1
        vhosts:
          v:
            exchanges:
              e: {type: nope}
            queues:
              q1: {bindings: [{exchange: e}]}          # e is broken, not missing: no second problem
              q2: {bindings: [{exchange: missing}]}
          w:
            queues:
              q: {dead-letter-exchange: gone}
        """,
    )
    found = problems(tmp_path)
    assert [(p.line, p.path) for p in found] == [
        (5, "vhosts.v.exchanges.e.type"),
        (8, 'vhosts.v.queues.q2.bindings[missing ""]'),
        (11, "vhosts.w.queues.q.dead-letter-exchange"),
    ]


# -- discovery ---------------------------------------------------------------------------------------


def test_directory_discovery(tmp_path: Path) -> None:
    for name in ("a.yaml", "nested/deeper/b.yml", "nested/c.yaml"):
        write(tmp_path, name, f"version: 1\nvhosts:\n  {Path(name).stem}: {{}}\n")
    for name in (".hidden/x.yaml", "nested/.git/y.yaml", ".dot.yaml", "notes.txt", "d.yaml.bak", "e.json"):
        write(tmp_path, name, "not: [valid")
    assert sorted(load(tmp_path).vhosts) == ["a", "b", "c"]


def test_several_paths_and_the_same_file_twice(tmp_path: Path) -> None:
    a = write(tmp_path, "one/a.yaml", "version: 1\nvhosts:\n  a: {}\n")
    write(tmp_path, "two/b.yaml", "version: 1\nvhosts:\n  b: {}\n")
    topology = load([tmp_path / "one", tmp_path / "two", a, str(a)])
    assert sorted(topology.vhosts) == ["a", "b"]


def test_a_directory_without_topology_files(tmp_path: Path) -> None:
    write(tmp_path, "readme.md", "hello")
    (problem,) = problems(tmp_path)
    assert problem.file == str(tmp_path)
    assert "no *.yaml or *.yml files" in problem.message
    assert problem.hint


def test_a_missing_path(tmp_path: Path) -> None:
    write(tmp_path, "ok.yaml", "version: 1\nvhosts: {}\n")
    (problem,) = problems([tmp_path / "ok.yaml", tmp_path / "nope"])
    assert problem.file == str(tmp_path / "nope")
    assert problem.message == "no such file or directory"


def test_a_file_given_by_name_needs_no_yaml_suffix(tmp_path: Path) -> None:
    file = write(tmp_path, "topology.txt", "version: 1\nvhosts:\n  v: {}\n")
    assert list(load(file).vhosts) == ["v"]


def test_discovery_order_is_stable(tmp_path: Path) -> None:
    # the first declaration wins and the second is the one reported: this must not depend on the OS
    for name in ("b/z.yaml", "a.yaml", "c.yml"):
        write(tmp_path, name, "version: 1\nvhosts:\n  v:\n    queues:\n      q: {}\n")
    found = problems(tmp_path)
    assert [Path(p.file or "").relative_to(tmp_path).as_posix() for p in found] == ["b/z.yaml", "c.yml"]
    assert all(str(tmp_path / "a.yaml") in p.message for p in found)


# -- YAML-level problems -----------------------------------------------------------------------------


def test_invalid_yaml_is_one_problem_with_its_line(tmp_path: Path) -> None:
    file = write(tmp_path, "a.yaml", "version: 1\nvhosts:\n  v:\n    queues: {q: [}\n")
    (problem,) = problems(file)
    assert problem.file == str(file)
    assert problem.line == 4 and problem.col is not None
    assert problem.message.startswith("invalid YAML: ")


def test_invalid_yaml_does_not_hide_other_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "version: 1\nvhosts: [\n")
    write(tmp_path, "b.yaml", "version: 1\nvhosts:\n  v:\n    queues:\n      q: {max-length: x}\n")
    found = problems(tmp_path)
    assert [Path(p.file or "").name for p in found] == ["a.yaml", "b.yaml"]


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n", "---\n...\n"])
def test_an_empty_file(tmp_path: Path, text: str) -> None:
    file = tmp_path / "a.yaml"
    file.write_text(text, encoding="utf-8")
    (problem,) = problems(file)
    assert problem.file == str(file)
    assert problem.message == "the file is empty"
    assert problem.hint and "version: 1" in problem.hint


def test_a_multi_document_file(tmp_path: Path) -> None:
    file = write(tmp_path, "a.yaml", "version: 1\nvhosts: {}\n---\nversion: 1\nvhosts: {}\n")
    (problem,) = problems(file)
    assert "several" in problem.message
    assert problem.line == 4  # where the second document starts
    assert problem.hint and "separate files" in problem.hint


def test_a_single_document_with_markers_is_fine(tmp_path: Path) -> None:
    file = write(tmp_path, "a.yaml", "---\nversion: 1\nvhosts:\n  v: {}\n...\n")
    assert list(load(file).vhosts) == ["v"]


def test_a_duplicate_key_in_a_mapping(tmp_path: Path) -> None:
    file = write(
        tmp_path,
        "a.yaml",
        """\
        version: 1
        vhosts:
          v:
            queues:
              orders: {max-length: 1}
              orders: {max-length: 2}
        """,
    )
    (problem,) = problems(file)
    assert (problem.line, problem.col, problem.path) == (6, 7, "vhosts.v.queues.orders")
    assert problem.message == "key 'orders' is given twice in the same mapping (first at line 5)"
    assert problem.hint and "only the last" in problem.hint


def test_a_duplicate_key_written_differently(tmp_path: Path) -> None:
    # `1:` and `"1":` are the same key once keys are read as text
    file = write(tmp_path, "a.yaml", "version: 1\nvhosts:\n  v:\n    queues:\n      1: {}\n      '1': {}\n")
    (problem,) = problems(file)
    assert "given twice" in problem.message and problem.line == 6


def test_keys_are_the_text_written(tmp_path: Path) -> None:
    # YAML 1.1 would read these keys as true, false, null, 16, 1.0: queue names are what the file says
    names = ["on", "no", "~", "0x10", "1.0"]
    queues = "".join(f"      {name}: {{}}\n" for name in names)
    file = write(tmp_path, "a.yaml", "version: 1\nvhosts:\n  v:\n    queues:\n" + queues)
    assert list(load(file).vhosts["v"].queues) == names


def test_vhost_named_slash(tmp_path: Path) -> None:
    file = write(tmp_path, "a.yaml", 'version: 1\nvhosts:\n  "/":\n    queues:\n      a.b: {}\n')
    assert list(load(file).vhosts["/"].queues) == ["a.b"]


def test_anchors_aliases_and_merge_keys(tmp_path: Path) -> None:
    file = write(
        tmp_path,
        "a.yaml",
        """\
        version: 1
        vhosts:
          v:
            queues:
              base: &work {max-length: 10, message-ttl: 1m}
              copy: *work
              merged: {<<: *work, message-ttl: 2m}
              both:
                <<: [*work, {overflow: reject-publish}]
        """,
    )
    queues = load(file).vhosts["v"].queues
    assert queues["copy"].arguments == {"x-max-length": 10, "x-message-ttl": 60_000}
    assert queues["merged"].arguments == {"x-max-length": 10, "x-message-ttl": 120_000}
    assert queues["both"].arguments == {"x-max-length": 10, "x-message-ttl": 60_000, "x-overflow": "reject-publish"}


def test_a_problem_inside_an_alias_is_reported_where_it_is_used(tmp_path: Path) -> None:
    file = write(
        tmp_path,
        "a.yaml",
        """\
        version: 1
        vhosts:
          v:
            queues:
              a: &bad {max-length: x}
              b: *bad
        """,
    )
    found = problems(file)
    assert [p.path for p in found] == ["vhosts.v.queues.a.max-length", "vhosts.v.queues.b.max-length"]
