"""A real uvicorn on a loopback port, and a raw-socket client that streams a body into it.

For what the TestClient cannot show: that the server answers (and stops reading) before a body ends.
"""

from __future__ import annotations

import contextlib
import itertools
import select
import socket
import threading
import time
from collections.abc import Iterable, Iterator

import pytest
import uvicorn
from starlette.types import ASGIApp

SOCKET_BUFFER = 256 * 1024


class CountingBody:
    """A request body produced on demand, counting how many chunks the sender pulled."""

    def __init__(self, opening: bytes, *, chunks: int, chunk_size: int) -> None:
        self.opening = opening
        self.chunks = chunks
        self.chunk_size = chunk_size
        self.pulled = 0

    def __iter__(self) -> Iterator[bytes]:
        self.pulled += 1
        yield self.opening
        for _ in range(self.chunks):
            self.pulled += 1
            yield b"x" * self.chunk_size


@contextlib.contextmanager
def serving(app: ASGIApp, *, buffer: int | None = SOCKET_BUFFER) -> Iterator[int]:
    """Run the app under a real uvicorn on a loopback port; yield the port.

    ``buffer`` pins the receive buffer (not autotuned up to tens of MiB) so the bytes in flight
    stay small and known; None leaves the kernel's default.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if buffer is not None:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer)
    listener.bind(("127.0.0.1", 0))
    port: int = listener.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        ws="none",
        loop="asyncio",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("uvicorn did not start")
            time.sleep(0.01)
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()
    assert not thread.is_alive()


def connect(port: int, *, buffer: int = SOCKET_BUFFER) -> socket.socket:
    """A client socket to the loopback port, its send buffer pinned to ``buffer`` bytes."""
    conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffer)
    conn.settimeout(5)
    conn.connect(("127.0.0.1", port))
    return conn


def chunked(data: bytes) -> bytes:
    """``data`` as one frame of chunked transfer encoding (empty data is the final frame)."""
    return b"%x\r\n" % len(data) + data + b"\r\n"


def read_response(conn: socket.socket, deadline: float) -> bytes:
    """Read an HTTP response until its Content-Length is in, the peer closes, or it resets."""
    conn.setblocking(True)
    data = b""
    while True:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            if len(rest) >= length:
                return data
        conn.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            received = conn.recv(65536)
        except ConnectionResetError:
            return data
        if not received:
            return data
        data += received


def send_streaming(
    port: int,
    head: bytes,
    body: Iterable[bytes],
    *,
    seconds: float,
    buffer: int = SOCKET_BUFFER,
) -> bytes:
    """Send ``head``, then ``body`` as chunked frames until the server answers; return the answer.

    Fails the test when no answer has come within ``seconds``.
    """
    frames = (chunked(chunk) for chunk in itertools.chain(body, [b""]))
    with connect(port, buffer=buffer) as conn:
        conn.sendall(head)
        conn.setblocking(False)
        pending = b""
        sent = 0
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no answer within {seconds} s, after sending {sent} bytes")
            if not pending:
                pending = next(frames, b"")
            writers = [conn] if pending else []
            readable, writable, _ = select.select([conn], writers, [], min(remaining, 0.2))
            if readable:
                break  # the server has answered: stop sending
            if writable:
                try:
                    written = conn.send(pending)
                except (BrokenPipeError, ConnectionResetError):
                    break
                sent += written
                pending = pending[written:]
        return read_response(conn, deadline)
