"""The API over TCP with mutual TLS: the docker CLI, docker-py and the portside CLI as clients.

One daemon per module listens on its unix socket and on a free port of
127.0.0.1, with a CA, a server certificate for 127.0.0.1 and a client
certificate made by ``openssl`` (tests/tlscerts.py). A client without a
certificate, or with one from another CA, is refused at the handshake; the
daemon refuses to listen on TCP without --tlsverify and the three files.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import hashlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from helpers import Daemon, mounts_under, remove_containers, start_daemon, stop_daemon, stop_monitor
from tlscerts import Pki, make_pki

pytestmark = pytest.mark.root


@dataclass(frozen=True)
class Result:
    rc: int
    out: str
    err: str


def require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} is not installed")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class TLSDaemon:
    daemon: Daemon
    pki: Pki
    port: int

    @property
    def tcp(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def tls_flags(self, cert: str | None = None, key: str | None = None, ca: str | None = None) -> list[str]:
        return ["--tlsverify", "--tlscacert", ca or self.pki.ca,
                "--tlscert", cert or self.pki.client_cert, "--tlskey", key or self.pki.client_key]


@pytest.fixture(scope="module")
def tls_daemon(busybox_tar: str) -> Iterator[TLSDaemon]:
    if os.geteuid() != 0:
        pytest.skip("the daemon needs root")
    base = tempfile.mkdtemp(prefix="portside-tls-")
    pki = make_pki(os.path.join(base, "pki"))
    port = free_port()
    d = start_daemon(os.path.join(base, "root"), os.path.join(base, "run", "portside.sock"),
                     os.path.join(base, "daemon.log"),
                     ("-H", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert", pki.ca,
                      "--tlscert", pki.server_cert, "--tlskey", pki.server_key))
    try:
        d.cli("import", "--change", 'CMD ["sh"]', busybox_tar, "busybox:latest")
        yield TLSDaemon(d, pki, port)
    finally:
        remove_containers(d)
        stop_daemon(d)
        stop_monitor(d)
        left = mounts_under(base)
        shutil.rmtree(base, ignore_errors=True)
        assert not left, f"mounts left behind: {left}"


def docker(t: TLSDaemon, *args: str, flags: list[str] | None = None, input: bytes | None = None,
           check: bool = True, env: dict[str, str] | None = None, binary: str = "") -> Result:
    binary = binary or require("docker")
    config = os.path.join(t.pki.dir, "docker-config")
    os.makedirs(config, exist_ok=True)
    base_env = {k: v for k, v in os.environ.items()
                if k not in ("DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT")}
    cmd = [binary, *(t.tls_flags() if flags is None else flags), "-H", t.tcp, *args]
    proc = subprocess.run(cmd, input=input, capture_output=True, timeout=120,
                          env={**base_env, "DOCKER_CONFIG": config, **(env or {})})
    result = Result(proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{result.out}\n{result.err}")
    return result


def portside(t: TLSDaemon, *args: str, flags: list[str] | None = None, input: bytes | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    base_env = {k: v for k, v in os.environ.items()
                if k not in ("DOCKER_HOST", "PORTSIDE_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")}
    cmd = [sys.executable, "-m", "portside", *(t.tls_flags() + ["-H", t.tcp] if flags is None else flags), *args]
    return subprocess.run(cmd, input=input, capture_output=True, timeout=120, env={**base_env, **(env or {})})


# -- the docker CLI -------------------------------------------------------------------------


def test_docker_cli_version_and_run_over_tls(tls_daemon: TLSDaemon) -> None:
    out = docker(tls_daemon, "version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}").out
    assert out.strip() == "1.45 linux"
    assert docker(tls_daemon, "run", "--rm", "busybox", "echo", "hi").out == "hi\n"
    failed = docker(tls_daemon, "run", "--rm", "busybox", "sh", "-c", "exit 3", check=False)
    assert failed.rc == 3


def test_docker_cli_hijacked_streams_over_tls(tls_daemon: TLSDaemon) -> None:
    # stdin up, half-closed, output down after it: the relay must keep both directions apart
    data = os.urandom(1 << 20)
    out = docker(tls_daemon, "run", "--rm", "-i", "busybox", "md5sum", input=data).out
    assert out.split()[0] == hashlib.md5(data).hexdigest()
    cid = docker(tls_daemon, "run", "-d", "busybox", "sleep", "60").out.strip()
    try:
        assert docker(tls_daemon, "exec", cid, "echo", "from-exec").out == "from-exec\n"
        assert docker(tls_daemon, "exec", "-i", cid, "cat", input=b"up and down\n").out == "up and down\n"
        big = docker(tls_daemon, "exec", cid, "sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x").out
        assert big == "x" * 3_000_000
    finally:
        docker(tls_daemon, "rm", "-f", cid)


def test_debian_docker_cli_20_10_over_tls(tls_daemon: TLSDaemon) -> None:
    # docker.io 20.10 half-closes a hijacked TLS stream with a bare TCP FIN (no close_notify)
    binary = "/usr/bin/docker"
    if not os.path.exists(binary):
        pytest.skip("Debian's docker.io client is not installed")
    assert docker(tls_daemon, "run", "--rm", "busybox", "echo", "hi", binary=binary).out == "hi\n"
    data = os.urandom(1 << 20)
    out = docker(tls_daemon, "run", "--rm", "-i", "busybox", "md5sum", input=data, binary=binary).out
    assert out.split()[0] == hashlib.md5(data).hexdigest()


def test_docker_cli_env_cert_path(tls_daemon: TLSDaemon) -> None:
    env = {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": tls_daemon.pki.docker_cert_path()}
    assert docker(tls_daemon, "run", "--rm", "busybox", "echo", "env", flags=[], env=env).out == "env\n"


def test_docker_cli_without_or_with_a_foreign_certificate_is_refused(tls_daemon: TLSDaemon) -> None:
    pki = tls_daemon.pki
    no_cert = docker(tls_daemon, "version", flags=["--tlsverify", "--tlscacert", pki.ca], check=False)
    assert no_cert.rc != 0 and "error during connect" in no_cert.err
    foreign = docker(tls_daemon, "version", check=False,
                     flags=tls_daemon.tls_flags(cert=pki.other_cert, key=pki.other_key))
    # TLS 1.3 refuses the client's certificate after the client's side of the handshake: the
    # client sees the alert ("unknown certificate authority") or, as timing has it, the close
    assert foreign.rc != 0 and "error during connect" in foreign.err
    assert "TLS handshake failed" in tls_daemon.daemon.log()
    # plain HTTP on the TLS port gets nowhere either
    plain = docker(tls_daemon, "version", flags=[], check=False)
    assert plain.rc != 0
    assert docker(tls_daemon, "run", "--rm", "busybox", "echo", "still-serving").out == "still-serving\n"


# -- docker-py -------------------------------------------------------------------------------


def test_docker_py_tls_config(tls_daemon: TLSDaemon, monkeypatch: pytest.MonkeyPatch) -> None:
    docker_py = pytest.importorskip("docker")
    # requests prefers these to the session's CA file (psf/requests#3829)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    pki = tls_daemon.pki
    tls = docker_py.tls.TLSConfig(client_cert=(pki.client_cert, pki.client_key), ca_cert=pki.ca, verify=True)
    client = docker_py.DockerClient(base_url=tls_daemon.tcp, tls=tls, version="auto", timeout=60)
    try:
        assert client.ping() is True
        # detach + wait + logs: a foreground run() reads HostConfig.LogConfig, not served yet
        done = client.containers.run("busybox", ["echo", "hi"], detach=True)
        assert done.wait(timeout=60)["StatusCode"] == 0
        assert done.logs() == b"hi\n"
        done.remove()
        c = client.containers.run("busybox", ["sleep", "60"], detach=True)
        try:
            code, out = c.exec_run(["sh", "-c", "echo out; echo err >&2"])
            assert code == 0 and sorted(out.split()) == [b"err", b"out"]
        finally:
            c.remove(force=True)
    finally:
        client.close()
    wrong = docker_py.tls.TLSConfig(client_cert=(pki.other_cert, pki.other_key), ca_cert=pki.ca, verify=True)
    refused = docker_py.DockerClient(base_url=tls_daemon.tcp, tls=wrong, version="1.45", timeout=30)
    import requests

    with pytest.raises(requests.exceptions.SSLError):  # TLS 1.3: an alert or an EOF, as timing has it
        refused.ping()
    refused.close()


# -- the portside CLI --------------------------------------------------------------------------


def test_portside_cli_over_tls(tls_daemon: TLSDaemon) -> None:
    r = portside(tls_daemon, "run", "--rm", "busybox", "echo", "hi")
    assert (r.returncode, r.stdout) == (0, b"hi\n"), r.stderr
    data = os.urandom(1 << 20)
    r = portside(tls_daemon, "run", "--rm", "-i", "busybox", "md5sum", input=data)
    assert r.returncode == 0 and r.stdout.split()[0].decode() == hashlib.md5(data).hexdigest(), r.stderr
    r = portside(tls_daemon, "run", "--rm", "busybox", "sh", "-c", "exit 7")
    assert r.returncode == 7
    r = portside(tls_daemon, "images", "--format", "{{.Repository}}:{{.Tag}}")
    assert r.stdout.decode().split() == ["busybox:latest"]


def test_portside_cli_docker_environment(tls_daemon: TLSDaemon) -> None:
    env = {"DOCKER_HOST": tls_daemon.tcp, "DOCKER_TLS_VERIFY": "1",
           "DOCKER_CERT_PATH": tls_daemon.pki.docker_cert_path()}
    r = portside(tls_daemon, "run", "--rm", "busybox", "echo", "env", flags=[], env=env)
    assert (r.returncode, r.stdout) == (0, b"env\n"), r.stderr
    # the wrong client certificate, from the same environment variables
    env["DOCKER_CERT_PATH"] = tls_daemon.pki.docker_cert_path("other")
    r = portside(tls_daemon, "ps", flags=[], env=env)
    assert r.returncode == 1 and b"error during connect" in r.stderr


def test_portside_cli_refusals(tls_daemon: TLSDaemon, tmp_path: object) -> None:
    pki = tls_daemon.pki
    r = portside(tls_daemon, "ps", flags=["--tlsverify", "--tlscacert", pki.ca, "-H", tls_daemon.tcp],
                 env={"DOCKER_CERT_PATH": str(tmp_path)})
    assert r.returncode == 1 and b"error during connect" in r.stderr  # no certificate: refused by the daemon
    r = portside(tls_daemon, "ps", flags=[*tls_daemon.tls_flags(ca=pki.other_ca), "-H", tls_daemon.tcp])
    assert r.returncode == 1 and b"CERTIFICATE_VERIFY_FAILED" in r.stderr  # the daemon's cert is not from that CA
    missing = os.path.join(str(tmp_path), "nothing.pem")
    r = portside(tls_daemon, "ps", flags=["--tlsverify", "--tlscacert", missing, "-H", tls_daemon.tcp])
    assert r.returncode == 1
    assert f'Could not read CA certificate "{missing}"'.encode() in r.stderr


# -- the daemon's own refusals ------------------------------------------------------------------


def _daemon_refuses(*args: str) -> str:
    base = tempfile.mkdtemp(prefix="portside-tls-refuse-")
    try:
        r = subprocess.run([sys.executable, "-m", "portside.daemon.main", "--root", os.path.join(base, "root"),
                            "-H", f"unix://{base}/p.sock", *args], capture_output=True, text=True, timeout=60)
        assert r.returncode == 1, r.stderr
        assert not os.path.exists(os.path.join(base, "p.sock"))
        return r.stderr
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_daemon_refuses_tcp_without_mutual_tls(tmp_path: object) -> None:
    if os.geteuid() != 0:
        pytest.skip("the daemon needs root")
    port = free_port()
    err = _daemon_refuses("-H", f"tcp://127.0.0.1:{port}")
    assert f"refusing to listen on tcp://127.0.0.1:{port} without mutual TLS" in err
    err = _daemon_refuses("-H", f"tcp://127.0.0.1:{port}", "--tls")
    assert "without mutual TLS" in err
    missing = os.path.join(str(tmp_path), "ca.pem")
    err = _daemon_refuses("-H", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert", missing,
                          "--tlscert", missing, "--tlskey", missing)
    assert f"could not read TLS CA certificate {missing}" in err


def test_a_stalled_handshake_holds_up_nobody(tls_daemon: TLSDaemon) -> None:
    # A client that connects and sends nothing has a thread of its own; others are served meanwhile.
    idle = [socket.create_connection(("127.0.0.1", tls_daemon.port)) for _ in range(5)]
    try:
        assert docker(tls_daemon, "version", "--format", "{{.Server.Os}}").out.strip() == "linux"
    finally:
        for s in idle:
            s.close()


def test_handshake_from_python_checks_hostname(tls_daemon: TLSDaemon) -> None:
    # The server certificate is for 127.0.0.1 only: a client verifying "localhost" refuses it.
    pki = tls_daemon.pki
    ctx = ssl.create_default_context(cafile=pki.ca)
    ctx.load_cert_chain(pki.client_cert, pki.client_key)
    with socket.create_connection(("127.0.0.1", tls_daemon.port)) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 200")
    with socket.create_connection(("127.0.0.1", tls_daemon.port)) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(raw, server_hostname="localhost")
