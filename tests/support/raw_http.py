"""A scripted loopback HTTP server on raw sockets, for transport tests that need a peer which
misbehaves on purpose (closes idle connections, never answers, sends endless headers, chunks,
TLS with a self-signed certificate).

Each accepted connection runs ``handler(peer)`` on its own daemon thread; :class:`Peer` reads
requests and writes whatever bytes the test scripts. :attr:`RawServer.accepted` counts
connections and :attr:`RawServer.bodies` every request body read, so keep-alive reuse and
resends can be asserted exactly.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import struct
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

__all__ = ["Peer", "RawServer", "reply", "self_signed_cert"]


def reply(
    status: int = 200,
    headers: dict[str, str] | None = None,
    body: bytes = b"{}",
    *,
    version: str = "HTTP/1.1",
    length: bool = True,
) -> bytes:
    """The bytes of one response; ``length`` adds Content-Length."""
    fields = dict(headers or {})
    if length:
        fields.setdefault("Content-Length", str(len(body)))
    head = f"{version} {status} Whatever\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return (head + "\r\n").encode("latin-1") + body


class Peer:
    """The server's side of one connection."""

    def __init__(self, sock: socket.socket, server: RawServer, index: int) -> None:
        self.sock, self.server, self.index = sock, server, index
        self._buf = b""

    def read_request(self) -> bytes | None:
        """The next request's body (recorded in the server), or None when the client closed."""
        while b"\r\n\r\n" not in self._buf:
            chunk = self._recv()
            if not chunk:
                return None
            self._buf += chunk
        head, _, self._buf = self._buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        fields = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
        size = int(fields.get("content-length", "0"))
        while len(self._buf) < size:
            chunk = self._recv()
            if not chunk:
                return None
            self._buf += chunk
        body, self._buf = self._buf[:size], self._buf[size:]
        with self.server.lock:
            self.server.heads.append(lines)
            self.server.bodies.append(body)
            self.server.connections.append(self.index)
        return body

    def _recv(self) -> bytes:
        try:
            return self.sock.recv(65536)
        except OSError:  # reset by the client
            return b""

    def send(self, data: bytes) -> bool:
        """Write ``data``; False once the client is gone."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def close(self, *, reset: bool = False) -> None:
        """Close; ``reset`` sends an RST instead of a FIN."""
        if reset:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


class RawServer:
    """Serves ``handler`` on 127.0.0.1 (TLS when ``tls`` is a server context) until closed."""

    def __init__(
        self, handler: Callable[[Peer], None], *, tls: ssl.SSLContext | None = None
    ) -> None:
        self.handler, self.tls = handler, tls
        self.lock = threading.Lock()
        self.accepted = 0
        self.bodies: list[bytes] = []
        self.heads: list[list[str]] = []  # request line and header lines, per request
        self.connections: list[int] = []  # which connection (accept order) carried each
        self.peers: list[Peer] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)  # accept() polls for close()
        self._stop = threading.Event()
        self.port = int(self.listener.getsockname()[1])
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def dsn(self, scheme: str = "http", host: str = "127.0.0.1") -> str:
        return f"{scheme}://publickey@{host}:{self.port}/42"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            sock.settimeout(None)
            with self.lock:
                index = self.accepted
                self.accepted += 1
            threading.Thread(target=self._serve, args=(sock, index), daemon=True).start()

    def _serve(self, sock: socket.socket, index: int) -> None:
        try:
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_side=True)
        except (OSError, ssl.SSLError):  # the client refused our certificate
            sock.close()
            return
        peer = Peer(sock, self, index)
        with self.lock:
            self.peers.append(peer)
        try:
            self.handler(peer)
        finally:
            sock.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.listener.close()
        with self.lock:
            peers = list(self.peers)
        for peer in peers:  # wake handlers blocked in recv
            try:
                peer.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def self_signed_cert(directory: Path) -> tuple[Path, Path] | None:
    """A certificate for ``localhost`` (DNS name only) and its key, made with the openssl
    command; None when there is no openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj"),
            *("/CN=localhost", "-addext", "subjectAltName=DNS:localhost"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
