"""Offline routing: where a message published to an exchange goes, exactly as RabbitMQ routes it.

The semantics follow RabbitMQ 3.10's ``rabbit_exchange:route/2`` and the exchange type modules:

* **direct**: bindings whose key equals a routing key;
* **fanout**: every binding;
* **topic**: keys split on ``.`` (the empty key is *no* words, ``"a."`` is ``a`` and an empty word),
  ``*`` matches exactly one word (possibly empty), ``#`` zero or more words;
* **headers**: ``x-match`` ``all`` (also when absent or unknown), ``any``, ``all-with-x``, ``any-with-x``;
  ``x-match`` itself never takes part, other ``x-`` keys only in the ``-with-x`` forms; values compare
  like Erlang's ``==`` (``1`` equals ``1.0``, ``true`` is not ``1``, ``"1"`` is not ``1``); a binding
  value of ``None`` (AMQP void) only asks for the header to be present;
* **the default exchange** ``""`` routes to the queue named by each routing key;
* **exchange-to-exchange bindings** are followed; every exchange is visited once per message, so
  cycles end and a queue reached by several paths receives the message once;
* **alternate exchanges** (the ``alternate-exchange`` argument, else a policy's key) are used only when
  the exchange's own bindings match nothing at all, not even an exchange that then routes nowhere;
* **internal exchanges** refuse publishes from clients but route what other exchanges send them;
* the ``CC`` and ``BCC`` headers (arrays of strings) add routing keys; ``BCC`` is removed before routing.

With ``dead_letter=True`` the result also says, for every queue reached, where the message goes when the
queue dead-letters it (rejected, expired, over a length limit): to the queue's dead-letter exchange with
its dead-letter routing key, or the message's own routing keys when none is set.

Shovels and federation links between vhosts of the same broker (:mod:`topo.routing.links`) are followed
too: a message that reaches a shovel's source queue (or its source exchange, with a matching key) goes on
to the shovel's destination, and one that passes through a federated exchange's upstream exchange goes on
to the federated exchange (as far as the upstream's ``max-hops``): ``RouteResult.forwarded``.
"""

from topo.routing.links import Link, topology_links
from topo.routing.matching import X_MATCH_KINDS, headers_match, split_topic_key, topic_matches
from topo.routing.policies import applied_policy, dead_letter_target, effective_alternate_exchange, policy_matches
from topo.routing.result import DeadLetter, Forward, Hop, Path, Refusal, RouteResult
from topo.routing.router import PLUGIN, Router, route, route_within, routing_type

__all__ = [
    "PLUGIN",
    "X_MATCH_KINDS",
    "DeadLetter",
    "Forward",
    "Hop",
    "Link",
    "Path",
    "Refusal",
    "RouteResult",
    "Router",
    "applied_policy",
    "dead_letter_target",
    "effective_alternate_exchange",
    "headers_match",
    "policy_matches",
    "route",
    "route_within",
    "routing_type",
    "split_topic_key",
    "topic_matches",
    "topology_links",
]
