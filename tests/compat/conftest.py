"""Fixtures for the peers: the docker CLI, a private podman store, skopeo, a private dockerd.

A peer that is not installed skips its tests with a reason naming the binary.
Every peer works in its own temporary directories and nothing of the host's:
podman gets its own root, runroot and tmpdir; dockerd its own data root, exec
root, pidfile, socket and daemon.json, and no iptables, bridge or forwarding.
Teardown removes images, unmounts whatever is left under those directories
(deepest first), removes them, and fails if a process or mount of ours is
left, or if the host's firewall rules, links or forwarding changed.

Shared files the peers write anyway, as root: containers/image's blob-info
cache (/var/lib/containers/cache, skopeo and podman); nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Callable

import pytest

from helpers import Api, mounts_under


@dataclass(frozen=True)
class Result:
    rc: int
    out: str
    err: str
    raw: bytes  # stdout as bytes (save to stdout)


def run(cmd: list[str], *, input: bytes | None = None, check: bool = True, env: dict[str, str] | None = None,
        timeout: float = 180) -> Result:
    proc = subprocess.run(cmd, input=input, capture_output=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    result = Result(proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"),
                    proc.stdout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n"
                             f"stdout: {result.out}\nstderr: {result.err}")
    return result


def require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.skip(f"{binary} is not installed")
    return path


def _pids_mentioning(text: str) -> list[int]:
    """Processes whose command line names ``text`` (our private directories: so they are ours)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    pids.append(int(entry))
        except OSError:
            pass
    return pids


def _unmount_under(base: str) -> None:
    for target in sorted(mounts_under(base), key=len, reverse=True):
        if subprocess.run(["umount", target], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", target], capture_output=True)


def remove_tree(base: str) -> None:
    """Unmount everything under ``base``, remove it; fail if a mount survives."""
    _unmount_under(base)
    left = mounts_under(base)
    shutil.rmtree(base, ignore_errors=True)
    assert not left, f"mounts left behind under {base}: {left}"


# -- the docker CLI ------------------------------------------------------------------


@dataclass
class DockerCLI:
    """The real docker CLI against one daemon socket, with a private DOCKER_CONFIG."""

    binary: str
    host: str
    config_dir: str

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        # Nothing DOCKER_* is inherited from whoever runs the tests (DOCKER_API_VERSION, DOCKER_CONTEXT...).
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        return {**env, "DOCKER_HOST": self.host, "DOCKER_CONFIG": self.config_dir, "DOCKER_CLI_HINTS": "false",
                **(extra or {})}

    def __call__(self, *args: str, input: bytes | None = None, check: bool = True,
                 env: dict[str, str] | None = None) -> Result:
        proc = subprocess.run([self.binary, *args], input=input, capture_output=True, timeout=180,
                              env=self.env(env))
        result = Result(proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"),
                        proc.stdout)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} exited {proc.returncode}:\n"
                                 f"stdout: {result.out}\nstderr: {result.err}")
        return result

    def client_version(self) -> tuple[int, ...]:
        """The CLI's own version, e.g. (28, 2, 2); Debian's "20.10.24+dfsg1" is (20, 10, 24)."""
        version = self("version", "--format", "{{.Client.Version}}", check=False).out.strip()
        return tuple(int(part) for part in version.split("+")[0].split("-")[0].split("."))

    def image_id(self, name: str) -> str:
        return self("image", "inspect", "-f", "{{.Id}}", name).out.strip()


@pytest.fixture
def docker_client(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], DockerCLI]:
    """Builds a docker CLI runner for a ``unix://`` host; skips when the CLI is not installed."""
    binary = require("docker")

    def make(host: str) -> DockerCLI:
        config = tmp_path_factory.mktemp("docker-config")
        return DockerCLI(binary, host, str(config))

    return make


# -- podman --------------------------------------------------------------------------


@dataclass
class Podman:
    """podman on a private store: ``podman --root R --runroot RR --storage-driver overlay ...``."""

    binary: str
    base: str

    @property
    def global_args(self) -> list[str]:
        b = self.base
        return ["--root", f"{b}/root", "--runroot", f"{b}/runroot", "--storage-driver", "overlay",
                "--tmpdir", f"{b}/libpod", "--network-config-dir", f"{b}/networks",
                "--volumepath", f"{b}/volumes", "--events-backend", "none", "--cgroup-manager", "cgroupfs"]

    def __call__(self, *args: str, input: bytes | None = None, check: bool = True) -> Result:
        return run([self.binary, *self.global_args, *args], input=input, check=check,
                   env={"TMPDIR": f"{self.base}/tmp", "CONTAINERS_STORAGE_CONF": f"{self.base}/storage.conf"})

    def images(self) -> set[tuple[str, str]]:
        """{(full image ID, repository:tag)} as ``podman images --no-trunc`` lists them."""
        out = self("images", "--no-trunc", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}").out
        return {tuple(line.split(" ", 1)) for line in out.splitlines() if line.strip()}  # type: ignore[misc]

    def ids(self) -> set[str]:
        return {line.strip() for line in self("images", "--no-trunc", "--format", "{{.ID}}").out.splitlines()
                if line.strip()}


@pytest.fixture
def podman() -> Iterator[Podman]:
    binary = require("podman")
    base = tempfile.mkdtemp(prefix="ps-podman-")
    for sub in ("root", "runroot", "libpod", "networks", "volumes", "tmp"):
        os.makedirs(os.path.join(base, sub))
    with open(os.path.join(base, "storage.conf"), "w") as f:
        f.write(f'[storage]\ndriver = "overlay"\nrunroot = "{base}/runroot"\ngraphroot = "{base}/root"\n')
    p = Podman(binary, base)
    try:
        yield p
    finally:
        p("rmi", "-a", "-f", check=False)
        left = _pids_mentioning(base)
        remove_tree(base)
        assert not left, f"podman processes left behind: {left}"


# -- skopeo --------------------------------------------------------------------------


@dataclass
class Skopeo:
    binary: str
    tmp: str

    def __call__(self, *args: str, check: bool = True) -> Result:
        return run([self.binary, "--insecure-policy", *args], check=check, env={"TMPDIR": self.tmp})


@pytest.fixture
def skopeo(tmp_path: os.PathLike[str]) -> Skopeo:
    binary = require("skopeo")
    tmp = os.path.join(str(tmp_path), "skopeo-tmp")
    os.makedirs(tmp)
    return Skopeo(binary, tmp)


# -- umoci ----------------------------------------------------------------------------


@pytest.fixture
def umoci() -> Callable[..., Result]:
    binary = require("umoci")
    return lambda *args, check=True: run([binary, *args], check=check)


# -- dockerd -------------------------------------------------------------------------


def host_network_state() -> dict[str, object]:
    """What a dockerd with iptables or a bridge would change: rules, policies, links, forwarding."""
    state: dict[str, object] = {}
    for tool in ("iptables", "ip6tables"):
        if shutil.which(tool) is None:
            continue
        for table in ("filter", "nat"):
            proc = subprocess.run([tool, "-t", table, "-S"], capture_output=True, text=True)
            state[f"{tool} -t {table}"] = sorted(proc.stdout.splitlines()) if proc.returncode == 0 else None
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    state["docker links"] = sorted(line.split(":")[1].strip() for line in links.splitlines()
                                   if "docker" in line.split(":")[1])
    for sysctl in ("/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"):
        try:
            with open(sysctl) as f:
                state[sysctl] = f.read().strip()
        except OSError:
            state[sysctl] = None
    return state


def network_changes(before: dict[str, object], after: dict[str, object]) -> dict[str, object]:
    """The differences dockerd could be blamed for.

    Other engineers' tests may add their own rules at the same time, so new
    rules count only when they are Docker's (a DOCKER chain, docker0) or a
    changed default policy (dockerd sets FORWARD to DROP).
    """
    changes: dict[str, object] = {}
    for key, old in before.items():
        new = after.get(key)
        if isinstance(old, list) and isinstance(new, list):
            added = [r for r in new if r not in old and ("docker" in r.lower() or r.startswith("-P "))]
            removed = [r for r in old if r not in new and r.startswith("-P ")]
            if added or removed:
                changes[key] = {"added": added, "removed": removed}
        elif old != new:
            changes[key] = {"before": old, "after": new}
    return changes


@dataclass
class Dockerd:
    binary: str
    base: str
    socket: str
    proc: subprocess.Popen[bytes]
    cli: DockerCLI
    network_before: dict[str, object] = field(default_factory=dict)
    flags: tuple[str, ...] = ()

    def network_changes(self) -> dict[str, object]:
        """What changed in the host's network since before dockerd started (see ``network_changes``)."""
        return network_changes(self.network_before, host_network_state())

    @property
    def host(self) -> str:
        return "unix://" + self.socket

    def log(self) -> str:
        with open(os.path.join(self.base, "dockerd.log"), errors="replace") as f:
            return f.read()


DOCKERD_FLAGS = ("--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false", "--bridge=none")


@pytest.fixture
def dockerd(dockerd_process: Dockerd) -> Iterator[Dockerd]:
    """The module's dockerd, emptied of images after each test."""
    yield dockerd_process
    ids = set(dockerd_process.cli("images", "-aq", check=False).out.split())
    if ids:
        dockerd_process.cli("rmi", "-f", *sorted(ids), check=False)


@pytest.fixture(scope="module")
def dockerd_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dockerd]:
    """A private dockerd (docker.io 20.10 and the containerd it starts), one per module.

    It touches nothing of the host's: no iptables rules, no docker0, no
    forwarding sysctl, no /var/lib/docker or /run/docker, and its trust key
    (20.10 writes /etc/docker/key.json by default) goes to its own directory.
    """
    if os.geteuid() != 0:
        pytest.skip("dockerd needs root")
    binary = require("dockerd")
    docker = require("docker")
    base = tempfile.mkdtemp(prefix="ps-dockerd-")  # short: the socket path is limited to 108 bytes
    config_file = os.path.join(base, "daemon.json")
    with open(config_file, "w") as f:
        json.dump({"deprecated-key-path": os.path.join(base, "key.json")}, f)
    socket_path = os.path.join(base, "docker.sock")
    before = host_network_state()
    cmd = [binary, "--data-root", f"{base}/data", "--exec-root", f"{base}/exec", "--pidfile", f"{base}/docker.pid",
           "-H", "unix://" + socket_path, "--config-file", config_file, *DOCKERD_FLAGS]
    with open(os.path.join(base, "dockerd.log"), "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    cli_config = str(tmp_path_factory.mktemp("dockerd-cli-config"))
    d = Dockerd(binary, base, socket_path, proc, DockerCLI(docker, "unix://" + socket_path, cli_config), before,
                DOCKERD_FLAGS)
    try:
        _wait_for_ping(d)
        yield d
    finally:
        _stop_dockerd(d)
        left = _pids_mentioning(base)
        for pid in left:  # a containerd dockerd failed to stop: it runs on our exec root, so it is ours
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        remove_tree(base)
        changes = network_changes(before, host_network_state())
        assert not left, f"processes left behind by dockerd: {left}"
        assert not changes, f"dockerd changed the host's network: {changes}"


def _wait_for_ping(d: Dockerd) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if d.proc.poll() is not None:
            raise AssertionError(f"dockerd exited {d.proc.returncode}:\n{d.log()}")
        try:
            status, _, _ = Api(d.socket).request("GET", "/_ping")
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("dockerd did not answer /_ping in 60 s:\n" + d.log())


def _stop_dockerd(d: Dockerd) -> None:
    if d.proc.poll() is None:
        d.proc.send_signal(signal.SIGTERM)  # dockerd stops its containerd on the way out
        try:
            d.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            d.proc.kill()
            d.proc.wait()
