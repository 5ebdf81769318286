"""The content store: every blob (manifest, config, layer) addressed by its sha256 digest."""

from portside.content.store import ContentStore, FileContentStore, Info, Writer

__all__ = ["ContentStore", "FileContentStore", "Info", "Writer"]
