"""The pure parts of volumes: the local driver's options, --volumes-from in the create request, ls/prune output."""

from __future__ import annotations

import errno

import pytest

from portside.cli.commands import volumes as cli
from portside.containers import spec as S
from portside.errors import InvalidArgument, NotImplementedYet
from portside.volumes import options

# -- the local driver's options ---------------------------------------------------


@pytest.mark.parametrize("opts, message", [
    ({"foo": "bar"}, 'invalid option: "foo"'),
    ({"type": "tmpfs"}, 'missing required option: "device"'),
    ({"device": "/x"}, 'missing required option: "type"'),
    ({"size": "1m"}, "quota size requested but no quota support"),
    ({"size": "lots"}, "invalid size: 'lots'"),
])
def test_options_refused_as_moby_does(opts: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        options.validate(opts)
    assert str(e.value) == message


def test_options_accepted() -> None:
    for opts in ({}, {"size": "0"}, {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"},
                 {"type": "none", "device": "/srv", "o": "bind"}):
        options.validate(opts)
    assert options.needs_mount({"type": "tmpfs", "device": "tmpfs"})
    assert not options.needs_mount({}) and not options.needs_mount({"size": "0"})


def test_o_splits_into_flags_and_data() -> None:
    assert options.parse("") == (0, "")
    assert options.parse("bind") == (options.MS_BIND, "")
    assert options.parse("size=1m,uid=1000") == (0, "size=1m,uid=1000")
    assert options.parse("rbind,ro,nosuid,mode=755") == (
        options.MS_BIND | options.MS_REC | options.MS_RDONLY | options.MS_NOSUID, "mode=755")
    assert options.parse("ro,rw,exec") == (0, "")          # later words clear what earlier ones set
    assert options.parse("defaults,noatime") == (options.MS_NOATIME, "defaults")  # no flag: data, as in moby


def test_mount_errors_read_as_moby_s() -> None:
    e = options.MountError("mount", "/nonexistent", "/v/_data", options.MS_BIND, "", errno.ENOENT)
    assert str(e) == "mount /nonexistent:/v/_data, flags: 0x1000: no such file or directory"
    e = options.MountError("mount", "tmpfs", "/v/_data", 0, "bogus=1", errno.EINVAL)
    assert str(e) == "mount tmpfs:/v/_data, data: bogus=1: invalid argument"
    e = options.MountError("remount-ro", "", "/v/_data", 0x1021, "", errno.EPERM)
    assert str(e) == "remount-ro /v/_data, flags: 0x1021: operation not permitted"


def test_mountinfo_paths_are_unescaped() -> None:
    assert options._unescape("/a\\040b\\011c\\134d") == "/a b\tc\\d"
    assert options._unescape("/plain") == "/plain"
    assert options._unescape("/end\\04") == "/end\\04"


# -- --volumes-from in a create request -------------------------------------------


@pytest.mark.parametrize("spec, expected", [
    ("c1", ("c1", True)), ("c1:rw", ("c1", True)), ("c1:ro", ("c1", False)), ("c1:z", ("c1", True)),
    ("c1:ro,z", ("c1", False)),
])
def test_parse_volumes_from(spec: str, expected: tuple[str, bool]) -> None:
    assert S.parse_volumes_from(spec) == expected


@pytest.mark.parametrize("spec, message", [
    ("", "volumes-from specification cannot be an empty string"),
    ("c1:shared", "invalid mode: shared"), ("c1:rslave", "invalid mode: rslave"),
    ("c1:nocopy", "invalid mode: nocopy"), ("c1:ro,rw", "invalid mode: ro,rw"), ("c1:bogus", "invalid mode: bogus"),
])
def test_parse_volumes_from_refuses(spec: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        S.parse_volumes_from(spec)
    assert str(e.value) == message


SOURCE = (
    S.MountPoint("/data", "volume", source="named", mode="z"),
    S.MountPoint("/logs", "bind", source="/srv/logs", rw=False, propagation="rslave", mode="ro"),
    S.MountPoint("/scratch", "tmpfs", data="size=1m"),
    S.MountPoint("/cache", "volume", source="a" * 64),
)


def _create(host_config: dict[str, object], image_volumes: dict[str, object] | None = None) -> S.CreateRequest:
    lookups = []

    def lookup(ref: str) -> tuple[S.MountPoint, ...]:
        lookups.append(ref)
        return SOURCE

    create = S.parse_create({"Image": "busybox", "Volumes": image_volumes, "HostConfig": host_config},
                            volumes_from=lookup)
    assert lookups == [v.partition(":")[0] for v in host_config.get("VolumesFrom", [])]  # type: ignore[attr-defined]
    return create


def test_volumes_from_copies_every_mount_point() -> None:
    points = {p.destination: p for p in _create({"VolumesFrom": ["src"]}).mount_points}
    assert points["/data"] == S.MountPoint("/data", "volume", source="named")   # the mode words stay behind
    assert points["/logs"] == S.MountPoint("/logs", "bind", source="/srv/logs", rw=False, propagation="rslave")
    assert points["/scratch"] == S.MountPoint("/scratch", "tmpfs", data="size=1m")   # a tmpfs of its own
    assert points["/cache"].source == "a" * 64


def test_volumes_from_ro_makes_everything_read_only() -> None:
    points = {p.destination: p for p in _create({"VolumesFrom": ["src:ro"]}).mount_points}
    assert not any(p.rw for p in points.values())
    assert points["/scratch"].data == "ro,size=1m"


def test_binds_mounts_and_tmpfs_win_over_volumes_from() -> None:
    create = _create({"VolumesFrom": ["src"], "Binds": ["mine:/data:ro"], "Tmpfs": {"/logs": ""},
                      "Mounts": [{"Type": "bind", "Source": "/srv", "Target": "/cache"}]})
    points = {p.destination: p for p in create.mount_points}
    assert points["/data"] == S.MountPoint("/data", "volume", source="mine", rw=False, mode="ro")
    assert points["/logs"].type == "tmpfs"
    assert points["/cache"].type == "bind" and points["/cache"].source == "/srv"


def test_container_mount_points_name_anonymous_volumes_and_skip_hostconfig_tmpfs() -> None:
    create = _create({"Binds": ["/srv:/srv"], "Tmpfs": {"/run": ""},
                      "Mounts": [{"Type": "volume", "Target": "/m"}, {"Type": "tmpfs", "Target": "/t"}]},
                     image_volumes={"/img": {}, "/srv": {}})
    config = S.merge_image_config(create.config, {"Cmd": ["sh"]})
    points = S.container_mount_points(create, config, "c" * 64)
    assert [(p.destination, p.type) for p in points] == [
        ("/srv", "bind"), ("/m", "volume"), ("/t", "tmpfs"), ("/img", "volume")]
    by_dest = {p.destination: p for p in points}
    assert by_dest["/m"].source == S.anonymous_volume_name("c" * 64, "/m") and by_dest["/m"].mode == "z"
    assert by_dest["/img"].source == S.anonymous_volume_name("c" * 64, "/img") and by_dest["/img"].mode == ""


def test_volumes_from_needs_a_lookup() -> None:
    with pytest.raises(NotImplementedYet):
        S.parse_create({"Image": "busybox", "HostConfig": {"VolumesFrom": ["src"]}})
    with pytest.raises(InvalidArgument, match="invalid mode: shared"):  # checked before any lookup
        S.parse_create({"Image": "busybox", "HostConfig": {"VolumesFrom": ["src:shared"]}})


# -- volume ls and prune output ---------------------------------------------------


def test_ls_sorts_naturally_and_formats() -> None:
    vols = [{"Name": n, "Driver": "local", "Scope": "local", "Labels": {"b": "2", "a": ""} if n == "v10" else None,
             "Mountpoint": f"/v/{n}/_data"} for n in ("v10", "v9", "a")]
    assert cli.format_volumes(vols) == "DRIVER    VOLUME NAME\nlocal     a\nlocal     v9\nlocal     v10\n"
    assert cli.format_volumes(vols, quiet=True) == "a\nv9\nv10\n"
    assert cli.format_volumes(vols, fmt='{{.Name}}:{{.Labels}}:{{.Label "b"}}:{{.Links}}') == (
        "a:::N/A\nv9:::N/A\nv10:a=,b=2:2:N/A\n")
    assert cli.format_volumes(vols, fmt="raw", quiet=True) == "name: a\nname: v9\nname: v10\n"
    used = [{**vols[0], "UsageData": {"Size": 2048, "RefCount": 3}}]
    assert cli.format_volumes(used, fmt="{{.Links}} {{.Size}}") == "3 2.048kB\n"


def test_prune_report() -> None:
    assert cli.format_prune({"VolumesDeleted": [], "SpaceReclaimed": 0}) == "Total reclaimed space: 0B\n"
    assert cli.format_prune({"VolumesDeleted": ["a", "b"], "SpaceReclaimed": 1500}) == (
        "Deleted Volumes:\na\nb\n\nTotal reclaimed space: 1.5kB\n")


def test_driver_opts_and_labels() -> None:
    assert cli.parse_driver_opts(["type=tmpfs", "o=size=1m,uid=0", "flag", "type=none"]) == {
        "type": "none", "o": "size=1m,uid=0", "flag": ""}
    assert cli.parse_labels(["a=1", "b", "c=x=y"]) == {"a": "1", "b": "", "c": "x=y"}
