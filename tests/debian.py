"""A Debian bookworm minbase rootfs tarball for the tests, made once per machine with debootstrap,
and a realistic build context for it (a .deb made with dpkg-deb, a script, 2000 files).

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
import hashlib
import os
import pathlib
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
        for stale in glob.glob(os.path.join(cache_dir, "debootstrap-*")) + glob.glob(path + ".*.tmp"):
            _unmount_below(os.path.join(stale, "root"))  # left by a run that was killed: the lock is ours now
            if os.path.isdir(stale):
                shutil.rmtree(stale, ignore_errors=True)
            else:
                os.unlink(stale)
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


# -- a realistic build on that base (tests/root/test_build_debian.py, tests/cli/test_cli_build_vs_dockerd.py)

BASE = "portside-test/debian:bookworm"
EPOCH = "1700000000"
TREE_DIRS, TREE_FILES = 40, 50  # 2000 small files

DOCKERFILE = f"""\
FROM {BASE}
ARG SOURCE_DATE_EPOCH
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
COPY portside-hello_1.0_all.deb /tmp/
RUN dpkg --log=/dev/null -i /tmp/portside-hello_1.0_all.deb && rm /tmp/portside-hello_1.0_all.deb
RUN useradd --create-home --uid 1234 --user-group --shell /bin/bash app
COPY setup.sh /usr/local/bin/setup.sh
RUN /usr/local/bin/setup.sh
COPY tree/ /opt/tree/
RUN rm /etc/motd && rm -rf /usr/share/doc /etc/apt/apt.conf.d && mkdir /etc/apt/apt.conf.d \\
    && echo 'APT::Install-Recommends "false";' > /etc/apt/apt.conf.d/99local
USER app
WORKDIR /home/app
RUN id -un > whoami && touch made-by-app
CMD ["portside-hello"]
"""

SETUP_SH = """\
#!/bin/bash
# a build script as they come: loops, sed on a config file, links, ownership
set -euo pipefail
mkdir -p /srv/data
for i in $(seq 1 100); do printf 'line %d\\n' "$i" > "/srv/data/item-$i.txt"; done
sed -i 's/^PASS_MAX_DAYS.*/PASS_MAX_DAYS\\t90/' /etc/login.defs
echo 'export APP_HOME=/home/app' > /etc/profile.d/app.sh
ln -s /srv/data /srv/current
ln /srv/data/item-1.txt /srv/data/first.txt
chown -R app:app /srv/data
portside-hello > /srv/hello.out
"""

STEPS = sum(1 for line in DOCKERFILE.splitlines() if not line.startswith(" "))  # a continuation is no step

HELLO = "#!/bin/sh\necho \"hello from portside-hello $(cat /usr/share/portside-hello/version)\"\n"
CONTROL = """\
Package: portside-hello
Version: 1.0
Architecture: all
Maintainer: portside tests <tests@portside.invalid>
Description: a package made by the portside tests
 It installs a script, a data file and a conffile; its postinst leaves a mark.
"""
POSTINST = ("#!/bin/sh\nset -e\nmkdir -p /var/lib/portside-hello\n"
            "echo \"configured $1\" > /var/lib/portside-hello/mark\n")


def _make_deb(out: pathlib.Path, work: pathlib.Path) -> None:
    pkg = work / "pkg"
    files = {"usr/bin/portside-hello": (HELLO, 0o755), "usr/share/portside-hello/version": ("1.0\n", 0o644),
             "etc/portside-hello.conf": ("greeting=hello\n", 0o644)}
    for name, (text, mode) in files.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
        (pkg / name).chmod(mode)
    (pkg / "DEBIAN").mkdir()
    (pkg / "DEBIAN/control").write_text(CONTROL)
    (pkg / "DEBIAN/conffiles").write_text("/etc/portside-hello.conf\n")
    (pkg / "DEBIAN/md5sums").write_text("".join(
        f"{hashlib.md5(text.encode()).hexdigest()}  {name}\n" for name, (text, _) in sorted(files.items())
        if not name.startswith("etc/")))
    (pkg / "DEBIAN/postinst").write_text(POSTINST)
    (pkg / "DEBIAN/postinst").chmod(0o755)
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(pkg), str(out)], check=True, capture_output=True,
                   env={**os.environ, "SOURCE_DATE_EPOCH": EPOCH})


def write_context(ctx: pathlib.Path, work: pathlib.Path) -> None:
    """The build context of DOCKERFILE into ``ctx`` (``work``: a scratch directory for the package's tree)."""
    if shutil.which("dpkg-deb") is None:
        raise Unavailable("dpkg-deb is not installed")
    _make_deb(ctx / "portside-hello_1.0_all.deb", work)
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "setup.sh").write_text(SETUP_SH)
    (ctx / "setup.sh").chmod(0o755)
    for d in range(TREE_DIRS):
        sub = ctx / "tree" / f"d{d:02}"
        sub.mkdir(parents=True)
        for i in range(TREE_FILES):
            (sub / f"f{i:03}.txt").write_text(f"file {d}/{i}\n" * (i % 7 + 1))
