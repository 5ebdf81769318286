"""`portside daemon`: the composition root.

Builds the engine's services on one data root, takes the root's lock, sweeps
what a crash left behind, and serves the Engine API on a unix socket (and on
TCP with mutual TLS, if asked: daemon/listen.py, docs/security.md) until
SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import errno
import faulthandler
import fcntl
import grp
import logging
import os
import re
import signal
import socket
import ssl
import sys
import threading
from typing import IO

import portside
from portside.containers import userns
from portside.containers.userns import IdentityMapping
from portside.daemon.api import archive as archive_api
from portside.daemon.api import build as build_api
from portside.daemon.api import commit as commit_api
from portside.daemon.api import containers as containers_api
from portside.daemon.api import distribution as distribution_api
from portside.daemon.api import events as events_api
from portside.daemon.api import images as images_api
from portside.daemon.api import networks as networks_api
from portside.daemon.api import stats as stats_api
from portside.daemon.api import system as system_api
from portside.daemon.api import volumes as volumes_api
from portside.daemon.engine import Engine
from portside.daemon import listen
from portside.daemon.http import Server
from portside.daemon.router import API_VERSION, Router
from portside.distribution.hosts import DEFAULT_CERTS_DIR, RegistryOptions
from portside.errors import InvalidArgument, PortsideError
from portside.events import Recorder
from portside.images.service import ImageService
from portside.runtime import nofile

DEFAULT_ROOT = "/var/lib/portside"
DEFAULT_HOST = "unix:///run/portside/portside.sock"
DEFAULT_GROUP = "portside"

log = logging.getLogger("portside.daemon")


class DaemonError(Exception):
    """Refusal to start; the message is printed as is."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="portside daemon", description="Run the portside engine.")
    p.add_argument("--root", default=DEFAULT_ROOT, help="data root (default %(default)s)")
    p.add_argument("-H", "--host", action="append", default=[],
                   help="address to listen on, unix:///PATH or tcp://HOST:PORT (TLS only); repeatable "
                        f"(default $PORTSIDE_DAEMON_HOST or {DEFAULT_HOST})")
    p.add_argument("-G", "--group", default=DEFAULT_GROUP,
                   help="group owning the unix sockets (default %(default)s, when it exists; '' for none)")
    p.add_argument("--tls", action="store_true", help="use TLS; implied by --tlsverify")
    p.add_argument("--tlsverify", action="store_true",
                   help="use TLS and require client certificates signed by --tlscacert")
    cert_path = listen.default_cert_path()
    p.add_argument("--tlscacert", default=os.path.join(cert_path, "ca.pem"),
                   help="trust client certificates signed only by this CA (default %(default)s)")
    p.add_argument("--tlscert", default=os.path.join(cert_path, "cert.pem"),
                   help="the daemon's TLS certificate (default %(default)s)")
    p.add_argument("--tlskey", default=os.path.join(cert_path, "key.pem"),
                   help="the daemon's TLS key (default %(default)s)")
    p.add_argument("--exec-root", default=None,
                   help="transient state: the container monitor's socket and exit files (default: the socket's directory)")
    p.add_argument("--userns-remap", default="", metavar="USER[:GROUP]",
                   help="run containers in user namespaces mapped to USER's subordinate ids "
                        "(/etc/subuid, /etc/subgid); 'default' creates and uses the user 'portside'")
    p.add_argument("--registry-mirror", action="append", default=[], metavar="URL",
                   help="preferred registry mirror for docker.io images (repeatable)")
    p.add_argument("--insecure-registry", action="append", default=[], metavar="HOST[:PORT]|CIDR",
                   help="registry reached without certificate verification, or over plain http (repeatable)")
    p.add_argument("--registry-certs-dir", default=DEFAULT_CERTS_DIR, metavar="DIR",
                   help="per-registry CA and client certificates, DIR/HOST:PORT/*.crt (default %(default)s)")
    p.add_argument("--network-tag", default="portside", help=argparse.SUPPRESS)  # names host-global objects
    p.add_argument("-b", "--bridge", default="", help="attach containers to this network bridge (default TAG0)")
    p.add_argument("--bip", default="", help="the default bridge's IP address and subnet (CIDR)")
    p.add_argument("-D", "--debug", action="store_true")
    return p.parse_args(argv)


def addresses(args: argparse.Namespace) -> list[listen.Address]:
    """The ``-H`` addresses; a TCP one only with --tlsverify (mutual TLS), at least one unix socket."""
    hosts = args.host or [os.environ.get("PORTSIDE_DAEMON_HOST") or DEFAULT_HOST]
    try:
        parsed = [listen.parse_host(h) for h in hosts]
    except InvalidArgument as e:
        raise DaemonError(e.message) from None
    for host, address in zip(hosts, parsed):
        if isinstance(address, listen.TCPAddress) and not args.tlsverify:
            raise DaemonError(
                f"refusing to listen on {host} without mutual TLS: whoever reaches the API controls this host "
                "as root; give --tlsverify with --tlscacert, --tlscert and --tlskey (docs/security.md)")
    if not any(isinstance(a, listen.UnixAddress) for a in parsed):
        # The unix socket's directory is also the monitor's exec root; and the CLI's default.
        raise DaemonError("give at least one unix:///PATH host besides tcp:// ones")
    return parsed


def tls_context(args: argparse.Namespace, parsed: list[listen.Address]) -> ssl.SSLContext | None:
    if not any(isinstance(a, listen.TCPAddress) for a in parsed):
        return None
    try:
        return listen.server_context(listen.TLSFiles(args.tlscacert, args.tlscert, args.tlskey))
    except InvalidArgument as e:
        raise DaemonError(e.message) from None


def socket_group(name: str) -> str | None:
    """dockerd's --group: the default group may be missing (root only then), a group asked for may not."""
    if not name:
        return None
    try:
        grp.getgrnam(name)
    except KeyError:
        if name != DEFAULT_GROUP:
            raise DaemonError(f"group {name!r} not found (--group)") from None
        return None
    return name


def take_lock(root: str) -> IO[str]:
    """Hold ``root/portside.lock`` for the life of the process; a second daemon on the root is refused."""
    os.makedirs(root, mode=0o710, exist_ok=True)
    path = os.path.join(root, "portside.lock")
    f = open(path, "a+")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        f.seek(0)
        holder = f.read().strip() or "unknown"
        f.close()
        raise DaemonError(f"another portside daemon (pid {holder}) is already running on data root {root} "
                          f"(lock file {path})") from None
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def refuse_live_socket(path: str) -> None:
    """A socket that answers belongs to another daemon (maybe on another root): don't steal it."""
    if not os.path.exists(path):
        return
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(1)
        s.connect(path)
    except OSError:
        return  # stale: the server will replace it
    finally:
        s.close()
    raise DaemonError(f"socket {path} is in use by another daemon")


def build(root: str, exec_root: str, *, debug: bool = False, remap: IdentityMapping | None = None,
          registry: RegistryOptions | None = None, network_tag: str = "portside", bridge: str = "",
          bip: str = "") -> tuple[Engine, Router]:
    recorder = Recorder()
    images = ImageService(root, events=recorder)
    images.sweep()
    engine = Engine(root=root, images=images, exec_root=exec_root, debug=debug, remap=remap, events=recorder,
                    registry=registry or RegistryOptions(), network_tag=network_tag, bridge=bridge, bip=bip)
    router = Router()
    system_api.register(router, engine)
    images_api.register(router, engine)
    distribution_api.register(router, engine)
    containers_api.register(router, engine)
    stats_api.register(router, engine)
    archive_api.register(router, engine)
    commit_api.register(router, engine)
    build_api.register(router, engine)
    volumes_api.register(router, engine)
    events_api.register(router, engine)
    networks_api.register(router, engine)
    engine.networks()  # the predefined networks' records (no netlink yet): there before any container
    if engine.has_containers():
        engine.containers()  # live restore: pick up the containers the monitor still runs
    return engine, router


def setup_remap(value: str, root: str) -> IdentityMapping | None:
    """``--userns-remap``: the mapping (making the default user if asked), checked usable on this host.

    Before any thread starts: the check forks a helper that holds a user namespace.
    """
    if not value:
        return None
    remap = userns.load(value)
    if remap is not None:
        layers = os.path.join(root, "snapshots", "layers")
        os.makedirs(layers, mode=0o700, exist_ok=True)
        userns.check_idmap_support(layers, remap)
    return remap


def run(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if os.geteuid() != 0:
        print("portside daemon: must run as root", file=sys.stderr)
        return 1
    nofile.raise_soft_limit()  # a descriptor a client connection; the monitor it starts inherits the raise
    root = os.path.abspath(args.root)
    try:
        parsed = addresses(args)
        tls = tls_context(args, parsed)
        group = socket_group(args.group)
        paths = [a.path for a in parsed if isinstance(a, listen.UnixAddress)]
        lock = take_lock(root)
        for path in paths:
            refuse_live_socket(path)
    except DaemonError as e:
        print(f"portside daemon: {e}", file=sys.stderr)
        return 1
    exec_root = os.path.abspath(args.exec_root or os.path.dirname(paths[0]))
    try:
        remap = setup_remap(args.userns_remap, root)
    except PortsideError as e:
        print(f"portside daemon: {e}", file=sys.stderr)
        return 1
    try:
        registry = RegistryOptions(mirrors=tuple(m.rstrip("/") for m in args.registry_mirror),
                                   insecure=tuple(args.insecure_registry), certs_dir=args.registry_certs_dir)
    except PortsideError as e:
        print(f"portside daemon: {e}", file=sys.stderr)
        return 1
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,9}", args.network_tag):
        print("portside daemon: --network-tag: a letter, then up to 9 letters, digits or _", file=sys.stderr)
        return 1
    engine, router = build(root, exec_root, debug=args.debug, remap=remap, registry=registry,
                           network_tag=args.network_tag, bridge=args.bridge, bip=args.bip)
    server = Server(router, log=log, default_headers=[
        ("Api-Version", API_VERSION), ("Docker-Experimental", "false"), ("Ostype", "linux"),
        ("Server", f"portside/{portside.__version__} (linux)"),
    ])
    for address in parsed:
        if isinstance(address, listen.UnixAddress):
            server.listen_unix(address.path, group=group)
        else:
            assert tls is not None
            try:
                port = server.listen_tcp(address.host, address.port, tls)
            except OSError as e:
                print(f"portside daemon: cannot listen on tcp://{address.host}:{address.port}: {e.strerror}",
                      file=sys.stderr)
                server.shutdown()
                engine.images.close()
                return 1
            log.info("serving API on tcp://%s:%d with mutual TLS", address.host, port)

    def stop(signum: int, frame: object) -> None:
        log.info("signal %d: shutting down", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # `kill -USR1` dumps every thread's stack to the log: how to see where a daemon hangs.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    log.info("portside %s serving API %s on %s (root %s)", portside.__version__, API_VERSION,
             ", ".join(args.host or paths), root)
    try:
        server.serve_forever()
    finally:
        engine.shutdown_networks()
        engine.images.close()
        lock.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
