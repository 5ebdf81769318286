"""The image list's reference filter: Go's path.Match, and the names moby matches it against."""

from __future__ import annotations

import pytest

from portside.errors import InvalidArgument
from portside.images.refmatch import match, reference_matches
from portside.oci.reference import parse_docker_ref, parse_normalized

DIGEST = "sha256:" + "7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa"


# Go's own table for path.Match (src/path/match_test.go), plus a few of ours.
@pytest.mark.parametrize("pattern, name, matched", [
    ("abc", "abc", True),
    ("*", "abc", True),
    ("*c", "abc", True),
    ("a*", "a", True),
    ("a*", "abc", True),
    ("a*", "ab/c", False),
    ("a*/b", "abc/b", True),
    ("a*/b", "a/c/b", False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True),
    ("a*b?c*x", "abxbbxdbxebxczzy", False),
    ("ab[c]", "abc", True),
    ("ab[b-d]", "abc", True),
    ("ab[e-g]", "abc", False),
    ("ab[^c]", "abc", False),
    ("ab[^b-d]", "abc", False),
    ("ab[^e-g]", "abc", True),
    ("a\\*b", "a*b", True),
    ("a\\*b", "ab", False),
    ("a?b", "a☺b", True),
    ("a[^a]b", "a☺b", True),
    ("a???b", "a☺b", False),
    ("a[^a][^a][^a]b", "a☺b", False),
    ("[a-ζ]*", "α", True),
    ("*[a-ζ]", "A", False),
    ("a?b", "a/b", False),
    ("a*b", "a/b", False),
    ("[\\]a]", "]", True),
    ("[\\-]", "-", True),
    ("[x\\-]", "x", True),
    ("[x\\-]", "-", True),
    ("[x\\-]", "z", False),
    ("[\\-x]", "x", True),
    ("[\\-x]", "-", True),
    ("[\\-x]", "a", False),
    ("*x", "xxx", True),
    # ours
    ("", "", True),
    ("", "a", False),
    ("a", "", False),
    ("*", "", True),
    ("a[/]b", "a/b", True),  # a class may match "/", ? and * may not
    ("a[^x]b", "a/b", True),
    ("[z-a]", "m", False),  # an empty range matches nothing
    ("[^z-a]", "m", True),
    ("[*]", "*", True),
    ("a.b", "axb", False),  # no regular-expression meaning leaks through
    ("a+", "aa", False),
    ("(a|b)", "a", False),
    ("\\a", "a", True),
    ("busybox:*", "busybox:latest", True),
    ("*/*", "library/busybox", True),
    ("*", "library/busybox", False),
])
def test_match(pattern: str, name: str, matched: bool) -> None:
    assert match(pattern, name) is matched


@pytest.mark.parametrize("pattern", [
    "[]a]", "[-]", "[x-]", "[-x]", "\\", "a\\", "[a-b-c]", "[", "[^", "[^bc", "a[", "a/b[", "[^]", "[\\", "[a\\", "[a-",
])
@pytest.mark.parametrize("name", ["a", "x", "-", "]", "", "zzz"])
def test_malformed_pattern_is_an_error_whatever_the_name(pattern: str, name: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        match(pattern, name)
    assert str(e.value) == f'syntax error in pattern "{pattern}"'


@pytest.mark.parametrize("pattern, ref, matched", [
    # the familiar name, with and without the tag
    ("busybox", "busybox:latest", True),
    ("busybox:latest", "busybox:latest", True),
    ("busybox:*", "busybox:1.36", True),
    ("busy*", "busybox:latest", True),
    ("busybox:1.*", "busybox:latest", False),
    ("*:latest", "busybox:latest", True),
    ("*", "busybox:latest", True),
    ("user/*", "user/app:1", True),
    ("*", "user/app:1", False),  # * stops at /
    ("*/*", "user/app:1", True),
    ("app", "user/app:1", False),
    ("localhost:5000/app", "localhost:5000/app:v1", True),
    ("localhost:5000/*:v?", "localhost:5000/app:v1", True),
    # the full names
    ("docker.io/library/busybox", "busybox:latest", True),
    ("docker.io/library/busybox:latest", "busybox:latest", True),
    ("docker.io/library/*", "busybox:latest", True),
    ("docker.io/*/*:1", "user/app:1", True),
    ("library/busybox", "busybox:latest", False),  # no spelling of the name is that one
    # digests
    (f"busybox@{DIGEST}", f"busybox@{DIGEST}", True),
    ("busybox@sha256:*", f"busybox@{DIGEST}", True),
    ("busybox", f"busybox@{DIGEST}", True),
    (f"docker.io/library/busybox@{DIGEST}", f"busybox@{DIGEST}", True),
    ("busybox:latest", f"busybox@{DIGEST}", False),  # a digest reference has no tag to add
    ("busybox:*", f"busybox:1@{DIGEST}", True),
])
def test_reference_matches(pattern: str, ref: str, matched: bool) -> None:
    assert reference_matches(pattern, parse_docker_ref(ref)) is matched


def test_name_only_reference_matches_with_latest() -> None:
    ref = parse_normalized("busybox")
    assert reference_matches("docker.io/library/busybox:latest", ref)
    assert reference_matches("busybox", ref)
    assert not reference_matches("busybox:latest", ref)  # its familiar spelling has no tag


def test_reference_matches_refuses_malformed_pattern() -> None:
    with pytest.raises(InvalidArgument):
        reference_matches("busybox[", parse_docker_ref("busybox"))
