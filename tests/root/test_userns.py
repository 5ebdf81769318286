"""``portside daemon --userns-remap default``: containers in user namespaces, end to end.

One remapped daemon for the module, on a temporary root. ``default`` makes the
``portside`` user and its subordinate ranges when they are missing: the
module puts /etc/subuid, /etc/subgid and the accounts back as they were.
What is asserted is what Docker documents for a remapped daemon: root inside,
``<start>`` outside, image files root's, host files nobody's, the daemon's
volumes the remapped root's; ``--userns=host`` opts out; ``--privileged`` is
refused without it.
"""

from __future__ import annotations

import grp
import io
import os
import time
import pwd
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator

import pytest

from helpers import Daemon, mounts_under, remove_containers, start_daemon, stop_daemon, stop_monitor
from portside.containers import userns

pytestmark = pytest.mark.root

SUBID_FILES = (userns.SUBUID, userns.SUBGID)


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _exists(lookup, name: str) -> bool:  # type: ignore[no-untyped-def]
    try:
        lookup(name)
        return True
    except KeyError:
        return False


@pytest.fixture(scope="module")
def host_accounts() -> Iterator[dict[str, bytes | None]]:
    """The host's subordinate id files as they were; after the module they are again, and a
    ``portside`` user or group the daemon made is deleted (one that was there stays)."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    saved = {path: _read(path) for path in SUBID_FILES}
    had_user = _exists(pwd.getpwnam, userns.DEFAULT_USER)
    had_group = _exists(grp.getgrnam, userns.DEFAULT_USER)
    try:
        yield saved
    finally:
        if not had_user and _exists(pwd.getpwnam, userns.DEFAULT_USER):
            subprocess.run(["userdel", userns.DEFAULT_USER], check=True)
        if not had_group and _exists(grp.getgrnam, userns.DEFAULT_USER):
            subprocess.run(["groupdel", userns.DEFAULT_USER], check=True)
        for path, content in saved.items():
            if content is None:
                if os.path.exists(path):
                    os.unlink(path)
            elif _read(path) != content:
                with open(path + ".portside-test", "wb") as f:
                    f.write(content)
                shutil.copymode(path, path + ".portside-test")
                os.replace(path + ".portside-test", path)


@pytest.fixture(scope="module")
def remapped(host_accounts: dict[str, bytes | None], busybox_tar: str) -> Iterator[Daemon]:
    """A daemon with ``--userns-remap default`` and busybox:latest. Its root is under a 0700
    directory (mkdtemp): unlike dockerd, the remapped root never walks the daemon's paths."""
    base = tempfile.mkdtemp(prefix="ps-userns-")
    d = start_daemon(os.path.join(base, "root"), os.path.join(base, "run", "portside.sock"),
                     os.path.join(base, "daemon.log"), ("--userns-remap", "default"))
    try:
        d.cli("import", "--change", 'CMD ["sh"]', busybox_tar, "busybox:latest")
        yield d
    finally:
        remove_containers(d)
        stop_daemon(d)
        stop_monitor(d)
        left = mounts_under(base)
        shutil.rmtree(base, ignore_errors=True)
        assert not left, f"mounts left behind: {left}"


@pytest.fixture(scope="module")
def start(remapped: Daemon) -> int:
    """The first host id of the portside user's range: container root on the host."""
    with open(userns.SUBUID) as f:
        ranges = userns.ranges_for(userns.Account(userns.DEFAULT_USER, pwd.getpwnam(userns.DEFAULT_USER).pw_uid),
                                   userns.parse_subids(f.read()))
    assert ranges and ranges[0].count == 65536, ranges
    return ranges[0].start


def _out(d: Daemon, *args: str) -> str:
    return d.cli(*args).stdout.decode()


def _host_uid(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    return int(fields["Uid"].split()[0]), int(fields["Gid"].split()[0])


def test_default_user_and_ranges(remapped: Daemon, host_accounts: dict[str, bytes | None], start: int) -> None:
    entry = pwd.getpwnam(userns.DEFAULT_USER)
    assert entry.pw_shell in ("/usr/sbin/nologin", "/bin/false")
    assert grp.getgrnam(userns.DEFAULT_USER)
    before = host_accounts[userns.SUBUID] or b""
    if b"portside:" not in before:  # made by the daemon: after every range there was (dockerd's rule)
        assert start == userns.next_range_start(userns.parse_subids(before.decode()))
    with open(userns.SUBGID) as f:
        assert f"{userns.DEFAULT_USER}:" in f.read()


def test_root_inside_start_outside(remapped: Daemon, start: int) -> None:
    out = _out(remapped, "run", "--rm", "busybox", "sh", "-c",
               "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map")
    lines = [line.split() for line in out.splitlines()]
    assert lines[:2] == [["0"], ["0"]]
    assert lines[2:] == [["0", str(start), "65536"]] * 2


def test_image_files_belong_to_container_root(remapped: Daemon) -> None:
    out = _out(remapped, "run", "--rm", "busybox", "sh", "-c",
               "stat -c '%u:%g %n' / /bin/busybox /etc/passwd /tmp; touch /newfile && stat -c '%u:%g %n' /newfile")
    assert [line.split()[0] for line in out.splitlines()] == ["0:0"] * 5, out


def test_writable_layer_copies_up_as_container_root(remapped: Daemon, start: int) -> None:
    cid = _out(remapped, "create", "busybox", "sh", "-c", "echo more >> /etc/passwd; stat -c %u:%g /etc/passwd").strip()
    try:
        out = remapped.cli("start", "-a", cid).stdout.decode()
        assert out.strip() == "0:0"
        upper = os.path.join(remapped.root, "snapshots", "active", cid, "fs")
        st = os.stat(os.path.join(upper, "etc", "passwd"))
        assert (st.st_uid, st.st_gid) == (start, start)
        assert os.stat(upper).st_uid == start
    finally:
        remapped.cli("rm", "-f", cid)


def test_host_process_runs_as_start(remapped: Daemon, start: int) -> None:
    cid = _out(remapped, "run", "-d", "busybox", "sleep", "60").strip()
    try:
        pid = int(_out(remapped, "inspect", "-f", "{{.State.Pid}}", cid))
        assert _host_uid(pid) == (start, start)
        # an exec joins the user namespace too: root inside, <start> on the host
        out = _out(remapped, "exec", cid, "sh", "-c", "id -u; cat /proc/self/uid_map")
        assert out.split() == ["0", "0", str(start), "65536"]
        remapped.cli("exec", "-d", cid, "sleep", "61")
        titles_rows = _out(remapped, "top", cid, "-eo", "pid,uid,args").splitlines()
        assert len(titles_rows) == 3, titles_rows
        assert all(row.split()[1] == str(start) for row in titles_rows[1:]), titles_rows
        assert _out(remapped, "exec", "-u", "1000", cid, "id", "-u").strip() == "1000"
    finally:
        remapped.cli("rm", "-f", cid)
    assert not mounts_under(remapped.root), mounts_under(remapped.root)


def test_bind_mounted_host_files_are_nobodys(remapped: Daemon, tmp_path) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "somefile"  # under pytest's 0700 directories, as /root/somefile would be
    secret.write_text("host data\n")
    secret.chmod(0o644)
    out = remapped.cli("run", "--rm", "-v", f"{secret}:/f", "busybox", "sh", "-c",
                       "stat -c '%u:%g' /f; cat /f; echo more >> /f", check=False)
    assert out.returncode == 1, out
    assert out.stdout.decode().splitlines() == ["65534:65534", "host data"]
    assert b"Permission denied" in out.stderr
    assert secret.read_text() == "host data\n"
    shadow = remapped.cli("run", "--rm", "-v", "/etc/shadow:/s:ro", "busybox", "cat", "/s", check=False)
    assert shadow.returncode == 1 and b"Permission denied" in shadow.stderr, shadow
    assert b"root:" not in shadow.stdout


def test_named_volume_belongs_to_remapped_root(remapped: Daemon, start: int) -> None:
    try:
        remapped.cli("run", "--rm", "-v", "uservol:/data", "busybox", "sh", "-c",
                     "touch /data/file && mkdir /data/dir && chown 1000:1000 /data/dir && stat -c %u /data")
        mountpoint = remapped.api.json("GET", "/volumes/uservol")["Mountpoint"]
        assert os.stat(mountpoint).st_uid == start
        assert (os.stat(os.path.join(mountpoint, "file")).st_uid, os.stat(os.path.join(mountpoint, "file")).st_gid) \
            == (start, start)
        assert os.stat(os.path.join(mountpoint, "dir")).st_uid == start + 1000
    finally:
        remapped.api.request("DELETE", "/volumes/uservol")


def test_volume_copy_up_keeps_container_ownership(remapped: Daemon, start: int) -> None:
    """A fresh volume gets the image's content, owned on the host as the container sees it: root's → <start>."""
    try:
        out = _out(remapped, "run", "--rm", "-v", "etcvol:/etc", "busybox", "stat", "-c", "%u %n", "/etc/passwd")
        assert out.split() == ["0", "/etc/passwd"]
        mountpoint = remapped.api.json("GET", "/volumes/etcvol")["Mountpoint"]
        assert os.stat(os.path.join(mountpoint, "passwd")).st_uid == start
    finally:
        remapped.api.request("DELETE", "/volumes/etcvol")


def test_userns_host_opts_out(remapped: Daemon) -> None:
    out = _out(remapped, "run", "--rm", "--userns=host", "busybox", "cat", "/proc/self/uid_map")
    assert out.split() == ["0", "0", "4294967295"]
    cid = _out(remapped, "run", "-d", "--userns=host", "busybox", "sleep", "60").strip()
    try:
        assert _host_uid(int(_out(remapped, "inspect", "-f", "{{.State.Pid}}", cid))) == (0, 0)
        assert _out(remapped, "inspect", "-f", "{{.HostConfig.UsernsMode}}", cid).strip() == "host"
    finally:
        remapped.cli("rm", "-f", cid)


def test_privileged_needs_userns_host(remapped: Daemon) -> None:
    out = remapped.cli("run", "--rm", "--privileged", "busybox", "true", check=False)
    assert out.returncode == 125
    assert b"privileged mode is incompatible with user namespaces.  You must run the container in the host " \
           b"namespace when running privileged mode" in out.stderr
    assert _out(remapped, "run", "--rm", "--privileged", "--userns=host", "busybox", "id", "-u").strip() == "0"


def test_info_lists_userns(remapped: Daemon) -> None:
    assert "name=userns" in remapped.api.json("GET", "/info")["SecurityOptions"]


def test_docker_cli(remapped: Daemon, start: int) -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker is not installed")
    config = tempfile.mkdtemp(prefix="ps-docker-config-")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")},
           "DOCKER_HOST": remapped.host, "DOCKER_CONFIG": config}
    try:
        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([docker, *args], capture_output=True, text=True, env=env, timeout=120)

        out = run("run", "--rm", "busybox", "sh", "-c", "id -u; cat /proc/self/uid_map")
        assert out.returncode == 0, out
        assert out.stdout.split() == ["0", "0", str(start), "65536"]
        assert "name=userns" in run("info", "--format", "{{json .SecurityOptions}}").stdout
        refused = run("run", "--rm", "--privileged", "busybox", "true")
        assert refused.returncode == 125
        assert "privileged mode is incompatible with user namespaces" in refused.stderr
        host = run("run", "--rm", "--userns=host", "busybox", "cat", "/proc/self/uid_map")
        assert host.stdout.split() == ["0", "0", "4294967295"], host
        made = run("create", "busybox", "stat", "-c", "%u:%g", "/tmp/passwd")
        cid = made.stdout.strip()
        try:
            copied = subprocess.run([docker, "cp", f"{cid}:/etc/passwd", "-"], capture_output=True, env=env,
                                    timeout=120)
            assert _tar_owners(copied.stdout) == {"passwd": (0, 0)}, copied.stderr
            subprocess.run([docker, "cp", "-", f"{cid}:/tmp/"], input=copied.stdout, env=env, timeout=120, check=True)
            assert run("start", "-a", cid).stdout.strip() == "0:0"
        finally:
            run("rm", "-f", cid)
    finally:
        shutil.rmtree(config, ignore_errors=True)


def test_bad_remap_values_refuse_to_start(tmp_path) -> None:  # type: ignore[no-untyped-def]
    base = tempfile.mkdtemp(prefix="ps-userns-bad-")
    try:
        for value, message in (("no-such-user-x", 'Error during uid lookup for "no-such-user-x"'),
                               ("a:b:c", 'Invalid user/group specification in --userns-remap: "a:b:c"')):
            proc = subprocess.run([sys.executable, "-m", "portside.daemon.main", "--root", f"{base}/root",
                                   "--host", f"unix://{base}/p.sock", "--userns-remap", value],
                                  capture_output=True, text=True, timeout=60)
            assert proc.returncode == 1, proc
            assert message in proc.stderr, proc.stderr
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_commit_records_the_ids_the_container_saw(remapped: Daemon) -> None:
    cid = _out(remapped, "run", "-d", "busybox", "sh", "-c",
               "echo x > /made && mkdir /owned && chown 1000:1000 /owned && sleep 300").strip()
    try:
        image = ""
        for _ in range(50):
            if "made" in _out(remapped, "diff", cid):
                break
            time.sleep(0.1)
        image = _out(remapped, "commit", cid, "remapped-commit:1").strip()
        owners = _out(remapped, "run", "--rm", "remapped-commit:1", "stat", "-c", "%u:%g %n", "/made", "/owned")
        assert owners.splitlines() == ["0:0 /made", "1000:1000 /owned"]
    finally:
        remapped.cli("rm", "-f", cid, check=False)
        if image:
            remapped.cli("rmi", "remapped-commit:1", check=False)


# -- docker cp and export: the ids the container sees ------------------------------------------

def _tar_owners(data: bytes) -> dict[str, tuple[int, int]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: (m.uid, m.gid) for m in tar.getmembers()}


def _cp_out_owners(d: Daemon, cid: str) -> dict[str, tuple[int, int]]:
    owners = {}
    for path in ("/owned", "/made", "/bin/busybox", "/etc"):
        owners.update(_tar_owners(d.cli("cp", "-a", f"{cid}:{path}", "-").stdout))
    return owners


def test_cp_out_gives_the_ids_the_container_saw(remapped: Daemon, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cid = _out(remapped, "run", "-d", "busybox", "sh", "-c",
               "echo x > /made && echo y > /owned && chown 1000:1000 /owned && touch /ready && sleep 300").strip()
    try:
        for _ in range(100):
            if remapped.cli("cp", f"{cid}:/ready", "-", check=False).returncode == 0:
                break
            time.sleep(0.1)
        # Running (its own idmapped overlay), then stopped (the daemon's view mounts the layers idmapped too).
        for state in ("running", "stopped"):
            owners = _cp_out_owners(remapped, cid)
            assert owners["owned"] == (1000, 1000), (state, owners)
            assert owners["made"] == owners["busybox"] == owners["etc"] == owners["etc/passwd"] == (0, 0), \
                (state, owners)
            remapped.cli("cp", "-a", f"{cid}:/owned", str(tmp_path / f"owned-{state}"))
            assert (tmp_path / f"owned-{state}").read_text() == "y\n"
            if state == "running":
                remapped.cli("kill", cid)
                remapped.cli("wait", cid)
    finally:
        remapped.cli("rm", "-f", cid, check=False)


def test_cp_in_is_owned_as_the_container_sees_it(remapped: Daemon, start: int, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "rootfile").write_text("root's\n")
    (tmp_path / "userfile").write_text("user's\n")
    os.chown(tmp_path / "userfile", 1000, 1000)
    cid = _out(remapped, "run", "-d", "busybox", "sleep", "300").strip()
    created = _out(remapped, "create", "busybox", "stat", "-c", "%u:%g %n", "/tmp/rootfile", "/tmp/userfile").strip()
    try:
        for target in (cid, created):
            remapped.cli("cp", str(tmp_path / "rootfile"), f"{target}:/tmp/")
            remapped.cli("cp", "-a", str(tmp_path / "userfile"), f"{target}:/tmp/")
        inside = _out(remapped, "exec", cid, "stat", "-c", "%u:%g %n", "/tmp/rootfile", "/tmp/userfile")
        assert inside.splitlines() == ["0:0 /tmp/rootfile", "1000:1000 /tmp/userfile"]
        assert _out(remapped, "exec", cid, "cat", "/tmp/rootfile") == "root's\n"
        upper = os.path.join(remapped.root, "snapshots", "active", created, "fs", "tmp")
        assert os.stat(os.path.join(upper, "rootfile")).st_uid == start
        assert os.stat(os.path.join(upper, "userfile")).st_uid == start + 1000
        assert _out(remapped, "start", "-a", created).splitlines() == ["0:0 /tmp/rootfile", "1000:1000 /tmp/userfile"]
        # -a with a container user: that user's ids (its own /etc/passwd), shifted to the host's.
        www = _out(remapped, "create", "--user", "www-data", "busybox", "stat", "-c", "%u:%g", "/tmp/rootfile").strip()
        try:
            remapped.cli("cp", "-a", str(tmp_path / "rootfile"), f"{www}:/tmp/")
            assert _out(remapped, "start", "-a", www).strip() == "33:33"
            st = os.stat(os.path.join(remapped.root, "snapshots", "active", www, "fs", "tmp", "rootfile"))
            assert (st.st_uid, st.st_gid) == (start + 33, start + 33)
        finally:
            remapped.cli("rm", "-f", www, check=False)
        # An id the container cannot have is refused, as dockerd does.
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo("far")
            info.uid = 70000
            tar.addfile(info, io.BytesIO(b""))
        refused = remapped.cli("cp", "-", f"{cid}:/tmp/", input=buf.getvalue(), check=False)
        assert refused.returncode == 1
        assert b"Container ID 70000 cannot be mapped to a host ID" in refused.stderr, refused.stderr
        assert remapped.cli("exec", cid, "test", "-e", "/tmp/far", check=False).returncode == 1
    finally:
        remapped.cli("rm", "-f", cid, created, check=False)


def test_export_gives_the_ids_the_container_saw(remapped: Daemon, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cid = _out(remapped, "create", "busybox", "sh", "-c", "mkdir /owned && chown 1000:1000 /owned").strip()
    try:
        remapped.cli("start", "-a", cid)
        remapped.cli("export", "-o", str(tmp_path / "out.tar"), cid)
        owners = _tar_owners((tmp_path / "out.tar").read_bytes())
        assert owners["bin/busybox"] == owners["etc/passwd"] == (0, 0)
        assert owners["owned"] == (1000, 1000)
        assert not any(uid >= 65536 or gid >= 65536 for uid, gid in owners.values()), owners
    finally:
        remapped.cli("rm", "-f", cid, check=False)
