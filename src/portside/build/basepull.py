"""Base images a build does not have: pulled as dockerd's classic builder pulls them.

``FROM name`` (and ``COPY --from=name``) with no such image here pulls it from
its registry, through the daemon's mirrors and registry options, with the
credentials the client sent in ``X-Registry-Config`` for that registry; the
pull's progress goes into the build's stream as the same JSON messages
``POST /images/create`` sends, which the docker CLI renders. ``--pull``
(``pull=1``) pulls even a base that is here, and a pull that fails then fails
the build, as in dockerd.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from portside.distribution.auth import ANONYMOUS, Credentials
from portside.distribution.hosts import RegistryOptions
from portside.distribution.pull import Pull, resolve
from portside.images.service import Image, ImageService
from portside.oci.reference import parse_normalized


class BasePuller:
    def __init__(self, images: ImageService, options: RegistryOptions, auths: dict[str, Credentials],
                 emit: Callable[[dict[str, Any]], None]) -> None:
        self.images = images
        self.options = options
        self.auths = auths          # by registry domain (docker.io for Docker Hub)
        self.emit = emit

    def __call__(self, name: str) -> Image:
        """Pull ``name`` (``latest`` when it has no tag); returns the image. Raises the pull's errors."""
        ref = parse_normalized(name)
        if ref.tag is None and ref.digest is None:
            ref = ref.with_tag("latest")
        resolved = resolve(self.options, ref, self.auths.get(ref.domain, ANONYMOUS))
        image_id = Pull(self.images, resolved, self.emit).run()  # closes the registry client
        self.images.event(image_id, "pull", ref.familiar())
        return self.images.load_image(image_id)
