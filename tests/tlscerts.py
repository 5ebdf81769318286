"""Certificates for mutual-TLS tests, made with the ``openssl`` command (Debian's openssl package).

``make_pki(dir)`` writes a CA, a server certificate for 127.0.0.1 and a client
certificate signed by that CA, plus a second CA with a client certificate of
its own (a client the daemon must refuse).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Pki:
    dir: str
    ca: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
    other_ca: str  # a CA the daemon does not trust ...
    other_cert: str  # ... and a client certificate it signed
    other_key: str

    def docker_cert_path(self, name: str = "client") -> str:
        """A directory in docker's DOCKER_CERT_PATH layout: ca.pem, cert.pem, key.pem."""
        path = os.path.join(self.dir, name)
        os.makedirs(path, exist_ok=True)
        cert, key = (self.client_cert, self.client_key) if name == "client" else (self.other_cert, self.other_key)
        for src, dst in ((self.ca, "ca.pem"), (cert, "cert.pem"), (key, "key.pem")):
            shutil.copyfile(src, os.path.join(path, dst))
        return path


def _openssl(*args: str, cwd: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(d: str, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
             "-keyout", f"{name}-key.pem", "-out", f"{name}.pem", cwd=d)


def _signed(d: str, name: str, ca: str, ext: str) -> None:
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}-key.pem",
             "-out", f"{name}.csr", cwd=d)
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write(ext)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}-key.pem",
             "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=d)


def make_pki(d: str) -> Pki:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    os.makedirs(d, exist_ok=True)
    _ca(d, "ca")
    _signed(d, "server", "ca", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _signed(d, "client", "ca", "extendedKeyUsage=clientAuth\n")
    _ca(d, "otherca")
    _signed(d, "other", "otherca", "extendedKeyUsage=clientAuth\n")
    j = lambda n: os.path.join(d, n)  # noqa: E731
    return Pki(d, j("ca.pem"), j("server.pem"), j("server-key.pem"), j("client.pem"), j("client-key.pem"),
               j("otherca.pem"), j("other.pem"), j("other-key.pem"))
