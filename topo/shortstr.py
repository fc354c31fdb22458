"""AMQP 0-9-1 short strings: at most 255 bytes of UTF-8.

Names (vhosts, exchanges, queues), routing keys (a binding's, a publish's, a dead letter's) and the
names of a field table's entries (arguments, headers) travel as short strings: one length byte, then
the UTF-8 text. RabbitMQ's HTTP API refuses a queue name over 255 bytes but takes such an exchange
name, vhost name, binding key or dead-letter routing key, which no AMQP 0-9-1 client can then send:
topo checks them all with this one rule.
"""

from __future__ import annotations

__all__ = ["SHORTSTR_MAX", "shortstr_excess", "too_long_message"]

SHORTSTR_MAX = 255


def shortstr_excess(text: str) -> int | None:
    """The size in bytes of ``text`` in UTF-8 when it is longer than a short string holds, else None."""
    if len(text) <= SHORTSTR_MAX // 4:  # 4 bytes at most per character: cannot be too long
        return None
    size = len(text.encode("utf-8", "surrogatepass"))
    return size if size > SHORTSTR_MAX else None


def too_long_message(what: str, size: int) -> str:
    """``the routing key is 300 bytes of UTF-8; AMQP 0-9-1 carries at most 255 (a short string)``."""
    return f"the {what} is {size} bytes of UTF-8; AMQP 0-9-1 carries at most {SHORTSTR_MAX} (a short string)"
