"""Every code sample in the README and the docs runs, so that none can break unnoticed (issue 9.10).

The documents: README.md, docs/**/*.md, and the Markdown files the README links to. Whatever blocks they
hold when the tests run are found here; nothing is listed by hand.

- Each ```python block runs on its own, in a fresh interpreter started in the repository, with only
  what the block imports, against the test broker: the documented default URLs
  (``http://guest:guest@localhost:15672``, ``amqp://guest:guest@localhost:5672/``) are replaced by the
  test broker's, ``TOPO_URL``/``TOPO_AMQP_URL`` name it, and the examples of ``topologies/`` are applied
  to it first (their vhosts are removed afterwards). Connecting to the default ports of any other
  broker on this machine is refused, so a sample that would reach one fails instead.
- The ``$ topo ...`` lines of a shell block (``console``, ``sh``, or no language) run in order, in a
  copy of the repository's ``topologies/`` (the other ``$`` lines too when their program is installed:
  ``jq``), against the test broker, and must exit 0.
- Every ``topo.x.y`` named in inline code must resolve after a plain ``import topo``.

A block that cannot run says so in the Markdown, right above it, with its reason:
``<!-- not run by tests/test_docs.py: REASON -->``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import httpx
import pytest

import topo
from topo import engine
from topo.broker.client import ManagementClient
from topo.urls import parse

if TYPE_CHECKING:
    from conftest import Broker

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SKIP = re.compile(r"^<!--\s*not run by tests/test_docs\.py:\s*(?P<reason>\S.*?)\s*-->$")
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")
DEFAULT_HTTP = "http://guest:guest@localhost:15672"
DEFAULT_AMQP = "amqp://guest:guest@localhost:5672/"
SHELL_LANGUAGES = ("", "console", "sh", "shell", "bash", "shell-session")


def documents() -> list[Path]:
    """README.md, docs/**/*.md and the Markdown files README.md links to (in this repository)."""
    readme = ROOT / "README.md"
    found = [readme, *sorted((ROOT / "docs").rglob("*.md"))]
    for target in re.findall(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)", readme.read_text(encoding="utf-8")):
        path = (ROOT / target).resolve()
        if path.is_file() and ROOT in path.parents and path not in found:
            found.append(path)
    return found


@dataclass(frozen=True)
class Block:
    file: Path
    line: int  # of the opening fence, from 1
    language: str
    text: str
    skip: str | None  # the reason given in the Markdown, for a block that is not run

    @property
    def id(self) -> str:
        return f"{self.file.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> Iterator[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        fence = opening.group("fence")
        body: list[str] = []
        end = index + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            body.append(lines[end])
            end += 1
        previous = next((line.strip() for line in reversed(lines[:index]) if line.strip()), "")
        marker = SKIP.match(previous)
        yield Block(
            path,
            index + 1,
            opening.group("info").lower(),
            textwrap.dedent("\n".join(body)) + "\n",
            marker.group("reason") if marker else None,
        )
        index = end + 1


ALL_BLOCKS = [block for document in documents() for block in blocks(document)]
PYTHON_BLOCKS = [block for block in ALL_BLOCKS if block.language in ("python", "py")]
SHELL_BLOCKS = [
    block
    for block in ALL_BLOCKS
    if block.language in SHELL_LANGUAGES and any(line.startswith("$ topo ") for line in block.text.splitlines())
]


def test_the_documents_have_samples() -> None:
    """The search works: the README's library sample and its `$ topo plan` are among what is found."""
    assert any(block.file.name == "README.md" for block in PYTHON_BLOCKS), [b.id for b in ALL_BLOCKS]
    assert any(block.file.name == "README.md" for block in SHELL_BLOCKS), [b.id for b in ALL_BLOCKS]


def test_a_block_that_is_not_run_says_why() -> None:
    for block in ALL_BLOCKS:
        assert block.skip is None or len(block.skip) >= 20, f"{block.id}: give the reason it is not run"


# -- against the test broker -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def examples_applied(broker: Broker, mgmt: httpx.Client) -> Iterator[None]:
    """topologies/ applied to the test broker, as the samples assume; its vhosts are removed afterwards."""
    topology = topo.load(ROOT / "topologies")
    taken = {v["name"] for v in mgmt.get("/api/vhosts").json()} & set(topology.vhosts)
    assert not taken, f"the test broker already has the examples' vhosts {sorted(taken)}: not touching them"
    taken = {u["name"] for u in mgmt.get("/api/users").json()} & set(topology.users)
    assert not taken, f"the test broker already has the examples' users {sorted(taken)}: not touching them"
    try:
        with ManagementClient(broker.url, amqp_url=broker.amqp_url) as client:
            engine.apply(client, topology, engine.plan(client, topology))
        yield
    finally:
        for name in topology.vhosts:
            mgmt.delete(f"/api/vhosts/{quote(name, safe='')}")
        for name in topology.users:  # broker-wide: not deleted with the vhosts
            mgmt.delete(f"/api/users/{quote(name, safe='')}")


def _guard(broker: Broker) -> str:
    """Python run before a sample: refuses connections to the default broker ports, but the test broker's."""
    allowed = {parse(url).port for url in (broker.url, broker.amqp_url)}
    refused = sorted({5672, 15672} - allowed)
    return textwrap.dedent(
        f"""\
        import socket as _socket

        _REFUSED = {refused!r}
        _connect = _socket.socket.connect

        def _guarded(self, address, *args):
            if isinstance(address, tuple) and len(address) >= 2 and address[1] in _REFUSED:
                raise ConnectionRefusedError(f"tests/test_docs.py: not the test broker: {{address}}")
            return _connect(self, address, *args)

        _socket.socket.connect = _guarded
        del _socket
        """
    )


def _environment(broker: Broker) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TOPO_")}
    env.update(
        TOPO_URL=broker.url,
        TOPO_AMQP_URL=broker.amqp_url,
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        NO_COLOR="1",
    )
    return env


def _for_the_test_broker(text: str, broker: Broker) -> str:
    return text.replace(DEFAULT_HTTP, broker.url).replace(DEFAULT_AMQP, broker.amqp_url)


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda b: b.id)
def test_python_sample_runs(block: Block, broker: Broker, examples_applied: None, tmp_path: Path) -> None:
    if block.skip:
        pytest.skip(f"{block.id}: {block.skip}")
    script = tmp_path / "sample.py"
    script.write_text(_guard(broker) + "\n" + _for_the_test_broker(block.text, broker), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=ROOT,
        env=_environment(broker),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{block.id} failed:\n{block.text}\n--- output ---\n{done.stdout}{done.stderr}"


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=lambda b: b.id)
def test_shell_sample_runs(block: Block, broker: Broker, examples_applied: None, tmp_path: Path) -> None:
    if block.skip:
        pytest.skip(f"{block.id}: {block.skip}")
    shutil.copytree(ROOT / "topologies", tmp_path / "topologies")
    commands = [line[2:] for line in block.text.splitlines() if line.startswith("$ ")]
    runnable = [c for c in commands if shutil.which(shlex.split(c)[0], path=_environment(broker)["PATH"])]
    assert any(c.startswith("topo ") for c in runnable)
    script = "set -e\n" + "\n".join(f"echo {shlex.quote('$ ' + c)}\n{c}" for c in runnable) + "\n"
    done = subprocess.run(
        ["bash", "-c", _for_the_test_broker(script, broker)],
        cwd=tmp_path,
        env=_environment(broker),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{block.id} failed:\n{done.stdout}{done.stderr}"


# -- names in the text ---------------------------------------------------------------------------------

DOTTED = re.compile(r"`(topo(?:\.[A-Za-z_]\w*)+)(\(?)")
NAMES = sorted(
    {
        (name, bool(call))
        for document in documents()
        for name, call in DOTTED.findall(document.read_text(encoding="utf-8"))
    }
)


def test_names_are_found() -> None:
    assert ("topo.lint.lint", True) in NAMES and ("topo.graph.render", True) in NAMES, NAMES


def test_every_name_in_the_docs_resolves_after_a_plain_import_topo() -> None:
    """`topo.lint.lint(topology)` in the README must work after `import topo`, with nothing else imported.

    Each name in a fresh interpreter (one name's import must not make the next one work). A name called
    in the text (`topo.x.y(...)`) is reached by attributes from `topo`; a module named in passing
    (`topo.cli.analyze`) may instead be one that imports.
    """
    check = textwrap.dedent(
        """\
        import functools, importlib, sys
        import topo
        assert "topo.lint" not in sys.modules, "import topo must stay cheap"
        name, called = sys.argv[1], sys.argv[2] == "1"
        try:
            functools.reduce(getattr, name.split(".")[1:], topo)
        except AttributeError as exc:
            try:
                if called:
                    raise ImportError from exc
                importlib.import_module(name)
            except ImportError:
                sys.exit(f"{name}: {exc}")
        """
    )
    missing = []
    for name, called in NAMES:
        done = subprocess.run(
            [sys.executable, "-c", check, name, "1" if called else "0"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            missing.append(done.stderr.strip().splitlines()[-1])
    assert not missing, "\n".join(missing)
