"""Pull and login against real registries on loopback: Distribution (open, and TLS + htpasswd),
a Bearer token front, images pushed by skopeo. Nothing leaves the machine: docker.io is
mirrored to the open registry, and every other name is 127.0.0.1:<port>."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from helpers import Daemon, remove_containers, start_daemon, stop_daemon, stop_monitor
from registries import Registry, TokenProxy, make_tls, skopeo_push, start_registry

pytestmark = [pytest.mark.root, pytest.mark.peers]


@dataclass
class World:
    base: str
    daemon: Daemon
    registry: Registry          # open, plain http, mirrors docker.io
    certs_dir: str
    image_id: str               # the busybox image as imported before the push
    digest: str                 # the manifest digest skopeo pushed
    archive: str                # docker-archive of the image


@pytest.fixture(scope="module")
def world(busybox_tar: str) -> Iterator[World]:
    base = tempfile.mkdtemp(prefix="portside-dist-")
    registry = start_registry(base)
    certs_dir = os.path.join(base, "certs.d")
    os.makedirs(certs_dir)
    daemon = start_daemon(os.path.join(base, "root"), os.path.join(base, "run", "p.sock"),
                          os.path.join(base, "daemon.log"),
                          ("--registry-mirror", f"http://{registry.host}", "--registry-certs-dir", certs_dir))
    daemon.env = {"DOCKER_CONFIG": os.path.join(base, "docker-config")}
    try:
        image_id = daemon.cli("import", "--change", 'CMD ["sh"]', busybox_tar, "busybox:latest").stdout.decode().strip()
        archive = os.path.join(base, "busybox.tar")
        daemon.cli("save", "-o", archive, "busybox:latest")
        daemon.cli("rmi", "busybox:latest")
        digest = skopeo_push(f"docker-archive:{archive}", registry, "library/busybox:latest")
        skopeo_push(f"docker-archive:{archive}", registry, "test/bb:1")
        yield World(base, daemon, registry, certs_dir, image_id, digest, archive)
    finally:
        remove_containers(daemon)
        stop_daemon(daemon)
        stop_monitor(daemon)
        registry.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def w(world: World) -> Iterator[World]:
    yield world
    remove_containers(world.daemon)
    for image in world.daemon.api.json("GET", "/images/json"):
        world.daemon.api.request("DELETE", f"/images/{image['Id']}?force=1")


def pull(daemon: Daemon, image: str, tag: str, auth: dict[str, str] | None = None) -> tuple[int, list[dict]]:
    headers = {"X-Registry-Auth": base64.urlsafe_b64encode(json.dumps(auth).encode()).decode()} if auth else {}
    status, _, body = daemon.api.request("POST", f"/images/create?fromImage={image}&tag={tag}", headers=headers)
    if status != 200:
        return status, [json.loads(body)]
    return status, [json.loads(line) for line in body.splitlines() if line.strip()]


def statuses(messages: list[dict]) -> list[str]:
    return [m.get("status", "") for m in messages]


def manifest_layers(reg: Registry, name: str, ref: str) -> list[str]:
    req = urllib.request.Request(f"http://{reg.host}/v2/{name}/manifests/{ref}",
                                 headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return [layer["digest"] for layer in json.load(r)["layers"]]


def test_pull_through_mirror_gives_the_pushed_image_and_runs(w: World) -> None:
    status, msgs = pull(w.daemon, "busybox", "latest")
    assert status == 200, msgs
    assert not any("error" in m for m in msgs), msgs
    layer_id = manifest_layers(w.registry, "library/busybox", "latest")[0].split(":")[1][:12]
    assert msgs[0] == {"status": "Pulling from library/busybox", "id": "latest"}
    assert {"status": "Pulling fs layer", "progressDetail": {}, "id": layer_id} in msgs
    downloading = [m for m in msgs if m.get("status") == "Downloading"]
    assert downloading and downloading[-1]["progressDetail"]["current"] == downloading[-1]["progressDetail"]["total"]
    assert downloading[-1]["progress"].startswith("[" + "=" * 50 + ">]")
    for state in ("Verifying Checksum", "Download complete", "Pull complete"):
        assert {"status": state, "progressDetail": {}, "id": layer_id} in msgs
    assert statuses(msgs)[-2:] == [f"Digest: {w.digest}", "Status: Downloaded newer image for busybox:latest"]

    image = w.daemon.api.json("GET", "/images/busybox/json")
    assert image["Id"] == w.image_id  # the same config, so the same image, whatever skopeo compressed
    assert image["RepoTags"] == ["busybox:latest"]
    assert image["RepoDigests"] == [f"busybox@{w.digest}"]
    assert w.daemon.cli("run", "--rm", "busybox", "echo", "pulled").stdout == b"pulled\n"
    # kept as a loaded layer is: save writes it back, and its diff ID checks out
    saved = os.path.join(w.base, "pulled.tar")
    w.daemon.cli("save", "-o", saved, "busybox")
    assert os.path.getsize(saved) > 1 << 20

    status, again = pull(w.daemon, "busybox", "latest")
    assert {"status": "Already exists", "progressDetail": {}, "id": layer_id} in again
    assert statuses(again)[-1] == "Status: Image is up to date for busybox:latest"
    assert not any(m.get("status") == "Downloading" for m in again)


def test_pull_by_digest_and_unknown_names(w: World) -> None:
    name = f"{w.registry.host}/test/bb"
    status, msgs = pull(w.daemon, name, w.digest)
    assert status == 200 and statuses(msgs)[-1] == f"Status: Downloaded newer image for {name}@{w.digest}", msgs
    assert w.daemon.api.json("GET", f"/images/{name}@{w.digest}/json")["Id"] == w.image_id

    status, msgs = pull(w.daemon, "busybox", "nope")
    assert (status, msgs) == (404, [{"message": "manifest for busybox:nope not found: manifest unknown: "
                                                "manifest unknown"}])
    status, msgs = pull(w.daemon, f"{w.registry.host}/no/such", "latest")
    assert status == 404 and f"{w.registry.host}/no/such" in msgs[0]["message"], msgs
    status, msgs = pull(w.daemon, name, "sha256:" + "0" * 64)
    assert status == 404, msgs


def test_distribution_inspect(w: World) -> None:
    doc = w.daemon.api.json("GET", f"/distribution/{w.registry.host}/test/bb:1/json")
    assert doc["Descriptor"]["digest"] == w.digest
    assert doc["Platforms"] == [{"architecture": "amd64", "os": "linux"}]
    assert w.daemon.api.json("GET", "/images/json") == []  # inspecting pulls nothing
    config = w.daemon.api.json("GET", "/info")["RegistryConfig"]
    assert config["Mirrors"] == [f"http://{w.registry.host}/"]
    assert config["IndexConfigs"]["docker.io"]["Mirrors"] == [f"http://{w.registry.host}/"]
    assert config["InsecureRegistryCIDRs"] == ["127.0.0.0/8"]


def test_tampered_blob_fails_and_stores_nothing(w: World) -> None:
    reg = start_registry(w.base)
    try:
        skopeo_push(f"docker-archive:{w.archive}", reg, "t/bb:1")
        layer = manifest_layers(reg, "t/bb", "1")[0]
        path = reg.blob_path(layer)
        with open(path, "r+b") as f:
            f.seek(os.path.getsize(path) // 2)
            byte = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([byte[0] ^ 0xFF]))
        status, msgs = pull(w.daemon, f"{reg.host}/t/bb", "1")
    finally:
        reg.stop()
    assert status == 200
    assert msgs[-1] == {"errorDetail": {"message": f"filesystem layer verification failed for digest {layer}"},
                        "error": f"filesystem layer verification failed for digest {layer}"}
    assert w.daemon.api.json("GET", "/images/json") == []
    root = w.daemon.root
    assert os.listdir(os.path.join(root, "content", "blobs", "sha256")) == []
    assert os.listdir(os.path.join(root, "content", "ingest")) == []
    assert os.listdir(os.path.join(root, "snapshots", "layers")) == []


def test_tls_registry_with_basic_auth(w: World) -> None:
    tls_dir = os.path.join(w.base, "tls")
    os.makedirs(tls_dir, exist_ok=True)
    tls = make_tls(tls_dir)
    reg = start_registry(w.base, tls=tls, user="bob", password="s3cret")
    ca_dir = os.path.join(w.certs_dir, reg.host)
    try:
        skopeo_push(f"docker-archive:{w.archive}", reg, "private/bb:1")
        # a CA in certs.d that did not sign the server's certificate: refused, even on loopback
        os.makedirs(ca_dir)
        other = os.path.join(w.base, "other-ca")
        os.makedirs(other)
        shutil.copy(make_tls(other).ca, os.path.join(ca_dir, "ca.crt"))
        status, msgs = pull(w.daemon, f"{reg.host}/private/bb", "1", {"username": "bob", "password": "s3cret"})
        assert status == 503 and "certificate" in msgs[0]["message"], msgs
        shutil.copy(tls.ca, os.path.join(ca_dir, "ca.crt"))

        status, _, body = w.daemon.api.request(
            "POST", "/auth", {"username": "bob", "password": "wrong", "serveraddress": reg.host})
        assert status == 401, body
        assert json.loads(body)["message"] == (f"login attempt to https://{reg.host}/v2/ failed with status: "
                                               "401 Unauthorized")
        assert w.daemon.api.json("POST", "/auth", {"username": "bob", "password": "s3cret",
                                                   "serveraddress": reg.host}) == {
            "Status": "Login Succeeded", "IdentityToken": ""}

        status, msgs = pull(w.daemon, f"{reg.host}/private/bb", "1")
        assert (status, msgs) == (500, [{"message": f'Get "https://{reg.host}/v2/private/bb/manifests/1": '
                                                    "no basic auth credentials"}])

        # the CLI: login files the credentials as docker does, pull sends them, logout forgets them
        config_dir = w.daemon.env["DOCKER_CONFIG"]
        os.makedirs(config_dir, exist_ok=True)
        with open(os.path.join(config_dir, "config.json"), "w") as f:
            json.dump({"psFormat": "{{.ID}}", "auths": {"other.example:5000": {"auth": "eDp5"}}}, f)
        out = w.daemon.cli("login", "-u", "bob", "--password-stdin", reg.host, input=b"s3cret\n")
        assert out.stdout == b"Login Succeeded\n"
        path = os.path.join(config_dir, "config.json")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with open(path) as f:
            saved = json.load(f)
        assert saved["psFormat"] == "{{.ID}}"
        assert saved["auths"] == {"other.example:5000": {"auth": "eDp5"},
                                  reg.host: {"auth": base64.b64encode(b"bob:s3cret").decode()}}
        out = w.daemon.cli("pull", f"{reg.host}/private/bb:1")
        assert out.stdout.decode().splitlines()[-1] == f"{reg.host}/private/bb:1"
        assert w.daemon.api.json("GET", f"/images/{reg.host}/private/bb:1/json")["Id"] == w.image_id
        assert w.daemon.cli("logout", reg.host).stdout.decode() == f"Removing login credentials for {reg.host}\n"
        with open(path) as f:
            assert reg.host not in json.load(f)["auths"]
        bad = w.daemon.cli("login", "-u", "bob", "-p", "nope", reg.host, check=False)
        assert bad.returncode == 1 and b"401 Unauthorized" in bad.stderr, bad
    finally:
        reg.stop()
        shutil.rmtree(ca_dir, ignore_errors=True)


def test_bearer_tokens_refresh_rate_limit_and_resume(w: World) -> None:
    # each token is good for two requests: the pull needs another one mid-way;
    # the manifest first answers 429; the layer's connection drops half-way
    proxy = TokenProxy(w.registry.host, uses=2, fail_429_once=True, drop_blob_once=True).start()
    try:
        status, msgs = pull(w.daemon, f"{proxy.host}/library/busybox", "latest")
        assert status == 200 and not any("error" in m for m in msgs), msgs
        assert statuses(msgs)[-2] == f"Digest: {w.digest}"
        assert proxy.tokens_issued >= 2 and proxy.refused >= 2
        assert proxy.fail_429_once is False and proxy.drop_blob_once is False
        assert w.daemon.api.json("GET", f"/images/{proxy.host}/library/busybox/json")["Id"] == w.image_id

        ok = w.daemon.api.json("POST", "/auth", {"username": "alice", "password": "wonderland",
                                                 "serveraddress": proxy.host})
        assert ok["Status"] == "Login Succeeded"
        status, _, body = w.daemon.api.request("POST", "/auth", {"username": "alice", "password": "x",
                                                                 "serveraddress": proxy.host})
        assert status == 401 and json.loads(body)["message"] == "unauthorized: incorrect username or password"
    finally:
        proxy.stop()


def test_run_pulls_a_missing_image(w: World) -> None:
    name = f"{w.registry.host}/test/bb:1"
    never = w.daemon.cli("run", "--rm", "--pull", "never", name, "true", check=False)
    assert never.returncode == 125 and b"No such image" in never.stderr, never
    out = w.daemon.cli("run", "--rm", name, "echo", "hi")
    assert out.stdout == b"hi\n"
    err = out.stderr.decode()
    assert err.startswith(f"Unable to find image '{name}' locally\n1: Pulling from {w.registry.host}/test/bb\n"), err
    assert f"Status: Downloaded newer image for {name}" in err
    again = w.daemon.cli("run", "--rm", "--pull", "always", name, "true")
    assert "Unable to find" not in again.stderr.decode()
    assert f"Status: Image is up to date for {name}" in again.stderr.decode()


@contextlib.contextmanager
def trusted_tls_registry(w: World, name: str, user: str, password: str) -> Iterator[Registry]:
    """A Distribution registry behind TLS and htpasswd, its CA in the daemon's certs.d."""
    tls_dir = os.path.join(w.base, name)
    os.makedirs(tls_dir, exist_ok=True)
    tls = make_tls(tls_dir)
    reg = start_registry(w.base, tls=tls, user=user, password=password)
    ca_dir = os.path.join(w.certs_dir, reg.host)
    try:
        os.makedirs(ca_dir)
        shutil.copy(tls.ca, os.path.join(ca_dir, "ca.crt"))
        yield reg
    finally:
        reg.stop()
        shutil.rmtree(ca_dir, ignore_errors=True)


def push(daemon: Daemon, name: str, tag: str, auth: dict[str, str] | None = None) -> list[dict]:
    headers = {"X-Registry-Auth": base64.urlsafe_b64encode(json.dumps(auth).encode()).decode()} if auth else {}
    status, _, body = daemon.api.request("POST", f"/images/{name}/push?tag={tag}", headers=headers)
    assert status == 200, body
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def test_push_then_skopeo_and_pull_agree(w: World, busybox_tar: str) -> None:
    name = f"{w.registry.host}/pushed/bb"
    image_id = w.daemon.cli("import", "--change", 'CMD ["sh"]', "--change", "ENV PUSHED=1", busybox_tar,
                            f"{name}:1").stdout.decode().strip()
    diff_id = w.daemon.api.json("GET", f"/images/{name}:1/json")["RootFS"]["Layers"][0]
    msgs = push(w.daemon, name, "1")
    assert not any("error" in m for m in msgs), msgs
    short = diff_id.split(":")[1][:12]
    assert msgs[0] == {"status": f"The push refers to repository [{name}]"}
    assert {"status": "Preparing", "progressDetail": {}, "id": short} in msgs
    assert {"status": "Pushed", "progressDetail": {}, "id": short} in msgs
    assert any(m.get("status") == "Pushing" and m["progressDetail"]["current"] > 0 for m in msgs)
    digest = msgs[-1]["aux"]["Digest"]
    assert msgs[-2]["status"] == f"1: digest: {digest} size: {msgs[-1]['aux']['Size']}"
    assert w.daemon.api.json("GET", f"/images/{name}:1/json")["RepoDigests"] == [f"{name}@{digest}"]

    # skopeo copies it back: the manifest and every blob are the bytes their digests name
    out = os.path.join(w.base, "skopeo-dir")
    subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{name}:1", f"dir:{out}"],
                   check=True, capture_output=True, timeout=120)
    with open(os.path.join(out, "manifest.json"), "rb") as f:
        manifest = f.read()
    assert "sha256:" + hashlib.sha256(manifest).hexdigest() == digest
    doc = json.loads(manifest)
    assert doc["config"]["digest"] == image_id
    for desc in [doc["config"], *doc["layers"]]:
        with open(os.path.join(out, desc["digest"].split(":")[1]), "rb") as f:
            assert "sha256:" + hashlib.sha256(f.read()).hexdigest() == desc["digest"]

    # pushing again sends nothing; a second repository mounts the layer instead of uploading it
    again = push(w.daemon, name, "1")
    assert {"status": "Layer already exists", "progressDetail": {}, "id": short} in again
    w.daemon.cli("tag", f"{name}:1", f"{w.registry.host}/elsewhere/bb:2")
    mounted = push(w.daemon, f"{w.registry.host}/elsewhere/bb", "2")
    assert {"status": "Mounted from pushed/bb", "progressDetail": {}, "id": short} in mounted, mounted
    assert mounted[-1]["aux"]["Digest"] == digest

    # pulled back after removal: the same image ID and RepoDigest
    w.daemon.cli("rmi", f"{name}:1", f"{w.registry.host}/elsewhere/bb:2")
    assert w.daemon.api.json("GET", "/images/json") == []
    status, msgs = pull(w.daemon, name, digest)
    assert status == 200 and not any("error" in m for m in msgs), msgs
    image = w.daemon.api.json("GET", f"/images/{name}@{digest}/json")
    assert image["Id"] == image_id and image["RepoDigests"] == [f"{name}@{digest}"]


def test_push_to_tls_registry_needs_login(w: World, busybox_tar: str) -> None:
    with trusted_tls_registry(w, "tls-push", "dan", "pw") as reg:
        name = f"{reg.host}/team/app"
        w.daemon.cli("import", busybox_tar, f"{name}:v1")
        refused = push(w.daemon, name, "v1")
        assert "error" in refused[-1] and "no basic auth credentials" in refused[-1]["error"], refused
        w.daemon.cli("login", "-u", "dan", "-p", "pw", reg.host)
        out = w.daemon.cli("push", f"{name}:v1").stdout.decode().splitlines()
        assert out[0] == f"The push refers to repository [{name}]"
        assert out[-1].startswith("v1: digest: sha256:")
        w.daemon.cli("rmi", f"{name}:v1")
        assert w.daemon.cli("pull", "-q", f"{name}:v1").stdout.decode() == f"{name}:v1\n"
        missing = w.daemon.cli("push", f"{name}:nope", check=False)
        assert missing.returncode == 1
        assert missing.stderr.decode().strip() == (
            f"Error response from daemon: An image does not exist locally with the tag: {name}")
        w.daemon.cli("logout", reg.host)


def _manifest(reg: Registry, name: str, ref: str) -> bytes:
    req = urllib.request.Request(f"http://{reg.host}/v2/{name}/manifests/{ref}",
                                 headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read()


def test_manifest_list_gives_the_platform_asked(w: World, busybox_tar: str) -> None:
    other_id = w.daemon.cli("import", "--change", 'CMD ["echo", "arm"]', busybox_tar,
                            "arm:1").stdout.decode().strip()
    archive = os.path.join(w.base, "arm.tar")
    w.daemon.cli("save", "-o", archive, "arm:1")
    w.daemon.cli("rmi", "arm:1")
    skopeo_push(f"docker-archive:{archive}", w.registry, "multi/bb:arm")
    skopeo_push(f"docker-archive:{w.archive}", w.registry, "multi/bb:amd")
    entries = []
    for tag, arch, variant in (("amd", "amd64", ""), ("arm", "arm64", "v8")):
        data = _manifest(w.registry, "multi/bb", tag)
        platform = {"architecture": arch, "os": "linux", **({"variant": variant} if variant else {})}
        entries.append({"mediaType": json.loads(data)["mediaType"], "size": len(data),
                        "digest": "sha256:" + hashlib.sha256(data).hexdigest(), "platform": platform})
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
                        "manifests": entries}).encode()
    put = urllib.request.Request(f"http://{w.registry.host}/v2/multi/bb/manifests/latest", data=index, method="PUT",
                                 headers={"Content-Type": "application/vnd.docker.distribution.manifest.list.v2+json"})
    urllib.request.urlopen(put, timeout=10).close()
    index_digest = "sha256:" + hashlib.sha256(index).hexdigest()
    name = f"{w.registry.host}/multi/bb"

    status, msgs = pull(w.daemon, name, "latest")
    assert status == 200 and statuses(msgs)[-2] == f"Digest: {index_digest}", msgs
    image = w.daemon.api.json("GET", f"/images/{name}:latest/json")
    assert image["Id"] == w.image_id and image["RepoDigests"] == [f"{name}@{index_digest}"]

    status, _, body = w.daemon.api.request("POST", f"/images/create?fromImage={name}&tag=latest&platform=linux/arm64")
    assert status == 200 and b'"error"' not in body, body
    assert w.daemon.api.json("GET", f"/images/{name}:latest/json")["Id"] == other_id

    status, _, body = w.daemon.api.request("POST", f"/images/create?fromImage={name}&tag=latest&platform=linux/s390x")
    assert (status, json.loads(body)) == (404, {"message": "no matching manifest for linux/s390x in the manifest "
                                                           "list entries"})
    doc = w.daemon.api.json("GET", f"/distribution/{name}:latest/json")
    assert doc["Descriptor"]["digest"] == index_digest
    assert doc["Platforms"] == [{"architecture": "amd64", "os": "linux"},
                                {"architecture": "arm64", "os": "linux", "variant": "v8"}]


def test_schema1_and_bad_manifests_are_refused(w: World) -> None:
    schema1 = json.dumps({"schemaVersion": 1, "name": "old/img", "tag": "1", "fsLayers": [], "history": []}).encode()
    good = _manifest(w.registry, "library/busybox", "latest")
    proxy = TokenProxy(w.registry.host, overrides={
        "/v2/old/img/manifests/1": ("application/vnd.docker.distribution.manifest.v1+prettyjws", schema1),
        # a manifest asked for by digest whose bytes are not that digest
        "/v2/library/busybox/manifests/sha256:" + "1" * 64: ("application/vnd.docker.distribution.manifest.v2+json",
                                                              good),
    }).start()
    try:
        status, msgs = pull(w.daemon, f"{proxy.host}/old/img", "1")
        assert status == 400 and msgs[0]["message"].startswith(
            "[DEPRECATION NOTICE] Docker Image Format v1 and Docker Image manifest version 2, schema 1 support "
            "has been removed."), msgs
        status, msgs = pull(w.daemon, f"{proxy.host}/library/busybox", "sha256:" + "1" * 64)
        assert (status, msgs) == (500, [{"message": "manifest verification failed for digest sha256:" + "1" * 64}])
    finally:
        proxy.stop()
    assert w.daemon.api.json("GET", "/images/json") == []


def _build(daemon: Daemon, dockerfile: str, query: str = "", headers: dict[str, str] | None = None) -> list[dict]:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile.encode())
        tar.addfile(info, io.BytesIO(dockerfile.encode()))
    status, _, body = daemon.api.request("POST", "/build?" + query, buf.getvalue(),
                                         {"Content-Type": "application/x-tar", **(headers or {})})
    assert status == 200, body
    return [json.loads(line) for line in body.splitlines() if line.strip()]


def test_build_pulls_missing_base_images(w: World) -> None:
    """FROM and COPY --from of images that are not here: pulled from their registry, progress in the stream."""
    name = f"{w.registry.host}/test/bb:1"
    msgs = _build(w.daemon, f"FROM {name}\nRUN echo built > /built\nCOPY --from=busybox /bin/busybox /copied\n",
                  "t=pulled-base")
    assert not any("error" in m for m in msgs), msgs
    assert {"status": f"Pulling from {w.registry.host}/test/bb", "id": "1"} in msgs
    assert {"status": f"Status: Downloaded newer image for {name}"} in msgs
    assert {"status": "Status: Downloaded newer image for busybox:latest"} in msgs  # docker.io, through the mirror
    assert w.daemon.api.json("GET", f"/images/{name}/json")["Id"] == w.image_id
    assert w.daemon.cli("run", "--rm", "pulled-base", "cat", "/built").stdout == b"built\n"
    events = w.daemon.api.request("GET", f"/events?since=0&until={int(time.time()) + 1}&filters="
                                  + urllib.parse.quote('{"event":["pull"]}'))[2]
    assert {json.loads(e)["Actor"]["Attributes"]["name"] for e in events.splitlines()} >= {name, "busybox:latest"}

    # --pull: pulled again although it is here; nothing new, so "up to date"
    msgs = _build(w.daemon, f"FROM {name}\nRUN echo built > /built\n", "pull=1&t=pulled-base")
    assert {"status": f"Status: Image is up to date for {name}"} in msgs, msgs
    assert any(" ---> Using cache" in m.get("stream", "") for m in msgs)

    # the CLI shows the pull as docker's does, and quiet hides it
    w.daemon.cli("rmi", "pulled-base", name)
    ctx = os.path.join(w.base, "pull-ctx")
    os.makedirs(ctx, exist_ok=True)
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write(f"FROM {name}\nCMD [\"true\"]\n")
    out = w.daemon.cli("build", "-t", "pulled-cli", ctx).stdout.decode()
    assert f"Step 1/2 : FROM {name}\n1: Pulling from {w.registry.host}/test/bb\n" in out, out
    assert f"Status: Downloaded newer image for {name}\n" in out
    quiet = w.daemon.cli("build", "-q", "--pull", ctx).stdout.decode()
    assert quiet.startswith("sha256:") and "Pulling" not in quiet, quiet


def test_build_with_a_base_nowhere_fails_and_tags_nothing(w: World) -> None:
    name = f"{w.registry.host}/nope/missing:1"
    msgs = _build(w.daemon, f"FROM {name}\nRUN true\n", "t=never-made")
    assert "error" in msgs[-1] and "nope/missing" in msgs[-1]["error"], msgs
    status, _, _ = w.daemon.api.request("GET", "/images/never-made/json")
    assert status == 404


def test_build_pulls_with_the_credentials_of_x_registry_config(w: World) -> None:
    with trusted_tls_registry(w, "tls-build", "bob", "s3cret") as reg:
        skopeo_push(f"docker-archive:{w.archive}", reg, "private/bb:1")
        dockerfile = f"FROM {reg.host}/private/bb:1\nRUN true\n"
        denied = _build(w.daemon, dockerfile)
        assert "no basic auth credentials" in denied[-1].get("error", ""), denied
        config = {reg.host: {"username": "bob", "password": "s3cret", "serveraddress": reg.host},
                  "https://index.docker.io/v1/": {"username": "someone", "password": "else"}}
        header = base64.urlsafe_b64encode(json.dumps(config).encode()).decode()
        msgs = _build(w.daemon, dockerfile, "t=private-built", {"X-Registry-Config": header})
        assert not any("error" in m for m in msgs), msgs
        assert w.daemon.api.json("GET", f"/images/{reg.host}/private/bb:1/json")["Id"] == w.image_id
        assert w.daemon.api.json("GET", "/images/private-built/json")["Parent"] == w.image_id
        status, _, body = w.daemon.api.request("POST", "/build", b"", {"X-Registry-Config": "bm90IGpzb24"})
        assert status == 400 and b"X-Registry-Config" in body, body
