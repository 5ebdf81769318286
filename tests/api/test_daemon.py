"""The daemon process: socket, lock, signals, a kill mid-load and what is left after restart."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

import pytest

from helpers import UnixHTTPConnection, mounts_under, start_daemon, stop_daemon, stop_monitor
from layers import Image, config_for, docker_save_legacy, layer_tar

pytestmark = pytest.mark.root


def test_socket_is_0660(daemon):
    st = os.stat(daemon.socket)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660 and st.st_uid == 0


def test_second_daemon_on_the_same_root_is_refused(daemon, tmp_path):
    other_sock = str(tmp_path / "other.sock")
    result = subprocess.run([sys.executable, "-m", "portside.daemon.main", "--root", daemon.root,
                             "--host", "unix://" + other_sock], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert f"already running on data root {daemon.root}" in result.stderr
    assert f"pid {daemon.proc.pid}" in result.stderr
    assert not os.path.exists(other_sock)
    assert daemon.api.request("GET", "/_ping")[0] == 200


def test_second_daemon_on_the_same_socket_is_refused(daemon, tmp_path):
    result = subprocess.run([sys.executable, "-m", "portside.daemon.main", "--root", str(tmp_path / "r2"),
                             "--host", daemon.host], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "in use by another daemon" in result.stderr
    assert daemon.api.request("GET", "/_ping")[0] == 200


def test_sigterm_stops_cleanly_and_removes_the_socket(daemon_dirs):
    d = start_daemon(*daemon_dirs)
    assert stop_daemon(d) == 0
    assert not os.path.exists(d.socket)


def test_ping_headers(daemon):
    for method in ("GET", "HEAD"):
        status, headers, body = daemon.api.request(method, "/_ping")
        assert status == 200 and headers["api-version"] == "1.45" and headers["ostype"] == "linux"
        assert headers["docker-experimental"] == "false"
        assert body == (b"OK" if method == "GET" else b"")


def _big_archive() -> tuple[bytes, Image]:
    layers = [layer_tar({f"f{i}": os.urandom(4 << 20) for i in range(8)}), layer_tar({"small": b"x"})]
    image = Image(config_for(layers), layers, ["killed:1"])
    return docker_save_legacy([image]), image


def _stream_then_hang(sock_path: str, data: bytes, sent: threading.Event) -> socket.socket:
    """Send all of the archive but the last bytes, so the daemon is mid-load when killed."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    s.sendall(b"POST /v1.45/images/load HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-tar\r\n"
              b"Content-Length: " + str(len(data)).encode() + b"\r\n\r\n")
    s.sendall(data[: len(data) - 4096])
    sent.set()
    return s


def test_kill_mid_load_leaves_no_half_image(daemon_dirs):
    root, sock, log = daemon_dirs
    d = start_daemon(root, sock, log)
    data, image = _big_archive()
    sent = threading.Event()
    conn = _stream_then_hang(sock, data, sent)
    assert sent.wait(30)
    time.sleep(0.3)  # let the daemon write blobs into ingest
    assert stop_daemon(d, signal.SIGKILL) == -signal.SIGKILL
    conn.close()
    d = start_daemon(root, sock, log)  # the sweep runs at start
    try:
        assert d.api.json("GET", "/images/json") == []
        assert os.listdir(os.path.join(root, "content", "ingest")) == []
        assert os.listdir(os.path.join(root, "content", "blobs", "sha256")) == []
        assert os.listdir(os.path.join(root, "snapshots", "tmp")) == []
        assert os.listdir(os.path.join(root, "snapshots", "layers")) == []
        # and a whole load still works afterwards
        status, _, body = d.api.request("POST", "/images/load", body=data)
        assert status == 200 and b"Loaded image: killed:1" in body
        assert d.api.json("GET", "/images/killed:1/json")["Id"] == image.id
    finally:
        stop_daemon(d)
    assert not mounts_under(root)


def test_kill_at_random_points_never_lists_a_broken_image(daemon_dirs):
    """Kill the daemon at several moments of a load; every image listed after restart is whole."""
    root, sock, log = daemon_dirs
    data, image = _big_archive()
    for delay in (0.05, 0.15, 0.3, 0.6):
        d = start_daemon(root, sock, log)
        result: dict[str, int] = {}

        def post() -> None:
            try:
                c = UnixHTTPConnection(sock, timeout=30)
                c.request("POST", "/images/load", body=data)
                result["status"] = c.getresponse().status
            except OSError:
                pass

        t = threading.Thread(target=post)
        t.start()
        time.sleep(delay)
        stop_daemon(d, signal.SIGKILL)
        t.join(30)
        d = start_daemon(root, sock, log)
        try:
            for entry in d.api.json("GET", "/images/json"):
                inspect = d.api.json("GET", f"/images/{entry['Id']}/json")
                assert inspect["RootFS"]["Layers"] == json.loads(image.config)["rootfs"]["diff_ids"]
                for path in inspect["GraphDriver"]["Data"]["UpperDir"], *(
                        (inspect["GraphDriver"]["Data"]["LowerDir"] or "").split(":")):
                    if path:
                        assert os.path.isdir(path)
                status, _, body = d.api.request("GET", f"/images/{entry['Id']}/get")
                assert status == 200 and len(body) > 32 << 20
                d.api.json("DELETE", f"/images/{entry['Id']}?force=1")
        finally:
            stop_daemon(d)


def _make_group() -> tuple[str, int]:
    name = f"pstest{os.getpid() % 100000}{threading.get_ident() % 1000}"
    subprocess.run(["groupadd", "--system", name], check=True, capture_output=True)
    import grp

    return name, grp.getgrnam(name).gr_gid


def test_socket_belongs_to_root_and_the_group(daemon_dirs):
    # dockerd's --group: the socket is root's and the group's, mode 0660, when the group exists.
    name, gid = _make_group()
    try:
        d = start_daemon(*daemon_dirs, extra_args=("--group", name))
        try:
            st = os.stat(d.socket)
            assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, gid, 0o660)
        finally:
            stop_daemon(d)
            stop_monitor(d)
    finally:
        subprocess.run(["groupdel", name], check=True, capture_output=True)


def test_socket_group_missing(daemon_dirs, tmp_path):
    # The default group may be missing (root only then); a group asked for by name may not.
    root, sock, _ = daemon_dirs
    result = subprocess.run([sys.executable, "-m", "portside.daemon.main", "--root", root,
                             "--host", "unix://" + sock, "--group", "no-such-group-pstest"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "group 'no-such-group-pstest' not found" in result.stderr
    assert not os.path.exists(sock)


def test_default_socket_group_is_portside_or_root(daemon):
    import grp

    try:
        expected = grp.getgrnam("portside").gr_gid
    except KeyError:
        expected = 0
    assert os.stat(daemon.socket).st_gid == expected


def test_teardown_sweeps_a_network_kept_for_live_restore(daemon_dirs, busybox_tar):
    """A daemon stopped with a container running keeps its bridge and table (live restore); the tests'
    teardown (stop_monitor) removes them once the monitor is gone too, so no run leaves them on the host."""
    from portside.network import firewall

    root, sock, log = daemon_dirs
    d = start_daemon(root, sock, log)
    try:
        d.cli("import", "--change", 'CMD ["sh"]', busybox_tar, "busybox:latest")
        d.cli("run", "-d", "--dns", "127.0.0.1", "busybox", "sleep", "2")
    finally:
        stop_daemon(d)
    time.sleep(3)  # the container ends by itself: stopping the monitor leaves running containers running
    bridge = d.network_tag + "0"
    assert subprocess.run(["ip", "link", "show", bridge], capture_output=True).returncode == 0
    assert firewall.exists(d.network_tag)
    stop_monitor(d)
    assert subprocess.run(["ip", "link", "show", bridge], capture_output=True).returncode != 0
    assert not firewall.exists(d.network_tag)
    assert not mounts_under(root)  # the container's network namespace
