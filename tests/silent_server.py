"""A hanging endpoint for tests: a loopback socket that accepts connections and never answers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest


class SilentServer:
    """Accepts every TCP connection on 127.0.0.1, reads whatever is sent, never replies.

    This is the endpoint that once held `gart push` for 411 s: a TCP connect succeeds, so
    only a read timeout can end the wait."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.accepted = 0
        self._open: list[socket.socket] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            conn.setblocking(False)  # the request is left unread in the socket buffer
            self._open.append(conn)
            self.accepted += 1

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=5)
        for conn in self._open:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    """An endpoint that accepts connections and never answers (closed after the test)."""
    server = SilentServer()
    yield server
    server.close()
