"""Container cgroups: Docker's HostConfig limits → cgroup v1 or v2 files, usage figures, freeze, kill, cleanup."""

from portside.cgroups.manager import Manager, detect, for_host
from portside.cgroups.mountinfo import CgroupVersion
from portside.cgroups.resources import HostLimits, Resources, from_host_config
from portside.cgroups.stats import BlkioEntry, Stats
from portside.cgroups.v1 import V1Manager
from portside.cgroups.v2 import V2Manager

__all__ = ["BlkioEntry", "CgroupVersion", "HostLimits", "Manager", "Resources", "Stats", "V1Manager", "V2Manager",
           "detect", "for_host", "from_host_config"]
