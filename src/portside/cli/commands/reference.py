"""Image references as the docker client checks them before a request.

The grammar and its normalisation (``busybox`` -> ``docker.io/library/busybox``)
live in ``portside.oci.reference``, shared with the daemon. Only the commands
that validate a name (``tag``, ``import``, and ``run``/``create`` for a name
of an unusual shape) import it, lazily: re and its expressions are a large
part of a command's start-up. The ``images`` table only splits
the familiar names the daemon sends (``busybox:latest``, ``user/app@sha256:...``).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing itself is not imported: `portside run` checks its image name here
if TYPE_CHECKING:
    from portside.oci.reference import Reference

_ANCHORED_ID = r"[a-f0-9]{64}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"


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
    import re

    if re.fullmatch(_ANCHORED_ID, s):
        return "sha256:" + s
    if re.fullmatch(_DIGEST, s):
        return s
    return parse_normalized_named(s)


def check_any(s: str) -> None:
    """ParseAnyReference's verdict, as ``run`` and ``create`` ask it before their request.

    Raises ReferenceError with docker's text. The common shape of an image
    name is accepted at once (see ``_plain``); anything else goes through the
    grammar, which needs re and the compiled expressions of
    ``portside.oci.reference``: about as much start-up as the rest of
    ``portside run busybox`` (docs/cli-startup.md).
    """
    if not _plain(s):
        parse_any(s)


def _plain(s: str) -> bool:
    """``name[:tag]`` with only lowercase ASCII letters and digits in each ``/``-separated
    component of the name, and a tag of ASCII letters, digits, ``_``, ``.`` and ``-``
    (``busybox``, ``busybox:1.36``, ``user/app:v2_rc-1``).

    A strict subset of what the grammar accepts: no separators inside a
    component, no domain with a dot or a port, no digest, short names. False
    only means "ask the grammar".
    """
    name, colon, tag = s.partition(":")
    if not name or len(name) > 200:  # the grammar's limit is 255 for the normalised path
        return False
    for component in name.split("/"):
        if not (component.isascii() and component.isalnum() and component == component.lower()):
            return False
    if not colon:
        return True
    letters = tag.replace("_", "a").replace(".", "a").replace("-", "a")
    return 0 < len(tag) <= 128 and tag[0] not in ".-" and letters.isascii() and letters.isalnum()


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
