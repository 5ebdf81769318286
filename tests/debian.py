"""A Debian bookworm minbase rootfs tarball for the tests, made once per machine with debootstrap.

The only network here is the machine's Debian mirror, so its address is read
from APT's own sources (one-line ``sources.list`` files and deb822
``.sources`` files). The tarball lives in a fixed cache directory shared by
every test run on the machine: it is made under an exclusive lock file (a
concurrent run waits, then finds it made), into a temporary name renamed into
place at the end, so a half-made tarball is never seen.
"""

from __future__ import annotations

import fcntl
import glob
import os
import shutil
import subprocess
import tempfile
import time

CACHE_DIR = os.environ.get("PORTSIDE_TEST_CACHE", "/var/cache/portside-tests")
TARBALL = "debian-bookworm-minbase.tar"
SUITE = "bookworm"


class Unavailable(Exception):
    """debootstrap cannot make the rootfs here: the message says why (the tests skip with it)."""


def _one_line_sources(text: str) -> list[tuple[str, str, list[str]]]:
    """(uri, suite, signed-by) of each ``deb`` line of a sources.list."""
    found = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        options: list[str] = []
        if words and words[0].startswith("["):
            while words:
                word = words.pop(0)
                options.append(word.strip("[]"))
                if word.endswith("]"):
                    break
        if len(words) >= 2:
            signed = [o.split("=", 1)[1] for o in options if o.startswith("signed-by=")]
            found.append((words[0], words[1], signed))
    return found


def _deb822_sources(text: str) -> list[tuple[str, str, list[str]]]:
    found = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
            continue
        signed = fields.get("signed-by", "").split()
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                found.append((uri, suite, signed))
    return found


def debian_mirror(etc: str = "/etc/apt") -> tuple[str, str]:
    """(mirror URI, keyring or "") of the first APT source that serves the ``bookworm`` suite itself."""
    sources: list[tuple[str, str, list[str]]] = []
    for path in [os.path.join(etc, "sources.list"), *sorted(glob.glob(os.path.join(etc, "sources.list.d", "*")))]:
        if not path.endswith((".list", ".sources")) or not os.path.isfile(path):
            continue  # *.disabled and friends are not read by APT either
        with open(path) as f:
            text = f.read()
        sources += _deb822_sources(text) if path.endswith(".sources") else _one_line_sources(text)
    for uri, suite, signed in sources:
        if suite == SUITE:
            keyring = next((k for k in signed if os.path.isfile(k)), "")
            return uri, keyring
    raise Unavailable(f"no APT source in {etc} serves Debian {SUITE}")


def minbase_tarball(cache_dir: str = CACHE_DIR) -> tuple[str, float]:
    """The cached tarball's path, made first if missing; and the seconds spent making it (0 when cached)."""
    path = os.path.join(cache_dir, TARBALL)
    if os.path.exists(path):
        return path, 0.0
    if shutil.which("debootstrap") is None:
        raise Unavailable("debootstrap is not installed (apt-get install debootstrap)")
    os.makedirs(cache_dir, mode=0o755, exist_ok=True)
    with open(os.path.join(cache_dir, TARBALL + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
        if os.path.exists(path):
            return path, 0.0  # another run made it while this one waited
        started = time.monotonic()
        _make(path, cache_dir)
        return path, time.monotonic() - started


def _make(path: str, cache_dir: str) -> None:
    mirror, keyring = debian_mirror()
    work = tempfile.mkdtemp(prefix="debootstrap-", dir=cache_dir)
    root = os.path.join(work, "root")
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        argv = ["debootstrap", "--variant=minbase", *([f"--keyring={keyring}"] if keyring else []), SUITE, root,
                mirror]
        result = subprocess.run(argv, capture_output=True, timeout=1200)
        if result.returncode != 0:
            log = os.path.join(root, "debootstrap", "debootstrap.log")
            detail = open(log, errors="replace").read()[-2000:] if os.path.exists(log) else ""
            raise Unavailable(f"debootstrap from {mirror} failed ({result.returncode}): "
                              f"{result.stderr.decode(errors='replace')[-2000:]}{detail}")
        # what Debian's own container images leave out: the downloaded packages and the package lists
        for pattern in ("var/cache/apt/archives/*.deb", "var/lib/apt/lists/*"):
            for item in glob.glob(os.path.join(root, pattern)):
                if os.path.isfile(item):
                    os.unlink(item)
        subprocess.run(["tar", "--numeric-owner", "--xattrs", "--sort=name", "-C", root, "-cf", tmp, "."], check=True,
                       timeout=600)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.rename(tmp, path)
    finally:
        _unmount_below(root)
        shutil.rmtree(work, ignore_errors=True)
        if os.path.exists(tmp):
            os.unlink(tmp)


def _unmount_below(root: str) -> None:
    """debootstrap unmounts /proc and /sys itself; after a failure they may still be there."""
    with open("/proc/self/mounts") as f:
        targets = [line.split()[1] for line in f]
    for target in sorted((t for t in targets if t == root or t.startswith(root + "/")), reverse=True):
        subprocess.run(["umount", "-l", target], check=False)
