"""The pure parts of the registry client: challenges, X-Registry-Auth, hosts, errors, progress, platforms."""

from __future__ import annotations

import base64
import json

import pytest

from portside.distribution import progress
from portside.distribution.auth import Credentials, decode_registry_auth, parse_challenges
from portside.distribution.errcodes import RegistryErrorEntry, parse_errors, pull_error
from portside.distribution.hosts import RegistryOptions, endpoints, is_insecure
from portside.distribution.platforms import parse_platform, select
from portside.errors import InvalidArgument, NotFound
from portside.oci.image import Descriptor, Index, Platform


def test_bearer_and_basic_challenges() -> None:
    [c] = parse_challenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                           'scope="repository:library/busybox:pull"')
    assert c.scheme == "bearer"
    assert c.params == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                        "scope": "repository:library/busybox:pull"}
    [b] = parse_challenges('Basic realm="Registry Realm"')
    assert (b.scheme, b.params) == ("basic", {"realm": "Registry Realm"})
    assert parse_challenges("") == []


def test_registry_auth_header() -> None:
    def enc(doc: object, pad: bool = True) -> str:
        s = base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()
        return s if pad else s.rstrip("=")

    creds = decode_registry_auth(enc({"username": "u", "password": "p?>", "serveraddress": "x"}, pad=False))
    assert (creds.username, creds.password) == ("u", "p?>")
    assert decode_registry_auth(enc({"auth": base64.b64encode(b"a:b:c").decode()})).password == "b:c"
    assert decode_registry_auth(enc({"identitytoken": "tok"})).identity_token == "tok"
    assert decode_registry_auth("e30=").anonymous and decode_registry_auth(None).anonymous
    with pytest.raises(InvalidArgument):
        decode_registry_auth("!!!")
    assert "p?>" not in repr(creds) and "secret" not in repr(Credentials("u", "secret"))


def test_loopback_and_listed_registries_are_insecure() -> None:
    opts = RegistryOptions(insecure=("reg.lan:5000", "10.1.0.0/16"))
    assert is_insecure(opts, "127.0.0.1:5000") and is_insecure(opts, "127.9.9.9") and is_insecure(opts, "localhost:1")
    assert is_insecure(opts, "[::1]:5000")
    assert is_insecure(opts, "reg.lan:5000") and not is_insecure(opts, "reg.lan:5001")
    assert is_insecure(opts, "10.1.2.3:443") and not is_insecure(opts, "10.2.0.1")
    assert not is_insecure(opts, "registry-1.docker.io")


def test_endpoints_mirror_docker_hub_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "reg.example:5000").mkdir()
    (tmp_path / "reg.example:5000" / "ca.crt").write_text("x")
    opts = RegistryOptions(mirrors=("http://127.0.0.1:5000",), certs_dir=str(tmp_path))
    hub = endpoints(opts, "docker.io")
    assert [(e.scheme, e.host, e.mirror) for e in hub] == [("http", "127.0.0.1:5000", True),
                                                           ("https", "registry-1.docker.io", False)]
    assert [e.host for e in endpoints(opts, "docker.io", mirrors=False)] == ["registry-1.docker.io"]  # login, push
    [other] = endpoints(opts, "reg.example:5000")
    assert other.ca_files == (str(tmp_path / "reg.example:5000" / "ca.crt"),) and other.verify
    with pytest.raises(InvalidArgument):
        RegistryOptions(mirrors=("ftp://x",))


def test_registry_errors_become_dockers_messages() -> None:
    body = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown",
                                   "detail": {"Tag": "nope"}}]}).encode()
    e = pull_error(parse_errors(404, body), "busybox", "busybox:nope")
    assert isinstance(e, NotFound) and e.message == "manifest for busybox:nope not found: manifest unknown: manifest unknown"
    denied = pull_error([RegistryErrorEntry("DENIED", "requested access to the resource is denied")], "x", "x:latest")
    assert isinstance(denied, NotFound)
    assert denied.message == ("pull access denied for x, repository does not exist or may require 'docker login': "
                              "denied: requested access to the resource is denied")
    assert parse_errors(429, b"<html>") == [RegistryErrorEntry("TOOMANYREQUESTS", "too many requests")]


def test_progress_messages() -> None:
    assert progress.progress_bar(0, 0) == ""
    assert progress.progress_bar(530000, 1060000) == "[=========================>                         ]    530kB/1.06MB"
    assert progress.bytes_progress("Downloading", "abc", 1, 2)["progressDetail"] == {"current": 1, "total": 2}
    assert progress.short_id("sha256:" + "ab" * 32) == "abababababab"


def test_platforms() -> None:
    assert parse_platform("linux/arm64/v8") == Platform("linux", "arm64", "")
    assert parse_platform("linux/x86_64") == Platform("linux", "amd64", "")
    assert parse_platform("arm") == Platform("linux", "arm", "v7")
    with pytest.raises(InvalidArgument):
        parse_platform("linux//")

    def d(n: str, arch: str, variant: str = "") -> Descriptor:
        return Descriptor("application/vnd.oci.image.manifest.v1+json", "sha256:" + n * 64, 1,
                          platform=Platform("linux", arch, variant))

    index = Index("application/vnd.oci.image.index.v1+json", (d("a", "amd64"), d("b", "arm", "v6"),
                                                                d("c", "arm", "v7"), d("e", "arm64", "v8")))
    assert select(index, Platform("linux", "arm", "v7")).digest == "sha256:" + "c" * 64  # type: ignore[union-attr]
    assert select(index, Platform("linux", "arm64", "")).digest == "sha256:" + "e" * 64  # type: ignore[union-attr]
    assert select(index, Platform("linux", "s390x", "")) is None
