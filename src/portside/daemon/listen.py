"""What the daemon listens on: ``-H`` addresses and the TLS that a TCP address requires.

As dockerd, ``-H`` may be given several times (``unix:///PATH``,
``tcp://HOST:PORT``). Unlike dockerd, which still serves plain HTTP on TCP
when told to, portside refuses a TCP address unless every client must present
a certificate signed by the CA (``--tlsverify --tlscacert --tlscert
--tlskey``): whoever reaches the API controls the host as root.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass

from portside.errors import InvalidArgument

# dockerd's default port for TLS.
DEFAULT_TLS_PORT = 2376


@dataclass(frozen=True)
class UnixAddress:
    path: str


@dataclass(frozen=True)
class TCPAddress:
    host: str
    port: int


Address = UnixAddress | TCPAddress


def parse_host(untrusted: str) -> Address:
    """A ``-H`` value; InvalidArgument for anything else than unix:///PATH and tcp://HOST:PORT."""
    if untrusted.startswith("unix://"):
        path = untrusted[len("unix://"):]
        if not path.startswith("/"):
            raise InvalidArgument(f"socket path must be absolute: {untrusted!r}")
        return UnixAddress(path)
    if untrusted.startswith("tcp://"):
        rest = untrusted[len("tcp://"):].rstrip("/")
        if "/" in rest:
            raise InvalidArgument(f"invalid bind address {untrusted!r}: no path allowed")
        host, sep, port_text = rest.rpartition(":")
        if not sep:
            host, port_text = rest, ""
        host = host.strip("[]") or "0.0.0.0"
        if not port_text:
            return TCPAddress(host, DEFAULT_TLS_PORT)
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise InvalidArgument(f"invalid bind address {untrusted!r}: invalid port {port_text!r}")
        return TCPAddress(host, int(port_text))
    raise InvalidArgument(f"unsupported host {untrusted!r}: portside daemon listens on unix:///PATH "
                          "and tcp://HOST:PORT")


@dataclass(frozen=True)
class TLSFiles:
    cacert: str
    cert: str
    key: str


def default_cert_path() -> str:
    """docker's: $DOCKER_CERT_PATH, else ~/.docker."""
    return os.environ.get("DOCKER_CERT_PATH") or os.path.join(os.path.expanduser("~"), ".docker")


def server_context(files: TLSFiles) -> ssl.SSLContext:
    """TLS 1.2 or newer, our certificate, and a client certificate signed by the CA required at the handshake."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    # A client half-closes a hijacked stream with a TCP FIN and no close_notify (the portside
    # CLI; older docker CLIs): without this OpenSSL 3 answers a fatal alert and the container's
    # output is lost. HTTP's own framing still detects a truncated request.
    context.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
    for what, path in (("CA certificate", files.cacert), ("certificate", files.cert), ("key", files.key)):
        if not os.path.isfile(path):
            raise InvalidArgument(f"could not read TLS {what} {path}: no such file")
    try:
        context.load_verify_locations(cafile=files.cacert)
    except (ssl.SSLError, OSError) as exc:
        raise InvalidArgument(f"could not read CA certificate {files.cacert}: {exc}") from None
    try:
        context.load_cert_chain(files.cert, files.key)
    except (ssl.SSLError, OSError) as exc:
        raise InvalidArgument(f"could not load X509 key pair ({files.cert}, {files.key}): {exc}") from None
    return context
