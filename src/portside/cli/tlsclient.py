"""The CLI's TLS: a client context as the docker CLI builds it (``go-connections/tlsconfig``).

Imported only for a TLS connection: ``ssl`` costs a plain ``portside run``
several milliseconds (docs/cli-startup.md).
"""

from __future__ import annotations

import _socket
import os
import ssl

from portside.cli.endpoint import EndpointError, TLSOptions

# One context per set of files: a command may open several connections.
_CONTEXTS: dict[tuple[str, str, str, bool], ssl.SSLContext] = {}


def context(options: TLSOptions) -> ssl.SSLContext:
    """TLS 1.2 or newer; the daemon checked against the CA (--tlsverify); our certificate if given."""
    key = (options.cacert, options.cert, options.key, options.verify)
    cached = _CONTEXTS.get(key)
    if cached is not None:
        return cached
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # The daemon may close without close_notify; HTTP framing tells a truncated response.
    ctx.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
    if options.verify:
        try:
            ctx.load_verify_locations(cafile=options.cacert)
        except OSError as e:
            raise EndpointError(f'Could not read CA certificate "{options.cacert}": open {options.cacert}: '
                                f"{_strerror(e)}") from None
        except ssl.SSLError as e:
            raise EndpointError(f'failed to append certificates from PEM file: "{options.cacert}": {e}') from None
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if options.cert or options.key:
        if not options.cert or not options.key:
            raise EndpointError("Could not load X509 key pair: both --tlscert and --tlskey are needed")
        try:
            ctx.load_cert_chain(options.cert, options.key)
        except OSError as e:
            missing = options.cert if not os.path.exists(options.cert) else options.key
            raise EndpointError(f"Could not load X509 key pair: open {missing}: {_strerror(e)}") from None
        except ssl.SSLError as e:
            raise EndpointError(f"Could not load X509 key pair: {e}") from None
    _CONTEXTS[key] = ctx
    return ctx


def wrap(sock: _socket.socket, server_name: str, options: TLSOptions) -> ssl.SSLSocket:
    """``sock`` (a connected TCP socket) with the handshake done; ssl.SSLError when refused."""
    import socket  # SSLContext.wrap_socket wants a socket.socket, not a _socket.socket

    plain = socket.socket(sock.family, sock.type, sock.proto, fileno=sock.detach())
    return context(options).wrap_socket(plain, server_hostname=server_name)


def _strerror(e: OSError) -> str:
    text = e.strerror or str(e)
    return text[:1].lower() + text[1:]
