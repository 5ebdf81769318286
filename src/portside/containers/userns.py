"""``--userns-remap``: which host ids a remapped container's ids are, and what it must own.

The daemon's ``--userns-remap`` value names a user (and maybe a group) whose
subordinate ranges in /etc/subuid and /etc/subgid become every remapped
container's uid_map and gid_map, container id 0 first (dockerd's rules,
``parseRemappedRoot``). ``default`` means the ``portside`` user, created
with a range of its own when missing (dockerd: ``dockremap``).

A remapped container's root is host uid ``<start>``: the files it must be
able to write are handed to that id when made (its writable layer's root, its
/etc/hosts, hostname and resolv.conf, the daemon's volumes); the image layers
are mounted idmapped (snapshots/idmap.py); bind mounts stay as they are.
"""

from __future__ import annotations

import dataclasses
import grp
import json
import logging
import os
import pwd
import re
import subprocess
from dataclasses import dataclass
from typing import Any, Callable

from portside.containers.spec import HostFacts
from portside.errors import InvalidArgument
from portside.oci import runtime_spec as rs
from portside.snapshots import idmap
from portside.snapshots.mount import Mount

log = logging.getLogger(__name__)

DEFAULT_SPECIFIER = "default"
DEFAULT_USER = "portside"        # dockerd's "dockremap"
RANGE_LENGTH = 65536             # a new subordinate range, as dockerd and shadow's useradd give
RANGE_FIRST = 100000             # where dockerd starts looking (shadow's SUB_UID_MIN)
SUBUID = "/etc/subuid"
SUBGID = "/etc/subgid"


@dataclass(frozen=True)
class SubRange:
    """One line of /etc/subuid or /etc/subgid: ``owner:start:count``."""

    owner: str
    start: int
    count: int


@dataclass(frozen=True)
class IdentityMapping:
    """The remapped containers' ids: the daemon-wide uid_map and gid_map."""

    user: str
    group: str
    uids: tuple[rs.IDMapping, ...]
    gids: tuple[rs.IDMapping, ...]

    @property
    def root(self) -> tuple[int, int]:
        """The host uid and gid of a remapped container's root."""
        return to_host(self.uids, 0), to_host(self.gids, 0)

    def host_facts(self, facts: HostFacts) -> HostFacts:
        """The host's facts with these mappings: build_spec then makes user namespaces."""
        return dataclasses.replace(facts, uid_mappings=self.uids, gid_mappings=self.gids)


def to_host(maps: tuple[rs.IDMapping, ...], container_id: int) -> int:
    for m in maps:
        if m.container_id <= container_id < m.container_id + m.size:
            return m.host_id + container_id - m.container_id
    raise InvalidArgument(f"container id {container_id} is not mapped")


# -- /etc/subuid, /etc/subgid ----------------------------------------------------------------

def parse_subids(text: str) -> list[SubRange]:
    """The ranges of a subuid/subgid file, in file order; comments and malformed lines skipped (as shadow)."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) != 3 or not fields[1].isdigit() or not fields[2].isdigit() or int(fields[2]) == 0:
            continue
        out.append(SubRange(fields[0], int(fields[1]), int(fields[2])))
    return out


def _read_subids(path: str) -> list[SubRange]:
    try:
        with open(path) as f:
            return parse_subids(f.read())
    except FileNotFoundError:
        return []


def next_range_start(ranges: list[SubRange], length: int = RANGE_LENGTH) -> int:
    """Where a new range of ``length`` ids goes: from 100000, past every range it would overlap (dockerd)."""
    start = RANGE_FIRST
    for r in sorted(ranges, key=lambda r: r.start):
        if start < r.start + r.count and r.start < start + length:
            start = r.start + r.count
    return start


def mappings(ranges: list[SubRange]) -> tuple[rs.IDMapping, ...]:
    """Container ids from 0, contiguous across the owner's ranges in file order."""
    out = []
    next_id = 0
    for r in ranges:
        out.append(rs.IDMapping(next_id, r.start, r.count))
        next_id += r.count
    return tuple(out)


# -- the --userns-remap value -------------------------------------------------------------------

@dataclass(frozen=True)
class Account:
    name: str
    id: int


def _user_by_name(name: str) -> Account:
    entry = pwd.getpwnam(name)
    return Account(entry.pw_name, entry.pw_uid)


def _user_by_id(uid: int) -> Account:
    entry = pwd.getpwuid(uid)
    return Account(entry.pw_name, entry.pw_uid)


def _group_by_name(name: str) -> Account:
    entry = grp.getgrnam(name)
    return Account(entry.gr_name, entry.gr_gid)


def _group_by_id(gid: int) -> Account:
    entry = grp.getgrgid(gid)
    return Account(entry.gr_name, entry.gr_gid)


@dataclass(frozen=True)
class Accounts:
    """The host's passwd and group lookups (a seam for tests)."""

    user_by_name: Callable[[str], Account] = _user_by_name
    user_by_id: Callable[[int], Account] = _user_by_id
    group_by_name: Callable[[str], Account] = _group_by_name
    group_by_id: Callable[[int], Account] = _group_by_id


def _int32(text: str) -> int | None:
    """Go's strconv.ParseInt(text, 10, 32), None where it fails."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        return None
    value = int(text)
    return value if -(1 << 31) <= value < 1 << 31 else None


def parse_remapped_root(value: str, accounts: Accounts = Accounts()) -> tuple[Account, Account | None]:
    """``user``, ``user:group``, ``uid``, ``uid:gid`` → the user and group (dockerd's parseRemappedRoot).

    Returns no group for ``default`` when its user does not exist yet (the
    caller creates both). A name must exist; a lone name is also the group's.
    """
    parts = value.split(":")
    if len(parts) > 2:
        raise InvalidArgument(f"Invalid user/group specification in --userns-remap: {_q(value)}")
    group: Account | None = None
    uid = _int32(parts[0])
    if uid is not None:
        try:
            user = accounts.user_by_id(uid)
        except KeyError:
            raise InvalidArgument(f"Uid {uid} has no entry in /etc/passwd") from None
        if len(parts) == 1:
            try:
                group = accounts.group_by_id(uid)
            except KeyError:
                raise InvalidArgument(f"Gid {uid} has no entry in /etc/group") from None
    else:
        name = DEFAULT_USER if parts[0] == DEFAULT_SPECIFIER else parts[0]
        try:
            user = accounts.user_by_name(name)
        except KeyError:
            if parts[0] != DEFAULT_SPECIFIER:
                raise InvalidArgument(f"Error during uid lookup for {_q(name)}: user: unknown user {name}") from None
            return Account(DEFAULT_USER, -1), None
        if len(parts) == 1:
            try:
                group = accounts.group_by_name(name)
            except KeyError:
                raise InvalidArgument(f"Error during gid lookup for {_q(name)}: group: unknown group {name}") from None
    if len(parts) == 2:
        gid = _int32(parts[1])
        try:
            group = accounts.group_by_id(gid) if gid is not None else accounts.group_by_name(parts[1])
        except KeyError:
            if gid is not None:
                raise InvalidArgument(f"Gid {gid} has no entry in /etc/group") from None
            raise InvalidArgument(f"Error during groupname lookup for {_q(parts[1])}: "
                                  f"group: unknown group {parts[1]}") from None
    return user, group


def _q(text: str) -> str:
    """Go's %q for the names in dockerd's messages."""
    return json.dumps(text, ensure_ascii=False)


def ranges_for(owner: Account, ranges: list[SubRange]) -> list[SubRange]:
    """An owner's ranges: a line may name it or give its numeric id (shadow accepts both)."""
    return [r for r in ranges if r.owner in (owner.name, str(owner.id))]


def load(value: str, *, accounts: Accounts = Accounts(), subuid: str = SUBUID, subgid: str = SUBGID,
         create_default: Callable[[str], None] | None = None) -> IdentityMapping | None:
    """The daemon's mapping for ``--userns-remap value``; None for root, which remaps nothing (dockerd)."""
    user, group = parse_remapped_root(value, accounts)
    if group is None:  # "default" and no portside user yet
        (create_default or create_user)(DEFAULT_USER)
        user, group = parse_remapped_root(value, accounts)
        assert group is not None
    elif value.split(":")[0] == DEFAULT_SPECIFIER:
        (create_default or create_user)(DEFAULT_USER)  # it exists; give it ranges if it has none
    if user.name == "root":
        log.warning("User namespaces: root cannot be remapped with itself; user namespaces are OFF")
        return None
    uid_ranges = ranges_for(user, _read_subids(subuid))
    if not uid_ranges:
        raise InvalidArgument(f"Can't create ID mappings: No subuid ranges found for user {_q(user.name)}")
    all_gid_ranges = _read_subids(subgid)
    gid_ranges = ranges_for(group, all_gid_ranges) or ranges_for(user, all_gid_ranges)
    if not gid_ranges:
        raise InvalidArgument(f"Can't create ID mappings: No subgid ranges found for group {_q(group.name)}")
    log.info("User namespaces: ID ranges will be mapped to subuid/subgid ranges of: %s", user.name)
    return IdentityMapping(user.name, group.name, mappings(uid_ranges), mappings(gid_ranges))


def create_user(name: str) -> None:
    """The remap user and its group, when missing (a system account, no login, no home), and a range
    of 65536 subordinate ids in each file when it has none there."""
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        shell = "/usr/sbin/nologin" if os.path.exists("/usr/sbin/nologin") else "/bin/false"
        _run(["useradd", "--system", "--user-group", "--no-create-home", "--shell", shell, name],
             f"error adding user {_q(name)}")
        uid = pwd.getpwnam(name).pw_uid
    for path, flag in ((SUBUID, "--add-subuids"), (SUBGID, "--add-subgids")):
        ranges = _read_subids(path)
        if ranges_for(Account(name, uid), ranges):
            continue
        start = next_range_start(ranges)
        _run(["usermod", flag, f"{start}-{start + RANGE_LENGTH - 1}", name],
             f"unable to add subordinate ids to user {_q(name)}")


def _run(argv: list[str], what: str) -> None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise InvalidArgument(f"{what}: {argv[0]} not found") from None
    if out.returncode != 0:
        raise InvalidArgument(f"{what}: {argv[0]} exited {out.returncode}: {(out.stderr or out.stdout).strip()}")


# -- a remapped container -----------------------------------------------------------------------

def is_remapped(spec: dict[str, Any]) -> bool:
    """The bundle is the truth: a container made while the daemon remapped stays remapped."""
    return bool((spec.get("linux") or {}).get("uidMappings"))


def idmapped(mounts: list[Mount], spec: dict[str, Any]) -> list[Mount]:
    """The root filesystem's mounts with the container's mapping, for idmapped layers."""
    linux = spec.get("linux") or {}
    uids = tuple(idmap.IDMap(m["containerID"], m["hostID"], m["size"]) for m in linux.get("uidMappings") or [])
    gids = tuple(idmap.IDMap(m["containerID"], m["hostID"], m["size"]) for m in linux.get("gidMappings") or [])
    if not uids:
        return mounts
    extra = ("uidmap=" + idmap.format_maps(uids), "gidmap=" + idmap.format_maps(gids))
    return [Mount(m.type, m.source, m.options + extra) if m.type == "overlay" else m for m in mounts]


def hand_over(paths: list[str], spec: dict[str, Any]) -> None:
    """Give the container's own files (its writable layer's root, its /etc files) to its root."""
    ids = bundle_ids(spec)
    if ids is None or not ids.uids:
        return
    uid, gid = to_host(ids.uids, 0), to_host(ids.gids, 0)
    for path in paths:
        os.chown(path, uid, gid, follow_symlinks=False)


def check_idmap_support(path: str, mapping: IdentityMapping) -> None:
    """Refuse at daemon start, not at the first container's, when the layers cannot be idmapped."""
    release = os.uname().release.split("-")[0].split(".")
    major, minor = (int(release[0]), int(release[1])) if len(release) > 1 and release[1].isdigit() else (0, 0)
    why = None
    if (major, minor) < (5, 19):
        why = f"Linux {os.uname().release} is older than 5.19"
    else:
        uids = tuple(idmap.IDMap(m.container_id, m.host_id, m.size) for m in mapping.uids)
        gids = tuple(idmap.IDMap(m.container_id, m.host_id, m.size) for m in mapping.gids)
        why = idmap.supported(path, uids, gids)
    if why:
        raise InvalidArgument(f"--userns-remap needs idmapped mounts of image layers (overlayfs on Linux 5.19 "
                              f"or later, on a filesystem that supports them): {path}: {why}")


# -- a remapped container's files, seen from the host -------------------------------------------

OVERFLOW_ID = 65534  # the kernel's overflowuid/overflowgid: what a container sees of an unmapped id


@dataclass(frozen=True)
class BundleIds:
    """A remapped container's uid and gid mappings, as its bundle's config.json holds them.

    What the daemon reads of its files (commit, cp, export) is owned by host
    ids; what it writes for the container must be too.
    """

    uids: tuple[rs.IDMapping, ...]
    gids: tuple[rs.IDMapping, ...]

    def to_container(self, uid: int, gid: int) -> tuple[int, int]:
        """Host ids → the ids the container sees; an id outside the mappings as the overflow id."""
        return _back(self.uids, uid), _back(self.gids, gid)

    def to_host(self, uid: int, gid: int) -> tuple[int, int]:
        """The container's ids → host ids; ValueError for an id the container cannot have (dockerd's message)."""
        return _forth(self.uids, uid), _forth(self.gids, gid)


def _back(maps: tuple[rs.IDMapping, ...], host_id: int) -> int:
    for m in maps:
        if m.host_id <= host_id < m.host_id + m.size:
            return m.container_id + host_id - m.host_id
    return OVERFLOW_ID


def _forth(maps: tuple[rs.IDMapping, ...], container_id: int) -> int:
    for m in maps:
        if m.container_id <= container_id < m.container_id + m.size:
            return m.host_id + container_id - m.container_id
    raise ValueError(f"Container ID {container_id} cannot be mapped to a host ID")


def bundle_ids(spec: dict[str, Any]) -> BundleIds | None:
    """The mappings of a bundle's spec; None for a container without a user namespace of its own making."""
    linux = spec.get("linux") or {}
    uids = tuple(rs.IDMapping(m["containerID"], m["hostID"], m["size"]) for m in linux.get("uidMappings") or [])
    gids = tuple(rs.IDMapping(m["containerID"], m["hostID"], m["size"]) for m in linux.get("gidMappings") or [])
    if not uids and not gids:
        return None
    return BundleIds(uids, gids)


def bundle_ids_of(directory: str) -> BundleIds | None:
    """``bundle_ids`` of the container whose bundle is ``directory`` (None when it has no config.json)."""
    try:
        with open(os.path.join(directory, "config.json")) as f:
            return bundle_ids(json.load(f))
    except (OSError, ValueError):
        return None
