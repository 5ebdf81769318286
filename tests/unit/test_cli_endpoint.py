"""How the CLI resolves host and TLS settings from flags and environment, as the docker CLI does."""

from __future__ import annotations

import os

import pytest

from portside.cli.endpoint import DEFAULT_UNIX_HOST, Endpoint, EndpointError, resolve


def test_no_host_is_the_default_socket_which_may_be_autostarted() -> None:
    ep, default = resolve([], env={})
    assert (ep.scheme, ep.path, ep.tls, default) == ("unix", DEFAULT_UNIX_HOST[7:], None, True)


def test_flag_then_portside_host_then_docker_host() -> None:
    env = {"PORTSIDE_HOST": "unix:///a.sock", "DOCKER_HOST": "unix:///b.sock"}
    assert resolve(["unix:///c.sock"], env=env)[0].path == "/c.sock"
    assert resolve([], env=env)[0].path == "/a.sock"
    assert resolve([], env={"DOCKER_HOST": "unix:///b.sock"})[0].path == "/b.sock"
    with pytest.raises(EndpointError, match="Specify only one -H"):
        resolve(["unix:///a", "unix:///b"], env={})


def test_tcp_ports_default_as_docker() -> None:
    assert Endpoint("tcp://h").port == 2375
    assert Endpoint("tcp://h:1234").port == 1234
    assert Endpoint("tcp://[::1]:99").address == "::1"
    with pytest.raises(EndpointError):
        Endpoint("tcp://h:notaport")
    with pytest.raises(EndpointError):
        Endpoint("ssh://h")


def test_tls_verify_from_the_environment_and_default_files(tmp_path: os.PathLike[str]) -> None:
    d = str(tmp_path)
    for name in ("ca.pem", "cert.pem", "key.pem"):
        open(os.path.join(d, name), "w").close()
    ep, default = resolve([], env={"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": d})
    # docker: TLS on and no host means tcp://localhost:2376
    assert (ep.scheme, ep.address, ep.port, default) == ("tcp", "localhost", 2376, False)
    assert ep.tls is not None and ep.tls.verify
    assert (ep.tls.cacert, ep.tls.cert, ep.tls.key) == tuple(os.path.join(d, n) for n in ("ca.pem", "cert.pem", "key.pem"))


def test_missing_default_client_files_are_dropped_the_ca_is_not(tmp_path: os.PathLike[str]) -> None:
    ep, _ = resolve(["tcp://h:1"], tlsverify=True, env={"DOCKER_CERT_PATH": str(tmp_path)})
    assert ep.tls is not None
    assert (ep.tls.cacert, ep.tls.cert, ep.tls.key) == (os.path.join(str(tmp_path), "ca.pem"), "", "")


def test_tlsverify_given_at_all_turns_tls_on() -> None:
    ep, _ = resolve(["tcp://h:1"], tlsverify=False, env={})
    assert ep.tls is not None and not ep.tls.verify
    ep, _ = resolve(["tcp://h:1"], env={})
    assert ep.tls is None
    ep, _ = resolve(["tcp://h:1"], tls=True, env={})
    assert ep.tls is not None and not ep.tls.verify


def test_explicit_files_win(tmp_path: os.PathLike[str]) -> None:
    ep, _ = resolve(["tcp://h:1"], tlsverify=True, tlscacert="/x/ca", tlscert="/x/c", tlskey="/x/k",
                    env={"DOCKER_CERT_PATH": str(tmp_path)})
    assert ep.tls is not None and (ep.tls.cacert, ep.tls.cert, ep.tls.key) == ("/x/ca", "/x/c", "/x/k")
