"""Local volumes: named and anonymous directories that outlive containers."""

from portside.volumes.store import Volume, VolumeStore

__all__ = ["Volume", "VolumeStore"]
