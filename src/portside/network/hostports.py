"""Host ports: the ephemeral range, and holding a port so nothing else on the host takes it.

A published port is served by DNAT, not by a listening socket, so without more
the host would not know the port is in use: another daemon or a server could
bind it and never see a packet. Binding a socket (not listening, no
SO_REUSEADDR, so even a SO_REUSEADDR binder is refused) both checks that the
port is free now and keeps it ours until the mapping goes, as Docker does when
its userland proxy is off. Packets never reach these sockets: DNAT rewrites
their destination before local delivery.
"""

from __future__ import annotations

import errno
import socket

_SOCKET_TYPES = {
    "tcp": (socket.SOCK_STREAM, socket.IPPROTO_TCP),
    "udp": (socket.SOCK_DGRAM, socket.IPPROTO_UDP),
    "sctp": (socket.SOCK_STREAM, socket.IPPROTO_SCTP),
}

RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
# moby's fallback when the kernel's range cannot be read
DEFAULT_RANGE = (49153, 60999)


def ephemeral_range(path: str = RANGE_FILE) -> tuple[int, int]:
    """The kernel's ephemeral port range (``ip_local_port_range``), as Docker draws random host ports from."""
    try:
        with open(path) as f:
            low, high = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        return DEFAULT_RANGE
    if not 0 < low <= high <= 0xFFFF:
        return DEFAULT_RANGE
    return low, high


def hold(proto: str, ip: str, port: int) -> socket.socket | None:
    """Bind ``ip:port`` for ``proto`` and return the socket; OSError (EADDRINUSE...) when it is not free.

    None when the kernel cannot make such a socket at all (SCTP without its module):
    the port is then only checked against our own allocations.
    """
    kind, proto_number = _SOCKET_TYPES[proto]
    try:
        sock = socket.socket(socket.AF_INET, kind, proto_number)
    except OSError as e:
        if e.errno in (errno.EPROTONOSUPPORT, errno.ESOCKTNOSUPPORT, errno.EAFNOSUPPORT):
            return None
        raise
    try:
        sock.bind((ip, port))
    except OSError:
        sock.close()
        raise
    return sock


def bind_error(proto: str, ip: str, port: int, e: OSError) -> str:
    """How Docker words a host port it could not bind (its userland proxy's ``listen`` error)."""
    reason = {errno.EADDRINUSE: "address already in use",
              errno.EADDRNOTAVAIL: "cannot assign requested address",
              errno.EACCES: "permission denied"}.get(e.errno or 0, (e.strerror or str(e)).lower())
    return f"Error starting userland proxy: listen {proto}4 {ip}:{port}: bind: {reason}"
