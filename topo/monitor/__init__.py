"""Watch what you declared: thresholds in the files (``monitor:``), ``topo status`` and ``topo alerts``.

* :mod:`topo.monitor.spec` — the ``monitor:`` block: types, schema, built-in defaults, parsing;
* :mod:`topo.monitor.resolve` — each declared queue's effective checks (layers, roles, length limits,
  dead-letter queues), pure;
* :mod:`topo.monitor.figures` — the live figures of a vhost's queues through the Management API (the
  one module here that does I/O, behind the small :class:`~topo.monitor.figures.QueueSource` port);
* :mod:`topo.monitor.evaluate` — figures against expectations: OK / WARNING / CRITICAL / UNKNOWN, pure;
* :mod:`topo.monitor.render` — the report as text, JSON or Prometheus text exposition;
* :mod:`topo.monitor.alerts` — a Prometheus rules file for the rabbitmq_prometheus plugin's metrics.

Kept light: importing this package imports none of its modules.
"""
