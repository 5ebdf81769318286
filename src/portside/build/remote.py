"""ADD <url>: the daemon downloads the file, as Docker's classic builder does.

- http:// and https:// only; redirects are followed (at most 10, to http(s)
  only, as Go's client) and the daemon's proxy environment (``http_proxy``,
  ``https_proxy``, ``no_proxy``) is honoured, except for loopback hosts, which
  Go's client never proxies either;
- a status of 400 or more is moby's ``failed to GET <url> with status 404 Not
  Found: <body>``;
- the file is named after the URL path's last segment, else the response's
  ``Content-Disposition`` filename, else it has no name (then a destination
  ending in ``/`` is moby's ``cannot determine filename for source <url>`` and
  any other destination is used as the file's name, ``__unnamed__`` inside an
  existing directory, as moby);
- mode 0600; mtime from ``Last-Modified``, clamped to the build's epoch as
  every layer mtime is (so with the default epoch 0 it is 0);
- never extracted, even when it is a tar (moby's ``noDecompress``);
- ``--checksum=<algo>:<hex>`` (BuildKit's flag) is compared with what came.

Each download streams into a fresh 0700 directory under the build's scratch
directory, hashed as it is written; ``Downloads.close`` removes them all,
whatever happened.
"""

from __future__ import annotations

import email.utils
import hashlib
import http.client
import ipaddress
import os
import posixpath
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message
from typing import Any

from portside.build.context import Source
from portside.errors import InvalidArgument

UNNAMED = "__unnamed__"          # moby's name for a download the URL and the response do not name
_CHUNK = 1 << 20
_IDLE_TIMEOUT = 120              # seconds without a byte before a download is given up
_ERROR_BODY = 4096               # what of an error response's body goes into the message
_TOO_MANY = "stopped after 10 redirects"  # Go's message
_ALGORITHMS = {"sha256": 64, "sha384": 96, "sha512": 128}


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def parse_checksum(value: str) -> Checksum:
    """``ADD --checksum``'s value, checked as go-digest's ``Parse`` does."""
    algorithm, sep, hexpart = value.partition(":")
    if not sep or not algorithm or not hexpart:
        raise InvalidArgument(f"invalid checksum digest format: {value}")
    if algorithm not in _ALGORITHMS:
        raise InvalidArgument(f"unsupported digest algorithm: {value}")
    if len(hexpart) != _ALGORITHMS[algorithm] or any(c not in "0123456789abcdef" for c in hexpart):
        raise InvalidArgument(f"invalid checksum digest length: {value}" if len(hexpart) != _ALGORITHMS[algorithm]
                              else f"invalid checksum digest format: {value}")
    return Checksum(algorithm, hexpart)


@dataclass(frozen=True)
class Download:
    url: str
    path: str            # the file, in its own private directory under the scratch directory
    name: str            # its file name in the image; "" when the URL and the response give none
    sha256: str          # "sha256:<hex>" of the content
    mtime: int           # Last-Modified clamped to the epoch; the epoch without one


class Downloads:
    """The URL sources of one COPY/ADD step; ``close`` removes every file fetched."""

    def __init__(self, scratch: str, epoch: int, keyword: str = "ADD") -> None:
        self.scratch, self.epoch, self.keyword = scratch, epoch, keyword
        self._dirs: list[str] = []

    def close(self) -> None:
        for directory in self._dirs:
            shutil.rmtree(directory, ignore_errors=True)
        self._dirs.clear()

    def checksum(self, sources: list[str], value: str) -> Checksum | None:
        """``ADD --checksum``, checked as BuildKit does: one source, and a URL."""
        if not value:
            return None
        if len(sources) != 1:
            raise InvalidArgument("checksum can't be specified for multiple sources")
        if not is_url(sources[0]):
            raise InvalidArgument("checksum can't be specified for non-HTTP(S) sources")
        return parse_checksum(value)

    def source(self, url: str, dest: str, checksum: Checksum | None = None) -> Source:
        """Fetch ``url`` and give it as a copy source: named for the destination rules, never extracted."""
        try:
            if self.keyword != "ADD":
                raise InvalidArgument(f"source can't be a URL for {self.keyword}")
            got = self.fetch(url, checksum)
            name = got.name
            if not name:
                if dest.endswith("/"):
                    raise InvalidArgument(f"cannot determine filename for source {url}")
                name = UNNAMED
        except InvalidArgument as e:
            raise InvalidArgument(f"{self.keyword} failed: {e.message}") from None
        return Source(got.path, name, False, mtime=got.mtime, extract=False)

    def fetch(self, url: str, checksum: Checksum | None = None) -> Download:
        directory = tempfile.mkdtemp(prefix="remote-", dir=self.scratch)
        self._dirs.append(directory)
        path = os.path.join(directory, "download")
        with _open(url) as resp:
            sha256 = hashlib.sha256()
            wanted = hashlib.new(checksum.algorithm) if checksum and checksum.algorithm != "sha256" else None
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                with open(fd, "wb") as out:
                    while chunk := _read(resp, url):
                        sha256.update(chunk)
                        if wanted is not None:
                            wanted.update(chunk)
                        out.write(chunk)
            except OSError as e:  # the scratch directory's disk, not the server
                raise InvalidArgument(f"failed to download {url}: {_reason(e)}") from None
            if getattr(resp, "length", None):  # http.client ends a body short of its Content-Length quietly
                raise InvalidArgument(f"failed to download {url}: unexpected EOF")
            os.chmod(path, 0o600)  # whatever the umask took away or left
            name = _file_name(url, resp.headers)  # moby: the URL asked for, not where it redirected
            mtime = _last_modified(resp.headers)
        if checksum is not None:
            actual = f"{checksum.algorithm}:{(wanted or sha256).hexdigest()}"
            if actual != str(checksum):
                raise InvalidArgument(f"digest mismatch for {url}: expected {checksum}, got {actual}")
        clamped = self.epoch if mtime is None else max(0, min(mtime, self.epoch))
        return Download(url, path, name, "sha256:" + sha256.hexdigest(), clamped)


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Go's client: at most 10 redirects (a loop is just counted), and only to http(s) (urllib also follows ftp://)."""

    max_redirections = max_repeats = 10
    inf_msg = _TOO_MANY + "\n"  # urllib's message for both limits; _open recognises it

    def http_error_302(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                       headers: http.client.HTTPMessage) -> Any:
        location = headers.get("Location") or headers.get("URI")
        if location:
            target = urllib.parse.urljoin(req.full_url, location)
            if not is_url(target):
                fp.close()
                raise InvalidArgument(f'Get "{target}": unsupported protocol scheme '
                                      f'"{urllib.parse.urlsplit(target).scheme}"')
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


class _Proxies(urllib.request.ProxyHandler):
    """The environment's proxies, never for a loopback host (Go's ``ProxyFromEnvironment`` rule)."""

    def proxy_open(self, req: urllib.request.Request, proxy: str, type: str) -> Any:  # noqa: A002 (urllib's name)
        host = (urllib.parse.urlsplit(req.full_url).hostname or "").lower()
        if host == "localhost" or _is_loopback(host):
            return None
        return super().proxy_open(req, proxy, type)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _opener() -> urllib.request.OpenerDirector:
    # only what http(s) needs: no file://, ftp:// or data: handler for a redirect to reach
    opener = urllib.request.OpenerDirector()
    for handler in (_Proxies(), urllib.request.HTTPHandler(), urllib.request.HTTPSHandler(), _Redirects(),
                    urllib.request.HTTPDefaultErrorHandler(), urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


def _open(url: str) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": "portside-builder"})
    try:
        return _opener().open(request, timeout=_IDLE_TIMEOUT)
    except urllib.error.HTTPError as e:
        try:
            if str(e.reason).startswith(_TOO_MANY):
                raise InvalidArgument(f'Get "{e.filename or url}": {_TOO_MANY}') from None
            if e.code < 400:  # a 3xx without a Location
                raise InvalidArgument(f"failed to GET {url} with status {e.code} {e.reason}: "
                                      "a redirect without a Location") from None
            try:
                body = e.read(_ERROR_BODY).decode("utf-8", errors="replace").strip()
            except (OSError, ValueError, AttributeError):  # no body, or a broken one
                body = "error reading body"
        finally:
            e.close()
        raise InvalidArgument(f"failed to GET {url} with status {e.code} {e.reason}: {body}") from None
    except urllib.error.URLError as e:
        raise InvalidArgument(f'Get "{url}": {_reason(e.reason)}') from None
    except (OSError, ValueError, http.client.HTTPException) as e:  # a timeout, a reset, a malformed URL or response
        raise InvalidArgument(f'Get "{url}": {_reason(e)}') from None


def _read(resp: Any, url: str) -> bytes:
    try:
        data: bytes = resp.read(_CHUNK)
        return data
    except (OSError, ValueError, http.client.HTTPException) as e:
        raise InvalidArgument(f"failed to download {url}: {_reason(e)}") from None


def _reason(e: object) -> str:
    if isinstance(e, http.client.IncompleteRead):
        return "unexpected EOF"  # Go's words for a body shorter than its Content-Length
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower()
    return str(e) or type(e).__name__


def _file_name(url: str, headers: Message) -> str:
    """moby's getFilenameForDownload: the URL path's last segment, else Content-Disposition's filename."""
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
    for candidate in (path, _disposition_filename(headers)):
        if candidate and not candidate.endswith("/"):
            name = posixpath.basename(candidate)
            if name not in ("", ".", "..") and "\0" not in name:
                return name
    return ""


def _disposition_filename(headers: Message) -> str:
    if not headers.get("Content-Disposition"):
        return ""
    value = headers.get_param("filename", header="content-disposition")
    if value is None or isinstance(value, str) and not value:
        return ""
    return email.utils.collapse_rfc2231_value(value) if isinstance(value, tuple) else str(value)


def _last_modified(headers: Message) -> int | None:
    value = headers.get("Last-Modified")
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # moby: an unparsable date is as none
    return int(parsed.timestamp())
