"""What the engine needs of a broker: two small Protocols, and the values that cross them.

:class:`Broker` is the Management side (read a vhost into the model, the overview, counts, and the writes
the executors make); :class:`Amqp` is the AMQP side the drop protocol needs (exact counts by passive
declare, the fence's probes, a quorum queue's delete with the count ``Queue.DeleteOk`` gives). The engine
(:mod:`topo.engine`), the writer and the drop protocol see only these; :class:`topo.broker.live.LiveBroker`
is the adapter on a real broker (Management API + AMQP), and tests/fakebroker.py runs that adapter on an
in-memory broker.

Every figure carries its own verdict: a :class:`~topo.plan.model.QueueUsage` says whether it is exact and
why not; an AMQP step that could not be taken returns :class:`NoExactCount` with the reason. Nothing is
kept on the broker object. Every failure is a :class:`~topo.errors.BrokerError` (subclasses).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from topo.model import (
    Binding,
    GlobalParameter,
    PasswordHash,
    Permission,
    Policy,
    TopicPermission,
    TopicPermissions,
    User,
    VHost,
)
from topo.plan.model import QueueUsage

__all__ = [
    "CATCH_TAG_PREFIX",
    "NO_AMQP_URL",
    "PROBE_HEADER",
    "PROBE_ID_PREFIX",
    "Amqp",
    "Broker",
    "Catching",
    "Deleted",
    "DropCheck",
    "Held",
    "ListedBinding",
    "Moved",
    "NoExactCount",
    "Overview",
    "VHostInfo",
]


# -- values ----------------------------------------------------------------------------------------------

NO_AMQP_URL = "exact counts are off (no AMQP URL)"
"""Why a count is not exact when no AMQP URL is known."""

PROBE_HEADER = "x-topo-fence-probe"
"""The header of the probe messages apply publishes to a fenced queue (see :meth:`Amqp.check_drops`)."""

PROBE_ID_PREFIX = "topo-fence-probe:"
"""Every probe's ``message_id`` starts so (then the apply's own id)."""

CATCH_TAG_PREFIX = "topo.migrate.catch."
"""The consumer tag of apply's own consumer of a queue it migrates (:meth:`Amqp.catch_requeues`): not one of
the queue's consumers a message names."""


@dataclass(frozen=True)
class Overview:
    """What ``GET /api/overview`` says: the cluster's name, and its exchange types (``None``: not asked)."""

    cluster_name: str
    exchange_types: frozenset[str] | None = None


@dataclass(frozen=True)
class VHostInfo:
    """A vhost's metadata as the broker has it (tags in the broker's order)."""

    description: str
    tags: tuple[str, ...]


@dataclass(frozen=True)
class ListedBinding:
    """A binding as the broker lists it, with the ``properties_key`` a delete needs."""

    binding: Binding
    properties_key: str


@dataclass(frozen=True)
class NoExactCount:
    """Why no exact count could be had: ``reason`` for people (no secret in it: URLs redacted), and whether
    the broker ``refused`` the user (a wrong password, no permission on the vhost) rather than not answering."""

    reason: str
    refused: bool = False


@dataclass(frozen=True)
class DropCheck:
    """What the broker said of a queue apply is about to delete.

    ``exists``: the queue is there. ``ready`` and ``consumers``: its passive declare, after the probes.
    For a fenced queue, ``probe`` is what became of the first probe (``taken``, ``refused`` or
    ``unroutable``) and ``fence_holds`` whether the second one was refused; both ``None`` otherwise.
    """

    exists: bool
    ready: int = 0
    consumers: int = 0
    probe: str | None = None
    fence_holds: bool | None = None


@dataclass(frozen=True)
class Deleted:
    """What :meth:`Amqp.delete_if_counted` did with one queue.

    ``counted``: (ready messages, consumers) of its passive declare just before the delete (``None``: the
    queue was not there, nothing to delete). ``deleted``: whether it was deleted (only when ``counted`` was
    what the caller expected). ``message_count``: what the broker's ``Queue.DeleteOk`` said, the ready
    messages it counted as it deleted the queue (``None`` when not deleted)."""

    name: str
    counted: tuple[int, int] | None
    deleted: bool = False
    message_count: int | None = None


@dataclass(frozen=True)
class Held:
    """What the Management API's statistics say a queue holds: ``ready`` and ``unacked`` (delivered to a
    consumer or a ``basic.get``, not settled yet), each ``None`` while the broker has no figure (a queue's
    first statistics, or statistics off), and the connections of its consumers, as the broker names them.
    These figures lag behind the queue (:attr:`Broker.stats_lag`)."""

    ready: int | None
    unacked: int | None
    connections: tuple[str, ...] = ()


@dataclass(frozen=True)
class Moved:
    """What :meth:`Amqp.move` did: ``moved`` messages went from the source queue to the target, which
    counted ``target`` ready messages at the end."""

    moved: int
    target: int


@dataclass
class Catching:
    """What :meth:`Amqp.catch_requeues` did, once its ``with`` block ends: ``moved`` messages went to the
    target; ``failed`` says why it stopped early (what it had committed stays moved)."""

    moved: int = 0
    failed: NoExactCount | None = None


# -- the AMQP side ---------------------------------------------------------------------------------------


class Amqp(Protocol):
    """Exact counts and the drop protocol's AMQP steps, on one vhost at a time. ``cluster``: the broker's
    cluster name; another cluster answering is a :class:`NoExactCount` (its counts say nothing of ours)."""

    @property
    def available(self) -> bool:
        """Whether an AMQP URL is known (``False``: exact counts are off)."""
        ...

    def count(
        self, vhost: str, queues: Sequence[str], *, cluster: str | None = None
    ) -> dict[str, tuple[int, int]] | NoExactCount:
        """(ready messages, consumers) of each named queue that exists, counted by the broker now; or why not."""
        ...

    def check_drops(
        self, vhost: str, queues: Mapping[str, bool], probe_id: str, *, cluster: str | None = None
    ) -> dict[str, DropCheck] | NoExactCount:
        """The last look at each queue before apply deletes it (name → fenced: then two probes first)."""
        ...

    def delete_if_counted(
        self, vhost: str, expected: Mapping[str, int], *, cluster: str | None = None, in_use: bool = False
    ) -> tuple[list[Deleted], NoExactCount | None]:
        """Count each queue and delete it at once when it holds exactly ``expected`` (and no consumer, unless
        ``in_use``: then the delete cancels them)."""
        ...

    def move(
        self,
        vhost: str,
        source: str,
        target: str,
        *,
        cluster: str | None = None,
        exact: bool = False,
    ) -> Moved | NoExactCount:
        """Move every ready message of ``source`` to ``target``, in order, a batch per AMQP transaction (a
        move killed at any point neither loses nor duplicates a message); with ``exact``, each batch must raise the
        target's count by exactly the batch (nothing else publishes to it). Why not, when AMQP could not (what was
        committed stays moved)."""
        ...

    def remove_probes(self, vhost: str, queue: str, probes: int, probe_id: str | None) -> tuple[int, int]:
        """Take apply's probes back out of a queue that stays: (probes left, other messages moved)."""
        ...

    def catch_requeues(
        self, vhost: str, source: str, target: str, *, cluster: str | None = None
    ) -> AbstractContextManager[Catching]:
        """For the ``with`` block: a consumer of ``source`` above every other (``x-priority``), so that a
        message that becomes ready there (one its consumers requeue) comes to it rather than back to them; it
        moves each to ``target`` in an AMQP transaction with its ack, as :meth:`move` does."""
        ...


# -- the Management side ---------------------------------------------------------------------------------


class Broker(Protocol):
    """A broker as the engine sees it. ``url``: its Management API URL without credentials (as a plan
    shows it); ``user``: the user topo connects as (``None``: not known); ``amqp``: its AMQP side."""

    @property
    def url(self) -> str: ...

    @property
    def user(self) -> str | None: ...

    @property
    def amqp(self) -> Amqp: ...

    # -- reads
    def read_vhost(self, name: str) -> VHost | None:
        """Everything in vhost ``name``, normalised into the model (``None``: no such vhost)."""
        ...

    @property
    def read_by_resource(self) -> bool:
        """Whether some vhost was read resource by resource, not from its definitions (a user without the
        administrator tag: the same model, but not one snapshot; a plan says so)."""
        ...

    def unread_kinds(self, vhost: str) -> frozenset[str]:
        """The kinds of ``vhost`` its read could not see (the user may not read them): compared nowhere."""
        ...

    def vhost_names(self) -> list[str]: ...

    def overview(self, *, exchange_types: bool = False) -> Overview: ...

    def count(self, vhost: str, queues: Iterable[str], *, cluster: str | None = None) -> dict[str, QueueUsage]:
        """What each named queue holds, counted now (queues that do not exist are left out); each usage says
        whether it is exact and, if not, why."""
        ...

    def held(self, vhost: str, queue: str) -> Held | None:
        """What the statistics say ``queue`` holds, with its consumers' connections (``None``: no such queue)."""
        ...

    @property
    def stats_lag(self) -> float:
        """How many seconds a figure of :meth:`held` may trail behind the queue: a figure read that long after
        a change to the queue was measured after it."""
        ...

    def vhost_info(self, name: str) -> VHostInfo | None: ...

    def bindings(self, vhost: str) -> list[ListedBinding]:
        """Every binding of ``vhost`` (``[]`` when the vhost does not exist)."""
        ...

    def policies(self, vhost: str) -> list[Policy]: ...

    def policy(self, vhost: str, name: str) -> Policy | None: ...

    # -- reads of the broker-wide kinds (reading users needs the administrator tag: else PermissionDenied)
    def users(self) -> list[User]:
        """Every user, each with its stored password hash (``""``: none) and its limits."""
        ...

    def permissions(self) -> list[Permission]:
        """Every user's permissions on every vhost."""
        ...

    def topic_permissions(self) -> list[TopicPermissions]:
        """Every user's topic permissions, one item per (user, vhost) with every exchange's entry."""
        ...

    def global_parameters(self) -> list[GlobalParameter]: ...

    def enabled_plugins(self) -> frozenset[str] | None:
        """The plugins enabled on every node of the cluster (None: the broker would not say: reading its
        nodes needs the monitoring or administrator tag)."""
        ...

    # -- writes (each one idempotent: what is already so, or already gone, is no error)
    def put_vhost(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        default_queue_type: str | None = None,
        tracing: bool | None = None,
    ) -> None:
        """Create or update a vhost; what is ``None`` is left out of the PUT, which replaces the metadata
        (description, tags), keeps the tracing it does not name, and takes ``default_queue_type`` only when
        it creates the vhost."""
        ...

    def set_vhost_limit(self, vhost: str, key: str, value: int) -> None: ...

    def clear_vhost_limit(self, vhost: str, key: str) -> None: ...

    def import_definitions(self, vhost: str, document: Mapping[str, Any]) -> None:
        """The broker's bulk path (``POST /api/definitions/{vhost}``): creates; it keeps what exists."""
        ...

    def delete_exchange(self, vhost: str, name: str) -> None: ...

    def delete_vhost(self, name: str) -> None:
        """Delete a vhost and everything in it (a prune's, ``topo destroy``'s)."""
        ...

    def delete_queue(self, vhost: str, name: str, *, if_empty: bool = False, if_unused: bool = False) -> None:
        """Delete a queue; with the guards, a broker that refuses (not empty, in use) raises a BrokerError
        with status 400."""
        ...

    def add_binding(self, vhost: str, binding: Binding) -> None: ...

    def delete_binding(self, vhost: str, listed: ListedBinding) -> None: ...

    def put_policy(self, vhost: str, policy: Policy, *, operator: bool = False) -> None: ...

    def delete_policy(self, vhost: str, name: str, *, operator: bool = False) -> None: ...

    def put_user(self, name: str, tags: Sequence[str], password: PasswordHash) -> None:
        """Create or update a user. Always with a password hash (``""``: no password), never a plaintext: an
        update without one would clear the user's password. A failure never shows the hash."""
        ...

    def set_user_limit(self, user: str, key: str, value: int) -> None: ...

    def clear_user_limit(self, user: str, key: str) -> None: ...

    def delete_user(self, name: str) -> None:
        """Delete a user, and with it its permissions, topic permissions and limits."""
        ...

    def put_permission(self, permission: Permission) -> None: ...

    def delete_permission(self, vhost: str, user: str) -> None: ...

    def put_topic_permission(self, vhost: str, user: str, entry: TopicPermission) -> None:
        """Set one exchange's entry of a user's topic permissions on a vhost (the others stay)."""
        ...

    def delete_topic_permissions(self, vhost: str, user: str) -> None:
        """Delete a user's topic permissions on a vhost: every exchange's entry (RabbitMQ 3.10 has no other way)."""
        ...

    def put_global_parameter(self, parameter: GlobalParameter) -> None: ...

    def delete_global_parameter(self, name: str) -> None: ...

    def put_parameter(self, vhost: str, component: str, name: str, value: Any) -> None:
        """Set a runtime parameter of a vhost (a shovel, a federation upstream or upstream set). Its value may
        hold URIs with credentials: a failure never shows them."""
        ...

    def delete_parameter(self, vhost: str, component: str, name: str) -> None: ...
