"""Image reference parsing the way the docker client does it before a request.

distribution/reference's grammar and normalisation (``busybox`` ->
``docker.io/library/busybox``), reduced to what the CLI needs: validating a
name, splitting a target into repository and tag for ``tag``/``import``, and
the familiar (short) form used in ``images`` output. The daemon has its own
parser; the CLI keeps this copy so it never imports the engine.
"""

from __future__ import annotations

import re

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"

_alnum = r"[a-z0-9]+"
_sep = r"(?:[._]|__|[-]+)"
_path_component = rf"{_alnum}(?:{_sep}{_alnum})*"
_domain_component = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_ipv6 = r"\[(?:[a-fA-F0-9:]+)\]"
_domain_name = rf"{_domain_component}(?:\.{_domain_component})*"
_host = rf"(?:{_domain_name}|{_ipv6})"
_domain_and_port = rf"{_host}(?::[0-9]+)?"
_tag = r"[\w][\w.-]{0,127}"
_digest = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_name = rf"(?:{_domain_and_port}/)?{_path_component}(?:/{_path_component})*"

REFERENCE_RE = re.compile(rf"^({_name})(?::({_tag}))?(?:@({_digest}))?$")
ANCHORED_ID_RE = re.compile(r"^[a-f0-9]{64}$")
DIGEST_RE = re.compile(rf"^{_digest}$")

NAME_TOTAL_LENGTH_MAX = 255


class ReferenceError(ValueError):
    pass


class Reference:
    __slots__ = ("domain", "path", "tag", "digest")

    def __init__(self, domain: str, path: str, tag: str = "", digest: str = "") -> None:
        self.domain = domain
        self.path = path
        self.tag = tag
        self.digest = digest

    def __repr__(self) -> str:
        return f"Reference({self.familiar_string()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reference) and (self.domain, self.path, self.tag, self.digest) == (
            other.domain, other.path, other.tag, other.digest)

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        path = self.path
        if path.startswith(OFFICIAL_PREFIX) and path.count("/") == 1:
            path = path[len(OFFICIAL_PREFIX) :]
        return path

    def familiar_string(self) -> str:
        s = self.familiar_name
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s


def _split_domain(name: str) -> tuple[str, str]:
    first, slash, rest = name.partition("/")
    if not slash:
        return DEFAULT_DOMAIN, OFFICIAL_PREFIX + name
    if first == LEGACY_DOMAIN:
        domain, remainder = DEFAULT_DOMAIN, rest
    elif first == "localhost" or ":" in first or "." in first or first.lower() != first:
        domain, remainder = first, rest
    else:
        domain, remainder = DEFAULT_DOMAIN, name
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    return domain, remainder


def parse_normalized_named(s: str) -> Reference:
    """distribution/reference ParseNormalizedNamed, with its error texts."""
    if ANCHORED_ID_RE.match(s):
        raise ReferenceError(f"invalid repository name ({s}), cannot specify 64-byte hexadecimal strings")
    domain, remainder = _split_domain(s)
    tag_sep = remainder.find(":")
    remote = remainder[:tag_sep] if tag_sep > -1 else remainder
    if remote.lower() != remote:
        raise ReferenceError(f"invalid reference format: repository name ({remote}) must be lowercase")
    return parse(f"{domain}/{remainder}")


def parse(s: str) -> Reference:
    if s == "":
        raise ReferenceError("repository name must have at least one component")
    m = REFERENCE_RE.match(s)
    if m is None:
        if s.lower() != s and REFERENCE_RE.match(s.lower()):
            raise ReferenceError("repository name must be lowercase")
        raise ReferenceError("invalid reference format")
    name, tag, digest = m.group(1), m.group(2) or "", m.group(3) or ""
    i = name.find("/")
    if len(name) - i - 1 > NAME_TOTAL_LENGTH_MAX:
        raise ReferenceError(f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")
    # parse() is only called on normalised names, which always carry a domain
    return Reference(domain=name[:i], path=name[i + 1 :], tag=tag, digest=digest)


def parse_any(s: str) -> Reference | str:
    """ParseAnyReference: a full image ID or digest, else a normalised name."""
    if ANCHORED_ID_RE.match(s):
        return "sha256:" + s
    if DIGEST_RE.match(s):
        return s
    return parse_normalized_named(s)


def split_repo_tag(target: str) -> tuple[str, str]:
    """The ``repo`` and ``tag`` query values for ``tag`` and ``import``.

    Raises ReferenceError with docker's text for an invalid or digested target.
    """
    ref = parse_normalized_named(target)
    if ref.digest:
        raise ReferenceError("refusing to create a tag with a digest reference")
    return ref.familiar_name, ref.tag or "latest"


def familiar_repo_tag(repo_tag: str) -> tuple[str, str] | None:
    """``docker.io/library/busybox:latest`` -> (``busybox``, ``latest``); None if unparsable or untagged."""
    try:
        ref = parse_normalized_named(repo_tag)
    except ReferenceError:
        return None
    if not ref.tag:
        return None
    return ref.familiar_name, ref.tag


def familiar_repo_digest(repo_digest: str) -> tuple[str, str] | None:
    try:
        ref = parse_normalized_named(repo_digest)
    except ReferenceError:
        return None
    if not ref.digest:
        return None
    return ref.familiar_name, ref.digest
