"""HTTP sources for reference tests: a stdlib server on 127.0.0.1 serving files from a dict,
with ETag, Last-Modified and Range support — or, as `etag=False`, with neither validator."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class HttpSource:
    """Files by URL path; each write bumps the Last-Modified time; requests are logged."""

    def __init__(self, etag: bool = True) -> None:
        self.etag = etag
        self.files: dict[str, tuple[bytes, float]] = {}
        self.log: list[tuple[str, str]] = []
        self._clock = 1_700_000_000.0
        source = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _headers(self, data: bytes, mtime: float) -> None:
                if source.etag:
                    self.send_header("ETag", '"' + hashlib.md5(data).hexdigest() + '"')
                    self.send_header("Last-Modified", formatdate(mtime, usegmt=True))
                self.send_header("Accept-Ranges", "bytes")

            def _serve(self, body: bool) -> None:
                source.log.append((self.command, self.path))
                found = source.files.get(self.path)
                if found is None:
                    self.send_error(404)
                    return
                data, mtime = found
                wanted = self.headers.get("Range", "")
                if wanted.startswith("bytes="):
                    start_text, _, end_text = wanted[6:].partition("-")
                    start = int(start_text or 0)
                    end = min(int(end_text) if end_text else len(data) - 1, len(data) - 1)
                    part = data[start:end + 1]
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
                else:
                    part = data
                    self.send_response(200)
                self._headers(data, mtime)
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                if body:
                    self.wfile.write(part)

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                self._serve(True)

            def do_HEAD(self) -> None:  # noqa: N802
                self._serve(False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def put(self, path: str, data: bytes) -> str:
        self._clock += 10
        self.files["/" + path.lstrip("/")] = (data, self._clock)
        return self.url(path)

    def delete(self, path: str) -> None:
        self.files.pop("/" + path.lstrip("/"), None)

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_source(monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpSource]:
    """An HTTP server with ETag, Last-Modified and Range support."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server = HttpSource(etag=True)
    yield server
    server.close()


@pytest.fixture
def http_source_plain(monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpSource]:
    """An HTTP server without ETag or Last-Modified: only the bytes can tell a change."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server = HttpSource(etag=False)
    yield server
    server.close()
