"""Users, permissions, topic permissions and global parameters: the broker-wide kinds (issue 11).

Each concern in its own module, so that the engine's per-kind tables can take them as they are:

- :mod:`topo.access.definitions`: model ↔ the broker's JSON (``GET /api/users`` items, the bodies of the
  ``PUT`` requests); pure.
- :mod:`topo.access.compare`: desired vs observed → changes and what is not managed, one function per kind;
  pure. Whether a password changed is decided offline from the broker's salted hash (:mod:`topo.passwords`).
- :mod:`topo.access.render`: each kind's detail lines and JSON form in a plan; pure. A password or a hash
  is never part of either: ``(sensitive)`` stands in their place.
- :mod:`topo.access.broker`: the I/O: what the broker has (three requests for users, permissions and topic
  permissions, one for global parameters) and one executor per (kind, action).
"""
