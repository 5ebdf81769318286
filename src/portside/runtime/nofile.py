"""The open-file limit: raised for the daemon and the monitor, given back to containers.

The monitor keeps three descriptors open for every running container (its
stdout and stderr pipes and its json-file log), so the soft ``RLIMIT_NOFILE``
it inherits caps how many containers a host can run: with the soft limit of
1024 most distributions give a login or a service, about 330 containers, and
the next start fails with "Too many open files". Go does what is done here
for every Go daemon (dockerd, containerd): raise the soft limit to the hard
one at start (no privilege needed) and give the processes it starts the
original back.

The original travels in the environment (``PORTSIDE_NOFILE``): the daemon
raises its limit first and starts the monitor, which must not mistake the
raised limit for the original. A container's process gets the original
back just before ``execve`` (``runtime.init``), unless its spec sets its own
``RLIMIT_NOFILE`` (``--ulimit nofile=...``): what it would have had without
the raise.
"""

from __future__ import annotations

import os
import resource

ENV = "PORTSIDE_NOFILE"


def raise_soft_limit() -> None:
    """Soft ``RLIMIT_NOFILE`` up to the hard limit; the limit this process tree started with is kept in ENV."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    os.environ.setdefault(ENV, f"{soft}:{hard}")
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (OSError, ValueError):
            pass  # keep the soft limit we have: better fewer containers than no engine


def original() -> tuple[int, int] | None:
    """The (soft, hard) limit before ``raise_soft_limit``, or None if it was not raised in this process tree."""
    soft, _, hard = os.environ.get(ENV, "").partition(":")
    try:
        return int(soft), int(hard)
    except ValueError:
        return None


def restore() -> None:
    """For a container's process, last before ``execve``: the limit it would have had without the raise.

    Only then: between fork and exec the process still holds the monitor's
    descriptors (close-on-exec), and a lower limit would make any new one fail.
    """
    limit = original()
    if limit is not None and limit != resource.getrlimit(resource.RLIMIT_NOFILE):
        resource.setrlimit(resource.RLIMIT_NOFILE, limit)
