"""The container init on a real kernel: namespaces, overlay root, pivot_root, Docker's mounts and paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import pytest

from helpers import mounts_under
from portside.images import importer
from portside.images.service import ImageService
from portside.oci.reference import parse_docker_ref

pytestmark = pytest.mark.root

RUNNER = os.path.join(os.path.dirname(__file__), "runtime_runner.py")
DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
                "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
                "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]


@pytest.fixture
def image(tmp_path, busybox_tar):
    svc = ImageService(str(tmp_path / "root"))
    with open(busybox_tar, "rb") as f:
        image_id = importer.import_image(svc, f, ref=parse_docker_ref("busybox"), changes=[])
    yield svc, svc.get(image_id)
    svc.close()


def spec_for(rootfs: str, args: list[str], **process: object) -> dict:
    return {
        "ociVersion": "1.1.0",
        "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": args,
                    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=ctr"],
                    "cwd": "/", "capabilities": {k: DEFAULT_CAPS for k in
                                                 ("bounding", "effective", "permitted")},
                    "noNewPrivileges": False, **process},
        "root": {"path": rootfs, "readonly": False},
        "hostname": "ctr",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]},
        ],
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    }


def run(svc: ImageService, image, args: list[str], **process: object) -> tuple[dict, str, str]:
    key = "test-" + os.urandom(4).hex()
    mounts = svc.snapshots.prepare(key, [la.chain_id for la in image.row.layers])
    rootfs = tempfile.mkdtemp(prefix="portside-rootfs-")
    job = {"spec": spec_for(rootfs, args, **process),
           "mounts": [[m.type, m.source, list(m.options)] for m in mounts]}
    job_path = os.path.join(rootfs + ".json")
    with open(job_path, "w") as f:
        json.dump(job, f)
    try:
        out = subprocess.run([sys.executable, RUNNER, job_path], capture_output=True, text=True, timeout=60)
        lines = out.stdout.strip().splitlines()
        result = json.loads(lines[-1])
        return result, "\n".join(lines[:-1]).strip(), out.stderr
    finally:
        os.unlink(job_path)
        # every mount lived in the container's mount namespace: nothing on the host
        assert mounts_under(rootfs) == []
        os.rmdir(rootfs)
        svc.snapshots.remove(key)


def test_echo_hello(image):
    result, out, _ = run(*image, ["echo", "hello"])
    assert result == {"exit": 0, "error": None, "pid": result["pid"]} and out == "hello"


def test_isolation(image):
    script = ("echo pid=$$; echo maxpid=$(ls /proc | grep '^[0-9]' | sort -n | tail -1); echo one=$(cat /proc/1/cmdline | tr '\\0' ' '); echo host=$(hostname); "
              "echo kcore=$(cat /proc/kcore | wc -c); "
              "touch /proc/sys/kernel/x 2>/dev/null && echo procsys=rw || echo procsys=ro; "
              "mkdir -p /tmp/m; mount -t tmpfs t /tmp/m 2>/dev/null && echo mount=yes || echo mount=no; "
              "ls /dev | tr '\\n' ' '")
    result, out, err = run(*image, ["sh", "-c", script])
    assert result["exit"] == 0, err
    lines = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert lines["pid"] == "1"
    # the pid namespace hides the host's processes: only the shell (pid 1) and its pipeline
    assert int(lines["maxpid"]) < 10 and lines["one"].startswith("sh -c")
    assert lines["host"] == "ctr"
    assert lines["kcore"] == "0"            # masked
    assert lines["procsys"] == "ro"
    assert lines["mount"] == "no"           # no CAP_SYS_ADMIN
    for node in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "ptmx", "fd"):
        assert node in out.splitlines()[-1].split()


def test_user_and_workdir(image):
    result, out, err = run(*image, ["sh", "-c", "id -u; id -g; id -G; pwd"],
                           user={"uid": 65534, "gid": 65534, "additionalGids": [100]}, cwd="/tmp")
    assert result["exit"] == 0, err
    assert out.splitlines() == ["65534", "65534", "65534 100", "/tmp"]


@pytest.mark.parametrize("args, code, message", [
    (["nosuch"], 127, 'exec: "nosuch": executable file not found in $PATH'),
    (["/etc/passwd"], 126, 'exec: "/etc/passwd": permission denied'),
    (["/no/such/file"], 127, 'exec: "/no/such/file": no such file or directory'),
])
def test_exec_errors(image, args, code, message):
    result, _, _ = run(*image, args)
    assert result["exit"] == code and result["error"] == message


def test_bad_cwd(image):
    result, _, _ = run(*image, ["true"], cwd="/nonexistent")
    assert result["exit"] == 1 and "chdir to cwd" in result["error"]
