"""--userns-remap without root: the value's rules, /etc/subuid parsing, range allocation, mount options."""

from __future__ import annotations

import pytest

from portside.containers import spec as S
from portside.containers import userns
from portside.errors import InvalidArgument
from portside.oci import runtime_spec as rs
from portside.snapshots import idmap
from portside.snapshots.mount import Mount

USERS = {"alice": 1000, "portside": 999, "root": 0}
GROUPS = {"alice": 1000, "staff": 50, "portside": 995, "root": 0}


def _accounts(users: dict[str, int] = USERS, groups: dict[str, int] = GROUPS) -> userns.Accounts:
    def by_name(table: dict[str, int]):  # type: ignore[no-untyped-def]
        return lambda name: userns.Account(name, table[name])

    def by_id(table: dict[str, int]):  # type: ignore[no-untyped-def]
        def find(i: int) -> userns.Account:
            for name, value in table.items():
                if value == i:
                    return userns.Account(name, value)
            raise KeyError(i)
        return find

    return userns.Accounts(by_name(users), by_id(users), by_name(groups), by_id(groups))


def test_parse_subids_skips_comments_and_bad_lines() -> None:
    text = "# comment\nalice:100000:65536\n\nbad line\nbob:x:1\nzero:1:0\n1000:300000:10\n"
    assert userns.parse_subids(text) == [userns.SubRange("alice", 100000, 65536), userns.SubRange("1000", 300000, 10)]


@pytest.mark.parametrize("ranges, expected", [
    ([], 100000),
    ([("a", 100000, 65536)], 165536),
    ([("a", 165536, 65536), ("b", 100000, 65536)], 231072),    # sorted first, as dockerd
    ([("a", 500000, 10)], 100000),                              # a gap before is used
    ([("a", 150000, 10)], 150010),                              # overlapping the first candidate
    ([("a", 1, 99999)], 100000),                                # below 100000: never in the way
])
def test_next_range_start_follows_dockerd(ranges, expected) -> None:  # type: ignore[no-untyped-def]
    assert userns.next_range_start([userns.SubRange(*r) for r in ranges]) == expected


def test_mappings_are_contiguous_from_zero() -> None:
    ranges = [userns.SubRange("a", 200000, 1000), userns.SubRange("a", 100000, 65536)]
    assert userns.mappings(ranges) == (rs.IDMapping(0, 200000, 1000), rs.IDMapping(1000, 100000, 65536))


@pytest.mark.parametrize("value, user, group", [
    ("alice", "alice", "alice"),
    ("alice:staff", "alice", "staff"),
    ("alice:50", "alice", "staff"),
    ("1000", "alice", "alice"),
    ("1000:staff", "alice", "staff"),
    ("default", "portside", "portside"),
])
def test_parse_remapped_root(value: str, user: str, group: str) -> None:
    u, g = userns.parse_remapped_root(value, _accounts())
    assert (u.name, g.name if g else None) == (user, group)


@pytest.mark.parametrize("value, message", [
    ("a:b:c", 'Invalid user/group specification in --userns-remap: "a:b:c"'),
    ("nobody-here", 'Error during uid lookup for "nobody-here": user: unknown user nobody-here'),
    ("4242", "Uid 4242 has no entry in /etc/passwd"),
    ("alice:nogroup", 'Error during groupname lookup for "nogroup": group: unknown group nogroup'),
    ("alice:4242", "Gid 4242 has no entry in /etc/group"),
])
def test_parse_remapped_root_errors(value: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        userns.parse_remapped_root(value, _accounts())
    assert str(e.value) == message


def test_default_without_its_user_asks_for_creation() -> None:
    users = {k: v for k, v in USERS.items() if k != "portside"}
    assert userns.parse_remapped_root("default", _accounts(users)) == (userns.Account("portside", -1), None)


def test_load_reads_ranges_by_name_or_id(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "subuid").write_text("bob:500000:65536\n1000:100000:65536\n")
    (tmp_path / "subgid").write_text("staff:200000:65536\n")
    mapping = userns.load("alice:staff", accounts=_accounts(), subuid=str(tmp_path / "subuid"),
                          subgid=str(tmp_path / "subgid"))
    assert mapping is not None
    assert mapping.uids == (rs.IDMapping(0, 100000, 65536),)
    assert mapping.gids == (rs.IDMapping(0, 200000, 65536),)
    assert mapping.root == (100000, 200000)


def test_load_group_falls_back_to_the_users_ranges(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "subuid").write_text("alice:100000:65536\n")
    (tmp_path / "subgid").write_text("alice:300000:65536\n")
    mapping = userns.load("alice", accounts=_accounts(), subuid=str(tmp_path / "subuid"),
                          subgid=str(tmp_path / "subgid"))
    assert mapping is not None and mapping.gids == (rs.IDMapping(0, 300000, 65536),)


def test_load_without_ranges_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "subuid").write_text("bob:100000:65536\n")
    (tmp_path / "subgid").write_text("")
    with pytest.raises(InvalidArgument, match='No subuid ranges found for user "alice"'):
        userns.load("alice", accounts=_accounts(), subuid=str(tmp_path / "subuid"), subgid=str(tmp_path / "subgid"))


def test_root_remaps_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert userns.load("root", accounts=_accounts(), subuid=str(tmp_path / "x"), subgid=str(tmp_path / "y")) is None


def test_load_default_creates_then_reads(tmp_path) -> None:  # type: ignore[no-untyped-def]
    users = {k: v for k, v in USERS.items() if k != "portside"}
    made: list[str] = []

    def create(name: str) -> None:
        made.append(name)
        users[name] = 999
        (tmp_path / "subuid").write_text(f"{name}:100000:65536\n")
        (tmp_path / "subgid").write_text(f"{name}:100000:65536\n")

    mapping = userns.load("default", accounts=_accounts(users), subuid=str(tmp_path / "subuid"),
                          subgid=str(tmp_path / "subgid"), create_default=create)
    assert made == ["portside"]
    assert mapping is not None and mapping.user == "portside" and mapping.root == (100000, 100000)


def test_host_facts_make_user_namespaces() -> None:
    mapping = userns.IdentityMapping("a", "a", (rs.IDMapping(0, 100000, 65536),), (rs.IDMapping(0, 100000, 65536),))
    facts = mapping.host_facts(S.HostFacts())
    assert facts.uid_mappings == mapping.uids and facts.gid_mappings == mapping.gids


def test_idmapped_adds_options_to_overlay_only() -> None:
    spec = {"linux": {"uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
                      "gidMappings": [{"containerID": 0, "hostID": 200000, "size": 65536}]}}
    overlay = Mount("overlay", "overlay", ("lowerdir=/a:/b", "upperdir=/u", "workdir=/w"))
    bind = Mount("bind", "/x", ("ro",))
    out = userns.idmapped([overlay, bind], spec)
    assert out[0].options[-2:] == ("uidmap=0:100000:65536", "gidmap=0:200000:65536")
    assert out[1] == bind
    assert userns.idmapped([overlay], {"linux": {}}) == [overlay]


def test_idmap_options_round_trip() -> None:
    maps = (idmap.IDMap(0, 100000, 1000), idmap.IDMap(1000, 300000, 10))
    assert idmap.parse_maps(idmap.format_maps(maps)) == maps
    assert idmap.proc_map_text(maps) == "0 100000 1000\n1000 300000 10\n"
    with pytest.raises(ValueError):
        idmap.parse_maps("0:1")
