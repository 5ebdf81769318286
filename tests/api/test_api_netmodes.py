"""--network/--ipc/--pid container:X through the Engine API, with real containers (dockerd 20.10's answers)."""

from __future__ import annotations

import json
import os
import time

from helpers import Daemon, remove_containers, start_daemon, stop_daemon, stop_monitor
from nethelpers import leftovers


def create(d: Daemon, name: str, host_config: dict, cmd: tuple[str, ...] = ("sleep", "1000"),
           **body: object) -> tuple[int, dict]:
    status, _, data = d.api.request("POST", f"/containers/create?name={name}",
                                    {"Image": "busybox", "Cmd": list(cmd), "HostConfig": host_config, **body})
    return status, json.loads(data)


def start(d: Daemon, ref: str) -> tuple[int, dict]:
    status, _, data = d.api.request("POST", f"/containers/{ref}/start")
    return status, json.loads(data) if data else {}


def sh(d: Daemon, ref: str, script: str) -> str:
    return d.cli("exec", ref, "sh", "-c", script).stdout.decode()


def test_join_another_containers_network(daemon: Daemon, busybox_image: str) -> None:
    daemon.cli("network", "create", "nm")
    daemon.cli("run", "-d", "--name", "peer", "--network", "nm", "--ipc", "shareable", "busybox",
               "httpd", "-f", "-p", "80", "-h", "/etc")
    peer = daemon.api.json("GET", "/containers/peer/json")
    status, doc = create(daemon, "joiner", {"NetworkMode": "container:peer"})
    assert status == 201, doc
    assert start(daemon, "joiner")[0] == 204
    j = daemon.api.json("GET", "/containers/joiner/json")
    assert j["HostConfig"]["NetworkMode"] == "container:" + peer["Id"]
    assert j["NetworkSettings"]["Networks"] == {} and j["NetworkSettings"]["IPAddress"] == ""
    assert j["Config"]["Hostname"] == peer["Config"]["Hostname"]
    for key in ("HostsPath", "ResolvConfPath", "HostnamePath"):
        assert j[key] == peer[key]
    # one network stack: the peer's address and its server on the joiner's loopback
    ip = peer["NetworkSettings"]["Networks"]["nm"]["IPAddress"]
    assert f"inet {ip}/" in sh(daemon, "joiner", "ip -4 addr show eth0")
    assert "localhost" in sh(daemon, "joiner", "wget -q -O - http://127.0.0.1/hosts")
    assert sh(daemon, "joiner", "cat /etc/hosts") == sh(daemon, "peer", "cat /etc/hosts")
    assert sh(daemon, "joiner", "hostname").strip() == peer["Config"]["Hostname"]
    # the peer's namespace is the joiner's: the same inode
    assert sh(daemon, "joiner", "readlink /proc/self/ns/net") == sh(daemon, "peer", "readlink /proc/self/ns/net")
    assert daemon.api.json("GET", "/networks/nm")["Containers"].keys() == {peer["Id"]}
    # network connect refuses it (403, dockerd's message)
    status, _, data = daemon.api.request("POST", "/networks/nm/connect", {"Container": "joiner"})
    assert status == 403 and json.loads(data)["message"] == (
        "container sharing network namespace with another container or host cannot be connected to any other network")

    # --ipc and --pid container: join the same process's namespaces
    daemon.cli("run", "-d", "--name", "ipcpid", "--ipc", "container:peer", "--pid", "container:peer",
               "busybox", "sleep", "1000")
    for ns in ("ipc", "pid"):
        assert sh(daemon, "ipcpid", f"readlink /proc/self/ns/{ns}") == sh(daemon, "peer", f"readlink /proc/self/ns/{ns}")
    assert "httpd" in sh(daemon, "ipcpid", "ps")
    sh(daemon, "peer", "echo shared > /dev/shm/note")  # the donor's /dev/shm too, as dockerd binds its ShmPath
    assert sh(daemon, "ipcpid", "cat /dev/shm/note") == "shared\n"
    # a private IPC cannot be joined (dockerd's message); an unknown donor is refused at create
    daemon.cli("run", "-d", "--name", "private", "busybox", "sleep", "1000")
    private = daemon.api.json("GET", "/containers/private/json")["Id"]
    create(daemon, "ipc3", {"IpcMode": "container:private"})
    status, doc = start(daemon, "ipc3")
    assert status == 500 and doc["message"] == (f"can't join IPC of container {private}: non-shareable IPC "
                                                "(hint: use IpcMode:shareable for the donor container)")
    for mode in ("IpcMode", "PidMode"):
        status, doc = create(daemon, "unknown", {mode: "container:nope"})
        assert (status, doc["message"]) == (404, "No such container: nope")
    shm_dir = os.path.join(daemon.root, "containers", peer["Id"], "mounts", "shm")
    assert os.path.ismount(shm_dir)

    # the peer stops: the joiner keeps running, in a namespace with only lo
    daemon.cli("stop", "-t", "0", "peer")
    assert not os.path.ismount(shm_dir)  # unmounted when the donor stopped (ipcpid died with its PID namespace)
    deadline = time.monotonic() + 10
    while "eth0" in sh(daemon, "joiner", "ip -o link") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sh(daemon, "joiner", "ip -o link").split()[1] == "lo:"
    assert len(sh(daemon, "joiner", "ip -o link").splitlines()) == 1
    assert daemon.api.json("GET", "/containers/joiner/json")["State"]["Running"] is True
    assert daemon.api.json("GET", "/networks/nm")["Containers"] == {}

    # a start while the peer is stopped: 409, dockerd's message, nothing left running
    daemon.cli("stop", "-t", "0", "joiner")
    status, doc = start(daemon, "joiner")
    assert status == 409 and doc["message"] == "cannot join network of a non running container: " + peer["Id"]
    status, doc = create(daemon, "ipc2", {"IpcMode": "container:peer"})
    status, doc = start(daemon, "ipc2")
    assert status == 500 and doc["message"] == (
        f"can't join IPC of container {peer['Id']}: container {peer['Id']} is not running")
    status, doc = create(daemon, "pid2", {"PidMode": "container:peer"})
    status, doc = start(daemon, "pid2")
    assert status == 500 and doc["message"] == f"container {peer['Id']} is not running"
    # and again once the peer runs
    daemon.cli("start", "peer")
    assert start(daemon, "joiner")[0] == 204
    assert "eth0" in sh(daemon, "joiner", "ip -o link")
    daemon.cli("rm", "-f", "joiner", "ipcpid", "ipc2", "pid2", "ipc3", "private", "peer")
    assert not os.path.ismount(shm_dir)
    daemon.cli("network", "rm", "nm")
    tag = daemon.network_tag  # the default bridge (ipcpid used it) stays up until the daemon stops
    assert set(leftovers(tag, os.path.dirname(daemon.socket))) <= {f"link {tag}0", f"nft table ip {tag}"}


def test_container_mode_refusals(daemon: Daemon, busybox_image: str) -> None:
    status, doc = create(daemon, "ghost", {"NetworkMode": "container:nope"})
    assert status == 201  # dockerd keeps the name; start looks it up
    assert daemon.api.json("GET", "/containers/ghost/json")["HostConfig"]["NetworkMode"] == "container:nope"
    status, doc = start(daemon, "ghost")
    assert status == 404 and doc["message"] == "No such container: nope"
    status, doc = create(daemon, "self", {"NetworkMode": "container:self"})
    status, doc = start(daemon, "self")
    assert status == 500 and doc["message"] == "cannot join own network"
    for host_config, body, message in [
        ({"PortBindings": {"80/tcp": [{}]}}, {}, "conflicting options: port publishing and the container type network mode"),
        ({}, {"Hostname": "h"}, "conflicting options: hostname and the network mode"),
        ({"Dns": ["1.1.1.1"]}, {}, "conflicting options: dns and the network mode"),
        ({"ExtraHosts": ["a:1.2.3.4"]}, {}, "conflicting options: custom host-to-IP mapping and the network mode"),
        ({}, {"MacAddress": "02:42:ac:11:00:02"}, "conflicting options: mac-address and the network mode"),
        ({"Links": ["self:a"]}, {}, "conflicting options: container type network can't be used with links. "
                                    "This would result in undefined behavior"),
        ({}, {"ExposedPorts": {"80/tcp": {}}}, "conflicting options: port exposing and the container type network mode"),
    ]:
        status, doc = create(daemon, "bad", {"NetworkMode": "container:self", **host_config}, **body)
        assert (status, doc["message"]) == (400, message)
    daemon.cli("rm", "ghost", "self")


def test_the_peers_exit_after_a_daemon_restart(daemon_dirs: tuple[str, str, str], busybox_tar: str) -> None:
    d = start_daemon(*daemon_dirs)
    try:
        d.cli("import", "--change", 'CMD ["sh"]', busybox_tar, "busybox:latest")
        d.cli("run", "-d", "--name", "peer", "busybox", "sleep", "300")
        d.cli("run", "-d", "--name", "joiner", "--network", "container:peer", "busybox", "sleep", "300")
        assert "eth0" in sh(d, "joiner", "ip -o link")
        stop_daemon(d)  # both keep running (live restore)
        d = start_daemon(*daemon_dirs, extra_args=("--network-tag", d.network_tag))
        d.cli("stop", "-t", "0", "peer")
        assert len(sh(d, "joiner", "ip -o link").splitlines()) == 1  # lo only: the peer's veth went with it
    finally:
        remove_containers(d)
        stop_daemon(d)
        stop_monitor(d)
    assert leftovers(d.network_tag, os.path.dirname(d.socket)) == [], d.log()[-3000:]
