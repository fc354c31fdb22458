"""The JSON Schema of the topology file format.

Its homes, and what each is:

* :mod:`topo.schemas.generate`: the generator, built from :mod:`topo.arguments`; the one source of truth.
* ``topo/schemas/topology.schema.json``: its output, committed and shipped in the wheel; what
  :func:`load_schema` reads. ``schemas/topology.schema.json`` at the top of the repository (for editors'
  ``yaml-language-server`` comments) is a link to this file.
* :mod:`topo.loader.schema_compiled`: the schema compiled into plain closures, a fast yes/no check that
  a valid document passes without jsonschema.
* :mod:`topo.loader.schema_messages`: jsonschema's errors of a document that fails, as problems a person
  can act on.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["SCHEMA_FILE", "SCHEMA_ID", "load_schema"]

SCHEMA_ID = "https://topo.dev/schemas/topology.schema.json"
SCHEMA_FILE = "topology.schema.json"


@cache
def load_schema() -> dict[str, Any]:
    """The schema shipped inside the package."""
    text = resources.files(__name__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
