"""Content discovery: the tags list (with n/last pagination and Link), the referrers API, the catalog.

Spec v1.1 end-8a/8b (tags) and end-12a/12b (referrers); `_catalog` is Docker's
API, not the OCI spec's, and is checked only for what every client relies on.
"""

from __future__ import annotations

import json
import re
import urllib.parse

import pytest

from ociclient import OCI_INDEX, OCI_MANIFEST, Client, Image, descriptor, sha256, unique_name

TAGS = ["a", "b1", "b2", "c", "latest", "v1.0", "v1.1"]


def push_tagged(client: Client, name: str, tags: list[str]) -> Image:
    img = Image.random()
    img.push_blobs(client, name)
    for tag in tags:
        resp = client.put_manifest(name, tag, img.manifest, OCI_MANIFEST)
        assert resp.status == 201, resp
    return img


def next_link(link: str | None) -> str | None:
    """The target of a ``Link: <url>; rel="next"`` header."""
    if not link:
        return None
    m = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', link)
    assert m, f"malformed Link header: {link!r}"
    return m.group(1)


def test_tags_list(client: Client) -> None:
    name = unique_name()
    push_tagged(client, name, list(reversed(TAGS)))
    resp = client.tags(name)
    assert resp.status == 200, resp
    doc = resp.json()
    assert doc["name"] == name
    assert sorted(doc["tags"]) == sorted(TAGS)


@pytest.mark.needs("tags-sorted")
def test_tags_list_is_in_lexical_order(client: Client) -> None:
    name = unique_name()
    push_tagged(client, name, ["b", "a10", "A", "a2", "_x"])
    assert client.tags(name).json()["tags"] == sorted(["b", "a10", "A", "a2", "_x"])


def test_tags_list_of_unknown_repository_is_name_unknown(client: Client) -> None:
    resp = client.tags(unique_name())
    assert resp.status == 404, resp
    assert "NAME_UNKNOWN" in resp.error_codes(), resp


@pytest.mark.needs("tags-pagination")
def test_tags_list_pagination_with_n_and_link(client: Client) -> None:
    name = unique_name()
    push_tagged(client, name, TAGS)
    seen: list[str] = []
    path: str | None = f"/v2/{name}/tags/list?n=3"
    pages = 0
    while path is not None:
        resp = client.request("GET", path)
        assert resp.status == 200, resp
        page = resp.json()["tags"]
        assert 0 < len(page) <= 3, page
        seen += page
        path = next_link(resp.header("Link"))
        pages += 1
        assert pages <= len(TAGS), "the Link header never stops"
    assert seen == sorted(TAGS)
    assert pages == 3


@pytest.mark.needs("tags-pagination")
def test_tags_list_last_starts_after_the_given_tag(client: Client) -> None:
    name = unique_name()
    push_tagged(client, name, TAGS)
    resp = client.tags(name, "n=2&last=b2")
    assert resp.status == 200, resp
    assert resp.json()["tags"] == ["c", "latest"]
    resp = client.tags(name, "last=latest")
    assert resp.json()["tags"] == ["v1.0", "v1.1"]


@pytest.mark.needs("tags-pagination")
def test_tags_list_n_larger_than_the_list_has_no_link(client: Client) -> None:
    name = unique_name()
    push_tagged(client, name, TAGS)
    resp = client.tags(name, "n=100")
    assert resp.json()["tags"] == sorted(TAGS)
    assert resp.header("Link") is None


def test_catalog_lists_pushed_repositories(client: Client) -> None:
    name = unique_name("catalog")
    push_tagged(client, name, ["x"])
    repositories: list[str] = []
    path: str | None = "/v2/_catalog?n=1000"
    while path is not None:
        resp = client.request("GET", path)
        assert resp.status == 200, resp
        repositories += resp.json()["repositories"]
        path = next_link(resp.header("Link"))
    assert name in repositories
    assert repositories == sorted(repositories)


# -- referrers ------------------------------------------------------------------------------


def push_referrer(client: Client, name: str, subject: Image, artifact_type: str,
                  annotations: dict[str, str]) -> tuple[bytes, str]:
    """An artifact manifest whose ``subject`` is ``subject``; returns (body, the OCI-Subject header)."""
    empty = b"{}"
    client.push_blob(name, empty)
    layer = json.dumps({"for": subject.digest, "type": artifact_type}).encode()
    client.push_blob(name, layer)
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
           "config": descriptor("application/vnd.oci.empty.v1+json", empty),
           "layers": [descriptor("application/octet-stream", layer)],
           "subject": {"mediaType": OCI_MANIFEST, "digest": subject.digest, "size": len(subject.manifest)},
           "annotations": annotations}
    body = json.dumps(doc).encode()
    resp = client.put_manifest(name, sha256(body), body, OCI_MANIFEST)
    assert resp.status == 201, resp
    return body, resp.header("OCI-Subject") or ""


@pytest.mark.needs("subject")
def test_manifest_with_subject_answers_oci_subject(client: Client) -> None:
    name, subject = unique_name(), Image.random()
    subject.push(client, name, "v1")
    _, header = push_referrer(client, name, subject, "application/vnd.example.sbom", {"k": "v"})
    assert header == subject.digest


@pytest.mark.needs("subject")
def test_manifest_with_subject_that_does_not_exist_yet_is_accepted(client: Client) -> None:
    # spec v1.1: the subject need not exist (signatures may be pushed before their image)
    name, subject = unique_name(), Image.random()
    client.push_blob(name, b"repository exists")
    _, header = push_referrer(client, name, subject, "application/vnd.example.sig", {})
    assert header == subject.digest


@pytest.mark.needs("referrers")
def test_referrers_list_and_artifact_type_filter(client: Client) -> None:
    name, subject = unique_name(), Image.random()
    subject.push(client, name, "v1")
    sbom, _ = push_referrer(client, name, subject, "application/vnd.example.sbom", {"org.example": "sbom"})
    sig, _ = push_referrer(client, name, subject, "application/vnd.example.sig", {"org.example": "sig"})
    Image.random().push(client, name, "unrelated")

    resp = client.request("GET", f"/v2/{name}/referrers/{subject.digest}")
    assert resp.status == 200, resp
    assert resp.header("Content-Type") == OCI_INDEX
    doc = resp.json()
    assert doc["schemaVersion"] == 2 and doc["mediaType"] == OCI_INDEX
    by_digest = {d["digest"]: d for d in doc["manifests"]}
    assert set(by_digest) == {sha256(sbom), sha256(sig)}
    for body, artifact_type, note in ((sbom, "application/vnd.example.sbom", "sbom"),
                                      (sig, "application/vnd.example.sig", "sig")):
        d = by_digest[sha256(body)]
        assert d["mediaType"] == OCI_MANIFEST
        assert d["size"] == len(body)
        assert d["artifactType"] == artifact_type
        assert d["annotations"] == {"org.example": note}

    query = urllib.parse.urlencode({"artifactType": "application/vnd.example.sig"})
    filtered = client.request("GET", f"/v2/{name}/referrers/{subject.digest}?{query}")
    assert filtered.status == 200, filtered
    assert [d["digest"] for d in filtered.json()["manifests"]] == [sha256(sig)]
    assert filtered.header("OCI-Filters-Applied") == "artifactType"


@pytest.mark.needs("referrers")
def test_referrers_of_a_manifest_without_any_is_an_empty_index(client: Client) -> None:
    name, img = unique_name(), Image.random()
    img.push(client, name, "v1")
    for digest in (img.digest, sha256(b"not even a manifest here")):
        resp = client.request("GET", f"/v2/{name}/referrers/{digest}")
        assert resp.status == 200, resp
        assert resp.header("Content-Type") == OCI_INDEX
        assert resp.json()["manifests"] == []


@pytest.mark.needs("referrers")
def test_referrers_with_an_invalid_digest_is_400(client: Client) -> None:
    name = unique_name()
    Image.random().push(client, name, "v1")
    resp = client.request("GET", f"/v2/{name}/referrers/sha256:nothex")
    # spec v1.1: "a <digest> with an invalid syntax" MUST get 400 (no code is named: any spec error body)
    assert resp.status == 400, resp
    assert resp.error_codes(), resp


@pytest.mark.needs("referrers")
def test_deleted_referrer_leaves_the_list(client: Client) -> None:
    name, subject = unique_name(), Image.random()
    subject.push(client, name, "v1")
    sig, _ = push_referrer(client, name, subject, "application/vnd.example.sig", {})
    resp = client.request("DELETE", f"/v2/{name}/manifests/{sha256(sig)}")
    assert resp.status == 202, resp
    assert client.request("GET", f"/v2/{name}/referrers/{subject.digest}").json()["manifests"] == []
