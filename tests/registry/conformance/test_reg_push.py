"""Push: blob uploads (monolithic, single POST, chunked, status, cancel, mount) and manifest uploads.

Spec v1.1 "Push" (end-4a/4b, end-5, end-6, end-7, end-11, end-13) and the error
cases each names. Every rejected upload is also checked to have stored nothing.
"""

from __future__ import annotations

import json
import secrets

import pytest

from ociclient import (
    DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Client, Image, descriptor, index, sha256, unique_name, with_query,
)


def blob_exists(client: Client, name: str, digest: str) -> bool:
    resp = client.request("HEAD", f"/v2/{name}/blobs/{digest}")
    assert resp.status in (200, 404), resp
    return resp.status == 200


def test_post_then_put_monolithic(client: Client) -> None:
    name, data = unique_name(), secrets.token_bytes(5000)
    start = client.start_upload(name)
    assert start.status == 202, start
    location = start.header("Location")
    assert location, start
    done = client.request("PUT", with_query(location, digest=sha256(data)), data,
                          {"Content-Type": "application/octet-stream"})
    assert done.status == 201, done
    assert done.header("Location"), done
    assert done.header("Docker-Content-Digest") == sha256(data)
    got = client.request("GET", client.relative(done.header("Location") or ""))
    assert got.status == 200 and got.body == data, got


def test_single_post_with_digest(client: Client) -> None:
    name, data = unique_name(), secrets.token_bytes(3000)
    resp = client.request("POST", f"/v2/{name}/blobs/uploads/?digest={sha256(data)}", data,
                          {"Content-Type": "application/octet-stream"})
    # the spec lets a registry decline the one-request form with a 202 and an upload session instead
    assert resp.status in (201, 202), resp
    assert resp.header("Location"), resp
    if resp.status == 202:
        assert not blob_exists(client, name, sha256(data))
        done = client.request("PUT", with_query(resp.header("Location") or "", digest=sha256(data)), data)
        assert done.status == 201, done
    assert client.request("GET", f"/v2/{name}/blobs/{sha256(data)}").body == data


def test_chunked_upload_with_status(client: Client) -> None:
    name, data = unique_name(), secrets.token_bytes(10_000)
    start = client.start_upload(name)
    location = start.header("Location") or ""
    for offset in range(0, len(data), 3000):
        chunk = data[offset:offset + 3000]
        patch = client.request("PATCH", location, chunk,
                               {"Content-Type": "application/octet-stream",
                                "Content-Range": f"{offset}-{offset + len(chunk) - 1}"})
        assert patch.status == 202, patch
        assert patch.header("Range") == f"0-{offset + len(chunk) - 1}"
        assert patch.header("Docker-Upload-UUID"), patch
        location = patch.header("Location") or ""
        status = client.request("GET", location)
        assert status.status == 204, status
        assert status.header("Range") == f"0-{offset + len(chunk) - 1}"
        assert status.header("Docker-Upload-UUID") == patch.header("Docker-Upload-UUID")
    done = client.request("PUT", with_query(location, digest=sha256(data)), b"")
    assert done.status == 201, done
    assert done.header("Docker-Content-Digest") == sha256(data)
    assert client.request("GET", f"/v2/{name}/blobs/{sha256(data)}").body == data


@pytest.mark.needs("chunk-order")
def test_chunked_upload_refuses_an_out_of_order_chunk(client: Client) -> None:
    name, data = unique_name(), secrets.token_bytes(10_000)
    first, second = data[:6000], data[6000:]
    start = client.start_upload(name)
    assert start.status == 202, start

    patch = client.request("PATCH", start.header("Location") or "", first,
                           {"Content-Type": "application/octet-stream", "Content-Range": f"0-{len(first) - 1}"})
    assert patch.status == 202, patch
    assert patch.header("Range") == f"0-{len(first) - 1}"
    location = patch.header("Location") or ""
    assert location, patch

    status = client.request("GET", location)
    assert status.status == 204, status
    assert status.header("Range") == f"0-{len(first) - 1}"
    assert status.header("Location"), status

    # a chunk that does not start where the upload ends is refused, and the upload is unchanged
    skipped = client.request("PATCH", location, second[100:],
                             {"Content-Type": "application/octet-stream",
                              "Content-Range": f"{len(first) + 100}-{len(data) - 1}"})
    assert skipped.status == 416, skipped
    status = client.request("GET", location)
    assert status.status == 204 and status.header("Range") == f"0-{len(first) - 1}", status

    patch2 = client.request("PATCH", location, second,
                            {"Content-Type": "application/octet-stream",
                             "Content-Range": f"{len(first)}-{len(data) - 1}"})
    assert patch2.status == 202, patch2
    assert patch2.header("Range") == f"0-{len(data) - 1}"

    done = client.request("PUT", with_query(patch2.header("Location") or "", digest=sha256(data)), b"")
    assert done.status == 201, done
    assert done.header("Docker-Content-Digest") == sha256(data)
    assert client.request("GET", f"/v2/{name}/blobs/{sha256(data)}").body == data


def test_streamed_patch_without_content_range_then_put_with_last_chunk(client: Client) -> None:
    name, data = unique_name(), secrets.token_bytes(8000)
    start = client.start_upload(name)
    patch = client.request("PATCH", start.header("Location") or "", data[:5000],
                           {"Content-Type": "application/octet-stream"})
    assert patch.status == 202, patch
    assert patch.header("Range") == "0-4999"
    # the closing PUT may carry the last chunk
    done = client.request("PUT", with_query(patch.header("Location") or "", digest=sha256(data)), data[5000:],
                          {"Content-Type": "application/octet-stream"})
    assert done.status == 201, done
    assert client.request("GET", f"/v2/{name}/blobs/{sha256(data)}").body == data


def test_fresh_upload_status_is_empty(client: Client) -> None:
    name = unique_name()
    start = client.start_upload(name)
    status = client.request("GET", start.header("Location") or "")
    assert status.status == 204, status
    # before any byte, Range is "0-0" by Distribution's convention or absent: never a positive length
    assert status.header("Range") in (None, "0-0", "0--1"), status


def test_cancel_upload(client: Client) -> None:
    name, data = unique_name(), b"abandoned"
    start = client.start_upload(name)
    patch = client.request("PATCH", start.header("Location") or "", data,
                           {"Content-Type": "application/octet-stream"})
    # always the latest Location: it may carry state (Distribution signs the offset into it)
    location = patch.header("Location") or ""
    cancel = client.request("DELETE", location)
    assert cancel.status == 204, cancel
    gone = client.request("GET", location)
    assert gone.status == 404, gone
    assert "BLOB_UPLOAD_UNKNOWN" in gone.error_codes(), gone
    put = client.request("PUT", with_query(location, digest=sha256(data)), b"")
    assert put.status == 404 and "BLOB_UPLOAD_UNKNOWN" in put.error_codes(), put
    assert not blob_exists(client, name, sha256(data))


def test_unknown_upload_session_is_blob_upload_unknown(client: Client) -> None:
    name = unique_name()
    client.push_blob(name, b"repository exists")
    bogus = f"/v2/{name}/blobs/uploads/{secrets.token_hex(16)}"
    for method, body in (("GET", None), ("PATCH", b"x"), ("PUT", b""), ("DELETE", None)):
        path = with_query(bogus, digest=sha256(b"x")) if method == "PUT" else bogus
        resp = client.request(method, path, body)
        assert resp.status == 404, (method, resp)


@pytest.mark.needs("upload-unknown-code")
def test_unknown_upload_session_code_is_blob_upload_unknown(client: Client) -> None:
    name = unique_name()
    client.push_blob(name, b"repository exists")
    bogus = f"/v2/{name}/blobs/uploads/{secrets.token_hex(16)}"
    for method, body in (("GET", None), ("PATCH", b"x"), ("DELETE", None)):
        resp = client.request(method, bogus, body)
        assert "BLOB_UPLOAD_UNKNOWN" in resp.error_codes(), (method, resp)


def test_cross_repository_mount(client: Client) -> None:
    source, target, data = unique_name(), unique_name(), secrets.token_bytes(2048)
    digest = client.push_blob(source, data)
    resp = client.request("POST", f"/v2/{target}/blobs/uploads/?mount={digest}&from={source}", b"",
                          {"Content-Length": "0"})
    assert resp.status == 201, resp
    assert resp.header("Docker-Content-Digest") == digest
    assert resp.header("Location"), resp
    got = client.request("GET", f"/v2/{target}/blobs/{digest}")
    assert got.status == 200 and got.body == data, got


def test_mount_from_a_repository_without_the_blob_falls_back_to_an_upload(client: Client) -> None:
    source, target, data = unique_name(), unique_name(), secrets.token_bytes(512)
    client.push_blob(source, b"something else")
    digest = sha256(data)
    resp = client.request("POST", f"/v2/{target}/blobs/uploads/?mount={digest}&from={source}", b"",
                          {"Content-Length": "0"})
    assert resp.status == 202, resp
    assert not blob_exists(client, target, digest)
    done = client.request("PUT", with_query(resp.header("Location") or "", digest=digest), data)
    assert done.status == 201, done
    assert blob_exists(client, target, digest)


def test_mount_without_from_is_201_or_an_upload(client: Client) -> None:
    source, target, data = unique_name(), unique_name(), secrets.token_bytes(512)
    digest = client.push_blob(source, data)
    resp = client.request("POST", f"/v2/{target}/blobs/uploads/?mount={digest}", b"", {"Content-Length": "0"})
    # spec v1.1: a registry MAY mount from anywhere it has the blob, or start an upload
    assert resp.status in (201, 202), resp
    assert resp.header("Location"), resp
    assert blob_exists(client, target, digest) == (resp.status == 201)


def test_digest_mismatch_is_digest_invalid_and_stores_nothing(client: Client) -> None:
    name, data = unique_name(), secrets.token_bytes(4096)
    claimed = sha256(b"something else entirely")
    start = client.start_upload(name)
    resp = client.request("PUT", with_query(start.header("Location") or "", digest=claimed), data,
                          {"Content-Type": "application/octet-stream"})
    assert resp.status == 400, resp
    assert "DIGEST_INVALID" in resp.error_codes(), resp
    assert not blob_exists(client, name, claimed)
    assert not blob_exists(client, name, sha256(data))


def test_single_post_digest_mismatch_stores_nothing(client: Client) -> None:
    name, data = unique_name(), secrets.token_bytes(4096)
    claimed = sha256(b"not these bytes")
    resp = client.request("POST", f"/v2/{name}/blobs/uploads/?digest={claimed}", data,
                          {"Content-Type": "application/octet-stream"})
    if resp.status != 202:  # 202: the registry declined the one-request form (allowed) and read nothing
        assert resp.status == 400, resp
        assert "DIGEST_INVALID" in resp.error_codes(), resp
    assert not blob_exists(client, name, claimed)
    assert not blob_exists(client, name, sha256(data))


def test_put_without_digest_is_refused(client: Client) -> None:
    name, data = unique_name(), b"no digest given"
    start = client.start_upload(name)
    resp = client.request("PUT", start.header("Location") or "", data)
    assert resp.status == 400, resp
    assert set(resp.error_codes()) & {"DIGEST_INVALID", "BLOB_UPLOAD_INVALID"}, resp
    assert not blob_exists(client, name, sha256(data))


def test_manifest_put_returns_location_and_digest(client: Client) -> None:
    name, img = unique_name(), Image.random()
    resp = img.push(client, name, "v1")
    assert resp.header("Location"), resp
    assert resp.header("Docker-Content-Digest") == img.digest
    assert "v1" in client.tags(name).json()["tags"]


def test_manifest_by_digest_without_a_tag(client: Client) -> None:
    name, img = unique_name(), Image.random()
    img.push(client, name)
    assert client.get_manifest(name, img.digest).body == img.manifest


def test_manifest_put_by_a_wrong_digest_is_digest_invalid(client: Client) -> None:
    name, img = unique_name(), Image.random()
    img.push_blobs(client, name)
    wrong = sha256(b"not the manifest")
    resp = client.put_manifest(name, wrong, img.manifest, OCI_MANIFEST)
    assert resp.status == 400, resp
    assert "DIGEST_INVALID" in resp.error_codes(), resp
    assert client.get_manifest(name, wrong).status == 404
    assert client.get_manifest(name, img.digest).status == 404


def test_retagging_moves_the_tag(client: Client) -> None:
    name, a, b = unique_name(), Image.random(), Image.random()
    a.push(client, name, "moving")
    b.push(client, name, "moving")
    resp = client.get_manifest(name, "moving")
    assert resp.header("Docker-Content-Digest") == b.digest
    assert client.get_manifest(name, a.digest).status == 200  # the old manifest stays, untagged


@pytest.mark.parametrize("missing", ["config", "layer"])
def test_manifest_with_a_missing_blob_is_manifest_blob_unknown(client: Client, missing: str) -> None:
    name, img = unique_name(), Image.random(layers=2)
    client.push_blob(name, img.layers[0])
    client.push_blob(name, img.layers[1]) if missing == "config" else client.push_blob(name, img.config)
    resp = client.put_manifest(name, "broken", img.manifest, OCI_MANIFEST)
    assert resp.status == 400, resp
    assert "MANIFEST_BLOB_UNKNOWN" in resp.error_codes(), resp
    assert client.get_manifest(name, "broken").status == 404
    assert client.get_manifest(name, img.digest).status == 404


def test_index_with_a_missing_manifest_is_refused(client: Client) -> None:
    name, present, absent = unique_name(), Image.random(), Image.random()
    present.push(client, name)
    body = index([(OCI_MANIFEST, present.manifest), (OCI_MANIFEST, absent.manifest)])
    resp = client.put_manifest(name, "partial", body, OCI_INDEX)
    assert resp.status == 400, resp
    assert set(resp.error_codes()) & {"MANIFEST_BLOB_UNKNOWN", "MANIFEST_UNKNOWN"}, resp
    assert client.get_manifest(name, "partial").status == 404


@pytest.mark.parametrize("body", [b"{not json", b'{"schemaVersion": 2, "mediaType": 7}', b"[]"])
def test_invalid_manifest_is_manifest_invalid(client: Client, body: bytes) -> None:
    name = unique_name()
    client.push_blob(name, b"repository exists")
    resp = client.put_manifest(name, "bad", body, OCI_MANIFEST)
    assert resp.status == 400, resp
    assert "MANIFEST_INVALID" in resp.error_codes(), resp
    assert client.get_manifest(name, "bad").status == 404


def test_manifest_whose_media_type_contradicts_its_content_type_is_refused(client: Client) -> None:
    name, img = unique_name(), Image.random()
    img.push_blobs(client, name)
    resp = client.put_manifest(name, "mixed", img.manifest, DOCKER_MANIFEST)
    assert resp.status == 400, resp
    assert "MANIFEST_INVALID" in resp.error_codes(), resp


INVALID_NAMES = ["UPPER/case", "a..b", "-lead", "trail-", "a//b", "a/" + "b" * 300]


@pytest.mark.needs("name-invalid")
@pytest.mark.parametrize("bad", INVALID_NAMES)
def test_invalid_repository_name_is_name_invalid_and_stores_nothing(client: Client, bad: str) -> None:
    resp = client.start_upload(bad)
    assert resp.status in (400, 404), resp
    assert "NAME_INVALID" in resp.error_codes(), resp
    data = b"pushed under an invalid name"
    direct = client.request("POST", f"/v2/{bad}/blobs/uploads/?digest={sha256(data)}", data)
    assert direct.status in (400, 404), direct
    assert client.request("GET", f"/v2/{bad}/tags/list").status in (400, 404)


INVALID_TAGS = ["-lead", ".dot", "a" * 129, "has+plus"]


@pytest.mark.needs("tag-invalid")
@pytest.mark.parametrize("bad", INVALID_TAGS)
def test_invalid_tag_is_refused_with_a_spec_code(client: Client, bad: str) -> None:
    name, img = unique_name(), Image.random()
    img.push_blobs(client, name)
    resp = client.put_manifest(name, bad, img.manifest, OCI_MANIFEST)
    assert resp.status in (400, 404), resp
    assert set(resp.error_codes()) & {"TAG_INVALID", "MANIFEST_INVALID", "NAME_INVALID"}, resp


@pytest.mark.parametrize("bad", INVALID_TAGS)
def test_invalid_tag_stores_nothing(client: Client, bad: str) -> None:
    name, img = unique_name(), Image.random()
    img.push(client, name, "good")
    resp = client.put_manifest(name, bad, img.manifest, OCI_MANIFEST)
    assert 400 <= resp.status < 500, resp
    assert client.tags(name).json()["tags"] == ["good"]


def padded(img: Image, size: int) -> bytes:
    """The image's manifest grown to exactly ``size`` bytes with an annotation."""
    img.extra["annotations"] = {"pad": ""}
    pad = size - len(img.manifest)
    img.extra["annotations"] = {"pad": "x" * pad}
    assert len(img.manifest) == size
    return img.manifest


def test_manifest_of_4_mib_is_accepted(client: Client) -> None:
    # spec v1.1: registries SHOULD accept manifests of at least 4 MiB
    name, img = unique_name(), Image.random()
    img.push_blobs(client, name)
    body = padded(img, 4 * 1024 * 1024 - 1024)
    resp = client.put_manifest(name, "big", body, OCI_MANIFEST)
    assert resp.status == 201, resp
    assert client.get_manifest(name, "big").body == body


@pytest.mark.needs("manifest-size-limit")
@pytest.mark.parametrize("mib", [5, 64])
def test_manifest_over_the_limit_is_413_and_not_stored(client: Client, mib: int) -> None:
    # spec v1.1: a registry MAY refuse a manifest over 4 MiB, and then answers 413 Payload Too Large
    name, img = unique_name(), Image.random()
    img.push_blobs(client, name)
    body = padded(img, mib * 1024 * 1024)
    try:
        resp = client.put_manifest(name, "huge", body, OCI_MANIFEST)
    except (BrokenPipeError, ConnectionResetError):
        resp = None  # refused before the whole body was read: the 413 may be lost to the reset
    if resp is not None and resp.status == 201:
        assert client.get_manifest(name, "huge").body == body   # accepted: then whole
        return
    assert resp is None or resp.status == 413, resp
    assert client.get_manifest(name, "huge").status == 404
    assert client.get_manifest(name, sha256(body)).status == 404


def test_artifact_manifest_with_artifact_type_and_empty_config(client: Client) -> None:
    name = unique_name()
    empty = b"{}"
    client.push_blob(name, empty)
    layer = b"signature bytes"
    client.push_blob(name, layer)
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sig",
           "config": descriptor("application/vnd.oci.empty.v1+json", empty),
           "layers": [descriptor("application/octet-stream", layer)]}
    body = json.dumps(doc).encode()
    resp = client.put_manifest(name, "sig", body, OCI_MANIFEST)
    assert resp.status == 201, resp
    assert client.get_manifest(name, "sig").body == body
