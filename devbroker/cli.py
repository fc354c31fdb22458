"""``python -m devbroker``: start, stop, status, ensure (the demo's broker), env; see ``--help``.

``ensure`` gives the demo its broker: the one the user named with ``--url`` / ``$TOPO_URL``, else a private
node; never one nobody named. ``env`` prints the ``export TOPO_URL=... TOPO_AMQP_URL=...`` line for the
private node. Passwords are never printed (URLs are shown through :func:`topo.urls.redact`:
``http://***@127.0.0.1:15673``), except the private node's own throwaway one by ``env``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from devbroker.node import (
    AMQP_URL_FILE,
    DEFAULT_DIR,
    URL_FILE,
    DevBrokerError,
    Node,
    dir_node_name,
    ensure,
    load,
    management_answers,
    pid_alive,
    start,
    watch,
)
from topo.errors import TopoError
from topo.urls import redact

__all__ = ["main"]


def _print_node(node: Node, prefix: str) -> None:
    print(f"{prefix} {node.name} (files in {node.base_dir})")
    print(f"  Management API: {redact(node.url)}")
    print(f"  AMQP:           {redact(node.amqp_url)}")


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")


def _cmd_start(args: argparse.Namespace) -> int:
    base_dir = Path(args.dir)
    existing = load(base_dir)
    if existing is not None and existing.is_running():
        _print_node(existing, "Already running:")
        return 0
    t0 = time.monotonic()
    node = start(
        base_dir,
        amqp_port=args.amqp_port or None,
        http_port=args.http_port or None,
        name=args.name or dir_node_name(base_dir),
        timeout=args.timeout,
    )
    _write_secret(node.base_dir / URL_FILE, node.url)
    _write_secret(node.base_dir / AMQP_URL_FILE, node.amqp_url)
    _print_node(node, f"Started in {time.monotonic() - t0:.1f} s:")
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    node = load(Path(args.dir))
    if node is None:
        print(f"No node recorded in {args.dir}: nothing to stop.")
        return 0
    pid = node.read_pid()
    if not node.is_running() and (pid is None or not pid_alive(pid)):
        print(f"Node {node.name} is not running.")
        return 0
    t0 = time.monotonic()
    node.stop(timeout=args.timeout)
    print(f"Stopped {node.name} in {time.monotonic() - t0:.1f} s.")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    if args.url:
        ok = management_answers(args.url)
        print(f"{redact(args.url)}: {'answers' if ok else 'does not answer'}")
        return 0 if ok else 1
    node = load(Path(args.dir))
    if node is None:
        print(f"No node recorded in {args.dir}.")
        return 1
    if node.is_running():
        _print_node(node, "Running:")
        return 0
    print(f"Node {node.name} is not running.")
    return 1


def _cmd_watch(args: argparse.Namespace) -> int:
    node = load(Path(args.dir))
    if node is None:
        return 0
    if watch(node, args.pid):
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} owner {args.pid} gone: stopped {node.name}", flush=True)
    return 0


def _cmd_ensure(args: argparse.Namespace) -> int:
    base_dir = Path(args.dir)
    url: str | None = args.url or None  # TOPO_URL="" names no broker
    t0 = time.monotonic()
    existing = load(base_dir)
    was_running = existing is not None and existing.is_running()
    node = ensure(url, base_dir, amqp_port=args.amqp_port, http_port=args.http_port)
    if node is not None:
        how = "already running" if was_running else f"started in {time.monotonic() - t0:.1f} s"
        print(f"Demo broker: a private node, {redact(node.url)} ({how}; TOPO_URL names no broker)")
        _print_node(node, "  Node")
        use_url = node.url
        amqp_url = node.amqp_url
    elif url is not None:  # the broker the user named answers
        print(f"Demo broker: {redact(url)} (named by TOPO_URL)")
        use_url = url
        amqp_url = os.environ.get("TOPO_AMQP_URL", "")
    else:  # pragma: no cover - ensure() starts a node when no broker is named
        raise DevBrokerError("no broker to use")
    for stale in (URL_FILE, AMQP_URL_FILE):  # what an earlier run decided is not this run's answer
        with contextlib.suppress(OSError):
            (base_dir / stale).unlink()
    _write_secret(base_dir / URL_FILE, use_url)
    if amqp_url:
        _write_secret(base_dir / AMQP_URL_FILE, amqp_url)
    print(f"topo writes to this broker only (its URL is in {base_dir / URL_FILE}).")
    return 0


def _cmd_env(args: argparse.Namespace) -> int:
    node = load(Path(args.dir))
    if node is None or not node.is_running():
        raise DevBrokerError(
            f"no demo node is running in {args.dir}", hint="`make demo` starts one (with TOPO_URL unset)"
        )
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(Path.cwd())
    command = f"{shlex.quote(str(python))} -m devbroker env"
    if args.dir != DEFAULT_DIR:
        command += f" --dir {shlex.quote(args.dir)}"
    print("# The demo node's URLs, for topo plan/apply/publish/consume in this shell: paste the line below, or run")
    print(f'#   eval "$({command})"')
    # The one place a password is printed, on purpose (issue 9.3: a redacted URL cannot be pasted). It is
    # the private demo node's default guest account: a throwaway, on 127.0.0.1 only, that this node alone
    # has. Never print a URL the user gave (TOPO_URL) or any other broker's this way.
    print(f"export TOPO_URL={shlex.quote(node.url)} TOPO_AMQP_URL={shlex.quote(node.amqp_url)}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devbroker",
        description="Run a private RabbitMQ node on loopback for development.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def add_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dir", default=DEFAULT_DIR, help=f"the node's directory (default: {DEFAULT_DIR})")

    def add_ports(p: argparse.ArgumentParser) -> None:
        p.add_argument("--amqp-port", type=int, default=5673, help="AMQP port (default 5673; 0: any free)")
        p.add_argument("--http-port", type=int, default=15673, help="Management port (default 15673; 0: any)")
        p.add_argument("--timeout", type=float, default=60, help="seconds to wait for the node (default 60)")

    p_start = sub.add_parser("start", help="start the node (says so if it already runs)")
    add_dir(p_start)
    add_ports(p_start)
    p_start.add_argument("--name", help="Erlang node name (default: derived from --dir)")
    p_start.set_defaults(func=_cmd_start)

    p_stop = sub.add_parser("stop", help="stop the node recorded in --dir")
    add_dir(p_stop)
    p_stop.add_argument("--timeout", type=float, default=60, help="seconds to wait (default 60)")
    p_stop.set_defaults(func=_cmd_stop)

    p_status = sub.add_parser("status", help="exit 0 if the node (or --url) answers, else 1")
    add_dir(p_status)
    p_status.add_argument("--url", help="check this Management API URL instead of the node in --dir")
    p_status.set_defaults(func=_cmd_status)

    p_ensure = sub.add_parser(
        "ensure",
        help="the demo's broker: --url if given (it must answer), else a private node (started if needed); "
        "say which, and write its URL to DIR/url",
    )
    add_dir(p_ensure)
    add_ports(p_ensure)
    p_ensure.add_argument(
        "--url",
        default=os.environ.get("TOPO_URL") or None,
        help="the Management API URL of a broker to use (default: $TOPO_URL); without one, a private node",
    )
    p_ensure.set_defaults(func=_cmd_ensure)

    p_env = sub.add_parser(
        "env", help="print the `export TOPO_URL=... TOPO_AMQP_URL=...` line for the private node in --dir"
    )
    add_dir(p_env)
    p_env.set_defaults(func=_cmd_env)

    p_watch = sub.add_parser("watch", help="(internal) stop the node in --dir when process --pid ends")
    add_dir(p_watch)
    p_watch.add_argument("--pid", type=int, required=True, help="the owner's process id")
    p_watch.set_defaults(func=_cmd_watch)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except TopoError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"Hint: {exc.hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    return result
