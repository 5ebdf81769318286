"""Images: the name index, the metadata database, import, load, save and removal."""
