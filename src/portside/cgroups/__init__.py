"""Container cgroups: Docker's HostConfig limits → cgroup v1 or v2 files, usage figures, freeze, kill, cleanup."""

from portside.cgroups.resources import HostLimits, Resources, from_host_config

__all__ = ["HostLimits", "Resources", "from_host_config"]
