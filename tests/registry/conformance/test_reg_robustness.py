"""Robustness the spec implies but does not spell out: concurrent pushes and clients that vanish.

A registry serves many clients at once, and a push interrupted half-way must
never leave a blob that GET or HEAD would serve: its digest would name bytes
that are not all there.
"""

from __future__ import annotations

import secrets
import threading
import time

from targets import Target
from ociclient import Client, Image, Response, raw_request_then_close, sha256, unique_name, with_query


def test_concurrent_pushes_of_the_same_blob(client: Client) -> None:
    name, data = unique_name(), secrets.token_bytes(2 * 1024 * 1024)
    digest = sha256(data)
    results: list[Response | BaseException] = []
    barrier = threading.Barrier(8)

    def push() -> None:
        try:
            start = client.start_upload(name)
            barrier.wait(timeout=30)   # all PUTs race for the same digest at once
            results.append(client.request("PUT", with_query(start.header("Location") or "", digest=digest), data,
                                          {"Content-Type": "application/octet-stream"}))
        except BaseException as e:  # noqa: BLE001 - reported by the assertion below
            results.append(e)

    threads = [threading.Thread(target=push) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 8
    for r in results:
        assert isinstance(r, Response) and r.status == 201, r
        assert r.header("Docker-Content-Digest") == digest
    got = client.request("GET", f"/v2/{name}/blobs/{digest}")
    assert got.status == 200 and got.body == data


def test_concurrent_pushes_of_one_blob_to_many_repositories(client: Client) -> None:
    names, data = [unique_name() for _ in range(6)], secrets.token_bytes(512 * 1024)
    errors: list[BaseException] = []

    def push(name: str) -> None:
        try:
            client.push_blob(name, data)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=push, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    for name in names:
        assert client.request("GET", f"/v2/{name}/blobs/{sha256(data)}").body == data


def test_concurrent_manifest_pushes_to_one_tag_leave_one_of_them(client: Client) -> None:
    name, images = unique_name(), [Image.random() for _ in range(6)]
    for img in images:
        img.push_blobs(client, name)
    statuses: list[int] = []

    def put(img: Image) -> None:
        statuses.append(client.put_manifest(name, "contended", img.manifest, img.media_type).status)

    threads = [threading.Thread(target=put, args=(img,)) for img in images]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert statuses == [201] * len(images)
    got = client.get_manifest(name, "contended")
    assert got.status == 200
    assert got.header("Docker-Content-Digest") in {img.digest for img in images}
    assert got.body in {img.manifest for img in images}   # one whole manifest, never a mix


def wait_until_not_visible(client: Client, name: str, digest: str) -> None:
    """HEAD the blob for a while: it must never appear (the server may still be reading the dead socket)."""
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        resp = client.request("HEAD", f"/v2/{name}/blobs/{digest}")
        assert resp.status == 404, resp
        time.sleep(0.2)


def test_client_disconnecting_mid_put_leaves_no_blob(registry: Target) -> None:
    client = registry.client
    name, data = unique_name(), secrets.token_bytes(1024 * 1024)
    digest = sha256(data)
    start = client.start_upload(name)
    path = client.relative(with_query(start.header("Location") or "", digest=digest))
    head = (f"PUT {path} HTTP/1.1\r\nHost: {client.host}:{client.port}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n\r\n").encode()
    raw_request_then_close(client.host, client.port, head, data[: len(data) // 2])
    wait_until_not_visible(client, name, digest)
    resp = client.request("GET", f"/v2/{name}/blobs/{digest}")
    assert resp.status == 404 and "BLOB_UNKNOWN" in resp.error_codes(), resp
    # and the same digest can still be pushed whole afterwards
    client.push_blob(name, data)
    assert client.request("GET", f"/v2/{name}/blobs/{digest}").body == data


def test_client_disconnecting_mid_single_post_leaves_no_blob(registry: Target) -> None:
    client = registry.client
    name, data = unique_name(), secrets.token_bytes(1024 * 1024)
    digest = sha256(data)
    client.push_blob(name, b"repository exists")
    head = (f"POST /v2/{name}/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: {client.host}:{client.port}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n\r\n").encode()
    raw_request_then_close(client.host, client.port, head, data[: len(data) // 3])
    wait_until_not_visible(client, name, digest)


def test_client_disconnecting_mid_patch_keeps_the_upload_consistent(registry: Target) -> None:
    client = registry.client
    name, data = unique_name(), secrets.token_bytes(256 * 1024)
    start = client.start_upload(name)
    location = client.relative(start.header("Location") or "")
    head = (f"PATCH {location} HTTP/1.1\r\nHost: {client.host}:{client.port}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n\r\n").encode()
    raw_request_then_close(client.host, client.port, head, data[:1000])
    wait_until_not_visible(client, name, sha256(data))
    # whatever the session kept, finishing it with the claimed digest cannot succeed with wrong bytes
    status = client.request("GET", location)
    assert status.status in (204, 404), status
    if status.status == 204:
        done = client.request("PUT", with_query(status.header("Location") or location, digest=sha256(data)), b"")
        assert done.status in (400, 404, 416), done
    assert client.request("HEAD", f"/v2/{name}/blobs/{sha256(data)}").status == 404
