"""The dev/test install is reproducible: constraints.txt pins every distribution it brings in.

`make` installs ``.[dev]`` with ``-c constraints.txt`` (and so do `make test` and `.ci/run`); `make lock`
refreshes the file. A dependency added to pyproject.toml without `make lock` would install at whatever
version is newest that day: this test names it. The package's own dependencies stay ranges.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "constraints.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)\s*(?:#.*)?$")


def pins() -> dict[str, str]:
    out: dict[str, str] = {}
    for number, raw in enumerate(CONSTRAINTS.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"constraints.txt:{number}: not a `name==version` pin: {raw!r}"
        name = canonicalize_name(match.group(1))
        assert name not in out, f"constraints.txt:{number}: {name} is pinned twice"
        out[name] = match.group(2)
    return out


def dev_install() -> dict[str, str]:
    """Every distribution that ``pip install -e '.[dev]'`` brings in here, by name, with its version."""
    found: dict[str, str] = {}
    todo = [(canonicalize_name("topo"), frozenset({"dev"}))]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        dist = metadata.distribution(name)
        found[name] = dist.version
        for text in dist.requires or []:
            requirement = Requirement(text)
            environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if requirement.marker is not None and not any(requirement.marker.evaluate(e) for e in environments):
                continue
            todo.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    del found[canonicalize_name("topo")]  # the project itself, installed from the work tree
    return found


def test_every_distribution_of_the_dev_install_is_pinned() -> None:
    pinned = pins()
    installed = dev_install()
    assert len(installed) > 20, installed  # the walk found the dev install, not just topo
    missing = sorted(f"{name}=={version}" for name, version in installed.items() if name not in pinned)
    assert not missing, f"not in constraints.txt (run `make lock`, review and commit it): {', '.join(missing)}"
    differ = sorted(
        f"{name} {version} (constraints.txt: {pinned[name]})"
        for name, version in installed.items()
        if pinned[name] != version
    )
    assert not differ, f"installed at another version than pinned (run `make venv`): {', '.join(differ)}"


def test_the_package_dependencies_stay_ranges() -> None:
    """A pin belongs in constraints.txt, not in what users of the package install."""
    for text in metadata.distribution("topo").requires or []:
        requirement = Requirement(text)
        if requirement.marker is None:  # runtime dependencies (the dev extra's have a marker)
            assert not any(spec.operator == "==" for spec in requirement.specifier), requirement
