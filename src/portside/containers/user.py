"""A container's user: Docker's ``--user`` and ``--group-add`` resolved against the image's /etc/passwd and /etc/group.

The rules are those of moby/sys/user ``GetExecUser`` (what runc and dockerd use):

- ``name`` or ``uid``, optionally ``:group`` or ``:gid``; a field that parses as
  a number is always an id, never looked up as a name;
- a numeric user or group with no entry is used as is; a name with no entry
  is an error (``unable to find user nosuch: no matching entries in passwd
  file``);
- without an explicit group, the gid is the user's passwd entry's, and the
  supplementary groups are the groups that list the user by name; with an
  explicit group there are none;
- no passwd file: numeric ids only. An empty user means uid 0 (root's
  entry, if there is one);
- ids must lie in 0..2^31-1.

Pure: the caller reads the two files (inside the container's root, safely) and
passes their text, or None when a file is missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from portside.errors import InvalidArgument

_MAX_ID = (1 << 31) - 1
_GO_INT = re.compile(r"[+-]?[0-9]+")  # what Go's strconv.Atoi accepts
_RANGE = f"uids and gids must be in range 0-{_MAX_ID}"


@dataclass(frozen=True)
class _PasswdEntry:
    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class _GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]


def _atoi_lenient(text: str) -> int:
    """A number field of passwd/group; like Go's parser, garbage reads as 0."""
    return int(text) if _GO_INT.fullmatch(text) and -(1 << 63) <= int(text) < (1 << 63) else 0


def _numeric(value: str) -> int | None:
    """``value`` as an id if it is a number (Go's Atoi syntax), None if it is a name; out of range is an error."""
    if not value or not _GO_INT.fullmatch(value):
        return None
    n = int(value)
    if n < 0 or n > _MAX_ID:
        raise InvalidArgument(_RANGE)
    return n


def _fields(line: str, n: int) -> list[str]:
    parts = line.split(":")
    return parts[:n] + [""] * (n - len(parts))


def _passwd(text: str) -> list[_PasswdEntry]:
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:  # unlike /etc/group, Go's passwd reader does not skip '#' lines
            continue
        name, _, uid, gid = _fields(line, 4)
        out.append(_PasswdEntry(name, _atoi_lenient(uid), _atoi_lenient(gid)))
    return out


def _groups(text: str) -> list[_GroupEntry]:
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, gid, members = _fields(line, 4)
        out.append(_GroupEntry(name, _atoi_lenient(gid), tuple(members.split(",")) if members else ()))
    return out


def resolve_user(spec_user: str, passwd_text: str | None,
                 group_text: str | None) -> tuple[int, int, tuple[int, ...]]:
    """``(uid, gid, supplementary gids)`` for a Docker ``User`` value; InvalidArgument with runc's words if not found."""
    user_arg, group_arg = _fields(spec_user, 2)
    uid_arg = _numeric(user_arg)
    gid_arg = _numeric(group_arg)

    uid = gid = 0
    matched_name = ""
    users = _passwd(passwd_text) if passwd_text is not None else []
    if user_arg == "":
        match = [u for u in users if u.uid == 0]
    elif uid_arg is not None:
        match = [u for u in users if u.uid == uid_arg]
    else:
        match = [u for u in users if u.name == user_arg]
    if match:  # the first entry wins
        matched_name, uid, gid = match[0].name, match[0].uid, match[0].gid
    elif user_arg:
        if uid_arg is None:
            raise InvalidArgument(f"unable to find user {user_arg}: no matching entries in passwd file")
        uid = uid_arg

    supplementary: tuple[int, ...] = ()
    if group_arg or matched_name:
        groups = _groups(group_text) if group_text is not None else []
        if group_arg:
            found = [g for g in groups if (g.gid == gid_arg if gid_arg is not None else g.name == group_arg)]
            if found:
                gid = found[0].gid
            elif gid_arg is None:
                raise InvalidArgument(f"unable to find group {group_arg}: no matching entries in group file")
            else:
                gid = gid_arg
        else:
            supplementary = tuple(g.gid for g in groups if matched_name in g.members)
    return uid, gid, supplementary


def additional_groups(group_add: tuple[str, ...], group_text: str | None) -> tuple[int, ...]:
    """``--group-add`` values as gids: names must exist in /etc/group, numbers need not. Request order, no repeats."""
    groups = _groups(group_text) if group_text is not None else []
    out: list[int] = []
    for name in group_add:
        number = _numeric(name)
        found = [g for g in groups if (g.gid == number if number is not None else g.name == name)]
        if found:
            gid = found[0].gid
            if gid < 0 or gid > _MAX_ID:
                raise InvalidArgument(_RANGE)
        elif number is None:
            raise InvalidArgument(f"unable to find group {name}: no matching entries in group file")
        else:
            gid = number
        if gid not in out:
            out.append(gid)
    return tuple(out)
