"""Loopback Sentry stand-in: accepts envelopes, counts their event items, answers 200 ``{}``.

Run as ``python -m benchmarks.receiver``: prints ``{"port": N}`` and serves until its stdin
closes (the parent exits or closes it) or ``--max-seconds`` pass. GET /count returns the
counters. HTTP/1.1 keep-alive, so both clients reuse one connection as they would in production.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .common import emit


def decode_body(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "br":
        import brotli  # type: ignore[import-not-found]  # only if sentry-sdk chose it

        return bytes(brotli.decompress(body))
    raise ValueError(f"unsupported Content-Encoding {encoding!r}")


def count_items(envelope: bytes) -> dict[str, int]:
    """Item types in one envelope: header line, then (item header, payload) pairs."""
    counts: dict[str, int] = {}
    end = envelope.find(b"\n")
    if end < 0:
        return counts
    pos = end + 1
    size = len(envelope)
    while pos < size:
        end = envelope.find(b"\n", pos)
        line = envelope[pos : (size if end < 0 else end)]
        pos = size if end < 0 else end + 1
        if not line.strip():
            continue
        header = json.loads(line)
        kind = str(header.get("type", "?"))
        counts[kind] = counts.get(kind, 0) + 1
        length = header.get("length")
        if length is not None:
            pos += int(length) + 1  # payload and its newline
        else:
            end = envelope.find(b"\n", pos)
            pos = size if end < 0 else end + 1
    return counts


class _Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values = {"events": 0, "envelopes": 0, "client_reports": 0, "bytes": 0, "bad": 0}


def make_handler(stats: _Stats) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def _reply(self, status: int, body: bytes) -> None:
            # Head and body in one write, as the servers in front of Sentry send a small
            # reply: http.server's own way writes them apart, and every client then waits
            # for the body in a second read.
            self.log_request(status)
            head = (
                f"{self.protocol_version} {status} {self.responses[status][0]}\r\n"
                f"Server: {self.version_string()}\r\nDate: {self.date_time_string()}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            self.wfile.write(head.encode("latin-1") + body)

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_POST(self) -> None:
            body = self._read_body()
            try:
                items = count_items(decode_body(body, self.headers.get("Content-Encoding", "")))
                bad = 0
            except Exception:
                items, bad = {}, 1
            with stats.lock:
                values = stats.values
                values["envelopes"] += 1
                values["bytes"] += len(body)
                values["events"] += items.get("event", 0)
                values["client_reports"] += items.get("client_report", 0)
                values["bad"] += bad
            self._reply(200, b"{}")

        def do_GET(self) -> None:
            if self.path.startswith("/count"):
                with stats.lock:
                    body = json.dumps(stats.values).encode()
                self._reply(200, body)
            else:
                self._reply(404, b"{}")

        def log_message(self, format: str, *args: object) -> None:
            return None

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the listen backlog, read when the socket is bound


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-seconds", type=float, default=1800.0)
    args = parser.parse_args()
    stats = _Stats()
    server = _Server(("127.0.0.1", 0), make_handler(stats))

    def stop_on_eof() -> None:
        sys.stdin.read()  # returns when the parent closes our stdin or dies
        server.shutdown()

    threading.Thread(target=stop_on_eof, daemon=True).start()
    timer = threading.Timer(args.max_seconds, server.shutdown)  # never outlive a stuck parent
    timer.daemon = True
    timer.start()
    emit({"port": server.server_address[1]})
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
