"""docker-py's networking calls against portside: networks create/list/get/connect/disconnect/remove/prune,
containers.run with a network and published ports (reached from the host), and network_mode="container:X"."""

from __future__ import annotations

import socket
import time
import urllib.request

import pytest

docker = pytest.importorskip("docker")
from docker.types import IPAMConfig, IPAMPool  # noqa: E402

from nethelpers import free_subnet  # noqa: E402

pytestmark = [pytest.mark.root, pytest.mark.peers]

HTTPD = ["httpd", "-f", "-p", "80", "-h", "/etc"]


@pytest.fixture
def client(daemon, busybox_image):
    c = docker.DockerClient(base_url=daemon.host, timeout=60)
    yield c
    for container in c.containers.list(all=True):
        container.remove(force=True)
    c.close()


def _get(port: int, path: str = "/hostname") -> str:
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                return r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_networks_through_docker_py(client) -> None:
    subnet = free_subnet()
    net = client.networks.create("pynet", driver="bridge", internal=False, labels={"team": "core"},
                                 ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=str(subnet))]))
    assert len(net.id) == 64 and net.name == "pynet"
    assert net.attrs["IPAM"]["Config"][0]["Subnet"] == str(subnet)
    assert net.attrs["Labels"] == {"team": "core"} and net.attrs["Internal"] is False
    internal = client.networks.create("pyinternal", internal=True)
    assert client.networks.get("pyinternal").attrs["Internal"] is True
    assert [n.id for n in client.networks.list(names=["pynet"])] == [net.id]
    assert [n.name for n in client.networks.list(filters={"label": "team=core"})] == ["pynet"]
    assert {n.name for n in client.networks.list(filters={"type": "custom"})} == {"pynet", "pyinternal"}
    assert client.networks.get(net.id[:12]).name == "pynet"
    with pytest.raises(docker.errors.NotFound):
        client.networks.get("nope")

    web = client.containers.run("busybox", HTTPD, detach=True, name="pyweb", network="pynet")
    box = client.containers.run("busybox", ["sleep", "300"], detach=True, name="pybox")
    ip = str(subnet.network_address + 40)
    net.connect(box, aliases=["boxalias"], ipv4_address=ip)
    box.reload()
    settings = box.attrs["NetworkSettings"]["Networks"]["pynet"]
    assert settings["IPAddress"] == ip and "boxalias" in settings["Aliases"]
    net.reload()
    assert {c.name for c in net.containers} == {"pyweb", "pybox"}
    web_ip = client.containers.get("pyweb").attrs["NetworkSettings"]["Networks"]["pynet"]["IPAddress"]
    code, out = box.exec_run(["sh", "-c", f"wget -q -O - http://{web_ip}/hostname"])
    assert code == 0 and out.decode().strip() == web.id[:12]
    net.disconnect(box)
    box.reload()
    assert "pynet" not in box.attrs["NetworkSettings"]["Networks"]
    assert ip not in box.exec_run(["ip", "-4", "addr"]).output.decode()
    with pytest.raises(docker.errors.APIError) as e:
        net.remove()
    assert e.value.status_code == 403 and "has active endpoints" in str(e.value)
    web.remove(force=True)
    net.remove()
    assert client.networks.list(names=["pynet"]) == []
    pruned = client.networks.prune()
    assert pruned["NetworksDeleted"] == ["pyinternal"]
    assert internal.name not in {n.name for n in client.networks.list()}


def test_published_ports_through_docker_py(client) -> None:
    client.networks.create("pyports")
    web = client.containers.run("busybox", HTTPD, detach=True, name="pyweb", hostname="webhost",
                                network="pyports", ports={"80/tcp": None})
    web.reload()
    (binding,) = web.attrs["NetworkSettings"]["Ports"]["80/tcp"]
    port = int(binding["HostPort"])
    assert binding["HostIp"] == "0.0.0.0" and port > 0
    assert web.ports == {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}]}
    assert _get(port) == "webhost\n"
    # an address and an ephemeral port
    local = client.containers.run("busybox", HTTPD, detach=True, name="pylocal", hostname="localhost1",
                                  ports={"80/tcp": ("127.0.0.1", 0)})
    local.reload()
    (binding,) = local.ports["80/tcp"]
    assert binding["HostIp"] == "127.0.0.1" and int(binding["HostPort"]) > 0
    assert _get(int(binding["HostPort"])) == "localhost1\n"
    with pytest.raises(OSError):  # only on that address
        socket.create_connection(("127.0.0.2", int(binding["HostPort"])), timeout=2).close()
    web.remove(force=True)
    local.remove(force=True)
    client.networks.get("pyports").remove()


def test_container_network_mode_through_docker_py(client) -> None:
    peer = client.containers.run("busybox", HTTPD, detach=True, name="pypeer")
    joiner = client.containers.run("busybox", ["sleep", "300"], detach=True, name="pyjoiner",
                                   network_mode="container:pypeer")
    joiner.reload()
    assert joiner.attrs["HostConfig"]["NetworkMode"] == "container:" + peer.id
    assert joiner.attrs["NetworkSettings"]["Networks"] == {}
    code, out = joiner.exec_run(["wget", "-q", "-O", "-", "http://127.0.0.1/hostname"])
    assert code == 0 and out.decode().strip() == peer.id[:12]
    with pytest.raises(docker.errors.APIError) as e:
        client.networks.get("bridge").connect(joiner)
    assert e.value.status_code == 403
    with pytest.raises(docker.errors.APIError) as e:
        client.containers.run("busybox", "true", network_mode="container:pypeer", ports={"80/tcp": None})
    assert e.value.status_code == 400 and "conflicting options: port publishing" in str(e.value)
    peer.stop(timeout=0)
    joiner.stop(timeout=0)
    with pytest.raises(docker.errors.APIError) as e:
        joiner.start()
    assert e.value.status_code == 409 and f"cannot join network of a non running container: {peer.id}" in str(e.value)
