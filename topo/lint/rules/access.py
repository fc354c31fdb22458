"""TL7xx: users and what they may do (``users:``): who can do nothing, patterns that match nothing, an
administrator without a password."""

from __future__ import annotations

from collections.abc import Iterator

from topo.lint.core import Draft, rule
from topo.model import BUILTIN_EXCHANGES, Topology
from topo.pcre import Unknown, compile_pattern

__all__: list[str] = []

_NOTHING = ("", "^$")  # RabbitMQ reads "" as ^$: deliberately nothing
# Names a permission is checked against that no file declares: the default exchange (as permissions name
# it), and a queue the broker names for a client (exclusive reply queues and the like).
_ALWAYS = ("amq.default", "amq.gen-0123456789abcdef")


@rule("TL701", "user-without-permissions", "warning", scope="topology")
def user_without_permissions(topology: Topology) -> Iterator[Draft]:
    """A declared user has no permission on any vhost.

    **Risk.** A user without a permission on a vhost cannot open an AMQP connection to it, nor see it in
    the management UI: it can log in and do nothing. Since a declared user's permissions are those its
    file lists, topo revokes any it had: an application that worked yesterday is refused today.

    **Fix.** Give the user `permissions:` on the vhosts it uses (`{configure: "^$", write: "^$", read:
    "^$"}` opens the vhost and nothing in it). A user meant for the HTTP API alone (an administrator that
    manages users) can disable the rule for the topology.
    """
    granted = {user for user, _vhost in topology.permissions}
    for name in sorted(topology.users):
        if name not in granted:
            user = topology.users[name]
            yield Draft(user, f"user '{name}' has no permission on any vhost: it can log in and do nothing")


@rule("TL702", "permission-matches-nothing", "warning", scope="topology")
def permission_matches_nothing(topology: Topology) -> Iterator[Draft]:
    """A permission's pattern can match no declared queue or exchange, or a topic permission no topic exchange.

    A pattern of `configure`, `write` or `read` that matches no queue or exchange its vhost declares, or
    a topic permission on an exchange that is not a declared topic exchange.

    **Risk.** Usually a typo (an unescaped `.`, a missing prefix, a renamed queue): the application is
    refused (`ACCESS_REFUSED`) where the file meant to let it in. RabbitMQ searches a permission's pattern
    in the resource's name, unanchored, as it does a policy's. Topic permissions are checked on topic
    exchanges only: on another exchange, or one that does not exist, they restrict nothing.

    **Fix.** Correct the pattern (anchor it: `^orders\\.`) or the exchange's name; write `"^$"` (or `""`)
    for "nothing" on purpose. Only vhosts the files declare are checked, and only against what they
    declare (plus the built-in `amq.*` exchanges, the default exchange `amq.default` and server-named
    queues `amq.gen-...`): for resources that applications declare at run time, disable the rule.
    """
    for (user, vhost), permission in sorted(topology.permissions.items()):
        declared = topology.vhosts.get(vhost)
        if declared is None:
            continue
        names = [*declared.queues, *declared.exchanges, *BUILTIN_EXCHANGES, *_ALWAYS]
        for key in ("configure", "write", "read"):
            pattern = getattr(permission, key)
            if pattern in _NOTHING:
                continue
            compiled = compile_pattern(pattern)
            if isinstance(compiled, Unknown) or any(compiled.search(name) for name in names):
                continue
            yield Draft(
                permission,
                f"the {key} pattern '{pattern}' of user '{user}' on vhost '{vhost}' matches no queue or exchange "
                "the vhost declares",
            )
    for (user, vhost), topics in sorted(topology.topic_permissions.items()):
        declared = topology.vhosts.get(vhost)
        if declared is None:
            continue
        for exchange in sorted(topics.exchanges):
            known = declared.exchanges.get(exchange) or BUILTIN_EXCHANGES.get(exchange)
            kind = known.type if known is not None else None
            if kind == "topic":
                continue
            what = f"a {kind} exchange" if kind else "not declared in the vhost"
            yield Draft(
                topics,
                f"topic permissions of user '{user}' on exchange '{exchange}' ({what}) restrict nothing: RabbitMQ "
                "checks them on topic exchanges only",
            )


@rule("TL703", "administrator-without-password", "warning", scope="topology")
def administrator_without_password(topology: Topology) -> Iterator[Draft]:
    """A user with the administrator tag has no password source.

    **Risk.** topo then leaves the password as the broker has it, and creates the user without one: an
    administrator nobody can log in as with a password, or one whose password lives nowhere but on the
    broker (and in someone's memory). Either is rarely what an access-control file means.

    **Fix.** Give it `password: ${env:NAME}`, `password-file:` or `password-hash:`; for an administrator
    that logs in with a certificate only, write `password-hash: ""` (no password, on purpose).
    """
    for name in sorted(topology.users):
        user = topology.users[name]
        if "administrator" in user.tags and not user.manages_password:
            yield Draft(
                user,
                f"user '{name}' has the administrator tag and no password source: topo creates it without a "
                "password and never sets one",
            )
