"""``topo graph``: draw a topology as Mermaid or Graphviz (dot, and SVG through Graphviz's ``dot``).

Exchanges and queues are nodes (a vhost is a box around its own); bindings are solid edges labelled with
their routing key (or the headers they match); alternate-exchange edges are thick and dead-letter edges
dashed, each labelled, so the paths a message can take besides the bindings stand out. The default
exchange routes to the queue its key names: where a queue dead-letters to it with a key that names a
declared queue, that edge is drawn too. A queue with ``retry:`` has a dotted edge to each of its retry
delay queues, which expire the message back to it through the exchange the loader declares for them, so a
retry reads as a loop, not a dead end. Shovels and federation between vhosts of the same broker (their
URIs name no host: :mod:`topo.routing.links`) are edges from vhost to vhost: a shovel from its source queue
(or exchange) to its destination, labelled ``shovel NAME``; a federated exchange from its upstream exchange,
labelled ``federation: UPSTREAM``.

Mermaid output renders in GitHub pull requests and issues (in a ```` ```mermaid ```` block).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from topo.errors import GraphError, GraphvizNotFound
from topo.model import BUILTIN_EXCHANGES, Binding, Exchange, Queue, Topology, VHost
from topo.routing import dead_letter_target, effective_alternate_exchange, topology_links
from topo.units import format_duration

__all__ = [
    "FORMATS",
    "GraphError",
    "GraphvizNotFound",
    "render",
    "render_dot",
    "render_mermaid",
    "render_svg",
    "vhost_graph",
]

FORMATS = ("mermaid", "dot", "svg")
EdgeKind = Literal["binding", "alternate-exchange", "dead-letter", "retry", "link"]


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    kind: Literal["exchange", "queue"]
    name: str
    detail: str  # exchange type / queue type, plus "internal"
    internal: bool = False


@dataclass(frozen=True, slots=True)
class Edge:
    source: str  # node ids
    target: str
    kind: EdgeKind
    label: str


@dataclass(frozen=True, slots=True)
class VHostGraph:
    id: str
    vhost: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]


def _binding_label(binding: Binding, exchange: Exchange | None) -> str:
    kind = exchange.type if exchange is not None else "direct"
    if kind == "fanout":
        return ""
    if kind == "headers":
        args = dict(binding.arguments)
        mode = args.pop("x-match", "all")
        shown = ", ".join(f"{k}={_scalar(v)}" for k, v in sorted(args.items()))
        return f"{mode}: {shown}" if shown else str(mode)
    return binding.routing_key if binding.routing_key != "" else '""'


def _delay(queue: Queue) -> str | None:
    """A retry delay queue's delay as the files write it (``5s``), from its TTL."""
    ttl = queue.arguments.get("x-message-ttl")
    if isinstance(ttl, int) and not isinstance(ttl, bool):
        return str(format_duration(ttl)) if ttl else "0ms"
    return None


def _scalar(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def vhost_graph(vhost: VHost, index: int = 0) -> VHostGraph:
    """The nodes and edges of one vhost; node ids are ``v<index>_x<n>`` / ``v<index>_q<n>``."""
    exchanges: dict[str, Exchange] = dict(vhost.exchanges)
    referenced = {b.source for b in vhost.bindings.values()}
    referenced |= {b.destination for b in vhost.bindings.values() if b.destination_type == "exchange"}
    for x in vhost.exchanges.values():
        ae = effective_alternate_exchange(vhost, x)
        if ae is not None:
            referenced.add(ae)
    for q in vhost.queues.values():
        dlx, _ = dead_letter_target(vhost, q)
        if dlx is not None:
            referenced.add(dlx)
    for name in sorted(referenced - set(exchanges)):
        builtin = BUILTIN_EXCHANGES.get(name)
        if name == "":
            exchanges[""] = Exchange("", "direct")
        else:
            exchanges[name] = builtin if builtin is not None else Exchange(name, "undeclared")
    ids: dict[tuple[str, str], str] = {}
    nodes: list[Node] = []
    for n, name in enumerate(sorted(exchanges)):
        x = exchanges[name]
        ids[("exchange", name)] = f"v{index}_x{n}"
        detail = x.type + (", internal" if x.internal else "")
        nodes.append(Node(f"v{index}_x{n}", "exchange", name or "(default exchange)", detail, x.internal))
    for n, name in enumerate(sorted(vhost.queues)):
        ids[("queue", name)] = f"v{index}_q{n}"
        nodes.append(Node(f"v{index}_q{n}", "queue", name, vhost.queues[name].type))
    out: list[Edge] = []
    for b in sorted(vhost.bindings.values(), key=lambda b: b.key):
        target = ids.get((b.destination_type, b.destination))
        if target is None:
            continue
        out.append(Edge(ids[("exchange", b.source)], target, "binding", _binding_label(b, exchanges.get(b.source))))
    for name in sorted(vhost.exchanges):
        ae = effective_alternate_exchange(vhost, vhost.exchanges[name])
        if ae is not None:
            out.append(Edge(ids[("exchange", name)], ids[("exchange", ae)], "alternate-exchange", "alternate"))
    default_routes: set[str] = set()  # queues the default exchange routes dead letters to
    for name in sorted(vhost.queues):
        queue = vhost.queues[name]
        dlx, dlrk = dead_letter_target(vhost, queue)
        if dlx is not None:
            label = f"dead letter: {dlrk}" if dlrk is not None else "dead letter"
            delay = _delay(queue) if queue.generated_by is not None else None
            if delay is not None:  # nothing consumes a retry delay queue: its messages leave by expiring
                label = f"expires after {delay}" + (f": {dlrk}" if dlrk is not None else "")
            out.append(Edge(ids[("queue", name)], ids[("exchange", dlx)], "dead-letter", label))
            if dlx == "" and dlrk is not None and dlrk in vhost.queues:
                default_routes.add(dlrk)
    for name in sorted(default_routes):  # the default exchange's implicit binding: key = queue name
        out.append(Edge(ids[("exchange", "")], ids[("queue", name)], "binding", name))
    retries: dict[str, list[str]] = {}
    for name, queue in vhost.queues.items():
        if queue.generated_by is not None and queue.generated_by in vhost.queues:
            retries.setdefault(queue.generated_by, []).append(name)
    for owner in sorted(retries):
        for attempt, name in enumerate(sorted(retries[owner], key=_natural), start=1):
            delay = _delay(vhost.queues[name])
            label = f"retry {attempt}" + (f" after {delay}" if delay is not None else "")
            out.append(Edge(ids[("queue", owner)], ids[("queue", name)], "retry", label))
    return VHostGraph(f"v{index}", vhost.name, tuple(nodes), tuple(out))


def _natural(name: str) -> tuple[str, int]:
    """``q.retry.10`` after ``q.retry.9``."""
    head, _, tail = name.rpartition(".")
    return (head, int(tail)) if tail.isdigit() else (name, 0)


def _graphs(topology: Topology, vhosts: Iterable[str] | None) -> list[VHostGraph]:
    names = list(vhosts) if vhosts else sorted(topology.vhosts)
    return [vhost_graph(topology.vhost(name), i) for i, name in enumerate(names)]


def link_edges(topology: Topology, graphs: Iterable[VHostGraph]) -> list[Edge]:
    """The shovels and federation links between the drawn vhosts, as edges between their nodes (a link
    whose end is not drawn, or not declared, has none)."""
    ids: dict[tuple[str, str, str], str] = {}
    for graph in graphs:
        for node in graph.nodes:
            name = "" if node.kind == "exchange" and node.name == "(default exchange)" else node.name
            ids[(graph.vhost, node.kind, name)] = node.id
    out = []
    for link in topology_links(topology):
        if link.destination_type is None or link.destination is None:
            continue  # the message keeps its exchange: which one is the publisher's
        source = ids.get((link.source_vhost, link.source_type, link.source))
        target = ids.get((link.destination_vhost, link.destination_type, link.destination))
        if source is not None and target is not None:
            label = link.label() + (f": {link.destination_key}" if link.destination_key is not None else "")
            out.append(Edge(source, target, "link", label))
    return out


# -- Mermaid ------------------------------------------------------------------------------------------


def _mermaid_text(text: str) -> str:
    for raw, entity in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(raw, entity)
    return text


_MERMAID_ARROW = {
    "binding": ("--", "-->"),
    "alternate-exchange": ("==", "==>"),
    "dead-letter": ("-.", ".->"),
    "retry": ("-.", ".->"),
    "link": ("==", "==>"),
}


def _mermaid_edge(lines: list[str], links: dict[str, list[int]], edge: Edge, index: int) -> int:
    """Write one edge; note its index for the link styles; the next index."""
    start, end = _MERMAID_ARROW[edge.kind]
    if edge.label:
        lines.append(f'  {edge.source} {start} "{_mermaid_text(edge.label)}" {end} {edge.target}')
    else:
        lines.append(f"  {edge.source} {end} {edge.target}")
    if edge.kind in links:
        links[edge.kind].append(index)
    return index + 1


def render_mermaid(topology: Topology, vhosts: Iterable[str] | None = None) -> str:
    """A Mermaid flowchart (``flowchart LR``) of the topology, one subgraph per vhost."""
    lines = ["flowchart LR"]
    classes: dict[str, list[str]] = {"exchange": [], "queue": [], "internal": []}
    links: dict[str, list[int]] = {"alternate-exchange": [], "dead-letter": [], "retry": [], "link": []}
    link = 0
    graphs = _graphs(topology, vhosts)
    for graph in graphs:
        lines.append(f'  subgraph {graph.id}["vhost {_mermaid_text(graph.vhost)}"]')
        for node in graph.nodes:
            label = f"{_mermaid_text(node.name)}<br/>({_mermaid_text(node.detail)})"
            shape = f'{{{{"{label}"}}}}' if node.kind == "exchange" else f'[("{label}")]'
            lines.append(f"    {node.id}{shape}")
            classes[node.kind].append(node.id)
            if node.internal:
                classes["internal"].append(node.id)
        lines.append("  end")
        for edge in graph.edges:
            link = _mermaid_edge(lines, links, edge, link)
    for edge in link_edges(topology, graphs):
        link = _mermaid_edge(lines, links, edge, link)
    lines.append("  classDef exchange fill:#fff3e0,stroke:#e65100,color:#000")
    lines.append("  classDef queue fill:#e3f2fd,stroke:#0d47a1,color:#000")
    lines.append("  classDef internal stroke-dasharray:4 3")
    for name, members in classes.items():
        if members:
            lines.append(f"  class {','.join(members)} {name}")
    if links["alternate-exchange"]:
        lines.append(f"  linkStyle {','.join(map(str, links['alternate-exchange']))} stroke:#e65100")
    if links["dead-letter"]:
        lines.append(f"  linkStyle {','.join(map(str, links['dead-letter']))} stroke:#b71c1c")
    if links["retry"]:
        lines.append(f"  linkStyle {','.join(map(str, links['retry']))} stroke:#6a1b9a")
    if links["link"]:
        lines.append(f"  linkStyle {','.join(map(str, links['link']))} stroke:#2e7d32")
    return "\n".join(lines) + "\n"


# -- Graphviz ------------------------------------------------------------------------------------------


def _dot_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


_DOT_EDGE = {
    "binding": "",
    "alternate-exchange": ', style=bold, color="#e65100", fontcolor="#e65100"',
    "dead-letter": ', style=dashed, color="#b71c1c", fontcolor="#b71c1c"',
    "retry": ', style=dotted, color="#6a1b9a", fontcolor="#6a1b9a"',
    "link": ', style=bold, color="#2e7d32", fontcolor="#2e7d32"',
}


def render_dot(topology: Topology, vhosts: Iterable[str] | None = None) -> str:
    """A Graphviz digraph of the topology, one cluster per vhost."""
    lines = [
        "digraph topology {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    graphs = _graphs(topology, vhosts)
    for graph in graphs:
        lines.append(f"  subgraph cluster_{graph.id} {{")
        lines.append(f"    label={_dot_str('vhost ' + graph.vhost)};")
        for node in graph.nodes:
            label = _dot_str(f"{node.name}\n{node.detail}")
            if node.kind == "exchange":
                style = 'shape=hexagon, style="filled' + (',dashed"' if node.internal else '"')
                style += ', fillcolor="#fff3e0", color="#e65100"'
            else:
                style = 'shape=cylinder, style=filled, fillcolor="#e3f2fd", color="#0d47a1"'
            lines.append(f"    {node.id} [label={label}, {style}];")
        lines.append("  }")
        for edge in graph.edges:
            label = f"label={_dot_str(edge.label)}" if edge.label else 'label=""'
            lines.append(f"  {edge.source} -> {edge.target} [{label}{_DOT_EDGE[edge.kind]}];")
    for edge in link_edges(topology, graphs):
        lines.append(f"  {edge.source} -> {edge.target} [label={_dot_str(edge.label)}{_DOT_EDGE[edge.kind]}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_svg(topology: Topology, vhosts: Iterable[str] | None = None) -> str:
    """SVG drawn by Graphviz's ``dot``; :class:`GraphvizNotFound` says how to install it when absent."""
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizNotFound(
            "--format svg needs Graphviz's `dot` program, which is not installed",
            hint="install Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz), "
            "or use --format dot or --format mermaid",
        )
    try:
        done = subprocess.run(
            [dot, "-Tsvg"], input=render_dot(topology, vhosts), capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GraphError(f"Graphviz failed: {exc}") from exc
    if done.returncode != 0:
        raise GraphError(f"Graphviz failed (exit {done.returncode}): {done.stderr.strip()}")
    return done.stdout


def render(topology: Topology, fmt: str, vhosts: Iterable[str] | None = None) -> str:
    if fmt == "mermaid":
        return render_mermaid(topology, vhosts)
    if fmt == "dot":
        return render_dot(topology, vhosts)
    if fmt == "svg":
        return render_svg(topology, vhosts)
    raise ValueError(f"unknown graph format {fmt!r}")
