"""Container output: Docker's stream framing (``stdcopy``) and its json-file logs (``jsonlog``).

Import the modules themselves: this package file stays empty so that the CLI,
which uses only the framing codec, does not load the log reader.
"""
