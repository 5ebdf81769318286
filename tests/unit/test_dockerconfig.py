"""config.json as the docker CLI keeps it: auths, the Docker Hub key, mode 0600, other keys kept, helpers."""

from __future__ import annotations

import base64
import json
import os
import stat
import textwrap

import pytest

from portside.cli import dockerconfig


@pytest.fixture
def config_dir(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    return tmp_path


def test_store_get_remove_keep_other_keys(config_dir) -> None:  # type: ignore[no-untyped-def]
    (config_dir / "config.json").write_text(json.dumps({"psFormat": "{{.ID}}", "auths": {}}))
    dockerconfig.store_credentials("reg.example:5000", "u", "p:w")
    dockerconfig.store_credentials(dockerconfig.server_key("docker.io"), "hub", "pw")
    doc = json.loads((config_dir / "config.json").read_text())
    assert doc["psFormat"] == "{{.ID}}"
    assert doc["auths"] == {"reg.example:5000": {"auth": base64.b64encode(b"u:p:w").decode()},
                            "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw").decode()}}
    assert stat.S_IMODE(os.stat(config_dir / "config.json").st_mode) == 0o600
    assert dockerconfig.get_credentials("reg.example:5000") == {
        "serveraddress": "reg.example:5000", "username": "u", "password": "p:w"}
    header = json.loads(base64.urlsafe_b64decode(dockerconfig.registry_auth_header("docker.io")))
    assert (header["username"], header["password"]) == ("hub", "pw")
    assert dockerconfig.registry_auth_header("other:1") == "e30="
    assert dockerconfig.remove_credentials("reg.example:5000") is True
    assert dockerconfig.remove_credentials("reg.example:5000") is False
    assert list(json.loads((config_dir / "config.json").read_text())["auths"]) == ["https://index.docker.io/v1/"]


def test_keys_written_as_urls_are_found(config_dir) -> None:  # type: ignore[no-untyped-def]
    (config_dir / "config.json").write_text(json.dumps(
        {"auths": {"https://reg.example:5000/v2/": {"auth": base64.b64encode(b"a:b").decode()}}}))
    assert dockerconfig.get_credentials("reg.example:5000")["password"] == "b"


def test_credential_helper(config_dir, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    store = tmp_path / "helper-store.json"
    helper = tmp_path / "bin" / "docker-credential-fake"
    helper.parent.mkdir()
    helper.write_text(textwrap.dedent(f"""\
        #!/usr/bin/env python3
        import json, sys
        path = {str(store)!r}
        try:
            data = json.load(open(path))
        except FileNotFoundError:
            data = {{}}
        action, body = sys.argv[1], sys.stdin.read()
        if action == "store":
            doc = json.loads(body); data[doc["ServerURL"]] = [doc["Username"], doc["Secret"]]
        elif action == "get":
            if body not in data:
                print("credentials not found in native keychain"); sys.exit(1)
            print(json.dumps({{"ServerURL": body, "Username": data[body][0], "Secret": data[body][1]}}))
        elif action == "erase":
            data.pop(body, None)
        json.dump(data, open(path, "w"))
        """))
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helper.parent}:{os.environ['PATH']}")
    (config_dir / "config.json").write_text(json.dumps({"credsStore": "fake"}))
    dockerconfig.store_credentials("reg.example:5000", "h", "secret")
    assert json.loads((config_dir / "config.json").read_text()) == {"credsStore": "fake"}  # nothing in the file
    assert dockerconfig.get_credentials("reg.example:5000")["password"] == "secret"
    assert dockerconfig.get_credentials("unknown:1") == {}
    dockerconfig.remove_credentials("reg.example:5000")
    assert json.loads(store.read_text()) == {}
