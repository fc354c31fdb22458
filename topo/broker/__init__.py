"""The edge between topo and a broker: the port the engine sees (:mod:`~topo.broker.port`), its live adapter
(:mod:`~topo.broker.live`: the Management API client and the AMQP side), the reader, the writer with its
executors and phases, and the drop protocol. See docs/architecture.md."""
