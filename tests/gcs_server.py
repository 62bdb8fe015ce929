"""A real GCS endpoint for tests: gcp-storage-emulator (PyPI) on 127.0.0.1, talked to by gcsfs."""

from __future__ import annotations

import json
import logging
import os
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


class GcsServer:
    """gcp-storage-emulator's HTTP server in a daemon thread of this process, on a free port."""

    def __init__(self) -> None:
        from gcp_storage_emulator.server import create_server

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
