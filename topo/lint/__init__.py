"""``topo lint``: rules with stable codes over a declared topology.

Library use::

    from topo.lint import lint
    for finding in lint(topology, disable={"TL207"}):
        print(finding.code, finding.severity, finding.message)

Every rule lives in :mod:`topo.lint.rules`, registered under a code (``TL101``) with a name, a
severity and a docstring (risk and fix) from which ``docs/lint-rules.md`` is generated.
"""

from __future__ import annotations

from topo.lint.core import RULES, Finding, Rule, Severity, check_codes, iter_rules, lint

__all__ = ["RULES", "Finding", "Rule", "Severity", "check_codes", "iter_rules", "lint"]
