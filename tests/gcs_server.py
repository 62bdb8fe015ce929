"""A real GCS endpoint for tests: gcp-storage-emulator (PyPI) on 127.0.0.1, talked to by gcsfs."""

from __future__ import annotations

import json
import logging
import os
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest


def emulators_required() -> bool:
    """CI sets GART_TEST_REQUIRE_EMULATORS=1: a missing emulator fails instead of skipping."""
    return os.environ.get("GART_TEST_REQUIRE_EMULATORS", "").strip().lower() in ("1", "true", "yes")


def missing(what: str, how: str) -> None:
    """Skip with a clear reason, or fail loudly when the emulators are required (CI)."""
    message = f"{what} is not available ({how})"
    if emulators_required():
        pytest.fail(f"{message}; GART_TEST_REQUIRE_EMULATORS is set", pytrace=False)
    pytest.skip(message)


def _one_line_break(part: bytes) -> bytes:
    return part[2:] if part.startswith(b"\r\n") else part[1:] if part.startswith(b"\n") else part


def _headers_and_body(part: bytes) -> tuple[bytes, bytes]:
    part = _one_line_break(part)
    cuts = [(part.find(sep), sep) for sep in (b"\r\n\r\n", b"\n\n") if sep in part]
    at, sep = min(cuts)
    return part[:at], part[at + len(sep):]


def multipart_related(raw: bytes, content_type: str) -> dict[str, Any]:
    """A byte-exact parse of a multipart/related upload (JSON metadata, then the content).

    The emulator parses it with the email package, which drops a trailing "\\r" of the
    content (gcsfs ends the part with "\\n--boundary"): random test data ending in 0x0d
    came back one byte short, as a corrupt object. This parse cuts at the exact bytes."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    assert match is not None, content_type
    delimiter = b"--" + match.group(1).encode()
    first = raw.index(delimiter) + len(delimiter)
    second = raw.index(delimiter, first)
    end = raw.rindex(delimiter + b"--")
    body = raw[second + len(delimiter):end]
    newline = b"\r\n" if raw[first:first + 2] == b"\r\n" else b"\n"  # the sender's style
    body = body[: -len(newline)] if body.endswith(newline) else body
    _, meta = _headers_and_body(raw[first:second])
    head, content = _headers_and_body(body)
    kind = re.search(rb"(?im)^content-type:\s*([^\s;]+)", head)
    return {
        "meta": json.loads(meta),
        "content": content,
        "content-type": kind.group(1).decode() if kind else "application/octet-stream",
    }


def _patch_multipart_parse() -> None:
    from gcp_storage_emulator import server

    if getattr(server._read_data, "gart_patched", False):
        return
    original = server._read_data

    def read_data(handler: Any, query: Any) -> Any:
        content_type = handler.headers.get("Content-Type") or ""
        if not content_type.startswith("multipart/related"):
            return original(handler, query)
        raw = server._decode_raw_data(server._read_raw_data(handler), handler)
        return multipart_related(raw, content_type) if raw else None

    read_data.gart_patched = True  # type: ignore[attr-defined]
    server._read_data = read_data


class GcsServer:
    """gcp-storage-emulator's HTTP server in a daemon thread of this process, on a free port."""

    def __init__(self) -> None:
        from gcp_storage_emulator.server import create_server

        _patch_multipart_parse()
        for name in ("gcp_storage_emulator", "api.bucket", "api.object", "storage"):
            logging.getLogger(name).setLevel(logging.ERROR)
        self.server = create_server("127.0.0.1", 0, in_memory=True)
        self.server.start()
        port = self.server._api._httpd.server_address[1]  # the emulator has no port accessor
        self.endpoint = f"http://127.0.0.1:{port}"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> bytes:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.endpoint}{path}", data, method=method,
            headers={"Content-Type": "application/json"} if data else {},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request) as response:
            return bytes(response.read())

    def reset(self) -> None:
        """Forget every bucket and object."""
        self.server.wipe()

    def create_bucket(self, name: str) -> None:
        self._call("POST", "/storage/v1/b?project=test", {"name": name})

    def close(self) -> None:
        self.server.stop()


@dataclass
class GcsBucket:
    """A fresh bucket on the emulator, with the remote URL and options gart needs."""

    server: GcsServer
    bucket: str
    prefix: str = "gart"

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    @property
    def url(self) -> str:
        return f"gs://{self.bucket}/{self.prefix}"

    @property
    def options(self) -> dict[str, Any]:
        """The remote's options as a user would configure them (token is a --local option)."""
        return {"endpoint_url": self.server.endpoint, "token": "anon", "project": "test"}

    def fs(self) -> Any:
        """A gcsfs filesystem on the emulator for raw access that bypasses gart."""
        from gcsfs.core import GCSFileSystem

        return GCSFileSystem(skip_instance_cache=True, **self.options)


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[GcsServer]:
    """One gcp-storage-emulator for the whole session."""
    try:
        import gcp_storage_emulator.server  # noqa: F401
        import gcsfs  # noqa: F401
    except ImportError as exc:
        missing("the GCS emulator", f"{exc}; pip install -e '.[test]'")
    server = GcsServer()
    yield server
    server.close()


@pytest.fixture
def gcs(gcs_server: GcsServer) -> GcsBucket:
    """An empty emulator with one bucket, `gart-test`."""
    gcs_server.reset()
    gcs_server.create_bucket("gart-test")
    return GcsBucket(gcs_server, "gart-test")
