"""oci/runtime_spec: the spec's field names, Go's omission rules, a checked reader, the OCI JSON schema."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from portside.errors import InvalidArgument
from portside.oci import runtime_spec as rs

SCHEMA_DIR = pathlib.Path(__file__).resolve().parent / "golden" / "schema"


def schema_errors(doc: dict[str, Any]) -> list[str]:
    """Every way ``doc`` breaks the runtime-spec schema (v1.2.1, committed under golden/schema)."""
    jsonschema = pytest.importorskip("jsonschema")
    referencing = pytest.importorskip("referencing")
    from referencing.jsonschema import DRAFT4

    resources = []
    for path in SCHEMA_DIR.glob("*.json"):
        contents = json.loads(path.read_text())
        resources.append((path.name, referencing.Resource.from_contents(contents, default_specification=DRAFT4)))
    registry = referencing.Registry().with_resources(resources)
    root = json.loads((SCHEMA_DIR / "config-schema.json").read_text())
    validator = jsonschema.Draft4Validator(root, registry=registry)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def _full_spec() -> rs.Spec:
    return rs.Spec(
        process=rs.Process(
            cwd="/srv", args=("sh", "-c", "echo hi"), env=("PATH=/bin", "A=1"), terminal=True,
            console_size=rs.Box(24, 80), user=rs.User(1000, 1000, umask=0o22, additional_gids=(1000, 10)),
            capabilities=rs.Capabilities(bounding=("CAP_KILL",), effective=("CAP_KILL",), permitted=("CAP_KILL",)),
            rlimits=(rs.Rlimit("RLIMIT_NOFILE", 1024, 512),), no_new_privileges=True,
            apparmor_profile="docker-default", oom_score_adj=0),
        root=rs.Root("/var/lib/portside/snapshots/active/x/fs", readonly=True),
        hostname="abc",
        mounts=(rs.Mount("/proc", "proc", "proc", ("nosuid", "noexec", "nodev")),),
        linux=rs.Linux(
            namespaces=(rs.Namespace("pid"), rs.Namespace("network", "/proc/1/ns/net"), rs.Namespace("user")),
            uid_mappings=(rs.IDMapping(0, 100000, 65536),), gid_mappings=(rs.IDMapping(0, 100000, 65536),),
            sysctl={"net.ipv4.ip_unprivileged_port_start": "0"},
            resources=rs.Resources(
                devices=(rs.DeviceCgroup(False, access="rwm"), rs.DeviceCgroup(True, "c", 1, 3, "rwm")),
                memory=rs.Memory(limit=1 << 27, swap=1 << 28, disable_oom_killer=False),
                cpu=rs.CPU(quota=50000, period=100000, cpus="0-1"), pids=rs.Pids(100),
                block_io=rs.BlockIO(weight=500, throttle_read_bps_device=(rs.ThrottleDevice(8, 0, 1024),))),
            cgroups_path="/portside/x",
            devices=(rs.Device("/dev/fuse", "c", 10, 229, 0o666, 0, 0),),
            seccomp={"defaultAction": "SCMP_ACT_ALLOW"},
            rootfs_propagation="slave",
            masked_paths=("/proc/kcore",), readonly_paths=("/proc/sys",)),
        annotations={"io.portside.init": "true"})


def test_field_names_are_the_specs() -> None:
    doc = _full_spec().to_json()
    assert list(doc) == ["ociVersion", "process", "root", "hostname", "mounts", "annotations", "linux"]
    assert doc["ociVersion"] == rs.OCI_VERSION
    assert doc["process"] == {
        "terminal": True, "consoleSize": {"height": 24, "width": 80},
        "user": {"uid": 1000, "gid": 1000, "umask": 18, "additionalGids": [1000, 10]},
        "args": ["sh", "-c", "echo hi"], "env": ["PATH=/bin", "A=1"], "cwd": "/srv",
        "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 512}],
        "noNewPrivileges": True, "apparmorProfile": "docker-default", "oomScoreAdj": 0}
    linux = doc["linux"]
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": 100000, "size": 65536}]
    assert linux["namespaces"] == [{"type": "pid"}, {"type": "network", "path": "/proc/1/ns/net"}, {"type": "user"}]
    assert linux["resources"] == {
        "devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
        "memory": {"limit": 134217728, "swap": 268435456, "disableOOMKiller": False},
        "cpu": {"quota": 50000, "period": 100000, "cpus": "0-1"}, "pids": {"limit": 100},
        "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1024}]}}
    assert linux["devices"] == [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438,
                                 "uid": 0, "gid": 0}]
    assert linux["cgroupsPath"] == "/portside/x" and linux["rootfsPropagation"] == "slave"
    assert linux["maskedPaths"] == ["/proc/kcore"] and linux["readonlyPaths"] == ["/proc/sys"]


@pytest.mark.parametrize("spec, expected", [
    # omitempty: false, "" and empty lists go; a required field stays even when zero
    (rs.Spec(rs.Process(cwd="/"), rs.Root("/r")),
     {"ociVersion": rs.OCI_VERSION, "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/"}, "root": {"path": "/r"}}),
    # a pointer is written when set, even to zero or false
    (rs.Spec(rs.Process(cwd="/", oom_score_adj=0), rs.Root("/r"),
             linux=rs.Linux(resources=rs.Resources(memory=rs.Memory(disable_oom_killer=False), block_io=rs.BlockIO()))),
     {"ociVersion": rs.OCI_VERSION, "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/", "oomScoreAdj": 0},
      "root": {"path": "/r"}, "linux": {"resources": {"memory": {"disableOOMKiller": False}, "blockIO": {}}}}),
    # no capability at all: the object stays, its empty lists go (runc: "no capabilities")
    (rs.Spec(rs.Process(cwd="/", capabilities=rs.Capabilities()), rs.Root("/r"), linux=rs.Linux()),
     {"ociVersion": rs.OCI_VERSION, "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/", "capabilities": {}},
      "root": {"path": "/r"}, "linux": {}}),
])
def test_omission_follows_go(spec: rs.Spec, expected: dict[str, Any]) -> None:
    assert spec.to_json() == expected


def test_round_trip() -> None:
    spec = _full_spec()
    assert rs.Spec.from_json(json.loads(json.dumps(spec.to_json()))) == spec


def test_full_spec_matches_the_schema() -> None:
    assert schema_errors(_full_spec().to_json()) == []


def test_schema_validator_is_not_blind() -> None:
    doc = _full_spec().to_json()
    doc["process"]["user"]["uid"] = -1
    doc["linux"]["namespaces"].append({"type": "nosuch"})
    doc["process"]["rlimits"][0]["type"] = "nofile"
    errors = schema_errors(doc)
    assert len(errors) >= 3, errors


def test_default_seccomp_marker_fails_closed() -> None:
    spec = rs.Spec(rs.Process(cwd="/"), rs.Root("/r"), linux=rs.Linux(seccomp=rs.SECCOMP_DEFAULT))
    doc = spec.to_json()
    assert doc["linux"]["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    assert schema_errors(doc) == []
    back = rs.Spec.from_json(doc)
    assert back.linux is not None and rs.is_default_seccomp(back.linux.seccomp)
    assert not rs.is_default_seccomp({"defaultAction": "SCMP_ACT_ALLOW"}) and not rs.is_default_seccomp(None)


def test_unknown_fields_are_ignored() -> None:
    doc = _full_spec().to_json()
    doc["hooks"] = {"prestart": []}
    doc["process"]["selinuxLabel"] = "x"
    assert rs.Spec.from_json(doc) == _full_spec()


def _broken(change: Any) -> dict[str, Any]:
    doc = _full_spec().to_json()
    change(doc)
    return doc


@pytest.mark.parametrize("doc, message", [
    ([], "invalid runtime spec: not an object"),
    (_broken(lambda d: d.update(ociVersion="2.0.0")), "unsupported ociVersion '2.0.0'"),
    (_broken(lambda d: d.pop("ociVersion")), "unsupported ociVersion None"),
    (_broken(lambda d: d.pop("root")), "root must be an object"),
    (_broken(lambda d: d["process"].pop("cwd")), "process.cwd is required"),
    (_broken(lambda d: d["process"].update(args="sh")), "process.args must be an array"),
    (_broken(lambda d: d["process"]["user"].update(uid="0")), "process.user.uid must be an integer"),
    (_broken(lambda d: d["process"]["user"].update(uid=True)), "process.user.uid must be an integer"),
    (_broken(lambda d: d["process"].update(terminal=1)), "process.terminal must be a boolean"),
    (_broken(lambda d: d["mounts"].append({"type": "bind"})), "mounts[1].destination is required"),
    (_broken(lambda d: d["linux"]["namespaces"].append("pid")), "linux.namespaces[3] must be an object"),
    (_broken(lambda d: d["linux"].update(sysctl={"a": 1})), "linux.sysctl values must be strings"),
    (_broken(lambda d: d["linux"].update(seccomp=[])), "linux.seccomp must be an object"),
    (_broken(lambda d: d["linux"]["resources"]["pids"].pop("limit")), "linux.resources.pids.limit is required"),
])
def test_from_json_checks_types(doc: Any, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("[", r"\[").replace("]", r"\]")):
        rs.Spec.from_json(doc)
