"""The spec's error codes, each with the status it is sent with, and the one
exception handlers raise to send them.

Body: ``{"errors":[{"code","message","detail"}]}`` (distribution-spec, "Error
Codes"). Statuses follow CNCF Distribution where the spec leaves a choice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# code -> (status, message)
CODES: dict[str, tuple[int, str]] = {
    "BLOB_UNKNOWN": (404, "blob unknown to registry"),
    "BLOB_UPLOAD_INVALID": (400, "blob upload invalid"),
    "BLOB_UPLOAD_UNKNOWN": (404, "blob upload unknown to registry"),
    "DIGEST_INVALID": (400, "provided digest did not match uploaded content"),
    "MANIFEST_BLOB_UNKNOWN": (400, "manifest references a manifest or blob unknown to registry"),
    "MANIFEST_INVALID": (400, "manifest invalid"),
    "MANIFEST_UNKNOWN": (404, "manifest unknown"),
    "NAME_INVALID": (400, "invalid repository name"),
    "NAME_UNKNOWN": (404, "repository name not known to registry"),
    "SIZE_INVALID": (400, "provided length did not match content length"),
    "TAG_INVALID": (400, "manifest tag did not match URI"),
    "UNAUTHORIZED": (401, "authentication required"),
    "DENIED": (403, "requested access to the resource is denied"),
    "UNSUPPORTED": (405, "The operation is unsupported."),
    "TOOMANYREQUESTS": (429, "too many requests"),
    "PAGINATION_NUMBER_INVALID": (400, "invalid number of results requested"),
    "RANGE_INVALID": (416, "invalid content range"),
    "UNKNOWN": (500, "unknown error"),  # distribution's code for a failure of ours
}


@dataclass
class RegistryError(Exception):
    """An error answer: ``code`` from CODES; ``status`` overrides the code's own."""

    code: str
    message: str = ""
    detail: Any = None
    status: int = 0
    headers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        default_status, default_message = CODES[self.code]
        self.status = self.status or default_status
        self.message = self.message or default_message

    def body(self) -> bytes:
        entry: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            entry["detail"] = self.detail
        return json.dumps({"errors": [entry]}).encode()
