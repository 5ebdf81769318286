"""The registries under test and the optional features each is known to lack (see conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ociclient import Client
from registries import Registry

# Optional parts of the spec (or of Docker's API around it), by the name tests give them in `needs`.
FEATURES = {
    "referrers": "the referrers API, GET /v2/<name>/referrers/<digest> (spec v1.1)",
    "subject": "the OCI-Subject response header on a manifest PUT with a subject (spec v1.1)",
    "tags-sorted": "the tags list in lexical order",
    "tags-pagination": "n/last pagination and the Link header on the tags list",
    "name-invalid": "NAME_INVALID in a JSON error body for a name outside the grammar",
    "tag-invalid": "a JSON error body (TAG_INVALID/MANIFEST_INVALID) for a tag outside the grammar",
    "manifest-size-limit": "a manifest over the registry's limit refused with 413 (or accepted whole)",
    "range-requests": "Range requests on blob GETs (206, Content-Range)",
    "chunk-order": "416 for a PATCH whose Content-Range does not start where the upload ends",
    "upload-unknown-code": "BLOB_UPLOAD_UNKNOWN (not another code) for an upload session it never issued",
    "range-416-framing": "a 416 whose Content-Length matches the body it sends",
}

DISTRIBUTION_LACKS = {
    "referrers": "Distribution 2.8 predates spec v1.1: no referrers API (added in Distribution 3.0)",
    "subject": "Distribution 2.8 predates spec v1.1: stores the subject field but sends no OCI-Subject",
    "range-416-framing": "Distribution 2.8.2 answers an unsatisfiable Range with the blob's Content-Length "
                         "and an empty body (Go's ServeContent after the handler set the length)",
    "name-invalid": "Distribution 2.8.2 never answers NAME_INVALID: it starts uploads for 'UPPER/case', "
                    "redirects 'a//b' (301), answers 500 for a 300-byte name and its router's text/plain "
                    "'404 page not found' for the rest",
    "manifest-size-limit": "Distribution 2.8.2 refuses manifests over 4 MiB with 400 MANIFEST_INVALID "
                           "('http: request body too large'), not 413",
    "tags-sorted": "Distribution 2.8.2 lists tags in its storage driver's directory order",
    "tags-pagination": "Distribution 2.8.2 ignores n and last on the tags list and sends no Link "
                       "(pagination came with Distribution 3.0)",
    "chunk-order": "Distribution 2.8.2 ignores a PATCH's Content-Range and appends the chunk (202)",
    "upload-unknown-code": "Distribution 2.8.2 answers 404 BLOB_UPLOAD_INVALID for an upload id without "
                           "its signed _state parameter",
    "tag-invalid": "Distribution 2.8.2 routes only valid references: an invalid tag gets its router's "
                   "404 text/plain '404 page not found'",
}


@dataclass
class Target:
    """A registry under test: its name, a client for it, and the features it is known to lack."""

    name: str
    client: Client
    lacks: dict[str, str] = field(default_factory=dict)
    registry: Registry | None = None   # set for `distribution`: its storage root is inspectable
