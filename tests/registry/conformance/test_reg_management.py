"""Content management: deleting manifests (by digest, by tag) and blobs.

Spec v1.1 end-9 (manifests) and end-10 (blobs). Deletion is optional in the
spec; a registry that refuses it must say so with 405 UNSUPPORTED, so each test
accepts that and asserts that nothing changed.
"""

from __future__ import annotations

import pytest

from ociclient import OCI_MANIFEST, Client, Image, sha256, unique_name


def deleted_or_unsupported(resp_status: int) -> bool:
    """True when deleted (202); pytest.skip when the registry disables deletes (405), as the spec allows."""
    if resp_status == 405:
        pytest.skip("deletes are disabled on this registry (405)")
    return resp_status == 202


def test_delete_manifest_by_digest_removes_it_and_its_tags(client: Client) -> None:
    name, img, other = unique_name(), Image.random(), Image.random()
    img.push(client, name, "t1")
    client.put_manifest(name, "t2", img.manifest, OCI_MANIFEST)
    other.push(client, name, "keep")
    resp = client.request("DELETE", f"/v2/{name}/manifests/{img.digest}")
    assert deleted_or_unsupported(resp.status), resp
    for ref in (img.digest, "t1", "t2"):
        gone = client.get_manifest(name, ref)
        assert gone.status == 404, (ref, gone)
        assert "MANIFEST_UNKNOWN" in gone.error_codes(), (ref, gone)
    assert client.tags(name).json()["tags"] == ["keep"]
    assert client.get_manifest(name, "keep").status == 200
    # its blobs stay: other manifests may use them, and garbage collection is the registry's business
    assert client.request("HEAD", f"/v2/{name}/blobs/{sha256(img.config)}").status == 200


def test_delete_manifest_by_tag(client: Client) -> None:
    name, img = unique_name(), Image.random()
    img.push(client, name, "t1")
    client.put_manifest(name, "t2", img.manifest, OCI_MANIFEST)
    resp = client.request("DELETE", f"/v2/{name}/manifests/t1")
    # spec v1.1: a registry MAY support deleting a tag (202); one that does not answers 400 or 405
    assert resp.status in (202, 400, 405), resp
    if resp.status == 202:
        assert client.get_manifest(name, "t1").status == 404
        assert client.get_manifest(name, "t2").status == 200   # only the tag went
        assert client.get_manifest(name, img.digest).status == 200
        assert client.tags(name).json()["tags"] == ["t2"]
    else:
        assert client.get_manifest(name, "t1").status == 200
        assert sorted(client.tags(name).json()["tags"]) == ["t1", "t2"]


def test_delete_unknown_manifest_is_manifest_unknown(client: Client) -> None:
    name = unique_name()
    Image.random().push(client, name, "v1")
    resp = client.request("DELETE", f"/v2/{name}/manifests/{sha256(b'never pushed')}")
    if resp.status == 405:
        pytest.skip("deletes are disabled on this registry (405)")
    assert resp.status == 404, resp
    assert "MANIFEST_UNKNOWN" in resp.error_codes(), resp


def test_delete_blob(client: Client) -> None:
    name, data = unique_name(), b"short-lived blob"
    digest = client.push_blob(name, data)
    resp = client.request("DELETE", f"/v2/{name}/blobs/{digest}")
    assert deleted_or_unsupported(resp.status), resp
    head = client.request("HEAD", f"/v2/{name}/blobs/{digest}")
    assert head.status == 404, head
    get = client.request("GET", f"/v2/{name}/blobs/{digest}")
    assert get.status == 404 and "BLOB_UNKNOWN" in get.error_codes(), get
    again = client.request("DELETE", f"/v2/{name}/blobs/{digest}")
    assert again.status == 404, again
    assert "BLOB_UNKNOWN" in again.error_codes(), again


def test_delete_blob_in_one_repository_keeps_it_in_another(client: Client) -> None:
    a, b, data = unique_name(), unique_name(), b"shared between two repositories"
    digest = client.push_blob(a, data)
    client.push_blob(b, data)
    resp = client.request("DELETE", f"/v2/{a}/blobs/{digest}")
    assert deleted_or_unsupported(resp.status), resp
    assert client.request("HEAD", f"/v2/{a}/blobs/{digest}").status == 404
    got = client.request("GET", f"/v2/{b}/blobs/{digest}")
    assert got.status == 200 and got.body == data, got


def test_blob_pushed_again_after_delete_is_served(client: Client) -> None:
    name, data = unique_name(), b"comes back"
    digest = client.push_blob(name, data)
    assert deleted_or_unsupported(client.request("DELETE", f"/v2/{name}/blobs/{digest}").status)
    client.push_blob(name, data)
    assert client.request("GET", f"/v2/{name}/blobs/{digest}").body == data


def test_manifest_pushed_again_after_delete_is_served(client: Client) -> None:
    name, img = unique_name(), Image.random()
    img.push(client, name, "v1")
    assert deleted_or_unsupported(client.request("DELETE", f"/v2/{name}/manifests/{img.digest}").status)
    img.push(client, name, "v1")
    assert client.get_manifest(name, "v1").body == img.manifest
