"""Gzip for envelope bodies, shared by the worker and the transport."""

from __future__ import annotations

import zlib

__all__ = ["GZIP_MAGIC", "GZIP_MIN_BYTES", "gzip_body", "worth_gzip"]

GZIP_MAGIC = b"\x1f\x8b"
# Level 1: an event envelope shrinks about 3.3x instead of 3.5x at level 6, for half the
# CPU; zlib's own gzip framing (wbits 16 + window bits) skips the gzip module's Python code.
_LEVEL = 1
# Envelopes smaller than this are sent as they are. zlib gives up the GIL while it
# compresses, and in a busy process getting it back costs far more than compressing: under
# sustained traffic (benchmarks/sustained.py, 2 cores) gzipping every ~5 KB error envelope
# cost ~290 µs of CPU per error across all threads, for ~45 µs of zlib and ~3 KB saved. Large
# envelopes (local variables, request bodies) are still compressed.
GZIP_MIN_BYTES = 16 * 1024
_GZIP_FRAMING = 16
_MIN_WINDOW_BITS = 9
_MAX_WINDOW_BITS = 15


def _sized_state(size: int) -> tuple[int, int]:
    """(wbits, memLevel) for ``size`` bytes of input.

    zlib's defaults (a 32 KiB window, memLevel 8) allocate and clear ~260 KB of state per
    stream, which costs more than compressing a typical 2-8 KB envelope (~60 us of ~70). A
    window no larger than the input finds the same matches, and a hash table scaled with it
    gives the same output here to within a few bytes, in a sixth of the time.
    """
    window = max(_MIN_WINDOW_BITS, min(_MAX_WINDOW_BITS, (size - 1).bit_length()))
    return _GZIP_FRAMING + window, max(1, min(8, window - 7))


def gzip_body(data: bytes) -> bytes:
    """``data`` as a gzip stream (``Content-Encoding: gzip``)."""
    wbits, mem_level = _sized_state(len(data))
    compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, wbits, mem_level)
    return compressor.compress(data) + compressor.flush()


def worth_gzip(data: bytes) -> bool:
    """Whether ``data`` is compressed before it is sent (when compression is on)."""
    return len(data) >= GZIP_MIN_BYTES and data[:2] != GZIP_MAGIC
