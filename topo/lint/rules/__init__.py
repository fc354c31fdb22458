"""Every lint rule; importing this package registers them. Codes by family:

* ``TL1xx`` dead-lettering and message loss,
* ``TL2xx`` bindings and routing,
* ``TL3xx`` arguments,
* ``TL4xx`` policies,
* ``TL5xx`` the production checklist,
* ``TL6xx`` monitoring expectations (``monitor:``),
* ``TL7xx`` users and their permissions (``users:``),
* ``TL8xx`` shovels and federation (``shovels:``, ``federation-upstreams:``, ``federation-upstream-sets:``).
"""

from __future__ import annotations

from topo.lint.rules import access, arguments, bindings, dead_letters, links, monitoring, policies, production

__all__ = ["access", "arguments", "bindings", "dead_letters", "links", "monitoring", "policies", "production"]
