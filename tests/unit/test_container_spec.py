"""containers/spec and containers/user: Docker's create request → config.json, rule by rule and whole (golden files).

Golden files: ``tests/unit/golden/<case>.request.json`` is the body a client
sends to ``POST /containers/create`` (reconstructed from docker/cli's
opts.go and docker-py's types/containers.py); ``<case>.config.json`` is the
spec portside builds from it. After a deliberate change, regenerate them with

    PORTSIDE_REGEN_GOLDEN=1 .venv/bin/python -m pytest -q tests/unit/test_container_spec.py

and read the diff before committing it.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Any

import pytest

from portside.containers import spec as S
from portside.containers.user import additional_groups, resolve_user
from portside.errors import InvalidArgument, NotImplementedYet
from portside.oci import runtime_spec as rs
from test_runtime_spec import schema_errors

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden"
CID = "4f66ad9a0b2e5f5c5a1e6c3d2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a0918"
BUSYBOX = {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]}
PASSWD = "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nwww-data:x:33:33::/var/www:/bin/false\n"
GROUP = "root:x:0:\ndaemon:x:1:\ntty:x:5:\nwheel:x:10:root\nwww-data:x:33:\nstaff:x:50:www-data,daemon\n"
ETC = S.EtcFiles(hosts=f"/var/lib/portside/containers/{CID}/hosts",
                 hostname=f"/var/lib/portside/containers/{CID}/hostname",
                 resolv_conf=f"/var/lib/portside/containers/{CID}/resolv.conf")
HOST_DEVICES = {  # a small /dev for --privileged and --device
    "/dev/null": rs.Device("/dev/null", "c", 1, 3, 0o666, 0, 0),
    "/dev/fuse": rs.Device("/dev/fuse", "c", 10, 229, 0o666, 0, 0),
    "/dev/sda": rs.Device("/dev/sda", "b", 8, 0, 0o660, 0, 6),
    "/dev/snd/pcmC0D0p": rs.Device("/dev/snd/pcmC0D0p", "c", 116, 16, 0o660, 0, 29),
    "/dev/snd/timer": rs.Device("/dev/snd/timer", "c", 116, 33, 0o660, 0, 29),
}
HOST = S.HostFacts(devices=HOST_DEVICES, cpus=2)


def build(body: dict[str, Any], image: dict[str, Any] | None = None, **kw: Any) -> rs.Spec:
    args: dict[str, Any] = dict(container_id=CID, rootfs=f"/var/lib/portside/containers/{CID}/rootfs",
                                hostname_default=CID[:12], etc_files=ETC, volume_path=lambda n: f"/volumes/{n}/_data",
                                passwd=PASSWD, group=GROUP, host=HOST)
    args.update(kw)
    return S.build_spec(S.parse_create({"Image": "busybox", **body}, None), BUSYBOX if image is None else image, **args)


def mounts(spec: rs.Spec) -> dict[str, rs.Mount]:
    return {m.destination: m for m in spec.mounts}


def linux(spec: rs.Spec) -> rs.Linux:
    assert spec.linux is not None
    return spec.linux


def caps(spec: rs.Spec) -> tuple[str, ...]:
    assert spec.process.capabilities is not None
    return spec.process.capabilities.bounding


# -- golden -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", sorted(p.name.removesuffix(".request.json") for p in GOLDEN.glob("*.request.json")))
def test_golden(case: str) -> None:
    body = json.loads((GOLDEN / f"{case}.request.json").read_text())
    create = S.parse_create(body, None)
    got = S.build_spec(create, BUSYBOX, container_id=CID, rootfs=f"/var/lib/portside/containers/{CID}/rootfs",
                       hostname_default=CID[:12], etc_files=ETC, volume_path=lambda n: f"/volumes/{n}/_data",
                       passwd=PASSWD, group=GROUP, host=HOST).to_json()
    assert schema_errors(got) == []
    path = GOLDEN / f"{case}.config.json"
    if os.environ.get("PORTSIDE_REGEN_GOLDEN"):
        path.write_text(json.dumps(got, indent=2) + "\n")
    assert got == json.loads(path.read_text())
    assert rs.Spec.from_json(got).to_json() == got


# -- command, environment, working directory ----------------------------------------------------------------------

@pytest.mark.parametrize("request_fields, image, args", [
    ({"Cmd": ["echo", "hi"]}, {"Cmd": ["sh"]}, ("echo", "hi")),
    ({}, {"Cmd": ["sh"]}, ("sh",)),
    ({}, {"Entrypoint": ["/init"], "Cmd": ["-v"]}, ("/init", "-v")),
    ({"Cmd": ["x"]}, {"Entrypoint": ["/init"], "Cmd": ["-v"]}, ("/init", "x")),
    # --entrypoint resets the image's Cmd
    ({"Entrypoint": ["top"]}, {"Entrypoint": ["/init"], "Cmd": ["-v"]}, ("top",)),
    ({"Entrypoint": ["top"], "Cmd": ["-b"]}, {"Cmd": ["sh"]}, ("top", "-b")),
    # --entrypoint "": no entrypoint, the request's Cmd (the image's is not taken back)
    ({"Entrypoint": [""], "Cmd": ["ls"]}, {"Entrypoint": ["/init"], "Cmd": ["-v"]}, ("ls",)),
    # an explicit [] keeps the image's entrypoint out but takes its Cmd
    ({"Entrypoint": []}, {"Entrypoint": ["/init"], "Cmd": ["-v"]}, ("-v",)),
    # old API clients send strings
    ({"Cmd": "date"}, {}, ("date",)),
])
def test_entrypoint_and_cmd(request_fields: dict[str, Any], image: dict[str, Any], args: tuple[str, ...]) -> None:
    assert build(request_fields, image).process.args == args


@pytest.mark.parametrize("request_fields, image", [({}, {}), ({"Entrypoint": [""]}, {"Cmd": ["sh"]})])
def test_no_command(request_fields: dict[str, Any], image: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument, match="^no command specified$"):
        build(request_fields, image)


@pytest.mark.parametrize("request_fields, image_env, env", [
    ({}, [], ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", f"HOSTNAME={CID[:12]}"]),
    ({"Tty": True}, [], ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                         f"HOSTNAME={CID[:12]}", "TERM=xterm"]),
    ({"Env": ["A=1", "PATH=/x"], "Hostname": "h"}, ["PATH=/img", "B=2", "A=0"], ["PATH=/x", "HOSTNAME=h", "A=1", "B=2"]),
    ({}, ["PATH=/img", "B=2"], ["PATH=/img", f"HOSTNAME={CID[:12]}", "B=2"]),
    # a bare name unsets
    ({"Env": ["HOSTNAME"]}, [], ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]),
    ({"Env": ["TERM=vt100"], "Tty": True}, [], ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                                f"HOSTNAME={CID[:12]}", "TERM=vt100"]),
])
def test_env(request_fields: dict[str, Any], image_env: list[str], env: list[str]) -> None:
    assert list(build({"Cmd": ["true"], **request_fields}, {"Env": image_env}).process.env) == env


@pytest.mark.parametrize("request_dir, image_dir, cwd", [("", "", "/"), ("", "/app", "/app"), ("/srv", "/app", "/srv")])
def test_working_dir(request_dir: str, image_dir: str, cwd: str) -> None:
    assert build({"WorkingDir": request_dir}, {**BUSYBOX, "WorkingDir": image_dir}).process.cwd == cwd


def test_hostname_and_domainname() -> None:
    spec = build({"Hostname": "web", "Domainname": "example.com"})
    assert spec.hostname == "web"
    assert linux(spec).sysctl is not None and linux(spec).sysctl["kernel.domainname"] == "example.com"
    assert build({}).hostname == CID[:12]
    spec = build({"HostConfig": {"UTSMode": "host"}})
    assert spec.hostname == "" and "uts" not in [n.type for n in linux(spec).namespaces]


# -- users ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec_user, expected", [
    ("", (0, 0, (10,))),
    ("root", (0, 0, (10,))),
    ("0", (0, 0, (10,))),
    ("www-data", (33, 33, (50,))),
    ("daemon", (1, 1, (50,))),
    ("33", (33, 33, (50,))),
    ("1000", (1000, 0, ())),
    ("1000:1000", (1000, 1000, ())),
    ("www-data:staff", (33, 50, ())),
    ("daemon:5", (1, 5, ())),
    ("0:wheel", (0, 10, ())),
    ("+5", (5, 0, ())),
    ("a:b:c".replace("a", "root").replace("b", "tty"), (0, 5, ())),
])
def test_resolve_user(spec_user: str, expected: tuple[int, int, tuple[int, ...]]) -> None:
    assert resolve_user(spec_user, PASSWD, GROUP) == expected


@pytest.mark.parametrize("spec_user, passwd, group, message", [
    ("nosuch", PASSWD, GROUP, "unable to find user nosuch: no matching entries in passwd file"),
    ("nosuch", None, None, "unable to find user nosuch: no matching entries in passwd file"),
    ("root:nosuch", PASSWD, GROUP, "unable to find group nosuch: no matching entries in group file"),
    ("-1", PASSWD, GROUP, "uids and gids must be in range 0-2147483647"),
    ("2147483648", PASSWD, GROUP, "uids and gids must be in range 0-2147483647"),
    ("0:99999999999999999999", PASSWD, GROUP, "uids and gids must be in range 0-2147483647"),
])
def test_resolve_user_errors(spec_user: str, passwd: str | None, group: str | None, message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        resolve_user(spec_user, passwd, group)
    assert str(e.value) == message


def test_resolve_user_without_files() -> None:
    assert resolve_user("1000:1000", None, None) == (1000, 1000, ())
    assert resolve_user("", None, None) == (0, 0, ())
    # garbage numbers in passwd read as 0, as Go's parser does; blank lines skipped
    assert resolve_user("odd", "\nodd:x:abc:7\n", None) == (0, 7, ())


def test_group_add() -> None:
    assert additional_groups(("staff", "4242", "wheel", "staff"), GROUP) == (50, 4242, 10)
    with pytest.raises(InvalidArgument, match="unable to find group nope: no matching entries in group file"):
        additional_groups(("nope",), GROUP)
    spec = build({"User": "www-data", "HostConfig": {"GroupAdd": ["wheel"]}})
    assert spec.process.user == rs.User(33, 33, additional_gids=(33, 50, 10))


# -- capabilities ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("add, drop, expected", [
    (None, None, S.DEFAULT_CAPABILITIES),
    (["NET_ADMIN"], None, S.DEFAULT_CAPABILITIES + ("CAP_NET_ADMIN",)),
    (["cap_net_admin"], ["chown", "CAP_KILL"], tuple(c for c in S.DEFAULT_CAPABILITIES
                                                     if c not in ("CAP_CHOWN", "CAP_KILL")) + ("CAP_NET_ADMIN",)),
    (["CAP_NET_ADMIN"], ["ALL"], ("CAP_NET_ADMIN",)),
    (None, ["all"], ()),
    (["ALL"], ["SYS_ADMIN"], tuple(c for c in S.ALL_CAPABILITIES if c != "CAP_SYS_ADMIN")),
    (["CHOWN"], None, S.DEFAULT_CAPABILITIES),  # already there: not twice
])
def test_capabilities(add: list[str] | None, drop: list[str] | None, expected: tuple[str, ...]) -> None:
    spec = build({"HostConfig": {"CapAdd": add, "CapDrop": drop}})
    assert spec.process.capabilities == rs.Capabilities(bounding=expected, effective=expected, permitted=expected)


def test_privileged_gets_every_capability() -> None:
    assert caps(build({"HostConfig": {"Privileged": True, "CapDrop": ["ALL"]}})) == S.ALL_CAPABILITIES
    narrow = S.HostFacts(capabilities=S.DEFAULT_CAPABILITIES + ("CAP_SYS_ADMIN",))
    assert caps(build({"HostConfig": {"Privileged": True}}, host=narrow)) == narrow.capabilities


@pytest.mark.parametrize("field, value, message", [
    ("CapAdd", ["NOPE"], 'invalid CapAdd: unknown capability: "CAP_NOPE"'),
    ("CapDrop", ["cap_nope"], 'invalid CapDrop: unknown capability: "CAP_NOPE"'),
])
def test_unknown_capability(field: str, value: list[str], message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        build({"HostConfig": {field: value}})
    assert str(e.value) == message


def test_capability_the_host_lacks() -> None:
    with pytest.raises(InvalidArgument, match='not available in the current environment: "CAP_BPF"'):
        build({"HostConfig": {"CapAdd": ["BPF"]}}, host=S.HostFacts(capabilities=S.DEFAULT_CAPABILITIES))


# -- privileged, masked paths, devices ------------------------------------------------------------------------------

def test_privileged() -> None:
    spec = build({"HostConfig": {"Privileged": True}})
    lx = linux(spec)
    assert lx.masked_paths == () and lx.readonly_paths == ()
    assert "ro" not in mounts(spec)["/sys"].options
    assert "ro" not in mounts(spec)["/sys/fs/cgroup"].options
    assert lx.devices == tuple(HOST_DEVICES.values())
    assert lx.resources is not None and lx.resources.devices == (rs.DeviceCgroup(True, access="rwm"),)
    assert lx.seccomp is None
    assert "cgroup" in [n.type for n in lx.namespaces]  # cgroup v2: private even when privileged


def test_unprivileged_defaults() -> None:
    lx = linux(build({}))
    assert lx.masked_paths == S.DEFAULT_MASKED_PATHS and lx.readonly_paths == S.DEFAULT_READONLY_PATHS
    assert lx.resources is not None and lx.resources.devices == S.DEFAULT_DEVICE_RULES
    assert rs.is_default_seccomp(lx.seccomp)
    assert lx.devices == ()


def test_masked_and_readonly_paths_from_the_request() -> None:
    lx = linux(build({"HostConfig": {"MaskedPaths": [], "ReadonlyPaths": ["/proc/sys"]}}))
    assert lx.masked_paths == () and lx.readonly_paths == ("/proc/sys",)
    lx = linux(build({"HostConfig": {"Privileged": True, "MaskedPaths": ["/proc/kcore"]}}))
    assert lx.masked_paths == ("/proc/kcore",)


def test_devices() -> None:
    spec = build({"HostConfig": {"Devices": [
        {"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"},
        {"PathOnHost": "/dev/snd", "PathInContainer": "/dev/sound", "CgroupPermissions": "r"}],
        "DeviceCgroupRules": ["c 42:* rmw", "a *:* r"]}})
    lx = linux(spec)
    assert [d.path for d in lx.devices] == ["/dev/fuse", "/dev/sound/pcmC0D0p", "/dev/sound/timer"]
    assert lx.resources is not None
    assert lx.resources.devices[len(S.DEFAULT_DEVICE_RULES):] == (
        rs.DeviceCgroup(True, "c", 10, 229, "rwm"), rs.DeviceCgroup(True, "c", 116, 16, "r"),
        rs.DeviceCgroup(True, "c", 116, 33, "r"), rs.DeviceCgroup(True, "c", 42, -1, "rmw"),
        rs.DeviceCgroup(True, "a", -1, -1, "r"))


@pytest.mark.parametrize("host_config, message", [
    ({"Devices": [{"PathOnHost": "/dev/nope", "PathInContainer": "/dev/nope", "CgroupPermissions": "rwm"}]},
     'error gathering device information while adding custom device "/dev/nope": no such file or directory'),
    ({"DeviceCgroupRules": ["c 1:2"]}, "invalid device cgroup rule format: 'c 1:2'"),
])
def test_device_errors(host_config: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        build({"HostConfig": host_config})
    assert str(e.value) == message


# -- mounts ---------------------------------------------------------------------------------------------------------

def test_default_mounts() -> None:
    spec = build({})
    assert [m.destination for m in spec.mounts] == [
        "/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm",
        "/etc/resolv.conf", "/etc/hostname", "/etc/hosts"]
    assert mounts(spec)["/dev/shm"].options == ("nosuid", "noexec", "nodev", "mode=1777", "size=67108864")
    assert mounts(spec)["/etc/hosts"] == rs.Mount("/etc/hosts", "bind", ETC.hosts or "", ("rbind", "rprivate"))
    assert mounts(build({"HostConfig": {"ShmSize": 1 << 20}}))["/dev/shm"].options[-1] == "size=1048576"
    assert "/etc/hosts" not in mounts(build({}, etc_files=None))


@pytest.mark.parametrize("bind, expected", [
    ("/data:/data", rs.Mount("/data", "bind", "/data", ("rbind", "rprivate"))),
    ("/data:/data:ro", rs.Mount("/data", "bind", "/data", ("rbind", "rro", "rprivate"))),
    ("/data/:/d/./x/:rw,z", rs.Mount("/d/x", "bind", "/data", ("rbind", "rprivate"))),
    ("/data:/data:ro,rslave", rs.Mount("/data", "bind", "/data", ("rbind", "rro", "rslave"))),
    ("cache:/cache", rs.Mount("/cache", "bind", "/volumes/cache/_data", ("rbind",))),
    ("cache:/cache:ro,nocopy", rs.Mount("/cache", "bind", "/volumes/cache/_data", ("rbind", "rro"))),
    ("/anon", rs.Mount("/anon", "bind", f"/volumes/{S.anonymous_volume_name(CID, '/anon')}/_data", ("rbind",))),
])
def test_binds(bind: str, expected: rs.Mount) -> None:
    assert mounts(build({"HostConfig": {"Binds": [bind]}}))[expected.destination] == expected


def test_read_only_without_recursive_support() -> None:
    spec = build({"HostConfig": {"Binds": ["/data:/data:ro"]}}, host=S.HostFacts(recursive_readonly=False))
    assert mounts(spec)["/data"].options == ("rbind", "ro", "rprivate")


@pytest.mark.parametrize("bind, message", [
    (":/x", "invalid volume specification: ':/x'"),
    ("/x:rw", "invalid volume specification: '/x:rw'"),
    ("/a:/b:ro:x", "invalid volume specification: '/a:/b:ro:x'"),
    ("/a:/b:rx", "invalid mode: rx"),
    ("/a:/b:ro,rw", "invalid mode: ro,rw"),
    ("/a:/", "invalid volume specification: '/a:/': invalid mount config for type \"bind\": "
             "invalid specification: destination can't be '/'"),
    ("/a:b", "invalid volume specification: '/a:b': invalid mount config for type \"bind\": "
             "invalid mount path: 'b' mount path must be absolute"),
])
def test_bind_errors(bind: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        S.parse_create({"Image": "busybox", "HostConfig": {"Binds": [bind]}})
    assert str(e.value) == message


@pytest.mark.parametrize("mount, expected", [
    ({"Type": "bind", "Source": "/src", "Target": "/dst"}, rs.Mount("/dst", "bind", "/src", ("rbind", "rprivate"))),
    ({"Type": "bind", "Source": "/src", "Target": "/dst", "ReadOnly": True,
      "BindOptions": {"Propagation": "rshared", "NonRecursive": True}},
     rs.Mount("/dst", "bind", "/src", ("bind", "rro", "rshared"))),
    ({"Type": "bind", "Source": "/src", "Target": "/dst", "ReadOnly": True, "BindOptions": {"ReadOnlyNonRecursive": True}},
     rs.Mount("/dst", "bind", "/src", ("rbind", "ro", "rprivate"))),
    ({"Type": "volume", "Source": "vol", "Target": "/dst", "ReadOnly": True},
     rs.Mount("/dst", "bind", "/volumes/vol/_data", ("rbind", "rro"))),
    ({"Type": "tmpfs", "Target": "/dst", "TmpfsOptions": {"SizeBytes": 64 << 20, "Mode": 0o1777,
                                                          "Options": [["exec"]]}},
     rs.Mount("/dst", "tmpfs", "tmpfs", ("nosuid", "nodev", "rprivate", "mode=1777", "size=64m", "exec"))),
    ({"Type": "tmpfs", "Target": "/dst", "ReadOnly": True},
     rs.Mount("/dst", "tmpfs", "tmpfs", ("noexec", "nosuid", "nodev", "rprivate", "ro"))),
])
def test_mounts_api(mount: dict[str, Any], expected: rs.Mount) -> None:
    spec = build({"HostConfig": {"Mounts": [mount]}})
    assert mounts(spec)[expected.destination] == expected
    if expected.options[-1] == "rshared":
        assert linux(spec).rootfs_propagation == "shared"


@pytest.mark.parametrize("mount, message", [
    ({"Type": "bind", "Target": "/x"}, 'invalid mount config for type "bind": field Source must not be empty'),
    ({"Type": "bind", "Source": "rel", "Target": "/x"},
     "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"),
    ({"Type": "bind", "Source": "/s"}, 'invalid mount config for type "bind": field Target must not be empty'),
    ({"Type": "bind", "Source": "/s", "Target": "/"},
     "invalid mount config for type \"bind\": invalid specification: destination can't be '/'"),
    ({"Type": "bind", "Source": "/s", "Target": "/x", "BindOptions": {"Propagation": "bogus"}},
     'invalid mount config for type "bind": invalid propagation mode: bogus'),
    ({"Type": "volume", "Target": "/x", "BindOptions": {}},
     'invalid mount config for type "volume": field BindOptions must not be specified'),
    ({"Type": "tmpfs", "Source": "x", "Target": "/x"}, 'invalid mount config for type "tmpfs": field Source must not be specified'),
    ({"Type": "tmpfs", "Target": "/x", "TmpfsOptions": {"Options": [["uid", "0"]]}},
     'invalid mount config for type "tmpfs": invalid option: uid'),
    ({"Type": "weird", "Target": "/x"}, 'invalid mount config for type "weird": mount type unknown'),
    ({"Type": "bind", "Source": "/s", "Target": "/x", "BindOptions": {"ReadOnlyNonRecursive": True}},
     "mount options conflict: !ReadOnly && BindOptions.ReadOnlyNonRecursive"),
])
def test_mount_errors(mount: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        S.parse_create({"Image": "busybox", "HostConfig": {"Mounts": [mount]}})
    assert str(e.value) == message


def test_unsupported_mounts() -> None:
    with pytest.raises(NotImplementedYet):
        S.parse_create({"Image": "b", "HostConfig": {"Mounts": [{"Type": "image", "Source": "x", "Target": "/x"}]}})
    with pytest.raises(NotImplementedYet):
        S.parse_create({"Image": "b", "HostConfig": {"Mounts": [
            {"Type": "volume", "Source": "v", "Target": "/x", "VolumeOptions": {"Subpath": "a"}}]}})


def test_duplicate_mount_points() -> None:
    for host_config in ({"Binds": ["/a:/x", "/b:/x/"]}, {"Binds": ["/a:/x"], "Tmpfs": {"/x": ""}},
                        {"Binds": ["/a:/x"], "Mounts": [{"Type": "bind", "Source": "/b", "Target": "/x"}]}):
        with pytest.raises(InvalidArgument, match="^Duplicate mount point: /x/?$"):
            S.parse_create({"Image": "busybox", "HostConfig": host_config})


def test_tmpfs() -> None:
    spec = build({"HostConfig": {"Tmpfs": {"/run": "rw,size=1g,exec", "/tmp": ""}}})
    assert mounts(spec)["/run"] == rs.Mount("/run", "tmpfs", "tmpfs", ("nosuid", "nodev", "rprivate", "rw", "size=1g", "exec"))
    assert mounts(spec)["/tmp"] == rs.Mount("/tmp", "tmpfs", "tmpfs", ("noexec", "nosuid", "nodev", "rprivate"))
    with pytest.raises(InvalidArgument, match='invalid tmpfs option "bogus"'):
        build({"HostConfig": {"Tmpfs": {"/run": "bogus"}}})
    with pytest.raises(InvalidArgument, match="mount path must be absolute"):
        S.parse_create({"Image": "b", "HostConfig": {"Tmpfs": {"run": ""}}})


def test_mount_order_parents_first() -> None:
    spec = build({"HostConfig": {"Binds": ["/a:/x/y/z", "/b:/x", "/c:/etc"]}})
    order = [m.destination for m in spec.mounts]
    assert order.index("/x") < order.index("/x/y/z") and order.index("/etc") < order.index("/etc/hosts")


def test_user_mount_replaces_a_default() -> None:
    spec = build({"HostConfig": {"Binds": ["/host/shm:/dev/shm", "/host/resolv.conf:/etc/resolv.conf:ro"]}})
    assert mounts(spec)["/dev/shm"].type == "bind"
    assert mounts(spec)["/etc/resolv.conf"].source == "/host/resolv.conf"
    assert len([m for m in spec.mounts if m.destination == "/dev/shm"]) == 1
    spec = build({"HostConfig": {"Mounts": [{"Type": "tmpfs", "Target": "/dev"}]}})
    assert [m.destination for m in spec.mounts if m.destination.startswith("/dev")] == ["/dev"]


def test_image_volumes_are_anonymous_volumes() -> None:
    spec = build({"HostConfig": {"Binds": ["named:/data"]}}, {**BUSYBOX, "Volumes": {"/data": {}, "/logs/": {}}})
    assert mounts(spec)["/data"].source == "/volumes/named/_data"
    assert mounts(spec)["/logs"].source == f"/volumes/{S.anonymous_volume_name(CID, '/logs')}/_data"


def test_readonly_rootfs() -> None:
    spec = build({"HostConfig": {"ReadonlyRootfs": True, "Tmpfs": {"/tmp": ""}}})
    assert spec.root.readonly
    m = mounts(spec)
    assert "ro" not in m["/proc"].options and "ro" not in m["/dev/shm"].options and "ro" not in m["/tmp"].options
    assert m["/etc/hosts"].options == ("rbind", "rro", "rprivate")


def test_ipc_modes() -> None:
    assert "/dev/shm" not in mounts(build({"HostConfig": {"IpcMode": "none"}}))
    spec = build({"HostConfig": {"IpcMode": "host"}}, shm_path="/dev/shm")
    assert mounts(spec)["/dev/shm"] == rs.Mount("/dev/shm", "bind", "/dev/shm", ("rbind", "rprivate"))
    assert "ipc" not in [n.type for n in linux(spec).namespaces]
    spec = build({"HostConfig": {"IpcMode": "container:db"}}, shm_path="/run/db/shm",
                 peer_namespace=lambda ref, ns: f"/proc/42/ns/{ns}" if ref == "db" else "")
    assert rs.Namespace("ipc", "/proc/42/ns/ipc") in linux(spec).namespaces
    assert mounts(spec)["/dev/shm"].source == "/run/db/shm"


# -- namespaces ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("host_config, host, expected", [
    ({}, HOST, ["mount", "network", "uts", "pid", "ipc", "cgroup"]),
    ({}, S.HostFacts(cgroup2=False), ["mount", "network", "uts", "pid", "ipc"]),
    ({"CgroupnsMode": "host"}, HOST, ["mount", "network", "uts", "pid", "ipc"]),
    ({"CgroupnsMode": "private"}, S.HostFacts(cgroup2=False), ["mount", "network", "uts", "pid", "ipc", "cgroup"]),
    ({"NetworkMode": "host"}, HOST, ["mount", "uts", "pid", "ipc", "cgroup"]),
    ({"NetworkMode": "none"}, HOST, ["mount", "network", "uts", "pid", "ipc", "cgroup"]),
    ({"PidMode": "host", "IpcMode": "host", "UTSMode": "host"}, HOST, ["mount", "network", "cgroup"]),
    ({}, S.HostFacts(uid_mappings=(rs.IDMapping(0, 100000, 65536),), gid_mappings=(rs.IDMapping(0, 100000, 65536),)),
     ["mount", "network", "uts", "pid", "ipc", "user", "cgroup"]),
    ({"UsernsMode": "host"}, S.HostFacts(uid_mappings=(rs.IDMapping(0, 100000, 65536),)),
     ["mount", "network", "uts", "pid", "ipc", "cgroup"]),
])
def test_namespaces(host_config: dict[str, Any], host: S.HostFacts, expected: list[str]) -> None:
    assert [n.type for n in linux(build({"HostConfig": host_config}, host=host)).namespaces] == expected


def test_user_namespace_mappings() -> None:
    mapping = (rs.IDMapping(0, 100000, 65536),)
    lx = linux(build({}, host=S.HostFacts(uid_mappings=mapping, gid_mappings=mapping)))
    assert lx.uid_mappings == mapping and lx.gid_mappings == mapping
    assert lx.sysctl is not None and "net.ipv4.ping_group_range" not in lx.sysctl
    with pytest.raises(InvalidArgument, match="privileged mode is incompatible with user namespaces"):
        build({"HostConfig": {"Privileged": True}}, host=S.HostFacts(uid_mappings=mapping, gid_mappings=mapping))


def test_join_another_containers_namespaces() -> None:
    spec = build({"HostConfig": {"NetworkMode": "container:web", "PidMode": "container:web"}},
                 peer_namespace=lambda ref, ns: f"/proc/7/ns/{ns}")
    lx = linux(spec)
    assert rs.Namespace("network", "/proc/7/ns/net") in lx.namespaces
    assert rs.Namespace("pid", "/proc/7/ns/pid") in lx.namespaces
    assert lx.sysctl is None  # no network sysctls in a namespace that is not ours
    with pytest.raises(NotImplementedYet):
        build({"HostConfig": {"NetworkMode": "container:web"}})


# -- resources, limits, security ------------------------------------------------------------------------------------

def test_resources() -> None:
    lx = linux(build({"HostConfig": {
        "Memory": 128 << 20, "MemoryReservation": 64 << 20, "MemorySwappiness": 10, "OomKillDisable": True,
        "NanoCpus": 1_500_000_000, "CpuShares": 512, "CpusetCpus": "0", "PidsLimit": 100, "BlkioWeight": 300,
        "BlkioDeviceReadBps": [{"Path": "/dev/sda", "Rate": 1048576}]}}))
    r = lx.resources
    assert r is not None
    assert r.memory == rs.Memory(limit=128 << 20, reservation=64 << 20, swap=256 << 20, swappiness=10,
                                 disable_oom_killer=True)
    assert r.cpu == rs.CPU(shares=512, quota=150000, period=100000, cpus="0")
    assert r.pids == rs.Pids(100)
    assert r.block_io == rs.BlockIO(weight=300, throttle_read_bps_device=(rs.ThrottleDevice(8, 0, 1048576),))


@pytest.mark.parametrize("pids, expected", [(None, None), (0, None), (-1, None), (5, rs.Pids(5))])
def test_pids_limit(pids: int | None, expected: rs.Pids | None) -> None:
    r = linux(build({"HostConfig": {"PidsLimit": pids}})).resources
    assert r is not None and r.pids == expected


@pytest.mark.parametrize("host_config, message", [
    ({"Memory": 1024}, "Minimum memory limit allowed is 6MB"),
    ({"Memory": 64 << 20, "MemorySwap": 32 << 20}, "Minimum memoryswap limit should be larger than memory limit, see usage"),
    ({"MemorySwap": 32 << 20}, "You should always set the Memory limit when using Memoryswap limit, see usage"),
    ({"MemorySwappiness": 101}, "Invalid value: 101, valid memory swappiness range is 0-100"),
    ({"NanoCpus": 1, "CpuPeriod": 1000}, "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
    ({"CpuPeriod": 10}, "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"),
    ({"CpuQuota": 10}, "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
    ({"BlkioWeight": 5}, "Range of blkio weight is from 10 to 1000"),
    ({"CpuShares": -1}, "invalid CPU shares (-1): value must be a positive integer"),
    ({"OomScoreAdj": 1001}, "Invalid value 1001, range for oom score adj is [-1000, 1000]"),
    ({"ShmSize": -1}, "SHM size can not be less than 0"),
    ({"IpcMode": "bogus"}, "invalid IPC mode: bogus"),
    ({"PidMode": "container:"}, "invalid PID mode: container:"),
    ({"UTSMode": "private"}, "invalid UTS mode: private"),
    ({"CgroupnsMode": "x"}, "invalid cgroup namespace mode: x"),
    ({"RestartPolicy": {"Name": "sometimes"}}, "invalid restart policy: unknown policy 'sometimes'; use one of "
                                              "'no', 'always', 'on-failure', or 'unless-stopped'"),
    ({"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}},
     "invalid restart policy: maximum retry count can only be used with 'on-failure'"),
    ({"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": -1}},
     "invalid restart policy: maximum retry count cannot be negative"),
    ({"AutoRemove": True, "RestartPolicy": {"Name": "always"}}, "can't create 'AutoRemove' container with restart policy"),
    ({"NetworkMode": "container:x", "Dns": ["1.1.1.1"]}, "conflicting options: dns and the network mode"),
    ({"NetworkMode": "container:x", "ExtraHosts": ["a:1.2.3.4"]},
     "conflicting options: custom host-to-IP mapping and the network mode"),
    ({"NetworkMode": "container:x", "PortBindings": {"80/tcp": None}},
     "conflicting options: port publishing and the container type network mode"),
    ({"NetworkMode": "container:"}, "invalid network mode: invalid container format container:<name|id>"),
    ({"ExtraHosts": ["nocolon"]}, 'bad format for add-host: "nocolon"'),
    ({"ExtraHosts": ["a:999.1.1.1"]}, 'invalid IP address in add-host: "999.1.1.1"'),
    ({"PortBindings": {"70000/tcp": []}}, 'invalid port specification: "70000/tcp"'),
    ({"PortBindings": {"80/tcp": [{"HostPort": "x"}]}}, 'invalid port specification: "x"'),
    ({"Isolation": "hyperv"}, "invalid isolation (hyperv): linux only supports 'default'"),
    ({"IOMaximumBandwidth": 1}, "invalid option: QoS maximum bandwidth configuration is not supported on linux"),
    ({"Annotations": {"": "x"}}, "invalid Annotations: the empty string is not permitted as an annotation key"),
    ({"SecurityOpt": ["nonsense"]}, 'invalid --security-opt 1: "nonsense"'),
    ({"SecurityOpt": ["systempaths=unconfined"]}, 'invalid --security-opt 2: "systempaths=unconfined"'),
    ({"SecurityOpt": ["no-new-privileges=maybe"]}, 'invalid --security-opt 2: "no-new-privileges=maybe"'),
    ({"Privileged": "yes"}, "invalid JSON: json: cannot unmarshal string into Go struct field HostConfig.Privileged "
                            "of type bool"),
    ({"ConsoleSize": [1]}, "invalid JSON: json: cannot unmarshal array into Go struct field HostConfig.ConsoleSize "
                           "of type [2]uint"),
])
def test_host_config_errors(host_config: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        S.parse_create({"Image": "busybox", "HostConfig": host_config})
    assert str(e.value) == message


@pytest.mark.parametrize("body, message", [
    ({"Hostname": "h", "HostConfig": {"NetworkMode": "container:x"}}, "conflicting options: hostname and the network mode"),
    ({"Hostname": "h", "HostConfig": {"UTSMode": "host"}}, "conflicting options: hostname and the UTS mode"),
    ({"Hostname": "h" * 65}, f'hostname "{"h" * 65}" is too long (maximum 64 bytes)'),
    ({"WorkingDir": "srv"}, "the working directory 'srv' is invalid, it needs to be an absolute path"),
    ({"Env": ["=x"]}, "invalid environment variable: =x"),
    ({"StopSignal": "SIGNOPE"}, "Invalid signal: SIGNOPE"),
    ({"Healthcheck": {"Interval": 10}}, "Interval in Healthcheck cannot be less than 1ms"),
    ({"Cmd": [1]}, "invalid JSON: json: cannot unmarshal array into Go struct field Config.Cmd of type []string"),
    ({"Tty": "true"}, "invalid JSON: json: cannot unmarshal string into Go struct field Config.Tty of type bool"),
])
def test_config_errors(body: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        S.parse_create({"Image": "busybox", **body})
    assert str(e.value) == message


def test_decoding_follows_go() -> None:
    create = S.parse_create({"image": "busybox", "cmd": ["x"], "hostconfig": {"privileged": True}, "Unknown": 1}, "n")
    assert create.image == "busybox" and create.config.cmd == ("x",) and create.host_config.privileged
    assert create.name == "n" and create.host_config.network_mode == "bridge"


def test_security_opt() -> None:
    spec = build({"HostConfig": {"SecurityOpt": ["no-new-privileges", "label=disable", "apparmor=custom",
                                                 "seccomp=unconfined"]}})
    assert spec.process.no_new_privileges and linux(spec).seccomp is None
    assert spec.process.apparmor_profile == ""  # AppArmor not in use on this host
    apparmor = S.HostFacts(apparmor_profile="docker-default")
    assert build({"HostConfig": {"SecurityOpt": ["apparmor=custom"]}}, host=apparmor).process.apparmor_profile == "custom"
    assert build({}, host=apparmor).process.apparmor_profile == "docker-default"
    assert build({"HostConfig": {"Privileged": True}}, host=apparmor).process.apparmor_profile == "unconfined"
    assert not build({"HostConfig": {"SecurityOpt": ["no-new-privileges:false"]}},
                     host=S.HostFacts(no_new_privileges=True)).process.no_new_privileges
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO"}]}
    spec = build({"HostConfig": {"SecurityOpt": ["seccomp=" + json.dumps(profile)]}})
    assert linux(spec).seccomp == profile
    assert rs.is_default_seccomp(linux(build({"HostConfig": {"Privileged": True,
                                                              "SecurityOpt": ["seccomp=builtin"]}})).seccomp)
    with pytest.raises(InvalidArgument, match="^Decoding seccomp profile failed: "):
        build({"HostConfig": {"SecurityOpt": ["seccomp={nope"]}})


def test_writable_cgroups() -> None:
    assert "ro" not in mounts(build({"HostConfig": {"SecurityOpt": ["writable-cgroups"]}}))["/sys/fs/cgroup"].options
    assert "ro" in mounts(build({"HostConfig": {"Privileged": True, "SecurityOpt": ["writable-cgroups=false"]}})
                          )["/sys/fs/cgroup"].options


def test_ulimits_sysctls_oom_annotations_init() -> None:
    spec = build({"HostConfig": {
        "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 4096}, {"Name": "core", "Soft": -1, "Hard": -1}],
        "Sysctls": {"net.core.somaxconn": "1024", "net.ipv4.ip_unprivileged_port_start": "1024"},
        "OomScoreAdj": -500, "Annotations": {"a": "b"}, "Init": True}})
    assert spec.process.rlimits == (rs.Rlimit("RLIMIT_NOFILE", 4096, 1024),
                                    rs.Rlimit("RLIMIT_CORE", 2**64 - 1, 2**64 - 1))
    assert linux(spec).sysctl == {"net.ipv4.ping_group_range": "0 2147483647",
                                  "net.ipv4.ip_unprivileged_port_start": "1024", "net.core.somaxconn": "1024"}
    assert spec.process.oom_score_adj == -500
    assert spec.annotations == {"a": "b", S.INIT_ANNOTATION: "true"}
    assert spec.annotations is not None and S.INIT_ANNOTATION not in (
        build({"HostConfig": {"Init": True, "PidMode": "host"}}).annotations or {})
    assert S.INIT_ANNOTATION in (build({}, host=S.HostFacts(init=True)).annotations or {})
    with pytest.raises(InvalidArgument, match="invalid ulimit type: bogus"):
        build({"HostConfig": {"Ulimits": [{"Name": "bogus", "Soft": 1, "Hard": 1}]}})
    with pytest.raises(InvalidArgument, match="ulimit soft limit must be less than or equal to hard limit: 2 > 1"):
        build({"HostConfig": {"Ulimits": [{"Name": "nofile", "Soft": 2, "Hard": 1}]}})


def test_console_size_only_with_a_tty() -> None:
    assert build({"Tty": True, "HostConfig": {"ConsoleSize": [40, 120]}}).process.console_size == rs.Box(40, 120)
    assert build({"HostConfig": {"ConsoleSize": [40, 120]}}).process.console_size is None


def test_cgroups_path() -> None:
    assert linux(build({})).cgroups_path == f"/portside/{CID}"
    assert linux(build({"HostConfig": {"CgroupParent": "/custom"}})).cgroups_path == f"/custom/{CID}"
    systemd = S.HostFacts(cgroup_driver="systemd")
    assert linux(build({}, host=systemd)).cgroups_path == f"system.slice:portside:{CID}"
    with pytest.raises(InvalidArgument, match='should be a valid slice named as "xxx.slice"'):
        build({"HostConfig": {"CgroupParent": "custom"}}, host=systemd)


def test_host_checks() -> None:
    with pytest.raises(InvalidArgument, match="range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"):
        build({"HostConfig": {"NanoCpus": 3_000_000_000}})
    with pytest.raises(InvalidArgument, match="kernel does not support CPU real-time scheduler"):
        build({"HostConfig": {"CpuRealtimeRuntime": 1000}})


def test_merged_config() -> None:
    create = S.parse_create({"Image": "busybox", "Env": ["A=1"], "Labels": {"x": "1"}, "Tty": True})
    merged = S.merged_config(create, {**BUSYBOX, "Labels": {"y": "2"}, "WorkingDir": "/w", "User": "daemon"})
    assert merged["Cmd"] == ["sh"] and merged["Entrypoint"] is None and merged["Tty"] is True
    assert merged["Env"] == ["A=1", BUSYBOX["Env"][0]] and merged["Labels"] == {"y": "2", "x": "1"}
    assert merged["WorkingDir"] == "/w" and merged["User"] == "daemon"
