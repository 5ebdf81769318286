"""``~/.docker/config.json``: registry credentials shared with the docker CLI.

The same file and format as docker's CLI (``$DOCKER_CONFIG/config.json``,
else ``~/.docker/config.json``): ``auths`` maps a server to
``{"auth": base64("user:pass")}`` (or an ``identitytoken``); Docker Hub is
filed under ``https://index.docker.io/v1/``. Other keys are kept as they are;
the file is written to a temporary file with mode 0600 and renamed over the
old one. A ``credsStore``/``credHelpers`` entry is honoured for reading and
writing through ``docker-credential-<helper>``, as docker does.
"""

from __future__ import annotations

import binascii
import os

from portside.cli import jsonwire  # json and subprocess are imported where needed: a build reads this file

DOCKER_HUB_KEY = "https://index.docker.io/v1/"


class ConfigError(Exception):
    pass


def config_path() -> str:
    directory = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(directory, "config.json")


def load() -> dict:  # type: ignore[type-arg]
    path = config_path()
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise ConfigError(f"loading config file: {path}: {e.strerror}") from None
    if not data.strip():
        return {}
    try:
        doc = jsonwire.loads(data)
    except ValueError as e:
        raise ConfigError(f"loading config file: {path}: {e}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"loading config file: {path}: not a JSON object")
    return doc


def save(doc: dict) -> None:  # type: ignore[type-arg]
    path = config_path()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            import json  # pretty-printed, as docker writes it

            json.dump(doc, f, indent="\t")
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def server_key(domain: str) -> str:
    """The key credentials for a registry domain are filed under."""
    if domain in ("docker.io", "index.docker.io", "registry-1.docker.io", DOCKER_HUB_KEY):
        return DOCKER_HUB_KEY
    return domain


def _host_of(key: str) -> str:
    """docker's ConvertToHostname: a key written as a URL names its host."""
    return key.split("://", 1)[-1].split("/", 1)[0]


def _helper(doc: dict, key: str) -> str:  # type: ignore[type-arg]
    helpers = doc.get("credHelpers")
    if isinstance(helpers, dict) and isinstance(helpers.get(_host_of(key)), str):
        return str(helpers[_host_of(key)])
    store = doc.get("credsStore")
    return store if isinstance(store, str) else ""


def get_credentials(domain: str) -> dict[str, str]:
    """The AuthConfig for ``domain`` (empty when not logged in): username/password or identitytoken."""
    key = server_key(domain)
    doc = load()
    helper = _helper(doc, key)
    if helper:
        return _helper_get(helper, key)
    auths = doc.get("auths")
    if not isinstance(auths, dict):
        return {}
    entry = auths.get(key)
    if entry is None:
        entry = next((v for k, v in auths.items() if _host_of(k) == _host_of(key)), None)
    if not isinstance(entry, dict):
        return {}
    out = {"serveraddress": key}
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            user, _, password = binascii.a2b_base64(auth).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise ConfigError(f"invalid auth configuration file: {config_path()}") from None
        out["username"], out["password"] = user, password
    if isinstance(entry.get("identitytoken"), str):
        out["identitytoken"] = entry["identitytoken"]
    return out


def store_credentials(key: str, username: str, password: str) -> None:
    doc = load()
    helper = _helper(doc, key)
    if helper:
        _helper_run(helper, "store", jsonwire.dumps({"ServerURL": key, "Username": username, "Secret": password}))
        return
    auths = doc.get("auths")
    if not isinstance(auths, dict):
        auths = doc["auths"] = {}
    auths[key] = {"auth": binascii.b2a_base64(f"{username}:{password}".encode(), newline=False).decode()}
    save(doc)


def remove_credentials(key: str) -> bool:
    """Forget ``key``; False when there was nothing to forget."""
    doc = load()
    helper = _helper(doc, key)
    if helper:
        _helper_run(helper, "erase", key)
        return True
    auths = doc.get("auths")
    if not isinstance(auths, dict):
        return False
    found = [k for k in auths if k == key or _host_of(k) == _host_of(key)]
    for k in found:
        del auths[k]
    if found:
        save(doc)
    return bool(found)


def registry_auth_header(domain: str) -> str:
    """``X-Registry-Auth`` as the docker CLI sends it: base64url JSON of the AuthConfig, ``e30=`` when none."""
    creds = get_credentials(domain)
    return _urlsafe_b64(jsonwire.dumps(creds)) if creds else "e30="


def registry_config_header() -> str:
    """``X-Registry-Config`` as the docker CLI sends it with a build: every registry's AuthConfig, by server key."""
    doc = load()
    keys: list[str] = []
    for section in ("auths", "credHelpers"):
        entries = doc.get(section)
        if isinstance(entries, dict):
            keys += [k for k in entries if isinstance(k, str) and k not in keys]
    configs = {}
    for key in keys:
        creds = get_credentials(_host_of(key) if key != DOCKER_HUB_KEY else key)
        if creds:
            configs[key] = creds
    return _urlsafe_b64(jsonwire.dumps(configs))


def _urlsafe_b64(text: str) -> str:
    """base64.urlsafe_b64encode (binascii: base64.py imports re, which a build would pay for)."""
    return binascii.b2a_base64(text.encode(), newline=False).translate(bytes.maketrans(b"+/", b"-_")).decode()


def _helper_get(helper: str, key: str) -> dict[str, str]:
    out = _helper_run(helper, "get", key, missing_ok=True)
    if not out:
        return {}
    try:
        doc = jsonwire.loads(out)
    except ValueError:
        return {}
    user, secret = str(doc.get("Username", "")), str(doc.get("Secret", ""))
    if user == "<token>":
        return {"serveraddress": key, "identitytoken": secret}
    return {"serveraddress": key, "username": user, "password": secret}


def _helper_run(helper: str, action: str, data: str, *, missing_ok: bool = False) -> str:
    import subprocess

    try:
        proc = subprocess.run([f"docker-credential-{helper}", action], input=data.encode(), capture_output=True,
                              timeout=60)
    except OSError as e:
        raise ConfigError(f"error getting credentials - err: exec: \"docker-credential-{helper}\": {e.strerror}") \
            from None
    if proc.returncode != 0:
        message = proc.stdout.decode(errors="replace").strip()
        if missing_ok and "credentials not found" in message:
            return ""
        raise ConfigError(f"error {action}ting credentials - err: {message}".replace("geting", "getting"))
    return proc.stdout.decode()
