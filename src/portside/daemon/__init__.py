"""The Engine API daemon.

``http`` is the HTTP/1.1 server (h11 over sockets we own, one thread per
connection, hijack for attach/exec), ``router`` maps Docker's versioned paths
to handlers, ``errors`` is the one table from portside errors to HTTP status,
and ``api/`` holds one module per Docker API resource.
"""
