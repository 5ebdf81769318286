"""Platforms: this host's, ``--platform`` values, and the choice of a manifest from an index.

Values are normalised as containerd's ``platforms`` package does
(x86_64 → amd64, aarch64 → arm64, arm64's default variant v8).
"""

from __future__ import annotations

import platform as _platform

from portside.errors import InvalidArgument
from portside.oci.image import Descriptor, Index, Platform
from portside.oci import mediatypes as mt

_ARCH = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm",
         "armv7l": "arm", "i386": "386", "i686": "386"}


def _normalize(os_: str, arch: str, variant: str) -> Platform:
    arch = _ARCH.get(arch.lower(), arch.lower())
    variant = variant.lower()
    if arch == "arm64" and variant == "v8":
        variant = ""
    if arch == "arm" and not variant:
        variant = "v7"
    return Platform(os_.lower(), arch, variant)


def host_platform() -> Platform:
    machine = _platform.machine()
    return _normalize("linux", machine, "v7" if machine == "armv7l" else "")


def parse_platform(untrusted: str) -> Platform:
    """``os[/arch[/variant]]`` or a bare architecture, as ``docker pull --platform`` takes it."""
    parts = untrusted.strip().split("/")
    if not all(parts) or len(parts) > 3:
        raise InvalidArgument(f'"{untrusted}": unknown operating system or architecture: invalid argument')
    if len(parts) == 1:
        if parts[0].lower() in ("linux", "windows", "darwin", "freebsd"):
            return _normalize(parts[0], host_platform().architecture, "")
        return _normalize("linux", parts[0], "")
    return _normalize(parts[0], parts[1], parts[2] if len(parts) == 3 else "")


def format_platform(p: Platform) -> str:
    return "/".join(x for x in (p.os, p.architecture, p.variant) if x)


def select(index: Index, want: Platform) -> Descriptor | None:
    """The entry for ``want``: exact variant first, then one without a variant."""
    best: Descriptor | None = None
    for desc in index.manifests:
        if desc.media_type not in mt.MANIFESTS or desc.platform is None:
            continue
        got = _normalize(desc.platform.os, desc.platform.architecture, desc.platform.variant)
        if got.os != want.os or got.architecture != want.architecture:
            continue
        if got.variant == want.variant:
            return desc
        if best is None and (not got.variant or not want.variant):
            best = desc
    return best
