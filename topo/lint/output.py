"""Render lint findings: ``text`` for people, ``json`` for tools, ``github`` for workflow annotations."""

from __future__ import annotations

import json
from collections.abc import Sequence

from topo.lint.core import Finding

__all__ = ["FORMATS", "render", "render_github", "render_json", "render_text", "summary"]

FORMATS = ("text", "json", "github")
_GITHUB_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def summary(findings: Sequence[Finding]) -> dict[str, int]:
    counts = {"error": 0, "warning": 0, "info": 0}
    for finding in findings:
        counts[finding.severity] += 1
    return counts


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def render_text(findings: Sequence[Finding]) -> str:
    """One line per finding (``place: CODE severity [name] message``) and a count."""
    if not findings:
        return "No problems found.\n"
    lines = []
    for f in findings:
        place = str(f.origin) if f.origin is not None else f.address
        lines.append(f"{place}: {f.code} {f.severity} [{f.name}] {f.message}")
    counts = summary(findings)
    lines.append("")
    lines.append(
        f"{_plural(len(findings), 'problem')}: {_plural(counts['error'], 'error')}, "
        f"{_plural(counts['warning'], 'warning')}, {counts['info']} info."
    )
    return "\n".join(lines) + "\n"


def render_json(findings: Sequence[Finding]) -> str:
    document = {"findings": [f.to_json() for f in findings], "summary": summary(findings)}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(findings: Sequence[Finding]) -> str:
    """GitHub Actions workflow commands: ``::error file=F,line=L,col=C,title=T::message``."""
    lines = []
    for f in findings:
        props = []
        if f.origin is not None:
            props += [f"file={_escape_property(f.origin.file)}", f"line={f.origin.line}", f"col={f.origin.col}"]
        props.append(f"title={_escape_property(f'{f.code} {f.name}')}")
        message = f.message if f.origin is not None else f"{f.address}: {f.message}"
        lines.append(f"::{_GITHUB_LEVEL[f.severity]} {','.join(props)}::{_escape_data(message)}")
    return "".join(line + "\n" for line in lines)


def render(findings: Sequence[Finding], fmt: str) -> str:
    if fmt == "json":
        return render_json(findings)
    if fmt == "github":
        return render_github(findings)
    return render_text(findings)
