"""The wheel holds the package and nothing else: every module of topo/, its data, no tooling.

The wheel is built for real, offline, from a copy of the work tree (so that the build's own files never
land in the repository): ``pip wheel --no-build-isolation`` with the dev install's setuptools. The copy
holds everything a checkout has beside topo/ (devbroker/, topologies/, tests/, benches/, ...), so a
package glob that catches more than it should shows here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv*", "__pycache__", "*.pyc", "*.egg-info", "build", "dist", ".*_cache", ".hypothesis", ".devbroker"
)

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCE, symlinks=True)
    out = work / "dist"
    offline = ("--no-deps", "--no-build-isolation", "--no-index", "--disable-pip-version-check", "-q")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), *offline, "-w", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (built,) = out.glob("topo-*.whl")
    return zipfile.ZipFile(built)


def _expected() -> set[str]:
    """Every file of topo/ that belongs in the wheel: its modules and its package data."""
    files = {p for p in (ROOT / "topo").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    return {p.relative_to(ROOT).as_posix() for p in files if p.suffix in (".py", ".json", ".typed")}


def test_every_module_and_data_file_of_topo_is_in_the_wheel(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    expected = _expected()
    assert {"topo/__init__.py", "topo/py.typed", "topo/schemas/topology.schema.json"} <= expected
    assert "topo/schemas/generate.py" in expected and "topo/loader/schema_compiled.py" in expected
    missing = sorted(expected - names)
    assert not missing, f"not in the wheel: {missing}"


def test_nothing_else_is_in_the_wheel(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    (info,) = {name.split("/", 1)[0] for name in names if name.split("/", 1)[0].endswith(".dist-info")}
    extra = sorted(name for name in names - _expected() if not name.startswith(info + "/"))
    assert not extra, f"in the wheel but not part of topo/: {extra}"
    assert not [n for n in names if n.startswith(("devbroker/", "topologies/", "tests/", "benches/", "schemas/"))]
    assert wheel.read(f"{info}/top_level.txt").decode().split() == ["topo"]


def test_the_wheel_has_the_topo_command(wheel: zipfile.ZipFile) -> None:
    (entry_points,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    assert "topo = topo.cli:main" in wheel.read(entry_points).decode()


def test_the_tooling_is_beside_the_package_not_in_it() -> None:
    assert not (ROOT / "topo" / "devbroker.py").exists()
    assert (ROOT / "devbroker" / "__main__.py").exists()
    errors = (ROOT / "topo" / "errors.py").read_text(encoding="utf-8")
    assert "DevBroker" not in errors  # its error moved with it: topo's tree holds what users meet
