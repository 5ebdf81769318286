"""``portside registry``: an OCI Distribution v1.1 / Docker Registry v2 server.

Modules, bottom to top: ``names`` (the spec's grammar), ``codes`` (OCI error
codes and their statuses), ``storage`` (the Storage protocol and the
filesystem backend), ``manifests`` (validation and references), ``auth``
(htpasswd, tokens, read-only), ``config``, ``wire`` (HTTP/1.1 over stdlib
sockets), ``handlers`` (one function per endpoint), ``gc``, ``main``.
"""
