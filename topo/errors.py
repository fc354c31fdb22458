"""Every user-facing error of topo, in one tree.

The CLI catches :class:`TopoError` in one place and prints ``Error: <message>`` (plus the hint),
never a traceback unless ``--debug`` is given. Library users catch the same classes.

::

    TopoError                       anything topo reports to a user
    ├── ValidationError             topology files are wrong (carries every Problem found)
    ├── UsageError                  a flag or argument is wrong (bad --var, unknown --vhost, ...)
    ├── BrokerError                 the Management API refused or failed
    │   ├── BrokerUnreachable       nothing answers at the URL
    │   ├── AuthenticationFailed    401: wrong user or password
    │   ├── PermissionDenied        403: the user lacks the rights
    │   ├── VhostNotFound           a vhost the command needs does not exist
    │   ├── MissingExchangeType     the files declare a plugin's exchange type the broker lacks
    │   └── ApplyFailed             a write failed part-way through an apply
    ├── UnsafeChange                apply refused: a queue with messages would be deleted/replaced
    ├── MessagesLost                a quorum queue's delete took messages that arrived after apply's last count
    ├── NotConverged                after an apply, the broker still differs from the files
    ├── StalePlan                   a saved plan no longer matches the broker (exit code 4)
    ├── LockHeld                    another apply holds the stack's lock (past --lock-timeout)
    ├── GraphError                  `topo graph` could not render
    │   └── GraphvizNotFound        --format svg without Graphviz's `dot`
    └── RuntimeClientError          the AMQP runtime: its subtree is drawn in topo.runtime.errors

Messages never contain passwords: URLs are shown through :func:`topo.urls.redact`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ApplyFailed",
    "AuthenticationFailed",
    "BrokerError",
    "BrokerUnreachable",
    "GraphError",
    "GraphvizNotFound",
    "LockHeld",
    "MessagesLost",
    "MissingExchangeType",
    "NotConverged",
    "PermissionDenied",
    "Problem",
    "RuntimeClientError",
    "StalePlan",
    "TopoError",
    "UnsafeChange",
    "UsageError",
    "ValidationError",
    "VhostNotFound",
]


class TopoError(Exception):
    """Base of every error topo reports to a user: a message and an optional hint."""

    exit_code = 1
    """What the command line exits with (1: any error; a few have codes of their own, documented)."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the topology files, with its place."""

    message: str
    file: str | None = None
    line: int | None = None  # 1-based
    col: int | None = None  # 1-based
    path: str | None = None  # path inside the document, e.g. vhosts.iot.queues.orders.message-ttl
    hint: str | None = None

    @property
    def place(self) -> str:
        if self.file is None:
            return "<input>"
        if self.line is None:
            return self.file
        return f"{self.file}:{self.line}:{self.col or 1}"

    def render(self) -> str:
        where = self.place
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


class ValidationError(TopoError):
    """The topology files are invalid. ``problems`` lists every problem found, in file order."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file or "", p.line or 0, p.col or 0, p.path or "", p.message))
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the topology"
        super().__init__(head + ":\n" + "\n".join("  " + p.render() for p in self.problems))


class UsageError(TopoError):
    """A command-line flag or a library argument is wrong."""


class BrokerError(TopoError):
    """The RabbitMQ Management API refused a request or failed."""

    def __init__(self, message: str, *, hint: str | None = None, status: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class BrokerUnreachable(BrokerError):
    """Nothing answers at the Management API URL."""


class AuthenticationFailed(BrokerError):
    """The broker answered 401."""


class PermissionDenied(BrokerError):
    """The broker answered 403: the user lacks a tag or a vhost permission."""


class VhostNotFound(BrokerError):
    """A vhost the command needs does not exist on the broker."""


class MissingExchangeType(BrokerError):
    """The files declare an exchange of a plugin's type that the broker does not have."""


class ApplyFailed(BrokerError):
    """A write failed part-way through an apply. What was done before it stays done; run apply again.

    ``not_declared`` lists every resource deleted for a replacement and not declared again yet (the
    message names the first few; the next ``topo plan`` shows them all as creates)."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        status: int | None = None,
        not_declared: Sequence[str] = (),
    ) -> None:
        super().__init__(message, hint=hint, status=status)
        self.not_declared = tuple(not_declared)


class UnsafeChange(TopoError):
    """Apply refused a change that could lose messages (a queue that holds some, or is in use, or cannot be
    counted exactly, would be dropped). ``details`` lists every reason (the message names the first few)."""

    def __init__(self, message: str, *, hint: str | None = None, details: Sequence[str] = ()) -> None:
        super().__init__(message, hint=hint)
        self.details = tuple(details)


class MessagesLost(TopoError):
    """RabbitMQ deleted a quorum queue apply replaced with messages that arrived in the instant between
    apply's last count and the delete (its ``Queue.DeleteOk`` counted more than apply's own probe), or
    apply cannot tell whether it did. Raised once the apply is done: never silent. ``dropped`` is how
    many messages were deleted; ``details`` names each queue."""

    def __init__(self, message: str, *, hint: str | None = None, details: Sequence[str] = (), dropped: int = 0) -> None:
        super().__init__(message, hint=hint)
        self.details = tuple(details)
        self.dropped = dropped


class NotConverged(TopoError):
    """After an apply, re-reading the broker still shows differences from the files."""


class StalePlan(TopoError):
    """A saved plan was made against a broker state that has changed since (``changed`` names each address),
    or it would not make the broker match its files any more: apply refuses it, nothing is written. The
    command line exits 4."""

    exit_code = 4

    def __init__(self, message: str, *, hint: str | None = None, changed: Sequence[str] = ()) -> None:
        super().__init__(message, hint=hint)
        self.changed = tuple(changed)


class LockHeld(TopoError):
    """Another apply of the same stack holds its lock, and did not release it within ``--lock-timeout``.
    ``holder`` says who (host, pid, since), as the holder wrote it."""

    def __init__(self, message: str, *, hint: str | None = None, holder: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.holder = holder


class GraphError(TopoError):
    """Graphviz failed to render the graph."""


class GraphvizNotFound(GraphError):
    """``--format svg`` needs Graphviz's ``dot`` program, which is not installed."""


class RuntimeClientError(TopoError):
    """Base of the AMQP runtime's errors (see ``topo.runtime.errors``)."""
