"""``topo graph``: Mermaid and dot output pinned by golden files (TOPO_UPDATE_GOLDEN=1 rewrites them)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support import check_golden

from topo.graph import GraphvizNotFound, render_dot, render_mermaid, render_svg, vhost_graph
from topo.loader import load

ROOT = Path(__file__).parent.parent
GOLDEN = Path(__file__).parent / "golden" / "graph"
SOURCES = {
    "iot": ROOT / "topologies" / "iot.yaml",
    "work-queue": ROOT / "topologies" / "work-queue.yaml",
    "links": ROOT / "topologies" / "links.yaml",
    "tricky": GOLDEN / "tricky.yaml",
}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_mermaid_golden(name: str) -> None:
    check_golden(f"graph/{name}.mmd", render_mermaid(load(SOURCES[name])))


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_dot_golden(name: str) -> None:
    check_golden(f"graph/{name}.dot", render_dot(load(SOURCES[name])))


def test_edges_of_every_kind() -> None:
    topology = load(SOURCES["tricky"])
    graph = vhost_graph(topology.vhost("/"))
    names = {n.id: n.name for n in graph.nodes}
    kinds = {(names[e.source], names[e.target], e.kind, e.label) for e in graph.edges}
    assert ('say "hi"', "back", "alternate-exchange", "alternate") in kinds
    assert ("q<1>", "(default exchange)", "dead-letter", "dead letter: parked") in kinds
    assert ("amq.topic", "q<1>", "binding", "*.b") in kinds
    assert ("h", "q<1>", "binding", "any: n=1, ok=true") in kinds


def test_retries_are_drawn_as_a_loop_back_to_the_work_queue() -> None:
    # the runtime sends a failed message to <queue>.retry.N; it expires there and dead-letters through the
    # exchange the loader declares for it (the default exchange) back to the work queue: no dead ends
    graph = vhost_graph(load(SOURCES["work-queue"]).vhost("jobs"))
    names = {n.id: n.name for n in graph.nodes}
    edges = {(names[e.source], names[e.target], e.kind, e.label) for e in graph.edges}
    assert ("thumbnails", "thumbnails.retry.1", "retry", "retry 1 after 5s") in edges
    assert ("thumbnails", "thumbnails.retry.2", "retry", "retry 2 after 1m") in edges
    assert ("thumbnails.retry.1", "(default exchange)", "dead-letter", "expires after 5s: thumbnails") in edges
    assert ("thumbnails.retry.2", "(default exchange)", "dead-letter", "expires after 1m: thumbnails") in edges
    assert ("(default exchange)", "thumbnails", "binding", "thumbnails") in edges
    assert ("thumbnails", "jobs.dlx", "dead-letter", "dead letter: thumbnails") in edges


def test_the_default_exchange_routes_dead_letters_to_the_queue_its_key_names() -> None:
    graph = vhost_graph(load(SOURCES["tricky"]).vhost("/"))
    names = {n.id: n.name for n in graph.nodes}
    edges = {(names[e.source], names[e.target], e.kind, e.label) for e in graph.edges}
    assert ("(default exchange)", "parked", "binding", "parked") in edges


def test_only_one_vhost() -> None:
    text = render_mermaid(load(SOURCES["tricky"]), ["other"])
    assert "solo" in text and "parked" not in text


def test_svg_without_graphviz_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(GraphvizNotFound) as info:
        render_svg(load(SOURCES["iot"]))
    assert "apt-get install graphviz" in (info.value.hint or "")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_svg_with_graphviz() -> None:
    svg = render_svg(load(SOURCES["iot"]))
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and ">dlx<" in svg
