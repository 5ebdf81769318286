"""The volume commands and --volumes-from end to end: the ``portside`` CLI against real engines.

Each test that takes ``vol_engine`` runs twice, against a portside daemon and
against the private dockerd 20.10 of test_cli_containers.py (the reference),
with the same expectations. The dockerd engine lives for the whole module,
so ``vol_engine`` empties it of containers and volumes before and after each
test. dockerd speaks API 1.41, where a prune takes named volumes too; the
tests that depend on the newer behaviour say so and run on portside only.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

from helpers import mounts_under
from test_cli_containers import Engine, dockerd_engine, engine, err, out  # noqa: F401 (fixtures)

HEX64 = re.compile(r"^[0-9a-f]{64}$")
RFC3339_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$")


def _empty(e: Engine) -> None:
    for c in json.loads(e.api.request("GET", "/containers/json?all=1")[2] or b"[]"):
        e.api.request("DELETE", f"/containers/{c['Id']}?force=1")
    for v in json.loads(e.api.request("GET", "/volumes")[2] or b"{}").get("Volumes") or []:
        e.api.request("DELETE", f"/volumes/{v['Name']}?force=1")


@pytest.fixture
def vol_engine(engine: Engine) -> Iterator[Engine]:
    """An engine with busybox, and no container and no volume before and after the test."""
    engine.require("GET", "/volumes", "volumes")
    _empty(engine)
    yield engine
    _empty(engine)


def inspect_volume(e: Engine, name: str) -> dict[str, Any]:
    doc: list[dict[str, Any]] = json.loads(out(e.cli("volume", "inspect", name)))
    return doc[0]


def volume_root(e: Engine) -> str:
    """The engine's volumes directory (where Mountpoints live), learnt from a throwaway volume."""
    e.cli("volume", "create", "probe")
    root = os.path.dirname(os.path.dirname(inspect_volume(e, "probe")["Mountpoint"]))
    e.cli("volume", "rm", "probe")
    return root


# ---------------------------------------------------------------------------
# create, inspect, ls, rm


def test_create_inspect_ls_rm(vol_engine: Engine) -> None:
    e = vol_engine
    assert out(e.cli("volume", "create", "v1")) == "v1\n"
    assert out(e.cli("volume", "create", "--label", "b=2", "--label", "a", "v2")) == "v2\n"
    anonymous = out(e.cli("volume", "create")).strip()
    assert HEX64.match(anonymous)
    assert out(e.cli("volume", "create", "v1")) == "v1\n"   # create is idempotent

    v2 = inspect_volume(e, "v2")
    assert set(v2) == {"CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"}
    assert (v2["Name"], v2["Driver"], v2["Labels"], v2["Options"], v2["Scope"]) == (
        "v2", "local", {"a": "", "b": "2"}, None, "local")
    assert v2["Mountpoint"].endswith("/volumes/v2/_data") and os.path.isdir(v2["Mountpoint"])
    assert RFC3339_SECONDS.match(v2["CreatedAt"]), v2["CreatedAt"]
    assert inspect_volume(e, "v1")["Labels"] is None
    assert out(e.cli("volume", "inspect", "-f", "{{.Name}} {{json .Labels}} {{.Scope}}", "v2", "v1")) == (
        'v2 {"a":"","b":"2"} local\nv1 null local\n')

    assert out(e.cli("volume", "ls")) == (
        "DRIVER    VOLUME NAME\n" f"local     {anonymous}\n" "local     v1\n" "local     v2\n")
    assert out(e.cli("volume", "ls", "-q")) == f"{anonymous}\nv1\nv2\n"
    assert out(e.cli("volume", "list", "--format", "{{.Name}}|{{.Labels}}|{{.Label \"b\"}}|{{.Links}}|{{.Size}}",
                     "--filter", "name=v")) == "v1|||N/A|N/A\nv2|a=,b=2|2|N/A|N/A\n"
    row = json.loads(out(e.cli("volume", "ls", "--format", "json", "-f", "name=v2")))
    assert row == {"Availability": "N/A", "Driver": "local", "Group": "N/A", "Labels": "a=,b=2", "Links": "N/A",
                   "Mountpoint": v2["Mountpoint"], "Name": "v2", "Scope": "local", "Size": "N/A", "Status": "N/A"}
    assert out(e.cli("volume", "ls", "--format", "table {{.Name}}\t{{.Labels}}", "-f", "label=b")) == (
        "VOLUME NAME   LABELS\nv2            a=,b=2\n")

    assert out(e.cli("volume", "rm", "v1", anonymous)) == f"v1\n{anonymous}\n"
    r = e.cli("volume", "rm", "nosuch", "v2", check=False)
    assert (r.returncode, out(r), err(r)) == (1, "v2\n", "Error response from daemon: get nosuch: no such volume\n")
    r = e.cli("volume", "rm", "-f", "nosuch")
    assert (out(r), err(r)) == ("nosuch\n", "")
    r = e.cli("volume", "inspect", "nosuch", check=False)
    assert (r.returncode, out(r), err(r)) == (1, "[]\n", "Error response from daemon: get nosuch: no such volume\n")
    assert out(e.cli("volume", "ls", "-q")) == ""


def test_create_refuses_what_the_local_driver_refuses(vol_engine: Engine) -> None:
    e = vol_engine
    cases = {
        ("-o", "foo=bar", "bad1"): 'create bad1: invalid option: "foo"',
        ("-o", "type=tmpfs", "bad2"): 'create bad2: missing required option: "device"',
        ("-o", "size=1m", "bad3"): "create bad3: quota size requested but no quota support",
        ("-d", "nosuch", "bad4"): 'create bad4: error looking up volume plugin nosuch: plugin "nosuch" not found',
        ("a/b",): 'create a/b: "a/b" includes invalid characters for a local volume name, only '
                  '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use '
                  "absolute path",
    }
    for args, message in cases.items():
        r = e.cli("volume", "create", *args, check=False)
        assert (r.returncode, out(r), err(r)) == (1, "", f"Error response from daemon: {message}\n"), args
    r = e.cli("volume", "create", "--label", "=x", "bad5", check=False)
    assert (r.returncode, err(r)) == (125, "invalid argument \"=x\" for \"--label\" flag: invalid label '=x': "
                                           "empty name\nSee 'portside volume create --help'.\n")
    r = e.cli("volume", "create", "--name", "a", "b", check=False)
    assert (r.returncode, err(r)) == (1, "conflicting options: cannot specify a volume-name through both --name "
                                         "and as a positional arg\n")
    assert out(e.cli("volume", "ls", "-q")) == ""   # nothing half-made


def test_ls_filters(vol_engine: Engine) -> None:
    e = vol_engine
    for name in ("alpha", "beta", "beta10", "beta9"):
        e.cli("volume", "create", "--label", f"group={name[:4]}", name)
    e.cli("volume", "create", "--label", "only", "gamma")
    e.cli("create", "--name", "user", "-v", "alpha:/a", "busybox")

    def names(*filters: str) -> list[str]:
        args = [a for f in filters for a in ("--filter", f)]
        return out(e.cli("volume", "ls", "-q", *args)).split()

    assert names() == ["alpha", "beta", "beta9", "beta10", "gamma"]   # natural order
    assert names("dangling=true") == ["beta", "beta9", "beta10", "gamma"]
    assert names("dangling=false") == ["alpha"]
    assert names("name=beta") == ["beta", "beta9", "beta10"]
    assert names("name=^b.*0$") == ["beta10"]                          # a regular expression
    assert names("label=group") == ["alpha", "beta", "beta9", "beta10"]
    assert names("label=group=beta") == ["beta", "beta9", "beta10"]
    assert names("label=only", "label=group") == []                      # every label must match
    assert names("driver=local", "name=gamma") == ["gamma"]
    assert names("driver=nosuch") == []
    r = e.cli("volume", "ls", "-f", "foo=bar", check=False)
    assert r.returncode == 1 and err(r).lower() == "error response from daemon: invalid filter 'foo'\n"
    r = e.cli("volume", "ls", "-f", "dangling=maybe", check=False)
    assert r.returncode == 1 and "invalid filter 'dangling=" in err(r).lower()


def test_a_volume_in_use_cannot_be_removed(vol_engine: Engine) -> None:
    e = vol_engine
    cid = out(e.cli("create", "-v", "busy:/data", "busybox", "true")).strip()
    for args in (("busy",), ("-f", "busy")):
        r = e.cli("volume", "rm", *args, check=False)
        assert (r.returncode, out(r), err(r)) == (
            1, "", f"Error response from daemon: remove busy: volume is in use - [{cid}]\n")
    e.cli("rm", cid)
    assert out(e.cli("volume", "rm", "busy")) == "busy\n"


# ---------------------------------------------------------------------------
# prune


def test_prune_removes_unused_anonymous_volumes(vol_engine: Engine) -> None:
    e = vol_engine
    e.cli("run", "--name", "writer", "-v", "/data", "busybox", "sh", "-c", "printf hello > /data/f")
    anonymous = out(e.cli("volume", "ls", "-q")).strip()
    assert HEX64.match(anonymous)
    r = e.cli("volume", "prune", input=b"n\n")
    assert out(r) == ("WARNING! This will remove anonymous local volumes not used by at least one container.\n"
                      "Are you sure you want to continue? [y/N] ")
    assert out(e.cli("volume", "prune", "-f")) == "Total reclaimed space: 0B\n"   # still used by writer
    e.cli("rm", "writer")
    assert out(e.cli("volume", "prune", "-f", "--filter", "label=nosuch")) == "Total reclaimed space: 0B\n"
    assert out(e.cli("volume", "prune", "-f")) == f"Deleted Volumes:\n{anonymous}\n\nTotal reclaimed space: 5B\n"
    assert out(e.cli("volume", "ls", "-q")) == ""
    r = e.cli("volume", "prune", "-f", "--filter", "foo=bar", check=False)
    assert r.returncode == 1 and err(r).lower() == "error response from daemon: invalid filter 'foo'\n"


def test_prune_keeps_named_volumes_unless_all(daemon: Any, busybox_image: str) -> None:
    """API 1.42 and later (portside; dockerd 20.10 prunes named volumes too, as portside does for old clients)."""
    e = Engine("portside", daemon.socket, env=dict(daemon.env))
    e.cli("volume", "create", "--label", "keep=1", "named")
    e.cli("volume", "create", "other")
    e.cli("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "withopts")
    e.cli("create", "-v", "/anon", "busybox")
    anonymous = out(e.cli("volume", "ls", "-q", "-f", "dangling=false")).strip()
    assert out(e.cli("volume", "prune", "-f")) == "Total reclaimed space: 0B\n"
    r = e.cli("volume", "prune", "-a", input=b"y\n")
    assert out(r).startswith("WARNING! This will remove all local volumes not used by at least one container.\n"
                             "Are you sure you want to continue? [y/N] Deleted Volumes:\n")
    assert sorted(out(r).split("\n")[2:4]) == ["named", "other"]
    assert set(out(e.cli("volume", "ls", "-q")).split()) == {anonymous, "withopts"}  # options: never pruned
    r = e.cli("volume", "prune", "-a", "--filter", "all=1", check=False)
    assert (r.returncode, err(r)) == (1, "conflicting options: cannot specify both --all and --filter all=1\n")
    e.cli("volume", "create", "old")
    status, _, body = e.api.request("POST", "/v1.41/volumes/prune")  # an old client: named ones go too
    assert status == 200 and json.loads(body)["VolumesDeleted"] == ["old"]


# ---------------------------------------------------------------------------
# the local driver's options


def test_tmpfs_volume_is_mounted_while_used(vol_engine: Engine) -> None:
    e = vol_engine
    e.cli("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m,uid=1000", "scratch")
    assert inspect_volume(e, "scratch")["Options"] == {"device": "tmpfs", "o": "size=1m,uid=1000", "type": "tmpfs"}
    r = e.cli("run", "--rm", "-v", "scratch:/t", "busybox", "sh", "-c",
              "grep ' /t ' /proc/mounts; echo x > /t/f; ls /t")
    assert out(r) == "tmpfs /t tmpfs rw,relatime,size=1024k,uid=1000 0 0\nf\n"
    mountpoint = inspect_volume(e, "scratch")["Mountpoint"]
    assert mounts_under(mountpoint) == []                          # unmounted when its container ended
    assert out(e.cli("run", "--rm", "-v", "scratch:/t", "busybox", "ls", "/t")) == ""   # a new tmpfs


def test_bind_volume_shows_a_host_directory(vol_engine: Engine, tmp_path: Any) -> None:
    e = vol_engine
    (tmp_path / "in").write_text("from host\n")
    e.cli("volume", "create", "-o", "type=none", "-o", "o=bind", "-o", f"device={tmp_path}", "hostdir")
    r = e.cli("run", "--rm", "-v", "hostdir:/b", "busybox", "sh", "-c", "cat /b/in; echo out > /b/out")
    assert out(r) == "from host\n"
    assert (tmp_path / "out").read_text() == "out\n"
    e.cli("volume", "create", "-o", "type=none", "-o", "o=bind,ro", "-o", f"device={tmp_path}", "hostro")
    r = e.cli("run", "--rm", "-v", "hostro:/b", "busybox", "touch", "/b/x", check=False)
    assert r.returncode == 1 and "Read-only file system" in err(r)
    assert out(e.cli("volume", "rm", "hostdir", "hostro")) == "hostdir\nhostro\n"
    assert sorted(os.listdir(tmp_path)) == ["in", "out"]   # removing the volume leaves the host's files

    e.cli("volume", "create", "-o", "type=none", "-o", "o=bind", "-o", f"device={tmp_path}/nonexistent", "broken")
    mountpoint = inspect_volume(e, "broken")["Mountpoint"]
    r = e.cli("run", "--rm", "-v", "broken:/b", "busybox", "true", check=False)
    assert r.returncode == 127   # "no such file or directory", as docker run counts it
    assert (f"Error response from daemon: error while mounting volume '{mountpoint}': failed to mount local "
            f"volume: mount {tmp_path}/nonexistent:{mountpoint}, flags: 0x1000: no such file or directory"
            ) in err(r)


# ---------------------------------------------------------------------------
# --volumes-from and inspect's Mounts


def _normalized(mounts: list[dict[str, Any]], root: str) -> list[dict[str, Any]]:
    """Mounts by destination, the engine's volume directory and anonymous names replaced by placeholders."""
    out_ = []
    for m in sorted(mounts, key=lambda m: m["Destination"]):
        m = dict(m)
        if m["Type"] == "volume":
            if HEX64.match(m["Name"]):
                m["Name"] = "<anonymous>"
            assert m.pop("Source").startswith(root + "/")
        out_.append(m)
    return out_


def test_inspect_mounts_and_volumes_from(vol_engine: Engine, busybox_tar: str, tmp_path: Any) -> None:
    e = vol_engine
    e.cli("import", "--change", "VOLUME /anon", busybox_tar, "withvol:1")
    host = str(tmp_path)
    e.cli("create", "--name", "src", "-v", "named:/named", "-v", f"{host}:/bind:ro", "-v", "v2:/b:rw",
          "--mount", "type=volume,dst=/mvol", "--mount", f"type=bind,src={host},dst=/mbind",
          "--tmpfs", "/tmpfs", "withvol:1", "true")
    root = volume_root(e)
    mounts = json.loads(out(e.cli("inspect", "-f", "{{json .Mounts}}", "src")))
    volume = {"Driver": "local", "Propagation": ""}
    assert _normalized(mounts, root) == [
        {"Type": "volume", "Name": "<anonymous>", "Destination": "/anon", **volume, "Mode": "", "RW": True},
        {"Type": "volume", "Name": "v2", "Destination": "/b", **volume, "Mode": "rw", "RW": True},
        {"Type": "bind", "Source": host, "Destination": "/bind", "Mode": "ro", "RW": False, "Propagation": "rprivate"},
        {"Type": "bind", "Source": host, "Destination": "/mbind", "Mode": "", "RW": True, "Propagation": "rprivate"},
        {"Type": "volume", "Name": "<anonymous>", "Destination": "/mvol", **volume, "Mode": "z", "RW": True},
        {"Type": "volume", "Name": "named", "Destination": "/named", **volume, "Mode": "z", "RW": True},
    ]

    # a copy of each, read-only with :ro, the mode words left behind; -v wins at its destination
    anonymous = {m["Name"] for m in mounts if m["Type"] == "volume" and HEX64.match(m["Name"])}
    e.cli("create", "--name", "copy", "--volumes-from", "src:ro", "-v", "other:/named", "busybox", "true")
    copied = _normalized(json.loads(out(e.cli("inspect", "-f", "{{json .Mounts}}", "copy"))), root)
    assert [(m["Destination"], m.get("Name"), m["Mode"], m["RW"]) for m in copied] == [
        ("/anon", "<anonymous>", "", False), ("/b", "v2", "", False), ("/bind", None, "", False),
        ("/mbind", None, "", False), ("/mvol", "<anonymous>", "", False), ("/named", "other", "z", True)]
    copied_raw = json.loads(out(e.cli("inspect", "-f", "{{json .Mounts}}", "copy")))
    assert {m["Name"] for m in copied_raw if HEX64.match(m.get("Name", ""))} == anonymous  # the same volumes
    assert json.loads(out(e.cli("inspect", "-f", "{{json .HostConfig.VolumesFrom}}", "copy"))) == ["src:ro"]

    # the data is shared; :ro is read-only, the default keeps the source's access
    e.cli("run", "--rm", "--volumes-from", "src", "busybox", "sh", "-c", "echo shared > /named/f; echo a > /anon/f")
    assert out(e.cli("run", "--rm", "-v", "named:/n", "busybox", "cat", "/n/f")) == "shared\n"
    r = e.cli("run", "--rm", "--volumes-from", "src:ro", "busybox", "sh", "-c", "cat /anon/f; touch /anon/g",
              check=False)
    assert (r.returncode, out(r)) == (1, "a\n") and "Read-only file system" in err(r)
    r = e.cli("run", "--rm", "--volumes-from", "src", "busybox", "touch", "/bind/x", check=False)
    assert r.returncode == 1 and "Read-only file system" in err(r)
    r = e.cli("run", "--rm", "--volumes-from", "src", "busybox", "sh", "-c", "grep -c ' /tmpfs ' /proc/mounts",
              check=False)
    assert out(r) == "0\n"   # HostConfig.Tmpfs is no mount point: not copied

    # The copy keeps the volumes in use after their source is gone. dockerd takes no reference for a
    # copied mount point whose Source is known (registerMountPoints looks a volume up only when it is
    # not), so once the source is removed it lets the copy's volumes be removed under it: not copied.
    e.cli("rm", "src")
    copy_id = out(e.cli("inspect", "-f", "{{.Id}}", "copy")).strip()
    if e.name == "portside":
        for name in (*anonymous, "v2"):
            r = e.cli("volume", "rm", name, check=False)
            assert err(r) == f"Error response from daemon: remove {name}: volume is in use - [{copy_id}]\n"
    assert out(e.cli("volume", "rm", "named")) == "named\n"   # copy has "other" at /named


def test_volumes_from_errors(vol_engine: Engine) -> None:
    e = vol_engine
    e.cli("create", "--name", "src", "-v", "/data", "busybox", "true")
    for spec, message in (("nosuch", "No such container: nosuch"), ("src:shared", "invalid mode: shared"),
                          ("src:nocopy", "invalid mode: nocopy"), ("src:xx", "invalid mode: xx"),
                          ("src:ro,rw", "invalid mode: ro,rw")):
        r = e.cli("create", "--volumes-from", spec, "busybox", check=False)
        assert (r.returncode, err(r)) == (1, f"Error response from daemon: {message}\n"), spec
    assert out(e.cli("ps", "-aq")).count("\n") == 1   # nothing was created


def test_system_df_verbose_lists_volumes(vol_engine: Engine) -> None:
    e = vol_engine
    e.cli("run", "--name", "writer", "-v", "data:/d", "busybox", "sh", "-c", "printf 1234567890 > /d/f")
    e.cli("volume", "create", "idle")
    e.cli("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "mounted")  # not counted, as dockerd
    text = out(e.cli("system", "df", "-v"))
    section = text[text.index("Local Volumes space usage:"):text.index("Build cache usage:")]
    rows = sorted(line.split() for line in section.splitlines()[3:] if line.strip())
    assert section.splitlines()[2].split() == ["VOLUME", "NAME", "LINKS", "SIZE"]
    assert rows == [["data", "1", "10B"], ["idle", "0", "0B"]]
    summary = [line.split() for line in out(e.cli("system", "df")).splitlines() if line.startswith("Local")]
    assert summary == [["Local", "Volumes", "2", "1", "10B", "0B", "(0%)"]]
