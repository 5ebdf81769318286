"""The closed set of errors portside raises.

Every failure a caller may want to tell apart is one of these classes. The
daemon maps each class to an HTTP status in exactly one table
(``portside.daemon.errors``); nothing else decides status codes. Foreign
exceptions (OSError, tarfile errors, json errors) are translated into these at
the boundary where they are understood.
"""

from __future__ import annotations


class PortsideError(Exception):
    """Base of every portside error; the message is what Docker would print."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(PortsideError):
    """The named object does not exist (HTTP 404)."""


class InvalidArgument(PortsideError):
    """The request is malformed or names something invalid (HTTP 400)."""


def json_kind(value: object) -> str:
    """The JSON type Go's encoding/json names in "json: cannot unmarshal KIND into ..." errors."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, (list, tuple)) else "object"


class TooLarge(InvalidArgument):
    """The request body is over the size the API reads for it (HTTP 413)."""


class Conflict(PortsideError):
    """The request conflicts with the current state (HTTP 409)."""


class NotModified(PortsideError):
    """Nothing to do: the object is already in the requested state (HTTP 304)."""


class Unauthorized(PortsideError):
    """Credentials are missing or wrong (HTTP 401): a registry refused them."""


class Forbidden(PortsideError):
    """The operation is not allowed on this object (HTTP 403)."""


class Unavailable(PortsideError):
    """A required service or resource is not available (HTTP 503)."""


class NotImplementedYet(PortsideError):
    """The API exists in Docker but portside does not serve it (HTTP 501)."""


class DataCorruption(PortsideError):
    """Content did not match its digest, or stored state is inconsistent (HTTP 500)."""


class ArchiveError(InvalidArgument):
    """A tarball is malformed or hostile; the message names the entry."""


class DockerfileError(InvalidArgument):
    """A Dockerfile Docker would refuse; the message is BuildKit's, ``path`` and ``line`` say where."""

    def __init__(self, reason: str, *, path: str, line: int, end_line: int, instruction: str = "") -> None:
        where = f"dockerfile parse error on line {line}: " if line else ""
        super().__init__(where + reason)
        self.reason = reason
        self.path = path
        self.line = line
        self.end_line = end_line
        self.instruction = instruction

    @property
    def located(self) -> str:
        """``Dockerfile:3: unknown instruction: RUNN``: the form for logs and progress output."""
        return f"{self.path}:{self.line}: {self.reason}" if self.line else f"{self.path}: {self.reason}"


class Internal(PortsideError):
    """Anything else (HTTP 500)."""
