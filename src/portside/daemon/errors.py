"""The one table from portside's error classes to Engine API status codes.

Nothing else in the daemon decides a status for a failure: handlers raise the
closed classes of ``portside.errors`` and the router or the server turns them
into a response here. The mapping follows moby's ``httpstatus.FromError``.
"""

from __future__ import annotations

from portside import errors
from portside.daemon.http import Response

# Checked in order; the first class the exception is an instance of wins.
# ArchiveError is an InvalidArgument and so answers 400.
_STATUS: tuple[tuple[type[errors.PortsideError], int], ...] = (
    (errors.NotFound, 404),
    (errors.TooLarge, 413),
    (errors.InvalidArgument, 400),
    (errors.Conflict, 409),
    (errors.NotModified, 304),
    (errors.Unauthorized, 401),
    (errors.Forbidden, 403),
    (errors.Unavailable, 503),
    (errors.NotImplementedYet, 501),
    (errors.DataCorruption, 500),
    (errors.Internal, 500),
)


def status_for(exc: BaseException) -> int:
    """The HTTP status Docker would answer for ``exc``; 500 for anything unknown."""
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_response(exc: BaseException) -> Response:
    """``{"message": ...}`` with the status from the table; a 304 carries no body."""
    status = status_for(exc)
    if status == 304:
        return Response(status=304)
    message = exc.message if isinstance(exc, errors.PortsideError) else str(exc)
    return Response.json({"message": message}, status=status)
