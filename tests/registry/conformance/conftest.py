"""The registries the conformance suite runs against.

Every test takes the ``registry`` fixture, parametrized over:

* ``distribution``: the CNCF Distribution registry (Debian's ``docker-registry``
  2.8.2) on 127.0.0.1:<free port>, a temporary storage root, deletes enabled;
* ``portside``: ``python -m portside registry serve --addr 127.0.0.1:PORT --root DIR``,
  skipped while this checkout has no ``portside registry serve``;
* ``external``, instead of both, when ``REGISTRY_CONFORMANCE_URL`` names a
  running registry (``http://host:port``); ``REGISTRY_CONFORMANCE_LACKS`` lists
  the optional features it lacks (comma-separated names of FEATURES).

A test of an optional feature carries ``@pytest.mark.needs("feature")``; it is
skipped, with the reason, on a registry known to lack it. The reasons for
Distribution 2.8.2 are in targets.DISTRIBUTION_LACKS (and docs/registry-conformance.md).
Each test uses repositories of its own (`ociclient.unique_name`), so one
registry process serves the whole session.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from ociclient import Client
from registries import free_port, start_registry
from targets import DISTRIBUTION_LACKS, FEATURES, Target

URL_ENV = "REGISTRY_CONFORMANCE_URL"
LACKS_ENV = "REGISTRY_CONFORMANCE_LACKS"

def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs(feature): an optional registry feature (see FEATURES in "
                            "tests/registry/conformance/conftest.py); skipped where known missing")


def _params() -> list[str]:
    return ["external"] if os.environ.get(URL_ENV) else ["distribution", "portside"]


def _wait_for_v2(client: Client, proc: subprocess.Popen[bytes], log_path: str, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(log_path, errors="replace") as f:
                raise AssertionError(f"{what} exited {proc.returncode}: {f.read()[-3000:]}")
        try:
            if client.request("GET", "/v2/").status in (200, 401):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{what} did not answer GET /v2/ in 30 s")


def _portside_has_registry_serve() -> bool:
    proc = subprocess.run([sys.executable, "-m", "portside", "registry", "serve", "--help"],
                          capture_output=True, timeout=60, check=False)
    return proc.returncode == 0


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session", params=_params())
def registry_target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    kind = request.param
    if kind == "external":
        lacks = {f.strip(): f"{LACKS_ENV} says so" for f in os.environ.get(LACKS_ENV, "").split(",") if f.strip()}
        yield Target("external", Client.from_url(os.environ[URL_ENV]), lacks)
        return
    base = str(tmp_path_factory.mktemp(f"registry-{kind}"))
    if kind == "distribution":
        reg = start_registry(base)
        try:
            host, dport = reg.host.rsplit(":", 1)
            yield Target("distribution", Client(host, int(dport)), dict(DISTRIBUTION_LACKS), reg)
        finally:
            reg.stop()
        return
    if not _portside_has_registry_serve():
        pytest.skip("`portside registry serve` does not exist on this branch yet")
    port = free_port()
    root, log_path = os.path.join(base, "root"), os.path.join(base, "serve.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "portside", "registry", "serve",
                                 "--addr", f"127.0.0.1:{port}", "--root", root],
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        client = Client("127.0.0.1", port)
        _wait_for_v2(client, proc, log_path, "portside registry serve")
        yield Target("portside", client)
    finally:
        _stop(proc)


@pytest.fixture
def registry(registry_target: Target, request: pytest.FixtureRequest) -> Target:
    for marker in request.node.iter_markers("needs"):
        for feature in marker.args:
            assert feature in FEATURES, f"unknown feature {feature!r}: add it to FEATURES"
            if feature in registry_target.lacks:
                pytest.skip(f"{registry_target.name} lacks {feature}: {registry_target.lacks[feature]}")
    return registry_target


@pytest.fixture
def client(registry: Target) -> Client:
    return registry.client
