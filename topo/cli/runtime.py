"""``topo publish``, ``consume``, ``rpc``, ``dlq replay``, ``health`` and ``bench``: the runtime from the
command line.

They load the topology like ``plan`` does, so names are checked against it before any I/O, and talk
AMQP to ``--amqp-url`` (``$TOPO_AMQP_URL``, default ``amqp://guest:guest@localhost:5672/``).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import decimal
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from topo.cli.common import DEFAULT_AMQP_URL, PATHS, cli, load_paths, vars_option
from topo.errors import UsageError
from topo.urls import DEFAULT_TIMEOUT

if TYPE_CHECKING:
    from topo.runtime.health import Health

__all__ = [
    "bench_cmd",
    "consume_cmd",
    "dlq_replay_cmd",
    "health_cmd",
    "message_json",
    "publish_cmd",
    "read_body",
    "rpc_cmd",
]

_VHOST = click.option("--vhost", required=True, metavar="NAME", help="The vhost (declared in the topology).")
_AMQP_URL = click.option(
    "--amqp-url",
    envvar="TOPO_AMQP_URL",
    default=DEFAULT_AMQP_URL,
    show_default="$TOPO_AMQP_URL or amqp://guest:guest@localhost:5672/",
    help="AMQP URL (amqp:// or amqps://); its vhost is replaced by --vhost.",
)


def _header_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_headers(items: tuple[str, ...]) -> dict[str, Any] | None:
    """``K=V`` pairs; a value that is valid JSON (``3``, ``true``, ``[1,2]``) keeps its type."""
    if not items:
        return None
    headers: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--header {item!r} is not KEY=VALUE")
        headers[key] = _header_value(value)
    return headers


def read_body(body: str | None, file_: Path | None, content_type: str | None) -> tuple[bytes, str | None]:
    """``--body`` or ``--file`` as bytes, and the content type: given, else JSON or text for ``--body``."""
    if file_ is not None:
        if body is not None:
            raise UsageError("give exactly one of --body and --file")
        return file_.read_bytes(), content_type
    if body is None:
        raise UsageError("give exactly one of --body and --file")
    try:
        data = body.encode()
    except UnicodeEncodeError:  # bytes of the command line that are not UTF-8 (surrogateescape)
        raise UsageError(
            "--body is not UTF-8 text", hint="to send other bytes, write them to a file and use --file FILE"
        ) from None
    if content_type is None:
        try:
            json.loads(body)
            content_type = "application/json"
        except ValueError:
            content_type = "text/plain; charset=utf-8"
    return data, content_type


def _expiration(text: str | None) -> str | None:
    """``--expiration``: the ``expiration`` property, milliseconds as a string (AMQP's type)."""
    if text is None:
        return None
    from topo.units import parse_duration

    try:
        return str(parse_duration(int(text) if text.strip().isdigit() else text))
    except ValueError as exc:
        raise UsageError(f"--expiration {text!r}: {exc}", hint="e.g. --expiration 30000 or --expiration 30s") from None


def _message_fields(**fields: Any) -> dict[str, Any]:
    """The message properties given (the library's names: ``priority``, ``expiration``, ``reply_to``...)."""
    return {name: value for name, value in fields.items() if value is not None}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return {"base64": base64.b64encode(value).decode()}
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def message_json(message: Any) -> dict[str, Any]:
    """A received message as one JSON-able object (the body decoded when its content type allows)."""
    props = message.properties
    out: dict[str, Any] = {
        "exchange": message.exchange,
        "routing_key": message.routing_key,
        "redelivered": message.redelivered,
        "properties": {
            name: _jsonable(getattr(props, name)) for name in props.__slots__ if getattr(props, name) is not None
        },
    }
    try:
        body = message.decoded()
    except ValueError:
        body = message.body
    if isinstance(body, bytes):
        try:
            out["body"] = body.decode()
        except UnicodeDecodeError:
            out["body_base64"] = base64.b64encode(body).decode()
    else:
        out["body"] = _jsonable(body)
    return out


@cli.command("publish")
@PATHS
@_VHOST
@click.option("--exchange", required=True, help='Exchange to publish to ("" for the default exchange).')
@click.option("--routing-key", default="", show_default=True, help="The routing key.")
@click.option("--body", help="The message body (JSON is sent as application/json, other text as text/plain).")
@click.option("--file", "file_", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Body file.")
@click.option("--header", "headers", multiple=True, metavar="KEY=VALUE", help="A header (repeatable).")
@click.option("--content-type", help="Override the content type.")
@click.option("--no-check-routing", is_flag=True, help="Publish even if the declared bindings drop it.")
@click.option("--priority", type=click.IntRange(0, 255), help="Message priority (a queue with max-priority).")
@click.option("--expiration", metavar="DURATION", help="Per-message TTL: milliseconds, or 500ms, 30s, 5m, 1h.")
@click.option("--reply-to", help="The reply_to property (a queue name).")
@click.option("--correlation-id", help="The correlation_id property.")
@click.option("--type", "type_", metavar="TYPE", help="The message type property.")
@click.option("--message-id", help="The message_id (default: a new one).")
@click.option(
    "--persistent/--transient",
    default=None,
    help="Delivery mode 2 or 1 [default: persistent when it reaches a durable queue].",
)
@click.option(
    "--timeout",
    envvar="TOPO_TIMEOUT",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_TIMEOUT,
    show_default="$TOPO_TIMEOUT or 60",
    metavar="SECONDS",
    help="Give up when the broker has not confirmed the message after this long (e.g. while a memory "
    "alarm blocks publishers).",
)
@_AMQP_URL
@vars_option
def publish_cmd(
    paths: tuple[str, ...],
    vhost: str,
    exchange: str,
    routing_key: str,
    body: str | None,
    file_: Path | None,
    headers: tuple[str, ...],
    content_type: str | None,
    no_check_routing: bool,
    priority: int | None,
    expiration: str | None,
    reply_to: str | None,
    correlation_id: str | None,
    type_: str | None,
    message_id: str | None,
    persistent: bool | None,
    timeout: float,
    amqp_url: str,
    variables: tuple[str, ...],
) -> int:
    """Publish one message through the declared topology and wait for the broker's confirm."""
    data, content_type = read_body(body, file_, content_type)
    fields = _message_fields(
        priority=priority,
        expiration=_expiration(expiration),
        reply_to=reply_to,
        correlation_id=correlation_id,
        type=type_,
    )
    topology = load_paths(paths, variables)
    header_values = parse_headers(headers)

    from topo.runtime import connect

    client = connect(topology, vhost=vhost, url=amqp_url, reconnect=False, name="topo publish")
    publisher = client.publisher(exchange, check_routing=not no_check_routing)
    reason, _ = publisher.route(routing_key, header_values)
    if reason is not None and not no_check_routing:
        from topo.runtime.errors import UnroutableError

        raise UnroutableError(exchange, routing_key, reason, hint="fix the routing key, or pass --no-check-routing")

    async def go() -> str:
        async with client:
            mid = message_id or client.new_message_id()
            sent = publisher.publish(
                routing_key,
                data,
                headers=header_values,
                content_type=content_type,
                message_id=mid,
                persistent=persistent,
                **fields,
            )
            try:
                await asyncio.wait_for(sent, timeout)
            except TimeoutError:
                from topo.runtime.errors import PublishTimeout

                blocked = client.connection.blocked
                await client.connection.close(timeout=1)  # a blocked broker reads nothing, not even Close
                raise PublishTimeout(timeout, blocked) from None
            return mid

    message_id = asyncio.run(go())
    click.echo(f"Published {len(data)} bytes to {exchange or '(default)'} {routing_key!r} (message id {message_id}).")
    return 0


@cli.command("rpc")
@PATHS
@_VHOST
@click.option("--queue", required=True, help="The request queue (declared in the topology).")
@click.option("--body", help="The request body (JSON is sent as application/json, other text as text/plain).")
@click.option("--file", "file_", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Body file.")
@click.option("--header", "headers", multiple=True, metavar="KEY=VALUE", help="A header (repeatable).")
@click.option("--content-type", help="Override the content type.")
@click.option("--timeout", type=float, default=5.0, show_default=True, help="Seconds to wait for the reply.")
@_AMQP_URL
@vars_option
def rpc_cmd(
    paths: tuple[str, ...],
    vhost: str,
    queue: str,
    body: str | None,
    file_: Path | None,
    headers: tuple[str, ...],
    content_type: str | None,
    timeout: float,
    amqp_url: str,
    variables: tuple[str, ...],
) -> int:
    """Send a request to QUEUE over direct reply-to and print the reply (JSON as JSON, text as text).

    Exits 1 when no reply came within --timeout (the request expires then), or the server's handler failed.
    """
    if timeout <= 0:
        raise UsageError(f"--timeout must be positive, got {timeout:g}")
    data, content_type = read_body(body, file_, content_type)
    topology = load_paths(paths, variables)
    header_values = parse_headers(headers)
    from topo.runtime import connect

    client = connect(topology, vhost=vhost, url=amqp_url, reconnect=False, name="topo rpc")
    client.queue(queue)

    async def go() -> Any:
        async with client:
            return await client.rpc(queue, data, timeout=timeout, headers=header_values, content_type=content_type)

    reply = asyncio.run(go())
    if isinstance(reply, bytes):
        try:
            click.echo(reply.decode())
        except UnicodeDecodeError:
            click.echo(reply, nl=False)
    elif isinstance(reply, str):
        click.echo(reply)
    else:
        click.echo(json.dumps(_jsonable(reply), ensure_ascii=False))
    return 0


@cli.command("consume")
@PATHS
@_VHOST
@click.option("--queue", required=True, help="The queue (declared in the topology).")
@click.option("--count", type=int, help="Stop after N messages.")
@click.option("--timeout", type=float, default=None, help="Stop when no message came for this many seconds.")
@click.option("--requeue", is_flag=True, help="Put the messages back (nack with requeue) instead of acking.")
@click.option("--prefetch", type=int, help="Prefetch (default: the queue's declared prefetch).")
@click.option(
    "--offset",
    metavar="WHERE",
    help="For a stream: first, last, next (the default), an offset (0, 1, ...), an ISO date-time, or an "
    "interval such as 1h or 7D.",
)
@_AMQP_URL
@vars_option
def consume_cmd(
    paths: tuple[str, ...],
    vhost: str,
    queue: str,
    count: int | None,
    timeout: float | None,
    requeue: bool,
    prefetch: int | None,
    offset: str | None,
    amqp_url: str,
    variables: tuple[str, ...],
) -> int:
    """Print the queue's messages as JSON lines (acked, or requeued with --requeue)."""
    topology = load_paths(paths, variables)
    from topo.runtime import connect

    client = connect(topology, vhost=vhost, url=amqp_url, reconnect=False, name="topo consume")
    if requeue and client.queue(queue).type == "stream":
        raise UsageError(
            f"--requeue does not apply to stream {queue!r}: a stream keeps its messages when they are read",
            hint="leave --requeue out; read the stream again with --offset",
        )
    stream = client.consume(
        queue, prefetch=prefetch if prefetch is not None else (count or None), offset=_stream_offset(offset)
    )

    async def go() -> int:
        seen = 0
        async with client, stream as messages:
            while count is None or seen < count:
                message = await messages.get(timeout)
                if message is None:
                    break
                click.echo(json.dumps(message_json(message), ensure_ascii=False))
                if requeue:
                    await message.nack(requeue=True)
                else:
                    await message.ack()
                seen += 1
        return seen

    asyncio.run(go())
    return 0


def _stream_offset(text: str | None) -> str | int | dt.datetime | None:
    """``--offset``: digits are an offset, an ISO date-time a timestamp; the rest is checked by the client."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    if text.isdigit():
        return int(text)
    if "-" in text[1:] or "T" in text:
        try:
            return dt.datetime.fromisoformat(text)
        except ValueError:
            raise UsageError(
                f"--offset {text!r} is not a date-time", hint="write it as 2026-11-22T10:00:00 (ISO 8601)"
            ) from None
    return text


@cli.command("bench")
@PATHS
@_VHOST
@click.option("--exchange", required=True, help='Exchange to publish to ("" for the default exchange).')
@click.option("--routing-key", default="", show_default=True)
@click.option("--queue", help="Queue to consume from afterwards (declared; should receive the messages).")
@click.option("-n", "--messages", "count", type=int, default=10000, show_default=True)
@click.option("--size", type=int, default=256, show_default=True, help="Body size in bytes.")
@click.option("--window", type=int, default=4000, show_default=True, help="Unconfirmed publishes at most.")
@_AMQP_URL
@vars_option
def bench_cmd(
    paths: tuple[str, ...],
    vhost: str,
    exchange: str,
    routing_key: str,
    queue: str | None,
    count: int,
    size: int,
    window: int,
    amqp_url: str,
    variables: tuple[str, ...],
) -> int:
    """Publish N messages (confirmed, pipelined) through the declared layout, then consume them."""
    topology = load_paths(paths, variables)
    from topo.runtime import connect

    client = connect(topology, vhost=vhost, url=amqp_url, reconnect=False, name="topo bench")
    publisher = client.publisher(exchange)
    if queue is not None:
        client.queue(queue)
    body = b"x" * size

    async def go() -> tuple[float, float | None]:
        async with client:
            await publisher.ready()
            start = time.perf_counter()
            for i in range(count):
                publisher.send(routing_key, body)
                if i % 500 == 0:
                    await publisher.wait_outstanding(window)
            await publisher.flush()
            published = count / (time.perf_counter() - start)
            if queue is None:
                return published, None
            got = 0
            start = time.perf_counter()
            async with client.consume(queue, prefetch=200) as messages:
                async for message in messages:
                    message.ack_nowait()
                    got += 1
                    if got == count:
                        break
            return published, got / (time.perf_counter() - start)

    published, consumed = asyncio.run(go())
    click.echo(f"publish: {published:,.0f} msg/s ({count} x {size} B, confirmed)")
    if consumed is not None:
        click.echo(f"consume: {consumed:,.0f} msg/s (prefetch 200, acked)")
    return 0


@cli.group("dlq")
def dlq_group() -> None:
    """Dead-letter queues: send dead letters back where they came from."""


@dlq_group.command("replay")
@PATHS
@_VHOST
@click.option("--queue", required=True, help="The dead-letter queue (declared in the topology).")
@click.option("--count", type=int, help="Replay at most N dead letters (default: all it holds now).")
@click.option("--dry-run", is_flag=True, help="Show what would go where; move nothing.")
@_AMQP_URL
@vars_option
def dlq_replay_cmd(
    paths: tuple[str, ...],
    vhost: str,
    queue: str,
    count: int | None,
    dry_run: bool,
    amqp_url: str,
    variables: tuple[str, ...],
) -> int:
    """Republish dead letters to their original exchange and routing key, each acked only once its copy is
    confirmed (stopped half-way, nothing is lost; the one in flight may exist twice). Dead letters whose
    route is unknown or no longer declared are skipped and stay. Exits 1 when any was skipped."""
    if count is not None and count < 1:
        raise UsageError(f"--count must be at least 1, got {count}")
    topology = load_paths(paths, variables)
    from topo.runtime import connect
    from topo.runtime.dlq import DeadLetter, ReplayReport

    client = connect(topology, vhost=vhost, url=amqp_url, reconnect=False, name="topo dlq replay")
    client.queue(queue)

    def show(item: DeadLetter) -> None:
        parts = [f"{item.status:<12}", item.message_id or "(no message id)"]
        if item.exchange is not None:
            parts.append(f"-> {item.exchange or '(default exchange)'} {item.routing_key!r}  (from {item.source})")
        if item.reason:
            parts.append(item.reason)
        click.echo("  ".join(parts))

    async def go() -> ReplayReport:
        async with client:
            return await client.replay_dead_letters(queue, count=count, dry_run=dry_run, on_item=show)

    report = asyncio.run(go())
    letters = len(report.items) - report.skipped

    def plural(n: int) -> str:
        return f"{n} dead letter{'' if n == 1 else 's'}"

    if not report.items and report.error is None:
        click.echo(f"No dead letters in {queue!r}.")
        return 0
    skipped = f"; {report.skipped} skipped (left in the queue)" if report.skipped else ""
    if dry_run:
        click.echo(f"Dry run: would replay {plural(letters)} from {queue!r}{skipped}; nothing was moved.")
    else:
        click.echo(f"Replayed {plural(report.replayed)} from {queue!r}{skipped}.")
    if report.error is not None:
        from topo.errors import RuntimeClientError

        raise RuntimeClientError(
            f"the replay stopped: {report.error.message}",
            hint=f"the dead letters not replayed are still in {queue!r}; fix the cause and run it again",
        )
    return 1 if report.skipped else 0


@cli.command("health")
@PATHS
@_VHOST
@click.option("--queue", "queues", multiple=True, metavar="NAME", help="Check only this queue (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="Unhealthy when the broker has not answered every check after this long.",
)
@_AMQP_URL
@vars_option
def health_cmd(
    paths: tuple[str, ...],
    vhost: str,
    queues: tuple[str, ...],
    fmt: str,
    timeout: float,
    amqp_url: str,
    variables: tuple[str, ...],
) -> int:
    """For container health checks: is the AMQP connection up, and does every declared queue exist and
    have the consumers its files expect?

    Exit code as Docker's HEALTHCHECK reads it: 0 healthy, 1 unhealthy or any error (never 2, which
    Docker reserves). A queue needs consumers where `topo status` would call it CRITICAL without them
    (at least 1 by default; not a dead-letter or retry queue, nor one with `consumers: off`).
    """
    topology = load_paths(paths, variables)
    from topo.runtime import connect
    from topo.runtime.errors import ConnectionFailed
    from topo.runtime.health import Health

    client = connect(topology, vhost=vhost, url=amqp_url, reconnect=False, name="topo health")
    for name in queues:
        client.queue(name)  # NotDeclared before any I/O

    async def go() -> Health:
        try:
            async with client:
                return await client.health(queues or None)
        except ConnectionFailed as exc:  # the answer is "unhealthy", with why
            return Health(vhost, False, None, (), error=exc.message)

    try:
        report = asyncio.run(asyncio.wait_for(go(), timeout))
    except TimeoutError:
        report = Health(vhost, False, None, (), error=f"the broker did not answer within {timeout:g} s")
    if fmt == "json":
        click.echo(json.dumps(_health_json(report), ensure_ascii=False, indent=2))
    else:
        click.echo(_health_text(report, client.connection.params.display()), nl=False)
    return 0 if report.healthy else 1


def _health_json(report: Health) -> dict[str, Any]:
    return {
        "healthy": report.healthy,
        "vhost": report.vhost,
        "connected": report.connected,
        "blocked": report.blocked,
        "problems": report.problems,
        "queues": [
            {
                "queue": q.queue,
                "exists": q.exists,
                "messages": q.messages,
                "consumers": q.consumers,
                "required_consumers": q.required_consumers,
                "healthy": q.healthy,
                "problem": q.problem,
            }
            for q in report.queues
        ],
    }


def _health_text(report: Health, where: str) -> str:
    lines = []
    if report.healthy:
        lines.append(f"HEALTHY: {where}: {len(report.queues)} queue{'' if len(report.queues) == 1 else 's'} checked")
    else:
        lines.append(f"UNHEALTHY: {where}: " + "; ".join(report.problems))
    width = max((len(q.queue) for q in report.queues), default=0)
    for q in report.queues:
        if not q.exists:
            state = "missing"
        else:
            needs = f", needs {q.required_consumers}" if q.required_consumers is not None else ""
            state = f"{q.messages} ready, {q.consumers} consumer{'' if q.consumers == 1 else 's'}{needs}"
        lines.append(f"  {q.queue:<{width}}  {'ok' if q.healthy else 'PROBLEM':<7}  {state}")
    if report.blocked is not None:
        lines.append(f"  note: the broker blocks publishers: {report.blocked}")
    return "\n".join(lines) + "\n"
