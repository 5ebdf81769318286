"""Snapshots: layer directories keyed by chain ID, handed out as mount records."""

from portside.snapshots.mount import Mount, mount_all, unmount
from portside.snapshots.overlay import OverlaySnapshotter

__all__ = ["Mount", "OverlaySnapshotter", "mount_all", "unmount"]
