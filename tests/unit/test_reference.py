"""Image references: normalisation and error messages as Docker has them (distribution/reference)."""

from __future__ import annotations

import pytest

from portside.errors import InvalidArgument
from portside.oci.reference import (
    Reference,
    parse_docker_ref,
    parse_normalized,
    parse_repository_and_tag,
    validate_tag,
)

HEX = "f" * 64
DIGEST = "sha256:" + "7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa"
ID = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a"

# input -> (str(ref), ref.familiar(), domain, path)
VALID = [
    # Docker Hub official images
    ("busybox", "docker.io/library/busybox", "busybox", "docker.io", "library/busybox"),
    ("busybox:latest", "docker.io/library/busybox:latest", "busybox:latest", "docker.io", "library/busybox"),
    ("busybox:1.36.1-musl", "docker.io/library/busybox:1.36.1-musl", "busybox:1.36.1-musl", "docker.io", "library/busybox"),
    ("busybox:Latest", "docker.io/library/busybox:Latest", "busybox:Latest", "docker.io", "library/busybox"),
    ("busybox:_x", "docker.io/library/busybox:_x", "busybox:_x", "docker.io", "library/busybox"),
    ("busybox:" + "t" * 128, "docker.io/library/busybox:" + "t" * 128, "busybox:" + "t" * 128, "docker.io", "library/busybox"),
    ("library/busybox", "docker.io/library/busybox", "busybox", "docker.io", "library/busybox"),
    ("docker.io/busybox", "docker.io/library/busybox", "busybox", "docker.io", "library/busybox"),
    ("docker.io/library/busybox", "docker.io/library/busybox", "busybox", "docker.io", "library/busybox"),
    ("docker.io/library/busybox:latest", "docker.io/library/busybox:latest", "busybox:latest", "docker.io", "library/busybox"),
    # the legacy "Docker Index" domain folds into docker.io
    ("index.docker.io/busybox", "docker.io/library/busybox", "busybox", "docker.io", "library/busybox"),
    ("index.docker.io/library/busybox", "docker.io/library/busybox", "busybox", "docker.io", "library/busybox"),
    ("index.docker.io/user/app:1", "docker.io/user/app:1", "user/app:1", "docker.io", "user/app"),
    # Docker Hub user images and deeper paths
    ("user/app", "docker.io/user/app", "user/app", "docker.io", "user/app"),
    ("user/app:1", "docker.io/user/app:1", "user/app:1", "docker.io", "user/app"),
    ("docker.io/user/app", "docker.io/user/app", "user/app", "docker.io", "user/app"),
    ("ns/sub/app", "docker.io/ns/sub/app", "ns/sub/app", "docker.io", "ns/sub/app"),
    ("library/foo/bar", "docker.io/library/foo/bar", "library/foo/bar", "docker.io", "library/foo/bar"),
    ("other/library", "docker.io/other/library", "other/library", "docker.io", "other/library"),
    ("test_com/foo", "docker.io/test_com/foo", "test_com/foo", "docker.io", "test_com/foo"),
    # path-component separators
    ("a__b/c", "docker.io/a__b/c", "a__b/c", "docker.io", "a__b/c"),
    ("a---b/c", "docker.io/a---b/c", "a---b/c", "docker.io", "a---b/c"),
    ("ubuntu-12.04-base", "docker.io/library/ubuntu-12.04-base", "ubuntu-12.04-base", "docker.io", "library/ubuntu-12.04-base"),
    ("d/t", "docker.io/d/t", "d/t", "docker.io", "d/t"),
    # localhost is always a domain when followed by "/"
    ("localhost/app", "localhost/app", "localhost/app", "localhost", "app"),
    ("localhost:5000/app", "localhost:5000/app", "localhost:5000/app", "localhost:5000", "app"),
    ("localhost:5000/ns/app:tag", "localhost:5000/ns/app:tag", "localhost:5000/ns/app:tag", "localhost:5000", "ns/app"),
    # ...but a single component is a Docker Hub name, so "host:port" reads as name:tag
    ("localhost", "docker.io/library/localhost", "localhost", "docker.io", "library/localhost"),
    ("localhost:5000", "docker.io/library/localhost:5000", "localhost:5000", "docker.io", "library/localhost"),
    ("docker.io", "docker.io/library/docker.io", "docker.io", "docker.io", "library/docker.io"),
    ("192.168.0.1", "docker.io/library/192.168.0.1", "192.168.0.1", "docker.io", "library/192.168.0.1"),
    # other registries: a "." or ":" in the first component makes it a domain
    ("host.example.com/app", "host.example.com/app", "host.example.com/app", "host.example.com", "app"),
    ("registry.example.com/ns/app:v2", "registry.example.com/ns/app:v2", "registry.example.com/ns/app:v2", "registry.example.com", "ns/app"),
    ("example.com:8000/private/moonbase", "example.com:8000/private/moonbase", "example.com:8000/private/moonbase", "example.com:8000", "private/moonbase"),
    ("test-com:8080/foo", "test-com:8080/foo", "test-com:8080/foo", "test-com:8080", "foo"),
    ("xn--n3h.com/foo", "xn--n3h.com/foo", "xn--n3h.com/foo", "xn--n3h.com", "foo"),
    ("127.0.0.1:5000/a/b:c", "127.0.0.1:5000/a/b:c", "127.0.0.1:5000/a/b:c", "127.0.0.1:5000", "a/b"),
    ("docker.io:443/foo", "docker.io:443/foo", "docker.io:443/foo", "docker.io:443", "foo"),
    ("[::1]:5000/app", "[::1]:5000/app", "[::1]:5000/app", "[::1]:5000", "app"),
    ("[::1]/app", "[::1]/app", "[::1]/app", "[::1]", "app"),
    ("[fc00:1:2:3:4:5:6:7]:5000/library/debian", "[fc00:1:2:3:4:5:6:7]:5000/library/debian", "[fc00:1:2:3:4:5:6:7]:5000/library/debian", "[fc00:1:2:3:4:5:6:7]:5000", "library/debian"),
    # an uppercase first component is taken as a domain and kept as written
    ("Foo/bar", "Foo/bar", "Foo/bar", "Foo", "bar"),
    ("HOSTNAME.DOMAIN.COM:443/foo/bar", "HOSTNAME.DOMAIN.COM:443/foo/bar", "HOSTNAME.DOMAIN.COM:443/foo/bar", "HOSTNAME.DOMAIN.COM:443", "foo/bar"),
    # a "domain" that is no valid host but a valid path component: no domain at all
    ("a_b.c/foo", "a_b.c/foo", "a_b.c/foo", "", "a_b.c/foo"),
    # digests
    ("busybox@" + DIGEST, "docker.io/library/busybox@" + DIGEST, "busybox@" + DIGEST, "docker.io", "library/busybox"),
    ("busybox:latest@" + DIGEST, "docker.io/library/busybox:latest@" + DIGEST, "busybox:latest@" + DIGEST, "docker.io", "library/busybox"),
    ("foo/bar:1.0@" + DIGEST, "docker.io/foo/bar:1.0@" + DIGEST, "foo/bar:1.0@" + DIGEST, "docker.io", "foo/bar"),
    ("localhost:5000/app@" + DIGEST, "localhost:5000/app@" + DIGEST, "localhost:5000/app@" + DIGEST, "localhost:5000", "app"),
    # 64 hex characters are refused only on their own
    ("docker.io/" + ID, "docker.io/library/" + ID, ID, "docker.io", "library/" + ID),
    (ID + ":latest", "docker.io/library/" + ID + ":latest", ID + ":latest", "docker.io", "library/" + ID),
    (ID[:63], "docker.io/library/" + ID[:63], ID[:63], "docker.io", "library/" + ID[:63]),
    # "sha256:<hex>" is the image sha256 with a 64-character tag (the image store resolves IDs first)
    ("sha256:" + HEX, "docker.io/library/sha256:" + HEX, "sha256:" + HEX, "docker.io", "library/sha256"),
    # length limit is on the path, 255 characters
    ("a" * 247, "docker.io/library/" + "a" * 247, "a" * 247, "docker.io", "library/" + "a" * 247),
    ("localhost/" + "a" * 255, "localhost/" + "a" * 255, "localhost/" + "a" * 255, "localhost", "a" * 255),
]

LOWERCASE = "invalid reference format: repository name ({}) must be lowercase"
INVALID = "invalid reference format"
TOO_LONG = "repository name must not be more than 255 characters"
BAD_CHECKSUM = "invalid checksum digest format"
BAD_LENGTH = "invalid checksum digest length"

# input -> exact message
ERRORS = [
    ("", INVALID),
    ("busybox:", INVALID),
    (":tag", INVALID),
    ("@" + DIGEST, INVALID),
    ("/busybox", INVALID),
    ("busybox/", INVALID),
    ("a//b", INVALID),
    ("docker///docker", INVALID),
    ("a..b", INVALID),
    ("dock_.er/docker", INVALID),
    ("dock-.er/docker", INVALID),
    ("-docker", INVALID),
    ("docker-/docker", INVALID),
    ("_docker/_docker", INVALID),
    ("____/____", INVALID),
    ("-index:5000/busybox", INVALID),
    ("https://github.com/docker/docker", INVALID),
    (" busybox", INVALID),
    ("busybox ", INVALID),
    ("busybox\n", INVALID),
    ("\tbusybox", INVALID),
    ("busybox:tag with space", INVALID),
    ("busybox:-tag", INVALID),
    ("busybox:.tag", INVALID),
    ("busybox:" + "t" * 129, INVALID),
    ("busybox:tag:more", INVALID),
    ("bus\u00e9box", INVALID),
    ("busybox:t\u00e9", INVALID),
    ("localhost:5000/", INVALID),
    ("example.com:/app", INVALID),
    ("a_b:5000/foo", INVALID),
    ("[fc00::1]", INVALID),
    ("[fc00::1]:5000", INVALID),
    ("fc00::1:5000/debian", INVALID),
    ("[fe80::1%eth0]:5000/debian", INVALID),
    ("[2001:db8:3:4::192.0.2.33]:5000/debian", INVALID),
    ("foo/bar:x/baz", INVALID),
    # uppercase in the repository path: Docker's message names the normalised path
    ("Busybox", LOWERCASE.format("library/Busybox")),
    ("BUSYBOX:latest", LOWERCASE.format("library/BUSYBOX")),
    ("docker/Docker", LOWERCASE.format("docker/Docker")),
    ("docker.io/Busybox", LOWERCASE.format("library/Busybox")),
    ("localhost:5000/App:tag", LOWERCASE.format("App")),
    ("foo:Tag/Bar", LOWERCASE.format("Bar")),
    (ID.upper(), LOWERCASE.format("library/" + ID.upper())),
    # an uppercase first component is taken as a host; when it is none, Parse's own check answers
    ("Foo_Bar/app", "repository name must be lowercase"),
    ("aZ_0AA/zbza9:v1", "repository name must be lowercase"),
    ("Foo_Bar/app/", INVALID),
    ("\u0130_a/b", "repository name must be lowercase"),  # Go lowercases the dotted capital I to "i"
    # a bare image ID
    (ID, f"invalid repository name ({ID}), cannot specify 64-byte hexadecimal strings"),
    # too long (path > 255)
    ("a" * 248, TOO_LONG),
    ("a" * 256, TOO_LONG),
    ("localhost/" + "a" * 256, TOO_LONG),
    ("x" * 200 + "/" + "y" * 56, TOO_LONG),
    # digests: grammar failures are format errors, grammatical ones are checked as digests
    ("busybox@sha256:abc", INVALID),
    ("busybox@sha256", INVALID),
    ("busybox@" + HEX, INVALID),
    ("busybox@sha256:" + "g" * 64, INVALID),
    ("busybox@sha256:" + "a" * 63, BAD_LENGTH),
    ("busybox@sha256:" + "a" * 65, BAD_LENGTH),
    ("busybox@sha256:" + "A" * 32, BAD_LENGTH),
    ("busybox:1@sha256:" + "A" * 64, BAD_CHECKSUM),
    ("busybox@sha256:" + "A" * 64, BAD_CHECKSUM),
    ("busybox:1@SHA256:" + "a" * 64, BAD_CHECKSUM),
    ("busybox@md5:" + "a" * 32, "unsupported digest algorithm"),
    ("busybox@sha512:" + "a" * 128, "unsupported digest algorithm"),
    # the case check covers "@alg" when no ":" precedes it, exactly as Docker does
    ("busybox@SHA256:" + "a" * 64, LOWERCASE.format("library/busybox@SHA256")),
]


@pytest.mark.parametrize(("text", "canonical", "familiar", "domain", "path"), VALID)
def test_parse_normalized(text: str, canonical: str, familiar: str, domain: str, path: str) -> None:
    ref = parse_normalized(text)
    assert str(ref) == canonical
    assert ref.familiar() == familiar
    assert (ref.domain, ref.path) == (domain, path)
    # the canonical and the familiar form both read back as the same reference
    assert parse_normalized(canonical) == ref
    if familiar != ID:  # Docker prints "docker.io/library/<64 hex>" as a bare ID it would refuse
        assert parse_normalized(familiar) == ref


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_parse_normalized_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_normalized(text)
    assert caught.value.message == message
    assert str(caught.value) == message


def test_fields() -> None:
    ref = parse_normalized("localhost:5000/ns/app:1.0@" + DIGEST)
    assert ref == Reference(domain="localhost:5000", path="ns/app", tag="1.0", digest=DIGEST)
    assert ref.name == "localhost:5000/ns/app"
    assert ref.familiar_name() == "localhost:5000/ns/app"
    bare = parse_normalized("busybox")
    assert (bare.tag, bare.digest) == (None, None)
    assert bare.name == "docker.io/library/busybox"
    assert bare.familiar_name() == "busybox"
    assert parse_normalized("docker.io/user/app:1").familiar_name() == "user/app"
    assert parse_normalized("docker.io/library/foo/bar").familiar_name() == "library/foo/bar"
    assert parse_normalized("a_b.c/foo").name == "a_b.c/foo"


def test_reference_is_hashable_and_immutable() -> None:
    ref = parse_normalized("busybox")
    assert {ref: 1}[parse_normalized("docker.io/library/busybox")] == 1
    with pytest.raises(AttributeError):
        ref.tag = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "canonical", "familiar"),
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1", "docker.io/library/busybox:1", "busybox:1"),
        ("user/app", "docker.io/user/app:latest", "user/app:latest"),
        ("localhost:5000/ns/app", "localhost:5000/ns/app:latest", "localhost:5000/ns/app:latest"),
        ("localhost:5000", "docker.io/library/localhost:5000", "localhost:5000"),
        ("busybox@" + DIGEST, "docker.io/library/busybox@" + DIGEST, "busybox@" + DIGEST),
        ("foo/bar:1.0@" + DIGEST, "docker.io/foo/bar:1.0@" + DIGEST, "foo/bar:1.0@" + DIGEST),
    ],
)
def test_parse_docker_ref(text: str, canonical: str, familiar: str) -> None:
    ref = parse_docker_ref(text)
    assert str(ref) == canonical
    assert ref.familiar() == familiar


@pytest.mark.parametrize(("text", "message"), ERRORS[:12] + ERRORS[-8:])
def test_parse_docker_ref_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_docker_ref(text)
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("repo", "tag", "canonical"),
    [
        ("busybox", None, "docker.io/library/busybox:latest"),
        ("busybox", "", "docker.io/library/busybox:latest"),
        ("busybox", "v1", "docker.io/library/busybox:v1"),
        ("busybox:old", None, "docker.io/library/busybox:old"),
        ("busybox:old", "new", "docker.io/library/busybox:new"),
        ("user/app", "1.0", "docker.io/user/app:1.0"),
        ("localhost:5000/ns/app", "x_y", "localhost:5000/ns/app:x_y"),
        ("HOSTNAME.DOMAIN.COM:443/foo/bar", None, "HOSTNAME.DOMAIN.COM:443/foo/bar:latest"),
    ],
)
def test_parse_repository_and_tag(repo: str, tag: str | None, canonical: str) -> None:
    assert str(parse_repository_and_tag(repo, tag)) == canonical


@pytest.mark.parametrize(
    ("repo", "tag", "message"),
    [
        ("busybox", "-bad", "invalid tag format"),
        ("busybox", "t" * 129, "invalid tag format"),
        ("busybox", "a:b", "invalid tag format"),
        ("busybox", "sha256:" + HEX, "invalid tag format"),
        ("busybox@" + DIGEST, None, "cannot import digest reference"),
        ("busybox:1@" + DIGEST, "2", "cannot import digest reference"),
        ("Busybox", "1", LOWERCASE.format("library/Busybox")),
        ("a//b", None, INVALID),
        ("", None, INVALID),
        (ID, "1", f"invalid repository name ({ID}), cannot specify 64-byte hexadecimal strings"),
    ],
)
def test_parse_repository_and_tag_errors(repo: str, tag: str | None, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_repository_and_tag(repo, tag)
    assert caught.value.message == message


@pytest.mark.parametrize("tag", ["latest", "1", "_", "A", "v1.2.3-rc.1", "a" * 128, "x__y", "X-.-_"])
def test_validate_tag_accepts(tag: str) -> None:
    assert validate_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", "-x", ".x", "a" * 129, "a:b", "a/b", "a@b", "a b", "\u00e9", "a\n"])
def test_validate_tag_refuses(tag: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_tag(tag)
    assert caught.value.message == "invalid tag format"


def test_with_tag_and_with_digest() -> None:
    ref = parse_normalized("user/app:1")
    assert str(ref.with_tag("2")) == "docker.io/user/app:2"
    digested = ref.with_digest(DIGEST)
    assert str(digested) == "docker.io/user/app:1@" + DIGEST
    assert digested.familiar() == "user/app:1@" + DIGEST
    assert str(digested.with_tag("3")) == "docker.io/user/app:3@" + DIGEST
    assert ref.tag == "1"  # the original is untouched
    with pytest.raises(InvalidArgument, match="^invalid tag format$"):
        ref.with_tag("")
    with pytest.raises(InvalidArgument, match="^invalid digest format$"):
        ref.with_digest("foo")
    with pytest.raises(InvalidArgument, match="^invalid digest format$"):
        ref.with_digest(HEX)
    with pytest.raises(InvalidArgument, match="^invalid checksum digest format$"):
        ref.with_digest("sha256:" + "A" * 64)
    with pytest.raises(InvalidArgument, match="^unsupported digest algorithm$"):
        ref.with_digest("sha512:" + "a" * 128)


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "text",
    [
        "a-" * 50_000 + "!",
        "a." * 50_000 + "/",
        "x.com/" + "a_" * 50_000 + "!",
        "a" + "-" * 50_000 + "a." + "b-" * 50_000 + "/x!",
        "x/" + "a" * 50_000 + "@sha256:" + "a" * 50_000 + "!",
    ],
)
def test_hostile_input_fails_fast(text: str) -> None:
    # Names come straight from HTTP query strings; the patterns must not backtrack badly.
    with pytest.raises(InvalidArgument):
        parse_normalized(text)
