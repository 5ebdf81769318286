"""Image load: `load -i` of a docker-save tarball, portside beside docker, podman and the floor.

    /work/main/.venv/bin/python bench/load.py [--runs N] [--warmup N] [--only floor,portside,docker,podman] [--json]

The tarball (built once under bench/.work, reproducibly) is docker-save's legacy
format: two layers, a busybox rootfs and one 100 MiB file of random bytes,
``benchload:latest``. Rows:

floor     in-process Python: read the tarball, sha256 every member, untar each
          layer into a temp dir with tarfile, check the config digest and the
          diff_ids: the least any loader must do (no fsync, no metadata store).
portside  ``portside --host unix://SOCK load -i FILE`` against a daemon started for
          the benchmark on a private root.
docker    ``docker -H unix://SOCK load -i FILE`` against the benchmark's own dockerd.
podman    ``podman --root ... load -i FILE`` on a private store.

The image is removed (``rmi -f``) after every run, outside the timed region, so
each run loads into an empty store. Targets from the issue: portside's load at
least 2x faster than docker's, and within 2x of the floor.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import random
import shutil
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import harness
from harness import CommandFailed, Engine, PeerUnavailable, Result

IMAGE = "benchload:latest"
MiB = 1 << 20
RANDOM_SIZE = 100 * MiB
STREAM_BUF = 256 * 1024
TARBALL = harness.WORK / "benchload-v1.tar"  # bump the version when the content below changes
EPOCH = 1767225600  # 2026-01-01T00:00:00Z: fixed times keep the tarball, and so the image ID, reproducible
CREATED = "2026-01-01T00:00:00Z"
APPLETS = ("sh", "ls", "cat", "echo", "true", "false", "sleep", "env", "mkdir", "rm", "cp", "mv", "ps", "id", "uname")

# --- the input --------------------------------------------------------------


def _entry(name: str, kind: bytes, *, mode: int, size: int = 0, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.linkname = kind, mode, size, linkname
    info.mtime, info.uid, info.gid, info.uname, info.gname = EPOCH, 0, 0, "root", "root"
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    tar.addfile(_entry(name, tarfile.REGTYPE, mode=mode, size=len(data)), io.BytesIO(data))


def _write_layer(path: Path, fill: Callable[[tarfile.TarFile], None]) -> str:
    """Write one uncompressed layer tar and return its diff ID (the sha256 of those bytes)."""
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        fill(tar)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(MiB):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def _busybox_rootfs(tar: tarfile.TarFile) -> None:
    for d, mode in (("bin", 0o755), ("dev", 0o755), ("etc", 0o755), ("proc", 0o555), ("root", 0o700),
                    ("sys", 0o555), ("tmp", 0o1777), ("usr", 0o755), ("usr/bin", 0o755), ("var", 0o755)):
        tar.addfile(_entry(d + "/", tarfile.DIRTYPE, mode=mode))
    busybox = Path("/bin/busybox")
    with open(busybox, "rb") as f:
        tar.addfile(_entry("bin/busybox", tarfile.REGTYPE, mode=0o755, size=busybox.stat().st_size), f)
    for applet in APPLETS:
        tar.addfile(_entry(f"bin/{applet}", tarfile.SYMTYPE, mode=0o777, linkname="busybox"))
    _add_bytes(tar, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/nonexistent:/bin/false\n")
    _add_bytes(tar, "etc/group", b"root:x:0:\nnogroup:x:65534:\n")


def _random_file(tar: tarfile.TarFile) -> None:
    tar.addfile(_entry("data/", tarfile.DIRTYPE, mode=0o755))
    data = random.Random(20260101).randbytes(RANDOM_SIZE)  # incompressible, and the same every build
    _add_bytes(tar, "data/random.bin", data)


def build_tarball(path: Path = TARBALL) -> Path:
    """Build the docker-save tarball once (legacy format, as `docker save` of 20.10 writes it)."""
    if path.exists():
        return path
    if not Path("/bin/busybox").exists():
        raise SystemExit("bench/load.py needs /bin/busybox (Debian's busybox-static) to build its image")
    harness.log(f"building {path} ...")
    build = path.with_name(path.name + ".build")
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir(parents=True)
    layers = [("busybox rootfs", _busybox_rootfs), (f"{RANDOM_SIZE // MiB} MiB of random bytes", _random_file)]
    diff_ids, v1_ids, parent = [], [], ""
    for i, (_, fill) in enumerate(layers):
        diff_id = _write_layer(build / f"layer{i}.tar", fill)
        v1_id = hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()
        diff_ids.append(diff_id)
        v1_ids.append(v1_id)
        parent = v1_id
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": CREATED, "created_by": f"bench/load.py: {what}"} for what, _ in layers],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [IMAGE], "Layers": [f"{v}/layer.tar" for v in v1_ids]}]
    repo, tag = IMAGE.split(":")
    layer_jsons = [{"id": v, "created": CREATED, "os": "linux", **({"parent": v1_ids[i - 1]} if i else {})}
                   for i, v in enumerate(v1_ids)]
    # name -> None (a directory), bytes, or a file to copy in
    members: dict[str, bytes | Path | None] = {config_name: config_bytes}
    for i, (v1_id, layer_json) in enumerate(zip(v1_ids, layer_jsons, strict=True)):
        members[f"{v1_id}/"] = None
        members[f"{v1_id}/VERSION"] = b"1.0"
        members[f"{v1_id}/json"] = json.dumps(layer_json).encode()
        members[f"{v1_id}/layer.tar"] = build / f"layer{i}.tar"
    members["manifest.json"] = json.dumps(manifest).encode()
    members["repositories"] = json.dumps({repo: {tag: v1_ids[-1]}}).encode()
    partial = path.with_name(path.name + ".partial")
    with tarfile.open(partial, "w", format=tarfile.USTAR_FORMAT) as out:
        # in the order docker save writes them: its temp dir walked in lexical order
        for name, content in sorted(members.items()):
            if content is None:
                out.addfile(_entry(name, tarfile.DIRTYPE, mode=0o755))
            elif isinstance(content, bytes):
                _add_bytes(out, name, content)
            else:
                with open(content, "rb") as f:
                    out.addfile(_entry(name, tarfile.REGTYPE, mode=0o644, size=content.stat().st_size), f)
    partial.rename(path)
    shutil.rmtree(build)
    return path


# --- the floor --------------------------------------------------------------


class _HashingReader:
    """A read-only file that hashes what passes through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.sha256 = raw, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.sha256.update(data)
        return data

    def drain(self) -> str:
        while self.read(MiB):
            pass
        return "sha256:" + self.sha256.hexdigest()


def floor_load(tarball: Path, dest: Path) -> None:
    """The least work of a load: one pass over the tarball, hashing every member and untarring the layers."""
    digests: dict[str, str] = {}
    small: dict[str, bytes] = {}
    with tarfile.open(tarball, "r:") as outer:
        for member in outer:
            if not member.isfile():
                continue
            raw = outer.extractfile(member)
            assert raw is not None
            reader = _HashingReader(raw)
            if member.name.endswith("/layer.tar"):
                # equal read and copy sizes: with tarfile's default 16 KiB copies out of a larger
                # stream buffer, each copy re-slices the buffer and the floor triples (0.46 s vs 0.13 s)
                with tarfile.open(fileobj=reader, mode="r|", bufsize=STREAM_BUF, copybufsize=STREAM_BUF) as layer:  # type: ignore[call-overload]
                    layer.extractall(dest / member.name.split("/")[0], filter="tar")
            elif member.size < MiB:
                small[member.name] = reader.read()
            digests[member.name] = reader.drain()
    # what a loader checks before it records the image
    manifest = json.loads(small["manifest.json"])[0]
    config_name = manifest["Config"]
    if digests[config_name] != "sha256:" + config_name.removesuffix(".json"):
        raise ValueError("config digest mismatch")
    if json.loads(small[config_name])["rootfs"]["diff_ids"] != [digests[layer] for layer in manifest["Layers"]]:
        raise ValueError("diff_ids mismatch")


# --- rows -------------------------------------------------------------------


def bench_floor(tarball: Path, runs: int, warmup: int) -> Result:
    dest = harness.WORK / "floor"
    shutil.rmtree(dest, ignore_errors=True)
    samples = harness.measure(
        lambda: floor_load(tarball, dest), runs=runs, warmup=warmup,
        teardown=lambda: shutil.rmtree(dest, ignore_errors=True),
    )
    return Result("floor", samples)


def bench_engine(name: str, start: Callable[[], contextlib.AbstractContextManager[Engine]],
                 tarball: Path, runs: int, warmup: int, versions: dict[str, str]) -> Result:
    """`load -i` through the engine's CLI, `rmi -f` after each run outside the timed region."""
    harness.log(f"{name}: starting")
    try:
        with start() as engine:
            versions[name] = engine.version
            engine.run("rmi", "-f", IMAGE, check=False)
            # one checked load first: a load that exits 0 without recording the image is not a load
            engine.run("load", "-i", str(tarball))
            note = "" if engine.has_image(IMAGE) else f"load exited 0 but {IMAGE} was not found afterwards"
            engine.run("rmi", "-f", IMAGE)
            harness.log(f"{name}: measuring {runs} runs")
            samples = harness.measure(
                lambda: engine.run("load", "-i", str(tarball)), runs=runs, warmup=warmup,
                teardown=lambda: engine.run("rmi", "-f", IMAGE),
            )
            return Result(name, samples, note)
    except PeerUnavailable as e:
        harness.log(f"{name}: skipped: {e}")
        return Result(name, note=str(e))
    except CommandFailed as e:
        harness.log(f"{name}: failed: {e}")
        return Result(name, note=f"failed: {e}")


def targets(by_name: dict[str, Result]) -> list[dict[str, Any]]:
    """The issue's targets, each with its figure from this run and whether it is met."""
    portside, docker, floor = by_name.get("portside"), by_name.get("docker"), by_name.get("floor")
    speedup = harness.ratio(docker, portside)
    overhead = harness.ratio(portside, floor)
    return [
        {"target": "portside load at least 2x faster than docker's (docker / portside >= 2)",
         "value": speedup, "met": None if speedup is None else speedup >= 2.0},
        {"target": "portside load within 2x of the floor (portside / floor <= 2)",
         "value": overhead, "met": None if overhead is None else overhead <= 2.0},
    ]


def main() -> int:
    args = harness.arg_parser(__doc__.split("\n", 1)[0]).parse_args()
    harness.exit_on_sigterm()
    only = {s.strip() for s in args.only.split(",") if s.strip()}

    def wanted(row: str) -> bool:
        return not only or row in only

    tarball = build_tarball()
    size_mb = tarball.stat().st_size / 1e6
    versions = {"portside": harness.portside_version()}
    engines: list[tuple[str, Callable[[], contextlib.AbstractContextManager[Engine]]]] = [
        ("portside", harness.portside_daemon), ("docker", harness.dockerd), ("podman", harness.podman),
    ]
    results: list[Result] = []
    if wanted("floor"):
        harness.log("floor: measuring")
        results.append(bench_floor(tarball, args.runs, args.warmup))
    for name, start in engines:
        if wanted(name):
            results.append(bench_engine(name, start, tarball, args.runs, args.warmup, versions))
    by_name = {r.name: r for r in results}
    title = (f"image load: `load -i` of a docker-save tarball ({size_mb:.0f} MB: busybox + "
             f"{RANDOM_SIZE // MiB} MiB random), median of {args.runs} runs after {args.warmup} warmup")
    goals = targets(by_name)
    if args.json:
        print(json.dumps(harness.results_json(
            title, results, "portside", machine=harness.machine_info(), versions=versions, targets=goals), indent=2))
        return 0
    harness.report(title, results, "portside")
    print()
    for slower, faster in (("docker", "portside"), ("podman", "portside"), ("portside", "floor")):
        peer = slower if faster == "portside" else faster
        r = harness.ratio(by_name.get(slower), by_name.get(faster))
        figure = "not measured" if r is None else f"{slower} takes {r:.2f}x {faster}'s time"
        print(f"portside vs {peer}: {figure}")
    for goal in goals:
        verdict = {True: "met", False: "NOT met", None: "not measured"}[goal["met"]]
        value = "" if goal["value"] is None else f" ({goal['value']:.2f}x)"
        print(f"target: {goal['target']}: {verdict}{value}")
    print()
    for name, version in versions.items():
        print(f"{name}: {version}")
    for key, value in harness.machine_info().items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
