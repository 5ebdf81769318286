"""Registry pull and push: portside beside skopeo, docker and podman, and the floor.

    /work/main/.venv/bin/python bench/pull.py [--runs N] [--warmup N] [--only floor,portside,skopeo,docker,podman] [--json]

The image (built once under bench/.work as an OCI layout, gzip level 1 layers):
a busybox layer, one of 100 MiB of random bytes and 20 small layers. Two
Distribution registries (Debian's docker-registry) on loopback, started here:
the source, and a target for pushes. Rows:

pull floor     in-process: GET every blob over one HTTP connection, sha256 it,
               gunzip (ISA-L), sha256 the tar, untar it with tarfile into a temp dir.
pull portside  ``portside pull`` into an empty store (the image is removed, and
               its layers collected, between runs), unpacking included.
pull skopeo    ``skopeo copy docker://... oci:DIR``: no unpacking at all.
pull docker    ``docker pull`` against the benchmark's dockerd (127.0.0.1 is insecure by default).
pull podman    ``podman pull --tls-verify=false`` on a private store.
push portside  ``portside push`` of the pulled image to a new repository of the target registry.
push skopeo    ``skopeo copy oci:DIR docker://...`` of the same image to a new repository.

Targets from issue 5: portside's pull faster than skopeo's copy, and within
1.5x of the floor; portside's push at least as fast as skopeo's.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import io
import itertools
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import harness
from harness import Engine, PeerUnavailable, Result

MiB = 1 << 20
LAYOUT = harness.WORK / "benchpull-v1"   # bump the version when the content below changes
EPOCH = 1767225600
REPO = "bench/img"


# --- the image ----------------------------------------------------------------


def _tar(files: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), EPOCH, 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build_layout() -> Path:
    """An OCI layout with the benchmark image, made once (gzip level 1, fixed times: reproducible)."""
    if (LAYOUT / "index.json").exists():
        return LAYOUT
    tmp = LAYOUT.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    blobs = tmp / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    rng = random.Random(5)
    layers = [_tar([("bin/busybox", Path("/bin/busybox").read_bytes())]),
              _tar([("data/random", rng.randbytes(100 * MiB))])]
    layers += [_tar([(f"small/{i}", rng.randbytes(4096 + 512 * i))]) for i in range(20)]

    def put(data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return "sha256:" + digest

    descs, diff_ids = [], []
    for layer in layers:
        packed = gzip.compress(layer, compresslevel=1, mtime=0)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(packed),
                      "size": len(packed)})
        diff_ids.append("sha256:" + hashlib.sha256(layer).hexdigest())
    config = json.dumps({"architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
                         "config": {"Cmd": ["sh"]}, "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": put(config), "size": len(config)},
                           "layers": descs}).encode()
    index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                "digest": put(manifest), "size": len(manifest),
                                                "annotations": {"org.opencontainers.image.ref.name": "1"}}]}
    (tmp / "index.json").write_text(json.dumps(index))
    (tmp / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    tmp.rename(LAYOUT)
    return LAYOUT


# --- registries ----------------------------------------------------------------


@contextlib.contextmanager
def registry(name: str) -> Iterator[str]:
    binary = shutil.which("docker-registry")
    if binary is None:
        raise PeerUnavailable("docker-registry is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = harness.WORK / f"registry-{name}"
    harness.remove_tree(base)
    base.mkdir(parents=True)
    (base / "config.yml").write_text(
        f"version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {base}/data\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: {secrets.token_hex(8)}\n")
    proc = subprocess.Popen([binary, "serve", str(base / "config.yml")], stdout=subprocess.DEVNULL,
                            stderr=open(base / "log", "wb"))
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        harness.remove_tree(base)


def skopeo(*args: str) -> None:
    subprocess.run(["skopeo", *args], check=True, capture_output=True,
                   env={**os.environ, "TMPDIR": str(harness.WORK)})


# --- rows --------------------------------------------------------------------------


def floor(host: str) -> None:
    """What any pull must do: fetch, hash, decompress, hash, untar, every layer."""
    from isal import igzip  # portside's gunzip

    conn = http.client.HTTPConnection(host)
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    conn.request("GET", f"/v2/{REPO}/manifests/1", headers=accept)
    manifest = json.loads(conn.getresponse().read())
    with tempfile.TemporaryDirectory(dir=harness.WORK) as out:
        for desc in [manifest["config"], *manifest["layers"]]:
            conn.request("GET", f"/v2/{REPO}/blobs/{desc['digest']}")
            data = conn.getresponse().read()
            assert "sha256:" + hashlib.sha256(data).hexdigest() == desc["digest"]
            if desc is manifest["config"]:
                continue
            plain = igzip.decompress(data)
            hashlib.sha256(plain).hexdigest()
            with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
                tar.extractall(out, filter="tar")
    conn.close()


def bench_pull_engine(name: str, start: Callable[[], contextlib.AbstractContextManager[Engine]], host: str,
                      runs: int, warmup: int, versions: dict[str, str],
                      push_target: str | None = None) -> list[Result]:
    ref = f"{host}/{REPO}:1"
    pull_args = ["pull", "-q", ref] if name != "podman" else ["pull", "-q", "--tls-verify=false", ref]
    try:
        with start() as engine:
            versions[name] = engine.version
            harness.log(f"pull {name}: measuring")
            pull = Result(f"pull {name}", harness.measure(
                lambda: engine.run(*pull_args), runs=runs, warmup=warmup,
                teardown=lambda: engine.run("rmi", "-f", ref, check=False)))
            if push_target is None:
                return [pull]
            engine.run(*pull_args)
            counter = itertools.count()
            names: list[str] = []

            def tag() -> None:
                names.append(f"{push_target}/bench/p{next(counter)}:1")
                engine.run("tag", ref, names[-1])

            harness.log(f"push {name}: measuring")
            push = Result(f"push {name}", harness.measure(
                lambda: engine.run("push", "-q", names[-1]), runs=runs, warmup=warmup, setup=tag,
                teardown=lambda: engine.run("rmi", names[-1], check=False)))
            return [pull, push]
    except PeerUnavailable as e:
        return [Result(f"pull {name}", note=str(e))]


def bench_skopeo(host: str, target: str, runs: int, warmup: int, versions: dict[str, str]) -> list[Result]:
    if shutil.which("skopeo") is None:
        return [Result("pull skopeo", note="skopeo is not installed")]
    versions["skopeo"] = subprocess.run(["skopeo", "--version"], capture_output=True, text=True).stdout.strip()
    out = harness.WORK / "skopeo-oci"
    harness.log("pull skopeo: measuring")
    pull = Result("pull skopeo", harness.measure(
        lambda: skopeo("copy", "-q", "--src-tls-verify=false", f"docker://{host}/{REPO}:1", f"oci:{out}:1"),
        runs=runs, warmup=warmup, setup=lambda: harness.remove_tree(out)))
    counter = itertools.count()
    harness.log("push skopeo: measuring")
    push = Result("push skopeo", harness.measure(
        lambda: skopeo("copy", "-q", "--dest-tls-verify=false", f"oci:{out}:1",
                       f"docker://{target}/bench/s{next(counter)}:1"), runs=runs, warmup=warmup))
    harness.remove_tree(out)
    return [pull, push]


def main() -> int:
    args = harness.arg_parser(__doc__.split("\n", 1)[0], runs=5, warmup=1).parse_args()
    harness.exit_on_sigterm()
    only = {s.strip() for s in args.only.split(",") if s.strip()}

    def wanted(row: str) -> bool:
        return not only or row in only

    harness.WORK.mkdir(parents=True, exist_ok=True)
    layout = build_layout()
    versions = {"portside": harness.portside_version()}
    results: list[Result] = []
    with registry("source") as host, registry("target") as target:
        skopeo("copy", "-q", "--dest-tls-verify=false", f"oci:{layout}:1", f"docker://{host}/{REPO}:1")
        if wanted("floor"):
            harness.log("pull floor: measuring")
            results.append(Result("pull floor", harness.measure(lambda: floor(host), runs=args.runs,
                                                                warmup=args.warmup)))
        if wanted("portside"):
            results += bench_pull_engine("portside", harness.portside_daemon, host, args.runs, args.warmup,
                                         versions, push_target=target)
        if wanted("skopeo"):
            results += bench_skopeo(host, target, args.runs, args.warmup, versions)
        if wanted("docker"):
            results += bench_pull_engine("docker", harness.dockerd, host, args.runs, args.warmup, versions)
        if wanted("podman"):
            results += bench_pull_engine("podman", harness.podman, host, args.runs, args.warmup, versions)
    by_name = {r.name: r for r in results}
    title = (f"registry pull/push over loopback (busybox + 100 MiB random + 20 small layers, gzip), "
             f"median of {args.runs} runs after {args.warmup} warmup")
    goals = [
        ("pull portside faster than pull skopeo", harness.ratio(by_name.get("pull portside"),
                                                                by_name.get("pull skopeo")), 1.0),
        ("pull portside within 1.5x of the floor", harness.ratio(by_name.get("pull portside"),
                                                                 by_name.get("pull floor")), 1.5),
        ("push portside at least as fast as push skopeo", harness.ratio(by_name.get("push portside"),
                                                                        by_name.get("push skopeo")), 1.0),
    ]
    if args.json:
        print(json.dumps(harness.results_json(
            title, results, "pull portside", floor_name="pull floor", machine=harness.machine_info(),
            versions=versions, targets=[{"target": t, "value": v, "met": None if v is None else v <= limit}
                                        for t, v, limit in goals]), indent=2))
        return 0
    harness.report(title, results, "pull portside", floor_name="pull floor")
    print()
    for target_text, value, limit in goals:
        verdict = "not measured" if value is None else ("met" if value <= limit else "NOT met")
        print(f"target: {target_text}: {verdict}" + ("" if value is None else f" ({value:.2f}x)"))
    print()
    for name, version in versions.items():
        print(f"{name}: {version}")
    for key, value in harness.machine_info().items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
