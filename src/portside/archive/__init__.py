"""Layer tarballs: compression, and applying them safely to a directory."""

from portside.archive.apply import ApplyResult, apply_layer
from portside.archive.compression import (
    Compression,
    compressing_writer,
    decompressing_reader,
    detect,
)

__all__ = [
    "ApplyResult",
    "Compression",
    "apply_layer",
    "compressing_writer",
    "decompressing_reader",
    "detect",
]
