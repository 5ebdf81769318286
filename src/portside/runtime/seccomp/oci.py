"""A resolved profile as the runtime spec's ``linux.seccomp`` object, for runtimes that load it themselves.

runc and crun take ``linux.seccomp`` as the spec defines it: ``defaultAction``,
``defaultErrnoRet``, ``architectures``, ``flags`` and ``syscalls`` entries of
``names``, ``action``, ``errnoRet`` and ``args``. Docker's own extensions
(``archMap``, ``includes``, ``excludes``) are not part of it: dockerd resolves
them before it writes the bundle (moby's ``setupSeccomp``), and so does this
module, through :func:`~portside.runtime.seccomp.profile.resolve`, the same
resolution portside's own filter compiles. Rules that share an action, an
errno and comparisons are grouped back into one entry, in profile order.

A name the runtime's libseccomp does not know (a call newer than it) is
skipped by runc and crun alike, as it is by portside's compiler for a table
that lacks it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from portside.runtime.seccomp.profile import Profile, Rule, filter_arches, resolve


def to_oci(profile: Profile, caps: Collection[str], arch: str = "amd64", *,
           kernel: tuple[int, int] | None = None) -> dict[str, Any] | None:
    """The ``linux.seccomp`` object for a container with ``caps`` on this host; None for unconfined."""
    if profile.default_action is None:
        return None
    doc: dict[str, Any] = {"defaultAction": profile.default_action.value}
    if profile.default_errno_ret is not None:
        doc["defaultErrnoRet"] = profile.default_errno_ret
    arches = filter_arches(profile, arch)
    if arches:
        doc["architectures"] = list(arches)
    if profile.flags:
        doc["flags"] = list(profile.flags)
    entries: list[dict[str, Any]] = []
    by_kind: dict[tuple[Any, ...], dict[str, Any]] = {}
    for rule in resolve(profile, caps, arch, kernel=kernel):
        kind = (rule.action, rule.errno_ret, rule.args)
        entry = by_kind.get(kind)
        if entry is None:
            entry = by_kind[kind] = _entry(rule)
            entries.append(entry)
        if rule.name not in entry["names"]:
            entry["names"].append(rule.name)
    doc["syscalls"] = entries
    return doc


def _entry(rule: Rule) -> dict[str, Any]:
    entry: dict[str, Any] = {"names": [], "action": rule.action.value}
    if rule.errno_ret is not None:
        entry["errnoRet"] = rule.errno_ret
    if rule.args:
        entry["args"] = [{"index": a.index, "value": a.value, "valueTwo": a.value_two, "op": a.op.value}
                         for a in rule.args]
    return entry
