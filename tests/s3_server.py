"""A real S3 endpoint for tests: moto's server on 127.0.0.1 behind a request-counting middleware."""

from __future__ import annotations

import logging
import threading
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"


@dataclass(frozen=True)
class Request:
    """One HTTP request moto served: method, path, query string and Range header."""

    method: str
    path: str
    query: str
    range: str = ""


@dataclass
class HttpFault:
    """Answer matching requests with an S3 error instead of passing them to moto."""

    method: str
    path_contains: str
    status: int = 403
    code: str = "AccessDenied"
    remaining: int | None = None  # None: every matching request fails
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if method != self.method or self.path_contains not in path:
            return False
        return self.remaining is None or self.remaining > 0


@dataclass
class CountingApp:
    """WSGI middleware keeping a log of every request, so tests can assert on S3 chatter."""

    app: Callable[..., Iterable[bytes]]
    log: list[Request] = field(default_factory=list)
    faults: list[HttpFault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        method = environ["REQUEST_METHOD"]
        if path.startswith("/moto-api"):
            return self.app(environ, start_response)
        with self.lock:
            self.log.append(
                Request(method, path, environ.get("QUERY_STRING", ""),
                        environ.get("HTTP_RANGE", ""))
            )
            fault = next((f for f in self.faults if f.matches(method, path)), None)
            if fault is not None:
                fault.hits += 1
                if fault.remaining is not None:
                    fault.remaining -= 1
        if fault is None:
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length:  # drain the body so the keep-alive connection stays usable
            environ["wsgi.input"].read(length)
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Error><Code>{fault.code}</Code><Message>injected fault</Message></Error>"
        ).encode()
        start_response(
            f"{fault.status} Injected",
            [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
        )
        return [body]

    def take(self) -> list[Request]:
        """The requests since the last take(), and start a new log."""
        with self.lock:
            out, self.log = self.log, []
        return out


class S3Server:
    """moto's S3 served by werkzeug in a daemon thread of this process, on a free port."""

    def __init__(self) -> None:
        from moto.server import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per request
        self.app = CountingApp(DomainDispatcherApplication(create_backend_app))
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self._client: Any = None
        self._session: Any = None

    def _post(self, path: str) -> None:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        opener.open(urllib.request.Request(f"{self.endpoint}{path}", b"", method="POST")).read()

    def reset(self) -> None:
        """Forget every bucket and object (moto's reset API), and the request log."""
        self._post("/moto-api/reset")
        self.clear_faults()
        self.app.take()

    def client(self) -> Any:
        """A boto3 client on this endpoint, for setting up and inspecting buckets."""
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _make_client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def botocore_session(self) -> Any:
        """One aiobotocore session for every s3fs instance of the test process."""
        if self._session is None:
            from aiobotocore.session import get_session

            self._session = get_session()
        return self._session

    def create_bucket(self, name: str, versioned: bool = False) -> None:
        self.client().create_bucket(Bucket=name)
        if versioned:
            self.client().put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        self.app.take()

    def take(self) -> list[Request]:
        return self.app.take()

    def fail(self, fault: HttpFault) -> HttpFault:
        """Inject an HTTP fault until clear_faults() (or its `remaining` runs out)."""
        with self.app.lock:
            self.app.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self.app.lock:
            self.app.faults.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@dataclass
class S3Bucket:
    """A fresh bucket on the test server, with the remote URL and options gart needs."""

    server: S3Server
    bucket: str
    prefix: str = "gart"

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def options(self) -> dict[str, Any]:
        """The remote's options as a user would configure them."""
        return {"endpoint_url": self.server.endpoint}

    @property
    def process_options(self) -> dict[str, Any]:
        """Options for stores opened in this process: one shared botocore session, since a
        new one spends ~0.4 s parsing botocore's JSON models (once per `gart` run in real use)."""
        return {**self.options, "session": self.server.botocore_session()}

    def take(self) -> list[Request]:
        """Requests since the last take()."""
        return self.server.take()

    def count(self) -> Counter[str]:
        """Requests by method since the last take()/count(), which starts a new log."""
        return Counter(r.method for r in self.take())

    def keys(self) -> list[str]:
        """Every key under the prefix (through boto3; not counted)."""
        client = self.server.client()
        out: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + "/"
        ):
            out.extend(o["Key"][len(self.prefix) + 1 :] for o in page.get("Contents", []))
        self.server.take()
        return sorted(out)

    def get(self, key: str) -> bytes:
        body = self.server.client().get_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}")
        data = body["Body"].read()
        self.server.take()
        return bytes(data)

    def put(self, key: str, data: bytes) -> None:
        self.server.client().put_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}", Body=data)
        self.server.take()

    def delete(self, key: str) -> None:
        self.server.client().delete_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}")
        self.server.take()


def s3_environment() -> dict[str, str]:
    """Environment for anything (s3fs, a `gart` child process) that talks to the test server."""
    return {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One moto S3 server for the whole session."""
    server = S3Server()
    yield server
    server.close()


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Bucket:
    """An empty moto S3 with one bucket, test credentials in the environment."""
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_environment().items():
        monkeypatch.setenv(name, value)
    s3_server.reset()
    s3_server.create_bucket("gart-test")
    return S3Bucket(s3_server, "gart-test")
