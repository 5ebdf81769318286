"""A realistic build on a real distribution: Debian bookworm minbase (debootstrap), dpkg, useradd, scripts, many files.

The base image is made once per machine by debootstrap from the machine's
Debian mirror and cached as a tarball (tests/debian.py); each run imports it
into a private daemon. The Dockerfile installs a .deb made here with
``dpkg-deb --build`` (no network in the build: nothing is fetched from a
container), adds a user, runs a shell script, copies a tree of 2000 files,
deletes files of the base image (whiteouts, an opaque directory), and ends
with USER/WORKDIR; containers of the built image check each of those. Then a
rebuild is all cache hits, and the same build in a second fresh daemon root
gives the same image ID.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

import debian
from helpers import Daemon, mounts_under, remove_containers, start_daemon, stop_daemon, stop_monitor

pytestmark = pytest.mark.root

BASE, EPOCH, STEPS, TREE_DIRS, TREE_FILES = debian.BASE, debian.EPOCH, debian.STEPS, debian.TREE_DIRS, debian.TREE_FILES


@pytest.fixture(scope="session")
def debian_tar() -> str:
    """The cached minbase tarball (made now if missing); skips, saying why, when debootstrap cannot make it."""
    if os.geteuid() != 0:
        pytest.skip("debootstrap and the daemon need root")
    try:
        path, spent = debian.minbase_tarball()
    except debian.Unavailable as e:
        pytest.skip(str(e))
    if spent:
        print(f"\ndebootstrap made {path} in {spent:.1f} s")
    return path


@pytest.fixture(scope="module")
def context_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    ctx = tmp_path_factory.mktemp("debian-ctx")
    try:
        debian.write_context(ctx, tmp_path_factory.mktemp("deb"))
    except debian.Unavailable as e:
        pytest.skip(str(e))
    return ctx


def _daemon(base: str) -> Daemon:
    os.makedirs(base)
    return start_daemon(os.path.join(base, "root"), os.path.join(base, "s.sock"), os.path.join(base, "log"))


def _stop(d: Daemon, base: str) -> None:
    remove_containers(d)
    stop_daemon(d)
    stop_monitor(d)
    left = mounts_under(base)
    shutil.rmtree(base, ignore_errors=True)
    assert not left, f"mounts left behind: {left}"


@dataclass
class Built:
    daemon: Daemon
    image_id: str
    output: str
    seconds: float
    scratch: str       # a directory for this module's big files (the saved base image)


def build(d: Daemon, ctx: pathlib.Path, *extra: str) -> tuple[str, str]:
    """(image ID, the build's output) of ``portside build`` of the context."""
    iid = ctx.parent / f"iid-{os.getpid()}-{time.monotonic_ns()}"
    result = d.cli("build", "--iidfile", str(iid), "--build-arg", f"SOURCE_DATE_EPOCH={EPOCH}", *extra, str(ctx),
                   timeout=600)
    image_id = iid.read_text()
    iid.unlink()
    return image_id, result.stdout.decode()


@pytest.fixture(scope="module")
def built(debian_tar: str, context_dir: pathlib.Path) -> Iterator[Built]:
    """One daemon with the Debian base imported and the Dockerfile built (tagged app:1)."""
    base = tempfile.mkdtemp(prefix="ps-deb-")  # short: a socket path is limited to 108 bytes
    d = _daemon(os.path.join(base, "d1"))
    try:
        d.cli("import", debian_tar, BASE, timeout=600)
        started = time.monotonic()
        image_id, output = build(d, context_dir, "-t", "app:1")
        seconds = time.monotonic() - started
        print(f"\nthe Debian build took {seconds:.1f} s")
        yield Built(d, image_id, output, seconds, base)
    finally:
        _stop(d, os.path.join(base, "d1"))
        shutil.rmtree(base, ignore_errors=True)


def sh(b: Built, script: str, *run_flags: str) -> str:
    return b.daemon.cli("run", "--rm", *run_flags, "app:1", "sh", "-c", script).stdout.decode()


def test_the_build_ran_every_step(built: Built) -> None:
    steps = [line for line in built.output.splitlines() if line.startswith("Step ")]
    assert len(steps) == STEPS
    assert " ---> Using cache" not in built.output
    assert "Setting up portside-hello (1.0) ..." in built.output  # dpkg's own output, streamed
    assert f"Successfully built {built.image_id[7:19]}\n" in built.output
    history = built.daemon.cli("history", "--no-trunc", "--format", "{{.CreatedBy}}", "app:1").stdout.decode()
    assert f"|1 SOURCE_DATE_EPOCH={EPOCH} /bin/sh -c useradd --create-home" in history


def test_the_package_is_installed_by_dpkg(built: Built) -> None:
    status = sh(built, "dpkg -s portside-hello")
    assert "Status: install ok installed\n" in status and "Version: 1.0\n" in status
    assert sh(built, "dpkg -V portside-hello && echo verified") == "verified\n"  # md5sums of its files match
    assert sh(built, "cat /var/lib/portside-hello/mark /etc/portside-hello.conf") == "configured configure\n" \
                                                                                    "greeting=hello\n"
    assert sh(built, "dpkg -L portside-hello | grep bin/") == "/usr/bin/portside-hello\n"
    assert not sh(built, "ls /tmp")  # the .deb was removed in its own step
    assert built.daemon.cli("run", "--rm", "app:1").stdout == b"hello from portside-hello 1.0\n"  # the CMD


def test_user_workdir_and_files_made_as_the_user(built: Built) -> None:
    assert sh(built, "id app") == "uid=1234(app) gid=1234(app) groups=1234(app)\n"
    assert sh(built, "id -un; pwd; cat whoami; stat -c '%U:%G %a' made-by-app .") == \
        "app\n/home/app\napp\napp:app 644\napp:app 755\n"
    assert sh(built, "getent passwd app") == "app:x:1234:1234::/home/app:/bin/bash\n"
    assert sh(built, "ls -A /home/app | sort") == ".bash_logout\n.bashrc\n.profile\nmade-by-app\nwhoami\n"  # /etc/skel
    assert sh(built, "id -un", "--user", "root") == "root\n"


def test_the_script_s_work(built: Built) -> None:
    out = sh(built, "ls /srv/data | wc -l; readlink /srv/current; stat -c '%U %h' /srv/data/item-7.txt "
                    "/srv/data/first.txt; cat /srv/data/item-42.txt /srv/hello.out;"
                    " grep ^PASS_MAX_DAYS /etc/login.defs;"
                    " cat /etc/profile.d/app.sh")
    assert out == ("101\n/srv/data\napp 1\napp 2\nline 42\nhello from portside-hello 1.0\nPASS_MAX_DAYS\t90\n"
                   "export APP_HOME=/home/app\n")


def test_the_tree_of_2000_files(built: Built, context_dir: pathlib.Path) -> None:
    assert sh(built, "find /opt/tree -type f | wc -l; find /opt/tree -type d | wc -l") == \
        f"{TREE_DIRS * TREE_FILES}\n{TREE_DIRS + 1}\n"
    listing = "cd {} && find . -type f | sort | xargs md5sum"
    inside = sh(built, listing.format("/opt/tree"))
    host = subprocess.run(["sh", "-c", listing.format(context_dir / "tree")], capture_output=True, check=True)
    assert inside == host.stdout.decode()
    assert sh(built, "stat -c '%u:%g %a' /opt/tree /opt/tree/d07 /opt/tree/d07/f003.txt") == \
        "0:0 755\n0:0 755\n0:0 644\n"


def test_files_of_the_base_deleted(built: Built) -> None:
    before = "test -e /etc/motd && test -d /usr/share/doc/bash && ls /etc/apt/apt.conf.d"
    assert built.daemon.cli("run", "--rm", BASE, "sh", "-c", before).stdout == b"01autoremove\n70debconf\n"
    assert sh(built, "for p in /etc/motd /usr/share/doc; do test -e $p && echo $p; done; ls /etc/apt/apt.conf.d") \
        == "99local\n"
    saved = os.path.join(built.scratch, "app.tar")
    built.daemon.cli("save", "-o", saved, "app:1", timeout=300)
    with tarfile.open(saved) as tf:
        layers = json.load(tf.extractfile("manifest.json"))[0]["Layers"]  # type: ignore[arg-type]
        with tarfile.open(fileobj=tf.extractfile(layers[-2])) as layer:  # the RUN before USER/WORKDIR/RUN
            names = layer.getnames()
    os.unlink(saved)
    assert {"etc/.wh.motd", "usr/share/.wh.doc", "etc/apt/apt.conf.d/.wh..wh..opq"} <= set(names), names


def test_a_rebuild_is_all_cache(built: Built, context_dir: pathlib.Path) -> None:
    started = time.monotonic()
    image_id, output = build(built.daemon, context_dir)
    seconds = time.monotonic() - started
    print(f"\nthe cached rebuild took {seconds:.1f} s (first build {built.seconds:.1f} s)")
    assert image_id == built.image_id
    assert output.count(" ---> Using cache\n") == STEPS - 1  # every step but FROM
    assert " ---> Running in " not in output


def test_a_second_fresh_root_builds_the_same_image(built: Built, context_dir: pathlib.Path) -> None:
    saved = os.path.join(built.scratch, "base.tar")  # the same base: an import's config says when it was made
    built.daemon.cli("save", "-o", saved, BASE, timeout=300)
    other = os.path.join(built.scratch, "d2")
    d = _daemon(other)
    try:
        d.cli("load", "-i", saved, timeout=300)
        image_id, output = build(d, context_dir)
        assert " ---> Using cache" not in output
        assert image_id == built.image_id
    finally:
        _stop(d, other)
        os.unlink(saved)
