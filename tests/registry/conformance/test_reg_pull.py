"""Pull: the API version check, manifests and blobs by tag and digest, ranges, and the 404 codes.

Spec v1.1 "Pull" (end-1, end-2, end-3) plus the error table; what each test
asserts is the spec's wording, so Distribution and portside are held to the same.
"""

from __future__ import annotations

import json

import pytest

from targets import Target
from ociclient import (
    DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Client, Image, index, sha256, unique_name,
)


def test_base_v2_answers_200_with_api_version(client: Client) -> None:
    resp = client.request("GET", "/v2/")
    assert resp.status == 200, resp
    # Docker clients probe this header to know they speak to a v2 registry
    assert resp.header("Docker-Distribution-API-Version") == "registry/2.0"


def test_base_v2_without_trailing_slash(client: Client) -> None:
    # Docker's API answers /v2 too (a redirect or the same 200): never an error a client would stop at
    resp = client.request("GET", "/v2")
    assert resp.status in (200, 301, 307, 308), resp


@pytest.mark.parametrize("media_type", [OCI_MANIFEST, DOCKER_MANIFEST])
def test_get_manifest_by_tag_returns_bytes_digest_and_type(client: Client, media_type: str) -> None:
    name, img = unique_name(), Image.random(media_type=media_type)
    img.push(client, name, "v1")
    resp = client.get_manifest(name, "v1")
    assert resp.status == 200, resp
    assert resp.body == img.manifest  # byte for byte: the digest is over these bytes
    assert resp.header("Docker-Content-Digest") == img.digest
    assert resp.header("Content-Type") == media_type
    assert int(resp.header("Content-Length") or -1) == len(img.manifest)


def test_get_manifest_by_digest(client: Client) -> None:
    name, img = unique_name(), Image.random()
    img.push(client, name, "latest")
    resp = client.get_manifest(name, img.digest)
    assert resp.status == 200, resp
    assert resp.body == img.manifest
    assert resp.header("Docker-Content-Digest") == img.digest
    assert resp.header("Content-Type") == OCI_MANIFEST


@pytest.mark.parametrize("reference", ["tag", "digest"])
def test_head_manifest_has_headers_and_no_body(client: Client, reference: str) -> None:
    name, img = unique_name(), Image.random()
    img.push(client, name, "tag")
    resp = client.get_manifest(name, img.digest if reference == "digest" else "tag", method="HEAD")
    assert resp.status == 200, resp
    assert resp.body == b""
    assert resp.header("Docker-Content-Digest") == img.digest
    assert int(resp.header("Content-Length") or -1) == len(img.manifest)
    assert resp.header("Content-Type") == OCI_MANIFEST


@pytest.mark.parametrize("list_type,child_type", [(OCI_INDEX, OCI_MANIFEST), (DOCKER_LIST, DOCKER_MANIFEST)])
def test_push_and_pull_an_index(client: Client, list_type: str, child_type: str) -> None:
    name = unique_name()
    children = [Image.random(media_type=child_type), Image.random(media_type=child_type)]
    for child in children:
        child.push(client, name)
    body = index([(child_type, c.manifest) for c in children], list_type)
    put = client.put_manifest(name, "multi", body, list_type)
    assert put.status == 201, put
    resp = client.get_manifest(name, "multi")
    assert resp.status == 200, resp
    assert resp.body == body
    assert resp.header("Content-Type") == list_type
    assert resp.header("Docker-Content-Digest") == sha256(body)


def test_unknown_manifest_in_known_repository_is_manifest_unknown(client: Client) -> None:
    name = unique_name()
    Image.random().push(client, name, "exists")
    for ref in ("nosuchtag", sha256(b"no such manifest")):
        resp = client.get_manifest(name, ref)
        assert resp.status == 404, resp
        assert "MANIFEST_UNKNOWN" in resp.error_codes(), resp
        head = client.get_manifest(name, ref, method="HEAD")
        assert head.status == 404 and head.body == b"", head


def test_manifest_in_unknown_repository_is_404_with_a_spec_code(client: Client) -> None:
    resp = client.get_manifest(unique_name(), "latest")
    assert resp.status == 404, resp
    # the spec allows either: the repository is unknown, hence so is the manifest
    assert set(resp.error_codes()) & {"NAME_UNKNOWN", "MANIFEST_UNKNOWN"}, resp


def test_error_body_has_the_spec_shape(client: Client) -> None:
    resp = client.request("GET", f"/v2/{unique_name()}/blobs/{sha256(b'x')}")
    assert resp.status == 404, resp
    assert "json" in (resp.header("Content-Type") or "")
    doc = resp.json()
    assert isinstance(doc["errors"], list) and doc["errors"]
    for error in doc["errors"]:
        assert isinstance(error["code"], str) and error["code"].isupper()
        assert isinstance(error.get("message", ""), str)


def test_get_and_head_blob(client: Client) -> None:
    name, data = unique_name(), b"blob content " * 1000
    digest = client.push_blob(name, data)
    resp = client.request("GET", f"/v2/{name}/blobs/{digest}")
    assert resp.status == 200, resp
    assert resp.body == data
    assert resp.header("Docker-Content-Digest") == digest
    head = client.request("HEAD", f"/v2/{name}/blobs/{digest}")
    assert head.status == 200, head
    assert head.body == b""
    assert int(head.header("Content-Length") or -1) == len(data)
    assert head.header("Docker-Content-Digest") == digest


def test_unknown_blob_is_blob_unknown(client: Client) -> None:
    name = unique_name()
    client.push_blob(name, b"something, so the repository exists")
    digest = sha256(b"never pushed")
    resp = client.request("GET", f"/v2/{name}/blobs/{digest}")
    assert resp.status == 404, resp
    assert "BLOB_UNKNOWN" in resp.error_codes(), resp
    head = client.request("HEAD", f"/v2/{name}/blobs/{digest}")
    assert head.status == 404 and head.body == b"", head


def test_blob_of_another_repository_is_not_served(client: Client) -> None:
    # a blob is reachable only through a repository that holds it (no leak across names)
    a, b = unique_name(), unique_name()
    digest = client.push_blob(a, b"private to a " + a.encode())
    client.push_blob(b, b"b exists")
    resp = client.request("GET", f"/v2/{b}/blobs/{digest}")
    assert resp.status == 404, resp
    assert "BLOB_UNKNOWN" in resp.error_codes(), resp


@pytest.mark.needs("range-requests")
def test_range_get_of_a_blob(client: Client) -> None:
    name, data = unique_name(), bytes(range(256)) * 64
    digest = client.push_blob(name, data)
    resp = client.request("GET", f"/v2/{name}/blobs/{digest}", headers={"Range": "bytes=100-199"})
    assert resp.status == 206, resp
    assert resp.body == data[100:200]
    assert resp.header("Content-Range") == f"bytes 100-199/{len(data)}"
    tail = client.request("GET", f"/v2/{name}/blobs/{digest}", headers={"Range": f"bytes={len(data) - 10}-"})
    assert tail.status == 206 and tail.body == data[-10:], tail


@pytest.mark.needs("range-requests")
def test_unsatisfiable_range_is_416(client: Client) -> None:
    name, data = unique_name(), b"0123456789"
    digest = client.push_blob(name, data)
    resp = client.request("GET", f"/v2/{name}/blobs/{digest}", headers={"Range": "bytes=100-200"})
    assert resp.status == 416, resp
    assert resp.header("Content-Range") == f"bytes */{len(data)}"


@pytest.mark.needs("range-requests", "range-416-framing")
def test_unsatisfiable_range_response_is_well_framed(client: Client) -> None:
    name, data = unique_name(), b"0123456789"
    digest = client.push_blob(name, data)
    resp = client.request("GET", f"/v2/{name}/blobs/{digest}", headers={"Range": "bytes=100-200"})
    assert resp.status == 416, resp
    # a Content-Length the body does not have desynchronizes a keep-alive client
    assert not resp.incomplete, resp


def test_manifest_accept_header_is_honoured_for_the_type_it_names(client: Client) -> None:
    name, img = unique_name(), Image.random()
    img.push(client, name, "t")
    resp = client.request("GET", f"/v2/{name}/manifests/t", headers={"Accept": OCI_MANIFEST})
    assert resp.status == 200, resp
    assert resp.header("Content-Type") == OCI_MANIFEST
    assert json.loads(resp.body)["mediaType"] == OCI_MANIFEST


def test_distribution_target_stores_blobs_under_its_root(registry: Target) -> None:
    """Not a spec case: proves the `distribution` fixture runs on its private root (and nothing else)."""
    if registry.registry is None:
        pytest.skip(f"{registry.name}: storage layout is the registry's own")
    name = unique_name()
    digest = registry.client.push_blob(name, b"where does it land")
    with open(registry.registry.blob_path(digest), "rb") as f:
        assert f.read() == b"where does it land"
