"""Start and stop a private, throwaway RabbitMQ node on loopback (the library of :mod:`devbroker`).

A node lives in one directory (``base_dir``)::

    base_dir/
    ├── node.json            name, ports and pid of the node (the CLI's state file)
    ├── url, amqp_url        the URLs to use, written by ``ensure`` (mode 0600: they hold a password)
    ├── rabbitmq.conf        listeners on 127.0.0.1 only, management plugin's listener
    ├── enabled_plugins      PLUGINS (management, consistent-hash exchange) and those asked for
    ├── rabbitmq-env.conf    empty, so /etc/rabbitmq/rabbitmq-env.conf is not read
    ├── home/                $HOME of the node and of rabbitmqctl (the Erlang cookie)
    ├── mnesia/              the node's data
    └── log/                 the node's log (<name>.log), the launcher's output (launcher.log), watcher.log
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from topo.errors import TopoError
from topo.urls import parse_management, redact

__all__ = [
    "AMQP_URL_FILE",
    "DEFAULT_DIR",
    "DEMO_PLUGINS",
    "PLUGINS",
    "STATE_FILE",
    "URL_FILE",
    "DevBrokerError",
    "Node",
    "dir_node_name",
    "ensure",
    "find_executable",
    "free_port",
    "load",
    "management_answers",
    "pid_alive",
    "start",
    "watch",
]

RABBITMQ_BIN_DIR = Path("/usr/lib/rabbitmq/bin")
"""Where Debian's package keeps the real scripts (``/usr/sbin/*`` are wrappers that switch user)."""

DEFAULT_DIR = ".devbroker"
STATE_FILE = "node.json"
URL_FILE = "url"
AMQP_URL_FILE = "amqp_url"
INSTALL_HINT = (
    "Install RabbitMQ: run .ci/ensure-rabbitmq.sh (or `apt-get install rabbitmq-server` on Debian/Ubuntu), "
    "or set TOPO_RABBITMQ_BIN_DIR to the directory holding rabbitmq-server and rabbitmqctl."
)

_ROOT = Path(__file__).resolve().parent.parent
"""The directory holding this package (the repository's root): what a ``python -m devbroker`` needs on its path."""

# rabbitmqctl's own distribution listener uses 35672-35682 unless told otherwise: keep our nodes off it.
_CTL_DIST_PORTS = range(35672, 35683)


class DevBrokerError(TopoError):
    """A private broker node could not be started, reached or stopped.

    A :class:`~topo.errors.TopoError` (a message and a hint, printed as topo prints its errors), but not
    part of topo's own error tree: this tool is not in the package users install.
    """


class _ExitedWhileStarting(DevBrokerError):
    """The node's VM went away before it was ready (a port taken, a bad config, ...)."""


def find_executable(name: str) -> Path:
    """The path of a RabbitMQ script (``rabbitmq-server``, ``rabbitmqctl``), or a clear error."""
    candidates: list[Path] = []
    override = os.environ.get("TOPO_RABBITMQ_BIN_DIR")
    if override:
        candidates.append(Path(override) / name)
    candidates.append(RABBITMQ_BIN_DIR / name)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    raise DevBrokerError(f"{name} is not installed (looked in {RABBITMQ_BIN_DIR} and on PATH)", hint=INSTALL_HINT)


def free_port(exclude: Sequence[int] = ()) -> int:
    """A TCP port that is free on 127.0.0.1 right now (not one of ``exclude``)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in exclude and port not in _CTL_DIST_PORTS:
            return port
    raise DevBrokerError("could not find a free TCP port on 127.0.0.1")


def _port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def management_answers(url: str, timeout: float = 2.0) -> bool:
    """True when ``GET {url}/api/overview`` answers 200 (credentials taken from the URL); a
    :class:`~topo.errors.UsageError` when ``url`` cannot be read."""
    try:
        with _client(url, timeout) as client:
            return client.get("/api/overview").status_code == 200
    except (httpx.HTTPError, ValueError):
        return False


@contextlib.contextmanager
def _client(url: str, timeout: float) -> Iterator[httpx.Client]:
    """A plain client on the API's root (``/api/...`` paths); a UsageError, URL redacted, when ``url`` is bad."""
    parsed = parse_management(url)
    auth = httpx.BasicAuth(parsed.username or "guest", parsed.password if parsed.password is not None else "guest")
    with httpx.Client(base_url=parsed.public().rstrip("/"), auth=auth, timeout=timeout, trust_env=False) as client:
        yield client


def pid_alive(pid: int) -> bool:
    """True if the process exists and is not a zombie (PID 1 here may not reap what it adopts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (not Linux): trust kill(0)
    state = stat.rsplit(")", 1)[-1].split()[0:1]
    return state != ["Z"]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass(frozen=True)
class Node:
    """A private RabbitMQ node started by :func:`start` (or loaded from its directory by :func:`load`)."""

    name: str
    amqp_port: int
    http_port: int
    base_dir: Path
    dist_port: int
    pid: int | None = None

    # -- addresses -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The Management API URL, with guest's credentials."""
        return f"http://guest:guest@127.0.0.1:{self.http_port}"

    @property
    def amqp_url(self) -> str:
        """The AMQP 0-9-1 URL of the default vhost, with guest's credentials."""
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    # -- files -----------------------------------------------------------------------------------

    @property
    def log_file(self) -> Path:
        return self.base_dir / "log" / f"{self.name}.log"

    @property
    def launcher_log(self) -> Path:
        return self.base_dir / "log" / "launcher.log"

    @property
    def crash_dump(self) -> Path:
        return self.base_dir / "log" / "erl_crash.dump"

    @property
    def pid_file(self) -> Path:
        return self.base_dir / f"{self.name.split('@')[0]}.pid"

    def env(self) -> dict[str, str]:
        """The environment for ``rabbitmq-server`` and ``rabbitmqctl`` of this node (they must agree)."""
        base = self.base_dir
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("RABBITMQ_", "ERL_")) and key != "CONF_ENV_FILE"
        }
        env.update(
            {
                "HOME": str(base / "home"),
                "RABBITMQ_NODENAME": self.name,
                "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
                "RABBITMQ_LOG_BASE": str(base / "log"),
                "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
                "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
                "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
                "RABBITMQ_PID_FILE": str(self.pid_file),
                "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
                "ERL_EPMD_ADDRESS": "127.0.0.1",
                "ERL_CRASH_DUMP": str(self.crash_dump),
            }
        )
        return env

    # -- control ---------------------------------------------------------------------------------

    def ctl(self, *args: str, timeout: float = 120) -> str:
        """Run ``rabbitmqctl -n NODE ARGS...`` against this node and return its standard output."""
        command = [str(find_executable("rabbitmqctl")), "-n", self.name, *args]
        try:
            done = subprocess.run(
                command,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise DevBrokerError(f"rabbitmqctl {' '.join(args)} did not finish in {timeout:g} s") from exc
        if done.returncode != 0:
            output = (done.stderr.strip() or done.stdout.strip())[-2000:]
            raise DevBrokerError(
                f"rabbitmqctl {' '.join(args)} failed for node {self.name} (exit {done.returncode}): {output}"
            )
        return done.stdout

    def is_running(self) -> bool:
        """True when the Management API of this node answers."""
        return management_answers(self.url)

    def read_pid(self) -> int | None:
        """The node's OS pid, from its pid file (written early during boot)."""
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return self.pid

    def stop(self, timeout: float = 60) -> None:
        """Stop the node (``rabbitmqctl stop``), then make sure its Erlang VM is gone."""
        pid = self.read_pid()
        with contextlib.suppress(DevBrokerError):
            if pid is None or pid_alive(pid):
                # With the pid file, rabbitmqctl waits until that OS process has exited.
                args = ("stop", str(self.pid_file)) if self.pid_file.exists() else ("stop",)
                self.ctl(*args, timeout=timeout)
        # Only ever signal our own VM (found by its -home): a pid from an old state file may be reused.
        pids = set(_vm_pids(self.base_dir / "home"))
        if pid is not None and not Path("/proc").is_dir():
            pids.add(pid)  # no /proc to check against: trust the pid file
        for each in pids:
            _wait_gone(each, timeout=10)
        with contextlib.suppress(OSError):
            self.pid_file.unlink()

    def stop_app(self, timeout: float = 60) -> None:
        """Stop the RabbitMQ application but not the VM; return when the AMQP port is closed."""
        self.ctl("stop_app", timeout=timeout)
        deadline = time.monotonic() + timeout
        while _port_open(self.amqp_port):
            if time.monotonic() > deadline:
                raise DevBrokerError(f"AMQP port {self.amqp_port} still open {timeout:g} s after stop_app")
            time.sleep(0.1)

    def start_app(self, timeout: float = 60) -> None:
        """Start the RabbitMQ application again; return when AMQP and the Management API answer."""
        self.ctl("start_app", timeout=timeout)
        _wait_ready(self, timeout=timeout)
        deadline = time.monotonic() + timeout
        while not _port_open(self.amqp_port):
            if time.monotonic() > deadline:
                raise DevBrokerError(f"AMQP port {self.amqp_port} not open {timeout:g} s after start_app")
            time.sleep(0.1)

    # -- state file ------------------------------------------------------------------------------

    def save(self) -> Path:
        path = self.base_dir / STATE_FILE
        data = asdict(self)
        data["base_dir"] = str(self.base_dir)
        path.write_text(json.dumps(data, indent=2) + "\n")
        return path


def _vm_pids(home: Path) -> list[int]:
    """Pids of Erlang VMs started with ``-home <home>`` (ours: each node has its own HOME), Linux only."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"beam.smp"):
            for i, arg in enumerate(args[:-1]):
                if arg == b"-home" and args[i + 1] == str(home).encode():
                    found.append(int(proc.name))
    return found


def _wait_gone(pid: int, timeout: float) -> None:
    """Wait for ``pid`` to exit; SIGTERM, then SIGKILL it if it will not."""
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.1)
    raise DevBrokerError(f"process {pid} (a RabbitMQ node) would not exit")


def _amqp_listening(overview: object, port: int) -> bool:
    """Whether ``GET /api/overview`` lists an AMQP listener on ``port`` (started after the Management API)."""
    listeners = overview.get("listeners") if isinstance(overview, dict) else None
    return isinstance(listeners, list) and any(
        isinstance(item, dict) and item.get("protocol") == "amqp" and item.get("port") == port for item in listeners
    )


def _wait_ready(node: Node, timeout: float) -> None:
    """Poll until the Management API answers and lists the AMQP listener; on timeout, fail with the log tail."""
    started = time.monotonic()
    deadline = started + timeout
    with _client(node.url, timeout=2.0) as client:
        while True:
            try:
                response = client.get("/api/overview")
                if response.status_code == 200 and _amqp_listening(response.json(), node.amqp_port):
                    return
            except (httpx.HTTPError, ValueError):
                pass
            pid = node.read_pid()
            gone = not pid_alive(pid) if pid is not None else not _vm_pids(node.base_dir / "home")
            if gone and time.monotonic() > started + 3:  # give the detached VM time to appear
                raise _ExitedWhileStarting(f"RabbitMQ node {node.name} exited while starting\n{_log_tails(node)}")
            if time.monotonic() > deadline:
                raise DevBrokerError(
                    f"RabbitMQ node {node.name}: Management API on 127.0.0.1:{node.http_port} "
                    f"did not answer within {timeout:g} s\n{_log_tails(node)}"
                )
            time.sleep(0.2)


def _log_tails(node: Node) -> str:
    parts = []
    with contextlib.suppress(OSError), node.crash_dump.open("rb") as dump:
        for raw in dump.readlines(65536):
            if raw.startswith(b"Slogan:"):
                parts.append(f"Erlang VM crashed: {raw.decode(errors='replace').strip()[:2000]}")
                break
    errors = [line for line in _tail(node.log_file, lines=100_000).splitlines() if "[error]" in line][:10]
    if errors:
        parts.append(f"--- first errors in {node.log_file} ---\n" + "\n".join(errors))
    for path in (node.launcher_log, node.log_file):
        tail = _tail(path, lines=20)
        if tail:
            parts.append(f"--- last lines of {path} ---\n{tail}")
    return "\n".join(parts) or f"(no log written under {node.base_dir / 'log'})"


PLUGINS = ("rabbitmq_management", "rabbitmq_consistent_hash_exchange")
"""Enabled on every node: the Management API, and the plugin exchange type topologies use most."""

DEMO_PLUGINS = (
    "rabbitmq_shovel",
    "rabbitmq_shovel_management",
    "rabbitmq_federation",
    "rabbitmq_federation_management",
)
"""Enabled on the demo's node besides :data:`PLUGINS`: topologies/links.yaml declares a shovel and federation."""


def _write_config(node: Node, extra_config: str = "", plugins: Sequence[str] = ()) -> None:
    base = node.base_dir
    for sub in ("home", "mnesia", "log"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    (base / "rabbitmq.conf").write_text(
        "# Written by devbroker: a private node, reachable on loopback only.\n"
        f"listeners.tcp.default = 127.0.0.1:{node.amqp_port}\n"
        "management.tcp.ip = 127.0.0.1\n"
        f"management.tcp.port = {node.http_port}\n"
        "log.console = false\n"
        "log.file.level = info\n" + extra_config
    )
    (base / "enabled_plugins").write_text("[" + ",".join(dict.fromkeys((*PLUGINS, *plugins))) + "].\n")
    (base / "rabbitmq-env.conf").write_text("")


def _default_name() -> str:
    return f"topo-{os.getpid()}-{secrets.token_hex(3)}@localhost"


def start(
    base_dir: Path,
    *,
    amqp_port: int | None = None,
    http_port: int | None = None,
    name: str | None = None,
    timeout: float = 60,
    owner_pid: int | None = None,
    extra_config: str = "",
    plugins: Sequence[str] = (),
) -> Node:
    """Start a private node whose files live under ``base_dir``; return it once its Management API answers.

    Ports left as None are picked free on 127.0.0.1 (so is the Erlang distribution port). The node is
    named ``name`` (``@localhost`` is added when there is no host part), by default a unique
    ``topo-<pid>-<hex>@localhost``. Raises :class:`DevBrokerError` when RabbitMQ is not installed, a
    port is taken, or the node is not ready within ``timeout`` seconds (with the tail of its log).

    With ``owner_pid``, a small watcher process stops the node when that process ends without
    stopping it (a test run killed by a timeout or SIGKILL), so no orphaned node is left behind.
    ``extra_config`` is appended to the node's ``rabbitmq.conf`` (a TLS listener, say) and ``plugins`` are
    enabled besides :data:`PLUGINS`.
    """
    server = find_executable("rabbitmq-server")
    find_executable("rabbitmqctl")
    base_dir = Path(base_dir).resolve()
    base_dir.mkdir(parents=True, exist_ok=True)
    node_name = name or _default_name()
    if "@" not in node_name:
        node_name += "@localhost"

    for port in (amqp_port, http_port):
        if port is not None and _port_open(port):
            raise DevBrokerError(f"port {port} on 127.0.0.1 is already in use", hint="choose another port")
    # Ports picked here may be taken by someone else before the node binds them: then try new ones.
    attempts = 3 if amqp_port is None and http_port is None else 1
    for attempt in range(1, attempts + 1):
        taken = [port for port in (amqp_port, http_port) if port is not None]
        amqp = amqp_port if amqp_port is not None else free_port(taken)
        taken.append(amqp)
        http = http_port if http_port is not None else free_port(taken)
        taken.append(http)
        node = Node(name=node_name, amqp_port=amqp, http_port=http, base_dir=base_dir, dist_port=free_port(taken))
        try:
            _launch(node, server, timeout, extra_config, plugins)
            break
        except _ExitedWhileStarting as exc:
            if attempt == attempts or not any(w in exc.message for w in ("eaddrinuse", "could_not_start_listener")):
                raise
    node = Node(**{**asdict(node), "pid": node.read_pid()})
    node.save()
    if owner_pid is not None:
        _spawn_watcher(node, owner_pid)
    return node


def _launch(node: Node, server: Path, timeout: float, extra_config: str = "", plugins: Sequence[str] = ()) -> None:
    """Write the node's files, run ``rabbitmq-server -detached`` and wait until the node is ready."""
    _write_config(node, extra_config, plugins)
    for stale in (node.pid_file, node.crash_dump):  # a stale pid file would make us watch a dead pid
        with contextlib.suppress(OSError):
            stale.unlink()
    with node.launcher_log.open("ab") as log:
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {server} -detached ({node.name})\n".encode())
        log.flush()
        done = subprocess.run(
            [str(server), "-detached"],
            env=node.env(),
            cwd=node.base_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=60,
            check=False,
        )
    if done.returncode != 0:
        raise DevBrokerError(
            f"rabbitmq-server -detached failed (exit {done.returncode}) for node {node.name}\n" + _log_tails(node)
        )
    try:
        _wait_ready(node, timeout)
    except BaseException:
        # Don't leave a half-started VM behind.
        with contextlib.suppress(Exception):
            node.stop(timeout=30)
        raise


def _spawn_watcher(node: Node, owner_pid: int) -> None:
    """Start ``python -m devbroker watch``: it stops ``node`` if ``owner_pid`` dies first."""
    path = os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))
    with (node.base_dir / "log" / "watcher.log").open("ab") as log:
        subprocess.Popen(
            [sys.executable, "-m", "devbroker", "watch", "--dir", str(node.base_dir), "--pid", str(owner_pid)],
            env={**os.environ, "PYTHONPATH": path},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the owner's process group being killed
            close_fds=True,
        )


def watch(node: Node, owner_pid: int, interval: float = 1.0) -> bool:
    """Wait until the node's VM exits (return False) or ``owner_pid`` dies (stop the node, return True)."""
    pid = node.read_pid()
    while True:
        if pid is not None and not pid_alive(pid):
            return False
        if not pid_alive(owner_pid):
            node.stop()
            return True
        time.sleep(interval)


def load(base_dir: Path) -> Node | None:
    """The node recorded in ``base_dir``'s state file (running or not), or None."""
    path = Path(base_dir).resolve() / STATE_FILE
    try:
        data = json.loads(path.read_text())
        return Node(
            name=str(data["name"]),
            amqp_port=int(data["amqp_port"]),
            http_port=int(data["http_port"]),
            base_dir=Path(str(data["base_dir"])),
            dist_port=int(data["dist_port"]),
            pid=int(data["pid"]) if data.get("pid") is not None else None,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def dir_node_name(base_dir: Path) -> str:
    """A node name that is stable for one directory and differs between directories (checkouts)."""
    digest = hashlib.sha256(str(Path(base_dir).resolve()).encode()).hexdigest()[:8]
    return f"topo-dev-{digest}@localhost"


def ensure(url: str | None, base_dir: Path, amqp_port: int, http_port: int) -> Node | None:
    """The demo's broker: None to use ``url``, the broker the user named; without one, a private node.

    A demo writes only to a broker the user named: without ``url`` no other broker is even asked (one
    answering on localhost:15672 may be anyone's), and a named broker that does not answer is an error,
    not a reason to write elsewhere. The private node listens on 127.0.0.1 at those ports; a node this
    directory already runs is reused rather than started twice.
    """
    if url:
        if management_answers(url):
            return None
        raise DevBrokerError(
            f"the broker named by TOPO_URL does not answer: {redact(url)}",
            hint="check the URL and that the broker's Management API is enabled; "
            "or unset TOPO_URL, and the demo uses a private node on 127.0.0.1",
        )
    existing = load(base_dir)
    if existing is not None and existing.is_running():
        return existing
    return start(base_dir, amqp_port=amqp_port, http_port=http_port, name=dir_node_name(base_dir), plugins=DEMO_PLUGINS)
