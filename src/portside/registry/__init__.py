"""``portside registry``: an OCI Distribution v1.1 / Docker Registry v2 server.

Modules, bottom to top: ``names`` (the spec's grammar), ``codes`` (OCI error
codes and their statuses), ``storage`` (the Storage protocol and the
filesystem backend), ``manifests`` (validation and references), ``auth``
(htpasswd, tokens, read-only), ``config``, ``ingest`` (hash while writing),
``wire`` (HTTP/1.1 over stdlib sockets), ``api/`` (one module per resource:
blobs, uploads, manifests, discovery), ``app`` (routing, auth, read-only),
``gc``, ``main``.
"""
