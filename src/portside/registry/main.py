"""``portside registry serve|gc``: the registry's command line (handed over by cli/main.py)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from portside.errors import PortsideError
from portside.registry import config as configlib
from portside.registry import gc as gclib
from portside.registry.app import App, expire_loop
from portside.registry.storage import FileStorage
from portside.registry.wire import Server, tls_context


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="portside registry", description="An OCI distribution registry")
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="Serve the registry")
    serve.add_argument("--config", help="configuration file (JSON, or TOML when it ends in .toml)")
    serve.add_argument("--addr", help="address to listen on, HOST:PORT (default 127.0.0.1:5000)")
    serve.add_argument("--root", help="storage directory")
    serve.add_argument("--read-only", action="store_true", default=None, help="refuse every write")
    serve.add_argument("--log", action="store_true", default=None, help="log every request on stderr")
    gc = sub.add_parser("gc", help="Delete blobs no manifest references")
    gc.add_argument("--config")
    gc.add_argument("--root")
    gc.add_argument("--dry-run", action="store_true", help="print what would be deleted, delete nothing")
    gc.add_argument("--delete-untagged", action="store_true", help="also delete manifests no tag reaches")
    return p


def _config(args: argparse.Namespace) -> configlib.Config:
    cfg = configlib.load(args.config) if args.config else configlib.Config()
    if getattr(args, "addr", None):
        cfg.addr = args.addr
    if args.root:
        cfg.root = args.root
    if getattr(args, "read_only", None):
        cfg.read_only = True
    if getattr(args, "log", None):
        cfg.log = True
    return cfg


def serve(cfg: configlib.Config) -> int:
    addr = cfg.host_port  # a bad address is refused before anything is created
    storage = FileStorage(cfg.root)
    storage.content.sweep()  # monolithic uploads a crash cut short
    tls = tls_context(cfg.tls_cert, cfg.tls_key) if cfg.tls_cert else None
    server = Server(addr, App(cfg, storage), tls=tls, verbose=cfg.log)
    stop = threading.Event()
    threading.Thread(target=expire_loop, args=(storage, cfg.upload_ttl, stop.wait), daemon=True).start()

    def shutdown(signum: int, frame: object) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    host, port = cfg.host_port[0], server.server_address[1]
    sys.stderr.write(f"portside registry listening on {'https' if tls else 'http'}://{host}:{port} (root {cfg.root})\n")
    sys.stderr.flush()
    server.serve_forever()
    server.server_close()
    return 0


def run(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    try:
        cfg = _config(args)
        if args.command == "serve":
            return serve(cfg)
        if not os.path.isdir(os.path.join(cfg.root, "repositories")):
            sys.stderr.write(f"portside registry gc: {cfg.root} is not a registry root\n")
            return 1
        report = gclib.collect(FileStorage(cfg.root), dry_run=args.dry_run, delete_untagged=args.delete_untagged)
        verb = "would delete" if args.dry_run else "deleted"
        for repo, digest in report.manifests_deleted:
            print(f"{verb} manifest {repo}@{digest}")
        for digest in report.blobs_deleted:
            print(f"{verb} blob {digest}")
        print(f"{len(report.blobs_deleted)} blobs, {report.bytes_freed} bytes {'reclaimable' if args.dry_run else 'freed'}")
        return 0
    except (PortsideError, OSError) as e:
        sys.stderr.write(f"portside registry: {e}\n")
        return 1
