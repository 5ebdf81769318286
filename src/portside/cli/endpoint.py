"""Where the CLI connects and how: the host and TLS settings, resolved as the docker CLI does.

docker's rules (``cli/flags/options.go``, ``opts/hosts.go``):

* the host: ``-H``, else ``$PORTSIDE_HOST``, else ``$DOCKER_HOST``, else the
  default unix socket, or ``tcp://localhost:2376`` when TLS is on;
  ``tcp://HOST`` without a port means 2376 with TLS, 2375 without;
* ``--tlsverify`` defaults to ``$DOCKER_TLS_VERIFY`` being set (to anything);
  given at all (even ``=false``) or set, it turns TLS on, as ``--tls`` does;
* the files default to ``ca.pem``, ``cert.pem``, ``key.pem`` in
  ``$DOCKER_CERT_PATH``, else ``~/.docker``; a default certificate or key
  that does not exist is not used (the daemon then refuses us), the CA is
  used only with verification (``--tls`` alone does not check the daemon).

Nothing here imports ``ssl``: ``cli/tlsclient.py`` does, and is imported only
for a TLS connection (docs/cli-startup.md).
"""

from __future__ import annotations

import _socket
import os

DEFAULT_UNIX_HOST = "unix:///run/portside/portside.sock"
DEFAULT_TLS_HOST = "tcp://localhost:2376"
DEFAULT_TLS_PORT = 2376
DEFAULT_HTTP_PORT = 2375

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping


class EndpointError(ValueError):
    """A host or TLS setting the CLI cannot use; the message is printed as is (status 1)."""


class TLSOptions:
    """The client side of TLS: verify the daemon against ``cacert``, present ``cert``/``key`` if given."""

    __slots__ = ("verify", "cacert", "cert", "key")

    def __init__(self, *, verify: bool, cacert: str, cert: str, key: str) -> None:
        self.verify = verify
        self.cacert = cacert  # "" when not used
        self.cert = cert
        self.key = key


class Endpoint:
    """A resolved daemon address: ``unix`` (path) or ``tcp`` (host, port), with TLS or not."""

    __slots__ = ("host", "scheme", "path", "address", "port", "tls")

    def __init__(self, host: str, tls: TLSOptions | None = None) -> None:
        self.host = host  # as given, for messages
        self.tls = tls
        self.path = ""
        self.address = ""
        self.port = 0
        if host.startswith("unix://") or ("://" not in host and host.startswith("/")):
            self.scheme = "unix"
            self.path = host[len("unix://"):] if host.startswith("unix://") else host
            if not self.path:
                raise EndpointError(f"unsupported host {host!r}: empty socket path")
            return
        if not host.startswith("tcp://"):
            raise EndpointError(f"unsupported host {host!r}: portside speaks unix:// and tcp://")
        self.scheme = "tcp"
        rest = host[len("tcp://"):].rstrip("/")
        address, sep, port = rest.rpartition(":")
        if not sep or address.endswith(":"):  # no port, or a bare IPv6 address
            address, port = rest, ""
        self.address = address.strip("[]") or "localhost"
        if not port:
            self.port = DEFAULT_TLS_PORT if tls is not None else DEFAULT_HTTP_PORT
        elif port.isdigit() and 0 < int(port) < 65536:
            self.port = int(port)
        else:
            raise EndpointError(f"invalid bind address format: {rest}")

    def connect(self, timeout: float | None = None) -> _socket.socket:
        """A connected socket (TLS-wrapped, handshake done, when TLS is on); OSError when nobody answers."""
        if self.scheme == "unix":
            sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            try:
                sock.settimeout(timeout)
                # Room for large uploads (load, import) in fewer, bigger writes.
                sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_SNDBUF, 4 << 20)
                sock.connect(self.path)
            except BaseException:
                sock.close()
                raise
            return sock
        sock = _tcp_connect(self.address, self.port, timeout)
        if self.tls is None:
            return sock
        from portside.cli import tlsclient

        try:
            return tlsclient.wrap(sock, self.address, self.tls)
        except BaseException:
            sock.close()
            raise


def _tcp_connect(address: str, port: int, timeout: float | None) -> _socket.socket:
    error: OSError = ConnectionRefusedError(f"cannot connect to {address}:{port}")
    for family, kind, proto, _, sockaddr in _socket.getaddrinfo(address, port, 0, _socket.SOCK_STREAM):
        sock = _socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            sock.connect(sockaddr)
        except OSError as e:
            sock.close()
            error = e
            continue
        return sock
    raise error


def resolve(
    hosts: list[str],
    *,
    tls: bool = False,
    tlsverify: bool | None = None,
    tlscacert: str = "",
    tlscert: str = "",
    tlskey: str = "",
    env: Mapping[str, str] | None = None,
    portside_env: str = "PORTSIDE_HOST",
) -> tuple[Endpoint, bool]:
    """The endpoint the global flags and the environment name, and whether it is the default socket.

    ``tlsverify`` None: not given on the command line (the environment decides).
    """
    env = os.environ if env is None else env
    if len(hosts) > 1:
        raise EndpointError("Specify only one -H")
    verify = bool(env.get("DOCKER_TLS_VERIFY")) if tlsverify is None else tlsverify
    use_tls = tls or verify or tlsverify is not None
    options = None
    if use_tls:
        cert_path = env.get("DOCKER_CERT_PATH") or os.path.join(os.path.expanduser("~"), ".docker")
        files = {"cacert": tlscacert, "cert": tlscert, "key": tlskey}
        for name, default in (("cacert", "ca.pem"), ("cert", "cert.pem"), ("key", "key.pem")):
            if not files[name]:
                path = os.path.join(cert_path, default)
                files[name] = path if (name == "cacert" and verify) or os.path.exists(path) else ""
        options = TLSOptions(verify=verify, **files)
    host = hosts[0] if hosts else env.get(portside_env) or env.get("DOCKER_HOST") or ""
    if not host:
        return Endpoint(DEFAULT_TLS_HOST if use_tls else DEFAULT_UNIX_HOST, options), not use_tls
    endpoint = Endpoint(host, options if host.startswith("tcp://") else None)
    return endpoint, host == DEFAULT_UNIX_HOST
