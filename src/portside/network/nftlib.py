"""Running an nft script in-process through libnftables, the library the ``nft`` command is made of.

Why not ``nft -f -``: on a loaded 2-core machine starting the command costs
20-50 ms, paid on every container start that publishes a port; the library
call with the same script and the same one-transaction semantics costs about
0.1 ms once its context exists. Where the library cannot be loaded, the
caller falls back to the command.
"""

from __future__ import annotations

import ctypes
import threading

_SONAME = "libnftables.so.1"


class Unavailable(Exception):
    """libnftables cannot be loaded here."""


class NftError(Exception):
    """The script was refused; the message is nft's."""


class _Library:
    def __init__(self) -> None:
        try:
            lib = ctypes.CDLL(_SONAME, use_errno=True)
        except OSError as e:
            raise Unavailable(str(e)) from None
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        ctx = lib.nft_ctx_new(0)  # NFT_CTX_DEFAULT
        if not ctx:
            raise Unavailable("nft_ctx_new failed")
        # buffered, so nothing is printed on the daemon's stdout/stderr and errors can be returned
        if lib.nft_ctx_buffer_output(ctx) or lib.nft_ctx_buffer_error(ctx):
            raise Unavailable("cannot buffer libnftables output")
        self.lib = lib
        self.ctx = ctx
        self.lock = threading.Lock()  # a context is not safe to share between threads

    def run(self, script: str) -> None:
        with self.lock:
            rc = self.lib.nft_run_cmd_from_buffer(self.ctx, script.encode())
            # reading a buffer rewinds it: read both every time so the next call starts empty
            self.lib.nft_ctx_get_output_buffer(self.ctx)
            error: bytes | None = self.lib.nft_ctx_get_error_buffer(self.ctx)
        if rc != 0:
            raise NftError((error or b"").decode(errors="replace").strip() or f"nft returned {rc}")


_library: _Library | None = None
_load_lock = threading.Lock()


def run(script: str) -> None:
    """Run ``script`` (nft -f syntax) as one transaction. Unavailable if the library is missing, NftError if refused."""
    global _library
    with _load_lock:
        if _library is None:
            _library = _Library()
        library = _library
    library.run(script)
