"""``portside registry gc``: mark the blobs manifests reach, sweep the rest.

Mark, per repository: every manifest revision (distribution's default), or
with ``delete_untagged`` only what tags reach; in both cases the children of
an index and the referrers of a kept manifest (an artifact attached to an
image lives as long as the image) are kept, and each kept manifest marks its
own blob, its config and its layers. Sweep: blobs nothing marked, and the
repository links to them. Run it with the registry stopped or read-only: a
push between mark and sweep could lose a blob uploaded before its manifest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from portside.errors import NotFound
from portside.registry import manifests
from portside.registry.codes import RegistryError
from portside.registry.storage import FileStorage


@dataclass
class Report:
    marked: set[str] = field(default_factory=set)
    blobs_deleted: list[str] = field(default_factory=list)
    manifests_deleted: list[tuple[str, str]] = field(default_factory=list)  # (repo, digest)
    bytes_freed: int = 0


def _parse(storage: FileStorage, repo: str, digest: str) -> manifests.Parsed | None:
    try:
        _, data = storage.manifest(repo, digest)
        return manifests.parse(data, None)
    except (NotFound, RegistryError, json.JSONDecodeError):
        return None


def collect(storage: FileStorage, *, dry_run: bool = False, delete_untagged: bool = False) -> Report:
    report = Report()
    for repo in storage.repositories():
        revisions = set(storage.revisions(repo))
        if delete_untagged:
            roots = set()
            for tag in storage.tags(repo):
                try:
                    roots.add(storage.tag(repo, tag))
                except NotFound:
                    pass
        else:
            roots = set(revisions)
        keep: set[str] = set()
        todo = [d for d in roots if d in revisions]
        while todo:
            digest = todo.pop()
            if digest in keep:
                continue
            keep.add(digest)
            parsed = _parse(storage, repo, digest)
            if parsed is None:
                continue
            report.marked.add(digest)
            report.marked.update(parsed.blobs)
            todo.extend(d for d in parsed.manifests if d in revisions)
            todo.extend(r["digest"] for r in storage.referrers(repo, digest) if r["digest"] in revisions)
        report.marked.update(keep)
        for digest in sorted(revisions - keep):
            report.manifests_deleted.append((repo, digest))
            if not dry_run:
                parsed = _parse(storage, repo, digest)
                storage.delete_manifest(repo, digest)
                if parsed is not None and parsed.subject is not None:
                    storage.remove_referrer(repo, parsed.subject, digest)
    for digest in sorted(storage.walk_blobs()):
        if digest in report.marked:
            continue
        try:
            report.bytes_freed += storage.blob_size(digest)
        except NotFound:
            continue
        report.blobs_deleted.append(digest)
        if not dry_run:
            storage.delete_blob(digest)
    if not dry_run:
        gone = set(report.blobs_deleted)
        for repo in storage.repositories():
            for digest in gone:
                storage.unlink_blob(repo, digest)
    return report
