"""Where a registry domain is reached: endpoints (mirrors first), scheme, TLS trust.

The daemon's registry options, as dockerd's: ``--registry-mirror`` (for
docker.io only), ``--insecure-registry`` (host[:port] or a CIDR) and the
per-registry CA directory (``/etc/docker/certs.d/HOST:PORT/*.crt``, plus
``client.cert``/``client.key``).

Plain http is allowed only for loopback hosts and insecure registries; those
are tried over https first, without verification, as dockerd does.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import ssl
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from portside.errors import InvalidArgument

DOCKER_HUB = "docker.io"
DOCKER_HUB_HOST = "registry-1.docker.io"
# The key docker's CLI files Docker Hub credentials under in config.json.
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
DEFAULT_CERTS_DIR = "/etc/docker/certs.d"


@dataclass(frozen=True)
class RegistryOptions:
    mirrors: tuple[str, ...] = ()         # base URLs: "http://127.0.0.1:5000"
    insecure: tuple[str, ...] = ()        # "host:port", "host" or a CIDR
    certs_dir: str = DEFAULT_CERTS_DIR

    def __post_init__(self) -> None:
        for m in self.mirrors:
            parts = urlsplit(m)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
                raise InvalidArgument(f"invalid mirror: {m!r}: expected http(s)://host[:port]")


@dataclass(frozen=True)
class Endpoint:
    scheme: str            # "https" or "http"
    host: str              # "host[:port]" as it goes into URLs and Host headers
    verify: bool = True    # verify the server's certificate (https only)
    mirror: bool = False
    fallback_http: bool = False  # an insecure registry: plain http when https does not answer
    ca_files: tuple[str, ...] = field(default=())
    client_cert: tuple[str, str] | None = None

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.host}"

    def ssl_context(self) -> ssl.SSLContext:
        return _context(self.verify, self.ca_files, self.client_cert, _mtimes(self.ca_files, self.client_cert))

    def as_http(self) -> "Endpoint":
        return Endpoint("http", self.host, mirror=self.mirror)


@functools.lru_cache(maxsize=32)
def _context(verify: bool, ca_files: tuple[str, ...], client_cert: tuple[str, str] | None,
             mtimes: tuple[float, ...]) -> ssl.SSLContext:
    """Contexts are cached (loading the system CA store costs ~0.1 s); a changed file makes a new one."""
    if not verify:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no CA store to load: nothing is verified
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context()  # the system CA store
        for ca in ca_files:
            ctx.load_verify_locations(cafile=ca)
    if client_cert:
        ctx.load_cert_chain(*client_cert)
    return ctx


def _mtimes(ca_files: tuple[str, ...], client_cert: tuple[str, str] | None) -> tuple[float, ...]:
    out = []
    for path in (*ca_files, *(client_cert or ())):
        try:
            out.append(os.stat(path).st_mtime)
        except OSError:
            out.append(-1.0)
    return tuple(out)


def registry_config(options: RegistryOptions) -> dict[str, object]:
    """``RegistryConfig`` of ``GET /info``, as dockerd fills it (``docker info`` prints mirrors and insecure registries)."""
    cidrs = ["127.0.0.0/8"] + [e for e in options.insecure if "/" in e]
    mirrors = [m.rstrip("/") + "/" for m in options.mirrors]
    index: dict[str, object] = {DOCKER_HUB: {"Name": DOCKER_HUB, "Mirrors": mirrors, "Secure": True, "Official": True}}
    for e in options.insecure:
        if "/" not in e:
            index[e] = {"Name": e, "Mirrors": [], "Secure": False, "Official": False}
    return {"AllowNondistributableArtifactsCIDRs": None, "AllowNondistributableArtifactsHostnames": None,
            "InsecureRegistryCIDRs": cidrs, "IndexConfigs": index, "Mirrors": mirrors or None}


def registry_host(domain: str) -> str:
    """The host that serves a reference's domain: Docker Hub's names are served by registry-1."""
    return DOCKER_HUB_HOST if domain == DOCKER_HUB else domain


def is_insecure(options: RegistryOptions, host: str) -> bool:
    """Loopback (localhost, 127.0.0.0/8, ::1) or listed in ``--insecure-registry``."""
    name = _hostname(host)
    if name == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        ip = None
    if ip is not None and ip.is_loopback:
        return True
    for entry in options.insecure:
        if entry in (host, name):
            return True
        if ip is not None and "/" in entry:
            try:
                if ip in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def _hostname(host: str) -> str:
    if host.startswith("["):
        return host[1:host.index("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def endpoints(options: RegistryOptions, domain: str, *, mirrors: bool = True) -> list[Endpoint]:
    """Where to reach ``domain``, in the order to try: mirrors (docker.io only, pulls only), then the registry."""
    found: list[Endpoint] = []
    if domain == DOCKER_HUB and mirrors:
        for m in options.mirrors:
            parts = urlsplit(m)
            found.append(_endpoint(options, parts.netloc, mirror=True, scheme=parts.scheme))
    found.append(_endpoint(options, registry_host(domain)))
    return found


def _endpoint(options: RegistryOptions, host: str, *, mirror: bool = False, scheme: str = "https") -> Endpoint:
    if scheme == "http":
        if not is_insecure(options, host) and not mirror:
            raise InvalidArgument(f"plain http to {host} is refused: not an insecure registry")
        return Endpoint("http", host, mirror=mirror)
    ca_files, client_cert = _certs(options.certs_dir, host)
    insecure = is_insecure(options, host)
    return Endpoint("https", host, verify=not insecure or bool(ca_files), mirror=mirror,
                    fallback_http=insecure, ca_files=ca_files, client_cert=client_cert)


def _certs(certs_dir: str, host: str) -> tuple[tuple[str, ...], tuple[str, str] | None]:
    """``certs.d/HOST[:PORT]/``: every ``*.crt`` is a CA, ``*.cert`` + ``*.key`` a client certificate."""
    directory = os.path.join(certs_dir, host.replace("/", "_"))
    try:
        names = sorted(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return (), None
    cas = tuple(os.path.join(directory, n) for n in names if n.endswith(".crt"))
    client = None
    for n in names:
        if n.endswith(".cert") and n[:-5] + ".key" in names:
            client = (os.path.join(directory, n), os.path.join(directory, n[:-5] + ".key"))
            break
    return cas, client
