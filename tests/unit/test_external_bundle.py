"""runtime/bundle and seccomp.to_oci: the config.json runc and crun read, from portside's golden specs.

The golden specs (``golden/<case>.config.json``, what containers/spec builds
for real create requests) go through ``external_spec``; the result must match
the runtime-spec schema, carry no portside marker, and spell out Docker's
default profile in the spec's own terms, resolved for the container's
capabilities.
"""

from __future__ import annotations

import errno
import json
import pathlib
from typing import Any

import pytest

from portside.errors import InvalidArgument
from portside.runtime import seccomp
from portside.runtime.bundle import OCI_VERSION, external_spec
from test_runtime_spec import schema_errors

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden"
CASES = sorted(p.name.removesuffix(".config.json") for p in GOLDEN.glob("*.config.json"))
CGROUP = "portside/4f66ad9a0b2e"


def golden(case: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((GOLDEN / f"{case}.config.json").read_text())
    return doc


def allowed(profile: dict[str, Any]) -> set[str]:
    """Calls allowed whatever their arguments."""
    return {n for e in profile["syscalls"] if e["action"] == "SCMP_ACT_ALLOW" and not e.get("args")
            for n in e["names"]}


@pytest.mark.parametrize("case", CASES)
def test_golden_specs_become_standard_bundles(case: str) -> None:
    spec = golden(case)
    doc = external_spec(spec, cgroup_path=CGROUP, is_dir=lambda path: False)
    assert schema_errors(doc) == []
    assert doc["ociVersion"] == OCI_VERSION
    assert doc["linux"]["cgroupsPath"] == "/" + CGROUP
    assert not any(k.startswith("io.portside.") for k in doc.get("annotations") or {})
    assert "x-portside" not in json.dumps(doc)
    assert not any("rro" in (m.get("options") or []) for m in doc["mounts"])  # every source here is "a file"
    # everything else is the spec as portside wrote it
    for key in ("process", "root", "hostname"):
        assert doc.get(key) == spec.get(key)
    assert spec["ociVersion"] != OCI_VERSION  # the input was not touched
    unchanged = {k: v for k, v in spec["linux"].items() if k not in ("seccomp", "cgroupsPath")}
    assert {k: v for k, v in doc["linux"].items() if k not in ("seccomp", "cgroupsPath")} == unchanged


def test_default_profile_is_resolved_for_the_containers_capabilities() -> None:
    spec = golden("docker-run-rm-echo")
    assert spec["linux"]["seccomp"].get("x-portside-profile") == "default"
    profile = external_spec(spec, cgroup_path=CGROUP)["linux"]["seccomp"]
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO" and profile["defaultErrnoRet"] == errno.EPERM
    assert profile["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert set(profile) == {"defaultAction", "defaultErrnoRet", "architectures", "syscalls"}
    for entry in profile["syscalls"]:
        assert set(entry) <= {"names", "action", "errnoRet", "args"} and entry["names"]
    names = allowed(profile)
    assert {"read", "execve", "arch_prctl", "ptrace"} <= names  # ptrace: Docker's minKernel 4.8, resolved here
    assert not {"mount", "unshare", "setns", "reboot", "kexec_load", "clone"} & names
    assert "arm_fadvise64_64" not in names  # archMap and includes.arches resolved for amd64
    clone3 = [e for e in profile["syscalls"] if "clone3" in e["names"]]
    assert clone3 == [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS}]
    clone = [e for e in profile["syscalls"] if e["names"] == ["clone"]]
    assert clone == [{"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 0x7E020000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]


def test_sys_admin_unlocks_what_docker_keeps_behind_it() -> None:
    spec = golden("docker-run-rm-echo")
    caps = spec["process"]["capabilities"]
    for key in ("bounding", "effective", "permitted"):
        caps[key] = [*caps[key], "CAP_SYS_ADMIN"]
    profile = external_spec(spec, cgroup_path=CGROUP)["linux"]["seccomp"]
    assert {"mount", "unshare", "setns", "clone", "clone3"} <= allowed(profile)


def test_unconfined_and_custom_profiles() -> None:
    spec = golden("docker-run-rm-echo")
    del spec["linux"]["seccomp"]
    assert "seccomp" not in external_spec(spec, cgroup_path=None)["linux"]
    spec["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                     {"names": ["mount"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_CHOWN"]}}],
    }
    profile = external_spec(spec, cgroup_path=None)["linux"]["seccomp"]
    # no architectures given: the native ABI alone; the excluded entry is gone (the container holds CAP_CHOWN)
    assert profile == {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                       "syscalls": [{"names": ["chmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}
    spec["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_NOPE"}
    with pytest.raises(InvalidArgument, match="unknown action"):
        external_spec(spec, cgroup_path=None)


def test_read_only_binds_of_files_are_plain_ro() -> None:
    spec = golden("docker-run-rm-echo")
    spec["mounts"] = [{"destination": "/etc/hosts", "type": "bind", "source": "/x/hosts", "options": ["rbind", "rro"]},
                      {"destination": "/data", "type": "bind", "source": "/x/data", "options": ["rbind", "rro"]},
                      {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid"]}]
    doc = external_spec(spec, cgroup_path=None, is_dir=lambda path: path == "/x/data")
    assert [m["options"] for m in doc["mounts"]] == [["rbind", "ro"], ["rbind", "rro"], ["nosuid"]]


def test_portside_annotations_are_dropped() -> None:
    spec = golden("docker-run-rm-echo")
    spec["annotations"] = {"io.portside.init": "true", "org.example": "kept"}
    assert external_spec(spec, cgroup_path=None)["annotations"] == {"org.example": "kept"}
    spec["annotations"] = {"io.portside.init": "true"}
    assert "annotations" not in external_spec(spec, cgroup_path=None)


def test_to_oci_groups_names_and_keeps_the_unconfined_answer() -> None:
    assert seccomp.to_oci(seccomp.Profile(default_action=None), []) is None
    profile = seccomp.parse_profile(json.dumps({
        "defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                     {"names": ["close"], "action": "SCMP_ACT_ALLOW"},
                     {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]}))
    assert seccomp.to_oci(profile, []) == {
        "defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [{"names": ["read", "write", "close"], "action": "SCMP_ACT_ALLOW"},
                     {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]}]}
