"""One persistent keep-alive HTTP/1.1 connection that POSTs bodies with little work per request.

The transport's route when no proxy applies: a plain or TLS socket, the request head built once
(a send is one ``sendall``), and a reply reader that keeps only the status,
``X-Sentry-Rate-Limits``, ``Retry-After`` and the first ``keep`` bytes of the body.

Bounded, so a broken or hostile server gives an exception, never a hang or a big buffer:
``timeout`` for the connect, the send and each read, ``2 * timeout`` for the whole reply; 64
KiB and 100 lines of head (1xx heads included); ``keep`` + 64 KiB of body read to reuse the
connection (past that, or when the framing is in doubt, it is closed). Once the status is
known, a broken body only closes the connection. An idle connection with something to read
(the server closed it, or sent an unasked 408) is replaced before use; a reused one that ends
before any byte of the reply (its close racing the send) is reopened and the request sent once
more, never after a byte of the reply arrived.
One thread at a time; raises ``OSError`` (``ConnectionError``, ``TimeoutError``,
``ssl.SSLError``) and :class:`ProtocolError`.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import socket
import ssl
import time
import zlib
from collections.abc import Mapping
from typing import NamedTuple
from urllib.parse import urlsplit

__all__ = ["HttpConnection", "ProtocolError", "Reply"]

_HEAD_LIMIT = 64 * 1024  # status lines and headers of one reply, 1xx ones included
_MAX_HEADERS = 100
_DRAIN_LIMIT = 64 * 1024  # body bytes read past the kept ones to keep the connection
_LINE_LIMIT = 8 * 1024  # a chunk-size or trailer line
_RECV_SIZE = 16 * 1024
_PORTS = {"http": 80, "https": 443}
_WANTED = {b"content-length", b"transfer-encoding", b"connection", b"content-encoding"}
_WANTED |= {b"x-sentry-rate-limits", b"retry-after"}
_HEX = frozenset(b"0123456789abcdefABCDEF")
_STATUS = re.compile(rb"[0-9]{3}")


class ProtocolError(Exception):
    """The reply is not an HTTP/1.x response within the limits."""


class Reply(NamedTuple):
    status: int
    rate_limits: str | None  # header values as sent (latin-1), repeated ones joined by ", "
    retry_after: str | None
    body: bytes  # the start of the body (gunzipped if it came gzipped), at most ``keep`` bytes


class _Stale(Exception):
    """The reused connection ended before any byte of the reply: sending again is safe."""


class HttpConnection:
    """POSTs to ``url`` (http or https, no proxy) over one keep-alive connection.

    ``verify`` as in requests: True (its CA bundle), False, or a CA bundle file or directory.
    """

    def __init__(self, url: str, *, timeout: float, verify: bool | str, keep: int) -> None:
        parts = urlsplit(url)
        host, default = parts.hostname, _PORTS.get(parts.scheme)
        if default is None or not host or not host.isascii():
            raise ValueError("not an http(s) URL with an ASCII host")
        port = parts.port or default
        self._netloc = f"[{host}]" if ":" in host else host
        if port != default:
            self._netloc += f":{port}"
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._address = (host, port)
        self._tls = parts.scheme == "https"
        self._timeout = timeout
        self._verify = verify
        self._keep = keep
        self._context: ssl.SSLContext | None = None
        self._sock: socket.socket | None = None
        # The last reply head read, as sent and as parsed: a server answers every envelope
        # with the same head (or one whose Date changes once a second); not parsed again.
        self._heads = _Heads()

    def head(self, headers: Mapping[str, str]) -> bytes:
        """The request head with ``headers``, up to the Content-Length value, for :meth:`post`."""
        fields = {"Host": self._netloc, "Accept-Encoding": "identity", **headers}
        fields["Connection"] = "keep-alive"
        texts = [self._target.replace(" ", "\n"), *fields, *fields.values()]
        if any(c in text for text in texts for c in "\r\n\0"):
            raise ValueError("a header or the target would break the request head")
        text = f"POST {self._target} HTTP/1.1\r\n"
        text += "".join(f"{name}: {value}\r\n" for name, value in fields.items())
        return (text + "Content-Length: ").encode("ascii")

    def post(self, head: bytes, body: bytes, timeout: float) -> Reply:
        """Send ``body`` after ``head`` (from :meth:`head`) and read the reply, each step
        within ``timeout`` seconds (the socket keeps the connection's own between posts)."""
        data = b"".join((head, b"%d\r\n\r\n" % len(body), body))
        if self._sock is not None and _readable(self._sock):
            self.close()  # closed by the server while idle, or it said something unasked (408)
        if self._sock is not None:
            try:
                return self._exchange(self._sock, data, reused=True, timeout=timeout)
            except _Stale:
                pass  # closed by _exchange: reconnect once
        return self._exchange(self._connect(timeout), data, reused=False, timeout=timeout)

    def close(self) -> None:
        """Close the socket (never shut down: a forked child may share it). Idempotent."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def _exchange(self, sock: socket.socket, data: bytes, *, reused: bool, timeout: float) -> Reply:
        try:
            if timeout != self._timeout:
                sock.settimeout(timeout)
            try:
                sock.sendall(data)
            except TimeoutError:
                raise TimeoutError(f"sending timed out ({timeout:g} s)") from None
            except OSError:
                if reused:
                    raise _Stale from None
                raise
            reader = _Reader(sock, timeout, self._keep, self._heads)
            reply, reusable = reader.reply(reused)
            if timeout != self._timeout:
                sock.settimeout(self._timeout)
        except BaseException:
            self.close()
            raise
        if not reusable:
            self.close()
        return reply

    def _connect(self, timeout: float) -> socket.socket:
        if self._tls and self._context is None:
            self._context = self._new_context()  # a bad CA bundle path fails before connecting
        try:
            sock = socket.create_connection(self._address, timeout)
        except TimeoutError:
            raise TimeoutError(f"connecting to {self._netloc} timed out") from None
        except OSError as exc:
            raise ConnectionError(f"connecting to {self._netloc}: {exc}") from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._context is not None:
                hostname = self._address[0].rstrip(".")
                sock = self._context.wrap_socket(sock, server_hostname=hostname)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        return sock

    def _new_context(self) -> ssl.SSLContext:
        if not self._verify:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            # requests' default bundle (requests.utils.DEFAULT_CA_BUNDLE_PATH is this), read
            # without importing requests: a helper process would pay for it at its start.
            import certifi

            where = certifi.where() if self._verify is True else self._verify
            if not os.path.exists(where):  # requests' message
                raise OSError(f"Could not find a suitable TLS CA certificate bundle: {where}")
            if os.path.isdir(where):
                context = ssl.create_default_context(capath=where)
            else:
                context = ssl.create_default_context(cafile=where)
        context.set_alpn_protocols(["http/1.1"])
        return context


class _Heads:
    """The last final reply head: its bytes, and what :meth:`_Reader.head` made of them."""

    __slots__ = ("parsed", "raw")

    def __init__(self) -> None:
        self.raw = b""
        self.parsed: tuple[int, bool, dict[bytes, bytes]] = (0, False, {})


class _Reader:
    """Reads one reply from ``sock`` into one bounded buffer; ``pos`` is what was parsed."""

    __slots__ = ("buf", "deadline", "heads", "keep", "pos", "sock", "timeout")

    def __init__(self, sock: socket.socket, timeout: float, keep: int, heads: _Heads) -> None:
        self.sock, self.timeout, self.keep, self.heads = sock, timeout, keep, heads
        self.buf = bytearray()
        self.pos = 0
        self.deadline = time.monotonic() + 2 * timeout

    def fill(self) -> bool:
        """Read more into the buffer; False at the end of the stream."""
        if len(self.buf) > _HEAD_LIMIT + self.keep + 2 * _DRAIN_LIMIT:
            raise ProtocolError("reply too long")
        try:
            chunk = self.sock.recv(_RECV_SIZE)
        except TimeoutError:
            stalled = "reply stalled" if self.buf else "no reply"
            raise TimeoutError(f"{stalled} for {self.timeout:g} s") from None
        if not chunk:
            return False
        self.buf += chunk
        if time.monotonic() > self.deadline:
            raise TimeoutError(f"reply not complete within {2 * self.timeout:g} s")
        return True

    def reply(self, reused: bool) -> tuple[Reply, bool]:
        """The reply, and whether the connection may be used again."""
        status, http10, found = self.head(reused)
        connection = found.get(b"connection")
        close = http10
        if connection is not None:
            tokens = {t.strip() for t in connection.lower().split(b",")}
            close = b"close" in tokens or (http10 and b"keep-alive" not in tokens)
        encoding, length = found.get(b"transfer-encoding"), found.get(b"content-length")
        body = bytearray()
        limit = self.keep + _DRAIN_LIMIT
        try:
            if status < 200 or status in (204, 304):
                complete = status != 101  # an upgrade we never asked for
            elif encoding is not None:
                chunked = encoding.lower().rsplit(b",", 1)[-1].strip() == b"chunked"
                complete = self.chunked(body, limit) if chunked else self.to_close(body, limit)
                close = close or not chunked or length is not None
            elif length is not None:
                values = {v.strip() for v in length.split(b",")}  # "5, 5" is 5
                size = values.pop() if len(values) == 1 else b""
                if not size.isdigit() or len(size) > 18:
                    raise ProtocolError("bad Content-Length")
                complete = self.exactly(body, int(size), limit)
            else:
                complete = self.to_close(body, limit)
                close = True
        except (OSError, ProtocolError):  # the status is known: return it, drop the connection
            complete = False
        data = bytes(body[: self.keep])
        if data and found.get(b"content-encoding", b"").strip().lower() in (b"gzip", b"x-gzip"):
            with contextlib.suppress(zlib.error):
                data = zlib.decompressobj(zlib.MAX_WBITS | 32).decompress(bytes(body), self.keep)
        limits, after = _text(found, b"x-sentry-rate-limits"), _text(found, b"retry-after")
        reply = Reply(status, limits, after, data)
        return reply, complete and not close and self.pos == len(self.buf)

    def head(self, reused: bool) -> tuple[int, bool, dict[bytes, bytes]]:
        """Status, whether HTTP/1.0, and the wanted headers (lower-case names) of the final
        reply; 1xx replies before it are skipped."""
        while True:
            end = self.head_end()
            while end < 0:
                if len(self.buf) > _HEAD_LIMIT:
                    raise ProtocolError(f"reply head longer than {_HEAD_LIMIT} bytes")
                try:
                    more = self.fill()
                except TimeoutError:  # not a stale connection: a slow server
                    raise
                except OSError:
                    if reused and not self.buf:
                        raise _Stale from None
                    raise
                if not more:
                    if reused and not self.buf:
                        raise _Stale
                    raise ConnectionError("server closed the connection without a full reply")
                end = self.head_end()
            raw = bytes(self.buf[self.pos : end])
            self.pos = end
            heads = self.heads
            if raw == heads.raw:
                return heads.parsed
            lines = raw.split(b"\n")
            status_line = lines[0].rstrip(b"\r")
            parts = status_line.split(None, 2)
            if len(parts) < 2 or parts[0][:7] != b"HTTP/1." or not _STATUS.fullmatch(parts[1]):
                # Whole (bounded): the caller redacts keys in it, then cuts it.
                raise ProtocolError(f"bad status line {status_line!r}")
            status = int(parts[1])
            if 100 <= status < 200 and status != 101:
                continue
            if len(lines) > _MAX_HEADERS + 3:  # status line, headers, two empty lines
                raise ProtocolError(f"more than {_MAX_HEADERS} headers")
            parsed = status, parts[0] == b"HTTP/1.0", _headers(lines)
            heads.raw, heads.parsed = raw, parsed
            return parsed

    def head_end(self) -> int:
        """Where the head starting at ``pos`` ends (after its empty line), or -1."""
        crlf, lf = self.buf.find(b"\n\r\n", self.pos), self.buf.find(b"\n\n", self.pos)
        if lf >= 0 and (crlf < 0 or lf < crlf):
            return lf + 2
        return crlf + 3 if crlf >= 0 else -1

    def exactly(self, body: bytearray, size: int, limit: int) -> bool:
        """Read a ``size``-byte body; past ``limit``, only the kept part (and give up)."""
        got = self.take(size if size <= limit else self.keep)
        body += got
        return len(got) == size

    def to_close(self, body: bytearray, limit: int) -> bool:
        """Read the body up to the end of the stream, or the kept part of it past ``limit``."""
        while len(self.buf) - self.pos <= limit and self.fill():
            pass
        body += self.buf[self.pos : self.pos + self.keep]
        self.pos = len(self.buf)
        return False  # the connection is spent either way

    def chunked(self, body: bytearray, limit: int) -> bool:
        """Decode a chunked body; past ``limit``, keep what was read and give up."""
        while True:
            size_text = self.line().split(b";", 1)[0].strip()
            if not size_text or len(size_text) > 15 or not _HEX.issuperset(size_text):
                raise ProtocolError("bad chunk size")
            size = int(size_text, 16)
            if size == 0:
                break
            if len(body) + size > limit:
                body += self.take(max(0, min(size, self.keep - len(body))))
                return False
            got = self.take(size)
            body += got
            if len(got) < size or self.line():
                raise ProtocolError("bad chunk")
        for _ in range(_MAX_HEADERS):  # trailers, up to an empty line
            if not self.line():
                return True
        raise ProtocolError("too many trailers")

    def take(self, size: int) -> bytearray:
        """The next ``size`` bytes, fewer if the stream ends first."""
        while len(self.buf) - self.pos < size and self.fill():
            pass
        start = self.pos
        self.pos = min(start + size, len(self.buf))
        return self.buf[start : self.pos]

    def line(self) -> bytes:
        """The next line, without its line end."""
        while (end := self.buf.find(b"\n", self.pos, self.pos + _LINE_LIMIT)) < 0:
            if len(self.buf) - self.pos >= _LINE_LIMIT:
                raise ProtocolError("line too long")
            if not self.fill():
                raise ProtocolError("reply cut short")
        line = bytes(self.buf[self.pos : end]).rstrip(b"\r")
        self.pos = end + 1
        return line


def _headers(lines: list[bytes]) -> dict[bytes, bytes]:
    """The wanted headers among ``lines`` (after the status line): lower-case names, values
    stripped, repeated ones joined by ``, ``, folded lines unfolded."""
    found: dict[bytes, bytes] = {}
    name = b""
    for line in lines[1:]:
        line = line.rstrip(b"\r")
        if not line:
            continue
        if line[:1] in (b" ", b"\t"):  # obsolete folding: continues the previous header
            if name in found:
                found[name] += b" " + line.strip()
            continue
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name in _WANTED:
            value = value.strip()
            found[name] = found[name] + b", " + value if name in found else value
    return found


def _readable(sock: socket.socket) -> bool:
    """Whether an idle connection has anything to read (as urllib3 checks before reuse)."""
    if hasattr(select, "poll"):  # select() fails on descriptors above 1023
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([sock], [], [], 0)[0])


def _text(found: dict[bytes, bytes], name: bytes) -> str | None:
    value = found.get(name)
    return None if value is None else value.decode("latin-1")
