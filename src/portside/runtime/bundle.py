"""The bundle an external OCI runtime (runc, crun) reads: portside's spec, made standard.

portside's own runtime reads the ``config.json`` that ``containers/spec.py``
writes, and two things in it are portside's: the seccomp marker (Docker's
default profile is compiled by the runtime, not spelled out) and Docker's
profile extensions (``archMap``, ``includes``/``excludes``) when a custom
profile came with the request. runc and crun would read the marker as a
profile that denies every call. So before a bundle goes to them:

- ``linux.seccomp`` becomes the resolved profile in the spec's own terms
  (``seccomp.to_oci``: the entries that apply to the container's bounding
  capabilities on this host, as dockerd's ``setupSeccomp`` writes them);
- ``linux.cgroupsPath`` is the cgroup the monitor made for the container,
  so portside's stats, limits, ``top`` and OOM reporting read the same
  directories the runtime put the container in;
- ``ociVersion`` is 1.1.0, the oldest version with everything portside
  writes (``rro`` came in 1.1.0) and one crun 1.8 accepts (it refuses 1.2);
- ``rro`` on a bind of a file becomes ``ro``: nothing can be mounted below a
  file, so it is the same mount, and crun 1.8 fails to open a file as the
  target of a recursive attribute;
- annotations under ``io.portside.`` are dropped: they are instructions to
  portside's runtime (``--init`` is already in ``process.args``).

Pure apart from asking whether a bind source is a directory.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping
from typing import Any

from portside.oci.runtime_spec import is_default_seccomp
from portside.runtime import seccomp
from portside.runtime.seccomp.profile import profile_from_json

OCI_VERSION = "1.1.0"
_OURS = "io.portside."


def external_spec(spec: Mapping[str, Any], *, cgroup_path: str | None, arch: str = "amd64",
                  is_dir: Callable[[str], bool] = os.path.isdir) -> dict[str, Any]:
    """The standard ``config.json`` for ``spec`` (a portside config.json document); raises InvalidArgument."""
    doc: dict[str, Any] = copy.deepcopy(dict(spec))
    doc["ociVersion"] = OCI_VERSION
    linux = doc.setdefault("linux", {})
    if cgroup_path:
        linux["cgroupsPath"] = "/" + cgroup_path.strip("/")
    bounding = ((doc.get("process") or {}).get("capabilities") or {}).get("bounding") or []
    resolved = _seccomp(linux.get("seccomp"), bounding, arch)
    if resolved is None:
        linux.pop("seccomp", None)
    else:
        linux["seccomp"] = resolved
    doc["mounts"] = [_mount(m, is_dir) for m in doc.get("mounts") or []]
    annotations = {k: v for k, v in (doc.get("annotations") or {}).items() if not k.startswith(_OURS)}
    if annotations:
        doc["annotations"] = annotations
    else:
        doc.pop("annotations", None)
    return doc


def _seccomp(untrusted: Mapping[str, Any] | None, caps: list[str], arch: str) -> dict[str, Any] | None:
    if not untrusted:
        return None
    profile = seccomp.default_profile() if is_default_seccomp(untrusted) else profile_from_json(untrusted)
    return seccomp.to_oci(profile, caps, arch)


def _mount(m: dict[str, Any], is_dir: Callable[[str], bool]) -> dict[str, Any]:
    options = m.get("options") or []
    is_bind = m.get("type") == "bind" or bool({"bind", "rbind"} & set(options))
    if "rro" in options and is_bind and not is_dir(m.get("source", "")):
        return {**m, "options": ["ro" if o == "rro" else o for o in options]}
    return m
