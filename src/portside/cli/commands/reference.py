"""Image references as the docker client checks them before a request.

The grammar and its normalisation (``busybox`` -> ``docker.io/library/busybox``)
live in ``portside.oci.reference``, shared with the daemon. Only the commands
that validate a name (``tag``, ``import``) import it, lazily: compiling its
expressions costs about 20 ms of start-up. The ``images`` table only splits
the familiar names the daemon sends (``busybox:latest``, ``user/app@sha256:...``).
"""

from __future__ import annotations

import re

TYPE_CHECKING = False  # typing itself is not imported: `portside run` parses its image name here
if TYPE_CHECKING:
    from portside.oci.reference import Reference

_ANCHORED_ID = re.compile(r"[a-f0-9]{64}")
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")


class ReferenceError(ValueError):
    pass


def parse_normalized_named(s: str) -> Reference:
    """distribution/reference ParseNormalizedNamed, with its error texts."""
    from portside.errors import InvalidArgument
    from portside.oci.reference import parse_normalized

    try:
        return parse_normalized(s)
    except InvalidArgument as e:
        raise ReferenceError(e.message) from None


def parse_any(s: str) -> Reference | str:
    """ParseAnyReference: a full image ID or digest, else a normalised name."""
    if _ANCHORED_ID.fullmatch(s):
        return "sha256:" + s
    if _DIGEST.fullmatch(s):
        return s
    return parse_normalized_named(s)


def split_repo_tag(target: str) -> tuple[str, str]:
    """The ``repo`` and ``tag`` query values for ``tag`` and ``import``.

    Raises ReferenceError with docker's text for an invalid or digested target.
    """
    ref = parse_normalized_named(target)
    if ref.digest:
        raise ReferenceError("refusing to create a tag with a digest reference")
    return ref.familiar_name(), ref.tag or "latest"


def familiar_repo_tag(repo_tag: str) -> tuple[str, str] | None:
    """``busybox:latest`` -> (``busybox``, ``latest``); None if untagged."""
    if "@" in repo_tag:
        return None
    colon = repo_tag.rfind(":")
    if colon <= repo_tag.rfind("/"):
        return None
    return repo_tag[:colon], repo_tag[colon + 1 :]


def familiar_repo_digest(repo_digest: str) -> tuple[str, str] | None:
    """``busybox@sha256:...`` -> (``busybox``, ``sha256:...``); None without a digest."""
    name, at, digest = repo_digest.partition("@")
    return (name, digest) if at else None
