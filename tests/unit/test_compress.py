"""Envelope bodies are standard gzip streams, as small as zlib's defaults make them."""

from __future__ import annotations

import gzip
import json
import random
import zlib

import pytest

from otel_sentry_bridge.deliver.compress import GZIP_MAGIC, gzip_body


def _event_like(frames: int) -> bytes:
    rng = random.Random(frames)
    event = {
        "exception": {
            "values": [
                {
                    "type": "OrderLookupError",
                    "stacktrace": {
                        "frames": [
                            {
                                "filename": f"shop/views_{i}.py",
                                "lineno": rng.randrange(1, 900),
                                "context_line": f"    return load(order_id={rng.random()})",
                                "vars": {"order_id": str(rng.getrandbits(40))},
                            }
                            for i in range(frames)
                        ]
                    },
                }
            ]
        },
        "contexts": {"trace": {"trace_id": f"{rng.getrandbits(128):032x}"}},
    }
    return json.dumps(event).encode()


_NOISE = bytes(random.Random(7).getrandbits(8) for _ in range(70_000))
# around the window sizes' edges (512 B = 2**9), event-like JSON, and incompressible data
_BODIES = [b"", b"x", b"ab" * 255, b"ab" * 256, b"abc" * 171, _NOISE]
_BODIES += [_event_like(frames) for frames in (3, 40, 400)]


@pytest.mark.parametrize("data", _BODIES, ids=lambda d: f"{len(d)}B")
def test_every_size_round_trips_as_a_gzip_stream(data: bytes) -> None:
    body = gzip_body(data)
    assert body[:2] == GZIP_MAGIC
    assert gzip.decompress(body) == data


@pytest.mark.parametrize("frames", [1, 3, 12, 40, 400])
def test_the_sized_window_compresses_as_well_as_zlibs_defaults(frames: int) -> None:
    data = _event_like(frames)
    default = zlib.compressobj(1, zlib.DEFLATED, 31)
    reference = default.compress(data) + default.flush()
    # the window and hash table shrink with the input; the output must not grow with them
    assert len(gzip_body(data)) <= len(reference) * 1.01 + 8


def test_only_large_uncompressed_envelopes_are_worth_gzipping() -> None:
    from otel_sentry_bridge.deliver.compress import GZIP_MIN_BYTES, gzip_body, worth_gzip

    large = b"x" * GZIP_MIN_BYTES
    assert worth_gzip(large)
    assert not worth_gzip(large[:-1])
    assert not worth_gzip(gzip_body(large * 4))  # already compressed
