"""A container's network at start, without the rest of a start: NetworkService's sandbox, attach and release.

    PYTHONPATH=src /work/main/.venv/bin/python bench/attach.py [--runs 30] [--json]

On a private root and network tag (bridge ``TAG0``, table ``ip TAG``, removed at
the end): per run, ``create_sandbox`` (the namespace, lo), ``attach`` to the
default bridge (lease, veth pair, address, route) and ``release``, each timed.
``attach`` minus nothing is what the bridge adds in the daemon over ``--network
none`` (which also makes the sandbox); compare checkouts by PYTHONPATH.
"""

from __future__ import annotations

import json
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

from portside.network.service import EndpointRequest, NetworkService  # noqa: E402


def main() -> int:
    args = harness.arg_parser(__doc__.splitlines()[0], runs=30, warmup=3).parse_args()
    root = tempfile.mkdtemp(prefix="attach-bench-")
    service = NetworkService(f"{root}/root", f"{root}/run", tag="pa" + secrets.token_hex(3))
    results = {name: harness.Result(name) for name in ("sandbox", "attach", "release")}
    try:
        for i in range(args.warmup + args.runs):
            cid = secrets.token_hex(32)
            try:
                for name, step in (("sandbox", lambda: service.create_sandbox(cid)),
                                   ("attach", lambda: service.attach("bridge", cid, "/bench", EndpointRequest(),
                                                                     ifname="eth0", default_route=True))):
                    start = time.perf_counter()
                    step()
                    if i >= args.warmup:
                        results[name].samples.append(time.perf_counter() - start)
            finally:
                start = time.perf_counter()
                service.release(cid)
                if i >= args.warmup:
                    results["release"].samples.append(time.perf_counter() - start)
    finally:
        service.shutdown()
        harness.remove_tree(Path(root))
    rows = list(results.values())
    title = f"NetworkService on the default bridge, median of {args.runs} after {args.warmup} warmup"
    if args.json:
        print(json.dumps(harness.results_json(title, rows, "sandbox", machine=harness.machine_info())))
    else:
        harness.report(title, rows, "sandbox")
        for r in rows:
            print(f"{r.name}: median {r.median * 1e3:.2f} ms, min {r.min * 1e3:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
