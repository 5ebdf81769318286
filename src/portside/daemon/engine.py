"""The engine the API serves: the services the composition root builds, passed to every handler."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field

from portside.images.service import ImageService


@dataclass
class Engine:
    root: str
    images: ImageService
    started: float = field(default_factory=time.time)
    name: str = field(default_factory=socket.gethostname)
    debug: bool = False

    @property
    def id(self) -> str:
        """A stable daemon ID, kept in the root (dockerd's engine ID)."""
        path = os.path.join(self.root, "engine-id")
        try:
            with open(path) as f:
                return f.read().strip()
        except FileNotFoundError:
            import uuid

            value = str(uuid.uuid4())
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                f.write(value)
            os.replace(tmp, path)
            return value
