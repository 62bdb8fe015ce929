"""A real Azure Blob endpoint for tests: azurite (npm) on 127.0.0.1, talked to by adlfs.

The binary is `azurite-blob` on PATH, or the path in GART_TEST_AZURITE (`.ci/run` installs it
with npm). Without it the tests skip with the reason — unless GART_TEST_REQUIRE_EMULATORS is
set (CI), when they fail."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from gcs_server import missing

# Azurite's well-known development account (public, documented by Microsoft).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
_LISTENING = re.compile(r"listens on (http://127\.0\.0\.1:(\d+))")


def azurite_binary() -> str | None:
    """GART_TEST_AZURITE, else `azurite-blob` on PATH."""
    configured = os.environ.get("GART_TEST_AZURITE")
    if configured:
        return configured if os.path.exists(configured) else None
    return shutil.which("azurite-blob")


def connection_string(endpoint: str, key: str = ACCOUNT_KEY) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={key};"
        f"BlobEndpoint={endpoint}/{ACCOUNT};"
    )


class AzuriteServer:
    """`azurite-blob` as a child process on a free loopback port, data in a temp dir."""

    def __init__(self, binary: str) -> None:
        self.workdir = tempfile.mkdtemp(prefix="gart-azurite-")
        self.process = subprocess.Popen(
            [binary, "--blobHost", "127.0.0.1", "--blobPort", "0", "--location", self.workdir,
             "--skipApiVersionCheck", "--loose", "--silent", "--disableTelemetry"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.endpoint = self._wait_for_port(timeout=60)
        self.connection_string = connection_string(self.endpoint)
        # Keep draining its output so a chatty azurite never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()

    def _wait_for_port(self, timeout: float) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            seen.append(line.rstrip())
            match = _LISTENING.search(line)
            if match:
                return match.group(1)
        self.close()
        raise RuntimeError("azurite-blob did not start: " + " | ".join(seen[-5:]))

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for _ in self.process.stdout:
            pass

    def service(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    def create_container(self, name: str) -> None:
        self.service().create_container(name)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class AzureContainer:
    """A fresh container on azurite, with the remote URL and options gart needs."""

    server: AzuriteServer
    container: str
    prefix: str = "gart"

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    @property
    def url(self) -> str:
        return f"az://{self.container}/{self.prefix}"

    @property
    def options(self) -> dict[str, Any]:
        """The remote's options (connection_string is a secret: a --local option)."""
        return {"connection_string": self.server.connection_string}

    def fs(self) -> Any:
        """An adlfs filesystem on azurite for raw access that bypasses gart."""
        from adlfs import AzureBlobFileSystem

        return AzureBlobFileSystem(skip_instance_cache=True, **self.options)


@pytest.fixture(scope="session")
def azurite() -> Iterator[AzuriteServer]:
    """One azurite for the whole session."""
    try:
        import adlfs  # noqa: F401
    except ImportError as exc:
        missing("adlfs", f"{exc}; pip install -e '.[test]'")
    binary = azurite_binary()
    if binary is None:
        missing("azurite-blob", "npm install -g azurite, or set GART_TEST_AZURITE to its path")
        return
    server = AzuriteServer(binary)
    yield server
    server.close()


@pytest.fixture
def azure(azurite: AzuriteServer) -> AzureContainer:
    """A new, empty container on azurite (a fresh name per test: no reset needed)."""
    name = f"gart-{uuid.uuid4().hex[:12]}"
    azurite.create_container(name)
    return AzureContainer(azurite, name)
