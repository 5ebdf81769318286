"""Docker image references: ``busybox``, ``user/app:1``, ``localhost:5000/ns/app@sha256:...``.

The grammar, the normalisation and every error message follow
distribution/reference (``reference.go``, ``normalize.go``, ``regexp.go``),
which the docker CLI, moby and containerd all use, so a name that Docker
accepts or refuses is accepted or refused here with the same words::

    reference        := name [ ":" tag ] [ "@" digest ]
    name             := [domain "/"] path
    domain           := host [":" port]        host: DNS-ish name, IPv4, or [IPv6]
    path             := component ["/" component]*
    component        := [a-z0-9]+ ( ([._] | __ | -+) [a-z0-9]+ )*
    tag              := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest           := algorithm ":" hex{32,}

Normalisation (what makes ``busybox`` mean ``docker.io/library/busybox``) looks
only at the text before the first ``/``, if there is one: it is a domain when it
is ``localhost``, contains ``.`` or ``:``, or has an uppercase letter; otherwise
the whole name is a Docker Hub path. ``index.docker.io`` is folded into
``docker.io``, and a single-component Docker Hub path gets ``library/``.

Quirks kept on purpose because Docker has them: ``localhost:5000`` alone is the
Docker Hub image ``library/localhost`` with tag ``5000``; ``docker.io`` alone is
``docker.io/library/docker.io``; uppercase domains are kept as written; a first
component such as ``a_b.c`` that is no valid host but a valid path component
leaves the reference without a domain (``domain == ""``).

A digest that fits the grammar is then checked as go-digest v1.0.0 (the version
Docker ships) checks it: "invalid checksum digest length", "invalid checksum
digest format" or "unsupported digest algorithm". sha256 is the only algorithm
portside can address content by, so sha384 and sha512, which Docker accepts,
are unsupported here.
"""

from __future__ import annotations

import re

from portside.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
# Docker limits the path (not domain + path) since distribution/reference v0.6.
MAX_PATH_LENGTH = 255

# Go's \w and [[:xdigit:]] are ASCII-only; Python's \w is not, so every class
# is spelled out. All patterns are used with fullmatch (Python's $ would accept
# a trailing newline).
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|-+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_PATH = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[[a-fA-F0-9:]+\]"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_REFERENCE_RE = re.compile(rf"((?:{_DOMAIN}/)?{_PATH})(?::({_TAG}))?(?:@({_DIGEST}))?")
_NAME_RE = re.compile(rf"(?:({_DOMAIN})/)?({_PATH})")
_TAG_RE = re.compile(_TAG)
_DIGEST_RE = re.compile(_DIGEST)
# go-digest's own grammar; it only decides between "unsupported" and "invalid"
# for algorithms other than sha256.
_OCI_DIGEST_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}")


class Reference:
    """A parsed, normalised reference. Build it with the parse functions, which validate.

    Immutable and hashable, compared by its four fields. A plain class rather
    than a frozen dataclass: the CLI parses the image name on every
    ``portside run``, and importing dataclasses (which loads inspect) would
    cost more than the parse (docs/cli-startup.md).
    """

    __slots__ = ("domain", "path", "tag", "digest")

    domain: str  # "docker.io", "localhost:5000", "[::1]:5000"; "" only in the quirk above
    path: str  # "library/busybox", "user/app", "ns/sub/app"
    tag: str | None
    digest: str | None  # "sha256:<64 hex>"

    def __init__(self, domain: str, path: str, tag: str | None = None, digest: str | None = None) -> None:
        setattr_ = object.__setattr__
        setattr_(self, "domain", domain)
        setattr_(self, "path", path)
        setattr_(self, "tag", tag)
        setattr_(self, "digest", digest)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def _fields(self) -> tuple[str, str, str | None, str | None]:
        return (self.domain, self.path, self.tag, self.digest)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Reference):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return f"Reference(domain={self.domain!r}, path={self.path!r}, tag={self.tag!r}, digest={self.digest!r})"

    def __reduce__(self) -> tuple[type[Reference], tuple[str, str, str | None, str | None]]:
        return Reference, self._fields()  # copy and pickle go through __init__, not __setattr__

    @property
    def name(self) -> str:
        """The repository: ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    def __str__(self) -> str:
        return self.name + self._suffix()

    def familiar_name(self) -> str:
        """The repository as Docker prints it: ``busybox``, ``user/app``, ``localhost:5000/app``."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        short = self.path.removeprefix(OFFICIAL_REPO_PREFIX)
        # "library/a/b" keeps its prefix: without it the name would mean "a/b".
        return self.path if "/" in short else short

    def familiar(self) -> str:
        """The whole reference as Docker prints it: ``busybox:latest``, ``user/app@sha256:...``."""
        return self.familiar_name() + self._suffix()

    def with_tag(self, tag: str) -> Reference:
        """The same reference with ``tag`` (replacing any tag; a digest is kept)."""
        return Reference(self.domain, self.path, validate_tag(tag), self.digest)

    def with_digest(self, digest: str) -> Reference:
        """The same reference with ``digest`` (replacing any digest; a tag is kept)."""
        if not _DIGEST_RE.fullmatch(digest):
            raise InvalidArgument("invalid digest format")
        return Reference(self.domain, self.path, self.tag, _validate_digest(digest))

    def _suffix(self) -> str:
        suffix = f":{self.tag}" if self.tag is not None else ""
        return suffix + (f"@{self.digest}" if self.digest is not None else "")


def parse_normalized(untrusted: str) -> Reference:
    """Docker's ParseNormalizedNamed: a name as users type it, made fully qualified.

    No default tag is added: ``busybox`` has ``tag is None``.
    """
    # A bare image ID must not silently become "docker.io/library/<id>".
    if _IDENTIFIER_RE.fullmatch(untrusted):
        raise InvalidArgument(
            f"invalid repository name ({untrusted}), cannot specify 64-byte hexadecimal strings"
        )
    domain, remainder = _split_docker_domain(untrusted)
    # Docker checks case on everything before the first ":" of the remainder,
    # which for "name@alg:hex" includes "@alg"; kept as is for identical errors.
    remote = remainder.partition(":")[0]
    if remote.lower() != remote:
        raise InvalidArgument(f"invalid reference format: repository name ({remote}) must be lowercase")
    return _parse(f"{domain}/{remainder}")


def parse_docker_ref(untrusted: str) -> Reference:
    """``parse_normalized`` plus Docker's TagNameOnly: ``latest`` when there is neither tag nor digest.

    This is how ``docker pull``, ``docker create`` and ``docker run`` read an image name.
    A reference with both a tag and a digest keeps both.
    """
    ref = parse_normalized(untrusted)
    if ref.tag is None and ref.digest is None:
        return Reference(ref.domain, ref.path, DEFAULT_TAG)
    return ref


def parse_repository_and_tag(repo: str, tag: str | None) -> Reference:
    """The ``?repo=&tag=`` pair of the tag, import and commit APIs (moby's RepoTagReference).

    ``tag`` replaces a tag written in ``repo``; empty or None means ``latest``
    unless ``repo`` carries one. Docker treats an empty ``repo`` as "leave the
    image untagged": callers check for that before calling, as an empty repo is
    an invalid reference here.
    """
    ref = parse_normalized(repo)
    if ref.digest is not None:
        raise InvalidArgument("cannot import digest reference")
    if tag:
        return ref.with_tag(tag)
    return ref if ref.tag is not None else Reference(ref.domain, ref.path, DEFAULT_TAG, ref.digest)


def validate_tag(tag: str) -> str:
    """Return ``tag`` if it is a valid tag, else raise ``invalid tag format``."""
    if not _TAG_RE.fullmatch(tag):
        raise InvalidArgument("invalid tag format")
    return tag


def _split_docker_domain(name: str) -> tuple[str, str]:
    """Split a familiar name into (domain, remainder), defaulting to Docker Hub."""
    first, slash, rest = name.partition("/")
    if not slash:
        # A single component is always a Docker Hub official image, even
        # "localhost" or "example.com", so that "name:tag" is never host:port.
        return DEFAULT_DOMAIN, OFFICIAL_REPO_PREFIX + name
    if first == LEGACY_DEFAULT_DOMAIN:
        domain, remainder = DEFAULT_DOMAIN, rest
    elif first == "localhost" or "." in first or ":" in first or first.lower() != first:
        # Uppercase is never valid in a path, so an uppercase first component is taken as a host.
        domain, remainder = first, rest
    else:
        domain, remainder = DEFAULT_DOMAIN, name
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def _parse(untrusted: str) -> Reference:
    """Docker's Parse, for a string that already starts with a domain."""
    match = _REFERENCE_RE.fullmatch(untrusted)
    if match is None:
        # Reached by an uppercase first component that is no valid host
        # ("Foo_Bar/app"): normalisation took it for a domain, but lowercased
        # it would have been a path.
        # Go lowercases rune by rune, so "\u0130" becomes a plain "i" there (Python gives "i\u0307").
        lowered = untrusted.replace("\u0130", "i").lower()
        if lowered != untrusted and _REFERENCE_RE.fullmatch(lowered):
            raise InvalidArgument("repository name must be lowercase")
        raise InvalidArgument("invalid reference format")
    name, tag, digest = match.groups()
    # The reference pattern matched, so the name pattern matches too; the
    # domain group is empty when the first component is no valid host.
    split = _NAME_RE.fullmatch(name)
    assert split is not None
    domain, path = split.group(1) or "", split.group(2)
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidArgument(f"repository name must not be more than {MAX_PATH_LENGTH} characters")
    if digest is not None:
        _validate_digest(digest)
    return Reference(domain=domain, path=path, tag=tag, digest=digest)


def _validate_digest(untrusted: str) -> str:
    """go-digest v1.0.0's Validate (the one Docker ships), with sha256 as the only algorithm.

    For a string that already matches the reference digest grammar.
    """
    from portside.oci import digest as _digest  # hashlib, only for a digested reference

    if _digest.is_digest(untrusted):
        return untrusted
    algorithm, _, encoded = untrusted.partition(":")
    if algorithm == "sha256":
        if len(encoded) != 64:
            raise InvalidArgument("invalid checksum digest length")
    elif _OCI_DIGEST_RE.fullmatch(untrusted):
        raise InvalidArgument("unsupported digest algorithm")
    raise InvalidArgument("invalid checksum digest format")
