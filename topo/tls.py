"""TLS client settings shared by the Management API client (``https://``) and the runtime (``amqps://``).

A context verifies the server against the system's CAs, or only against ``ca_cert`` when given; presents
``client_cert`` (with ``client_key``, or a key inside the certificate file) when given; ``insecure``
turns verification off (for a throwaway test broker only). A file that is missing or not PEM is a
:class:`~topo.errors.UsageError` naming the file, never a traceback or a password prompt.
"""

from __future__ import annotations

import ssl

from topo.errors import UsageError

__all__ = ["client_context"]


def client_context(
    *,
    ca_cert: str | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
    insecure: bool = False,
    what: str = "the",
) -> ssl.SSLContext:
    """An ``ssl.SSLContext`` for a client; ``what`` says where the settings came from, in errors
    (``"the AMQP URL's"``, ``"--ca-cert's"``...)."""
    if client_key and not client_cert:
        raise UsageError(f"{what} client key is given without a client certificate", hint="give --client-cert too")
    try:
        context = ssl.create_default_context(cafile=ca_cert or None)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(
            f"cannot read {what} CA certificate {ca_cert}: {_reason(exc)}",
            hint="give a file of PEM certificates (-----BEGIN CERTIFICATE-----)",
        ) from None
    if client_cert:
        try:
            # a password callback, so that an encrypted key fails here instead of prompting on the terminal
            context.load_cert_chain(client_cert, client_key or None, password=lambda: b"")
        except (OSError, ssl.SSLError) as exc:
            files = client_cert + (f" and {client_key}" if client_key else "")
            reason = _reason(exc) if isinstance(exc, OSError) and not isinstance(exc, ssl.SSLError) else None
            raise UsageError(
                f"cannot read {what} client certificate {files}: "
                + (reason or "no private key that matches the certificate (or an encrypted one)"),
                hint="give the certificate and its unencrypted private key as PEM files "
                "(the key may also sit in the certificate file)",
            ) from None
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _reason(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "it is a directory"
    return str(getattr(exc, "reason", None) or exc.__class__.__name__).replace("_", " ").lower()
