"""Remote URL -> object store: fsspec filesystems, install hints, credential hygiene, and
bounded network waits.

Every backend gets gart's own limits (remote options, safe to commit): `connect_timeout`
and `read_timeout` in seconds and `retries` after the first attempt, handed to each library
in its own terms (botocore config, aiohttp timeouts, azure transport and retry policy), so
an endpoint that accepts a connection and never answers fails in well under a minute
instead of holding a push for minutes. Errors are translated in backenderrors.py."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gitartifacts.backenderrors import Site
from gitartifacts.backends import FsspecBackend, LocalBackend
from gitartifacts.config import SAFE_OPTIONS, RemoteConfig, is_safe_option, url_has_credentials
from gitartifacts.errors import ConfigError, RemoteError, UsageError
from gitartifacts.objects import ObjectStore

# Protocol -> the package that provides it, for a one-line install hint.
BACKEND_PACKAGES = {
    "s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs",
    "abfss": "adlfs", "adl": "adlfs", "http": "aiohttp", "https": "aiohttp", "sftp": "paramiko",
    "ssh": "paramiko", "hdfs": "pyarrow", "webdav": "webdav4",
}
# Friendly option names -> what the fsspec backend expects.
S3_OPTION_NAMES = {"endpointurl": "endpoint_url", "region": "region_name"}
_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
REMOTE_PACK_TARGET = 32 << 20
S3_SCHEMES = frozenset({"s3", "s3a"})
GCS_SCHEMES = frozenset({"gs", "gcs"})
AZURE_SCHEMES = frozenset({"az", "abfs", "abfss"})
HTTP_SCHEMES = frozenset({"http", "https"})
SSH_SCHEMES = frozenset({"sftp", "ssh"})
# Libraries that log warnings (with tracebacks) on their own retries; gart reports the error.
_LIBRARY_LOGGERS = ("gcsfs", "adlfs", "azure", "google", "s3fs", "aiobotocore", "botocore",
                    "fsspec", "urllib3", "grpc")


@dataclass(frozen=True)
class Limits:
    """How long one request may wait, and how often a failed one is tried again."""

    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    retries: int = 1


# gart's own transport limits: remote options, safe to commit (config.SAFE_OPTIONS).
LIMIT_OPTIONS = ("connect_timeout", "read_timeout", "retries")
_MAX_TIMEOUT = 3600.0
_MAX_RETRIES = 10


def scheme_of(url: str) -> str:
    """'s3' for s3://bucket, 'file' for plain paths and file:// URLs."""
    match = _SCHEME_RE.match(url)
    return match.group(1).lower() if match else "file"


def check_url(url: str) -> None:
    """Refuse URLs that cannot work or would leak credentials into a config file."""
    if not url or url.strip() != url:
        raise UsageError(f"invalid remote URL {url!r}")
    if url_has_credentials(url):
        raise ConfigError(
            "remote URL contains credentials; they would be written to a config file",
            hint="put secrets in .gart/config.local.yaml with "
            "`gart remote modify NAME KEY VALUE --local`, or in the environment",
        )


def check_option(key: str, local: bool, value: str | None = None) -> None:
    """Only options known to be safe, with no credentials in their value, may be committed.

    Anything else (a secret, or an option gart does not know) goes to config.local.yaml;
    `url` itself is checked by check_url."""
    if local or key == "url":
        return
    if not is_safe_option(key):
        import difflib

        close = difflib.get_close_matches(key.lower(), sorted(SAFE_OPTIONS), n=1, cutoff=0.8)
        raise ConfigError(
            f"option {key!r} is not known to be safe to commit (it may hold a secret)"
            + (f"; did you mean {close[0]!r}?" if close else ""),
            hint=f"re-run with --local to store it in .gart/config.local.yaml (git-ignored), "
            f"or set it in the environment{_env_hint(key)}",
        )
    if value is not None and url_has_credentials(value):
        raise ConfigError(
            f"the value of {key!r} is a URL with credentials; it would be committed to git",
            hint="re-run with --local to store it in .gart/config.local.yaml (git-ignored), "
            "or leave the credentials out of the URL",
        )


def local_path_of(url: str, base: Path) -> Path | None:
    """The directory of a local remote (plain path or file://), relative paths from `base`."""
    if scheme_of(url) != "file":
        return None
    path = url[len("file://"):] if url.startswith("file://") else url
    path = os.path.expanduser(path)
    return Path(path) if os.path.isabs(path) else base / path


def remote_id(remote: RemoteConfig) -> str:
    """A stable short id for the remote's location, to key its locally kept pack indexes."""
    return hashlib.sha256(remote.url.encode("utf-8")).hexdigest()[:16]


def open_store(remote: RemoteConfig, base: Path, index_cache_root: Path) -> ObjectStore:
    """An ObjectStore on the remote; local directories skip fsspec entirely."""
    check_url(remote.url)
    index_cache = index_cache_root / remote_id(remote)
    local = local_path_of(remote.url, base)
    if local is not None:
        return ObjectStore(LocalBackend(local), index_cache=None, pack_target=REMOTE_PACK_TARGET)
    fs, root = filesystem(remote)
    backend = FsspecBackend(fs, root, url=remote.url, site=site_of(remote, fs, root))
    return ObjectStore(backend, index_cache=index_cache, pack_target=REMOTE_PACK_TARGET)


def check_options(remote: RemoteConfig) -> None:
    """Refuse options the remote's backend would not accept, before they are saved."""
    scheme = scheme_of(remote.url)
    limits_of(remote)
    _check_endpoint(remote)
    if scheme in S3_SCHEMES:
        _check_s3_options(remote, _backend_options(scheme, remote.options))


def limits_of(remote: RemoteConfig) -> Limits:
    """The remote's connect/read timeouts and retries (defaults: Limits())."""
    values: dict[str, Any] = {}
    options = {k.lower(): v for k, v in remote.options.items()}
    for name in LIMIT_OPTIONS:
        if name not in options:
            continue
        raw = options[name]
        try:
            if isinstance(raw, bool):
                raise ValueError(raw)
            value: float = int(raw) if name == "retries" else float(raw)
        except (TypeError, ValueError):
            value = -1
        high = _MAX_RETRIES if name == "retries" else _MAX_TIMEOUT
        low_ok = value >= 0 if name == "retries" else value > 0
        if not (low_ok and value <= high):
            what = (f"a whole number from 0 to {_MAX_RETRIES}" if name == "retries"
                    else f"a number of seconds above 0 and at most {_MAX_TIMEOUT:g}")
            raise ConfigError(
                f"remote {remote.name!r}: {name} must be {what}, not {raw!r}",
                hint=f"e.g. `gart remote modify {remote.name} {name} "
                f"{getattr(Limits(), name):g}`",
            )
        values[name] = value
    return Limits(**values)


def _check_endpoint(remote: RemoteConfig) -> None:
    """endpoint_url must be http(s)://HOST[:PORT][/path]: botocore's ValueError, or aiohttp's
    InvalidURL after a minute of retries, is no way to learn that."""
    options = {k.lower(): v for k, v in remote.options.items()}
    value = options.get("endpoint_url", options.get("endpointurl"))
    if value is None:
        return
    problem = None
    if not isinstance(value, str) or not value or value.strip() != value or " " in value:
        problem = "is not a URL"
    else:
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            parts, problem = None, "has an invalid port"
        if parts is not None and problem is None:
            if parts.scheme not in ("http", "https"):
                problem = "must start with http:// or https://"
            elif not parts.hostname:
                problem = "has no host name"
    if problem:
        raise ConfigError(
            f"remote {remote.name!r}: endpoint_url {value!r} {problem}",
            hint=f"use http(s)://HOST[:PORT]: `gart remote modify {remote.name} endpoint_url "
            "https://storage.example.com`",
        )


def filesystem(remote: RemoteConfig) -> tuple[Any, str]:
    """fsspec filesystem and root path for a remote URL, with install hints on failure."""
    scheme = scheme_of(remote.url)
    try:
        import fsspec
        from fsspec.core import url_to_fs
    except ImportError:  # pragma: no cover - a declared dependency
        raise RemoteError("fsspec is not installed", hint="pip install fsspec") from None
    limits = limits_of(remote)
    _check_endpoint(remote)
    options = _backend_options(scheme, remote.options)
    if scheme in S3_SCHEMES:
        _check_s3_options(remote, options)
    _quiet_libraries()
    try:
        options = _with_limits(scheme, options, limits)
        if scheme in GCS_SCHEMES:
            fs, root = _construct(gcs_filesystem_class(limits.retries + 1), remote.url, options)
        elif scheme in AZURE_SCHEMES:
            fs, root = _construct(azure_filesystem_class(limits), remote.url, options)
        else:
            fs, root = url_to_fs(remote.url, **options)
        if scheme in S3_SCHEMES:
            # s3fs retries timeouts itself, 5 times over botocore's own retries: that is how a
            # silent endpoint held a push for 411 s. botocore's retries (config) are enough.
            fs.retries = 1
    except ImportError:
        package = BACKEND_PACKAGES.get(scheme, f"the fsspec backend for {scheme}://")
        raise RemoteError(
            f"remote {remote.name!r} needs the {scheme}:// backend, which is not installed",
            hint=f"pip install {package}",
        ) from None
    except ValueError as exc:
        if "Protocol not known" in str(exc) or scheme not in fsspec.available_protocols():
            raise RemoteError(
                f"remote {remote.name!r}: unknown protocol {scheme}://",
                hint="use a local path, s3://bucket/prefix, or another fsspec URL",
            ) from None
        raise RemoteError(f"remote {remote.name!r}: {exc}") from None
    except TypeError as exc:
        raise ConfigError(
            f"remote {remote.name!r} has an option its backend does not accept: {exc}",
            hint=f"check `gart remote list` and remove it with "
            f"`gart remote modify {remote.name} KEY --unset`",
        ) from None
    return fs, root


def site_of(remote: RemoteConfig, fs: Any, root: str) -> Site:
    """Where the remote's requests go, for error messages (no request is made)."""
    scheme = scheme_of(remote.url)
    limits = limits_of(remote)
    endpoint: str | None = None
    bucket: str | None = None
    word = "bucket"
    if scheme in S3_SCHEMES | GCS_SCHEMES | AZURE_SCHEMES:
        bucket = root.strip("/").split("/", 1)[0] or None
    if scheme in S3_SCHEMES:
        endpoint = getattr(fs, "endpoint_url", None) or (
            getattr(fs, "client_kwargs", None) or {}).get("endpoint_url")
    elif scheme in GCS_SCHEMES:
        endpoint = getattr(fs, "_location", None)
    elif scheme in AZURE_SCHEMES:
        word = "container"
        client = getattr(fs, "service_client", None)
        url = getattr(client, "primary_endpoint", None) or getattr(fs, "account_url", None)
        endpoint = str(url).split("?", 1)[0].rstrip("/") if url else None
    return Site(
        url=remote.url, name=remote.name, endpoint=str(endpoint) if endpoint else None,
        bucket=bucket, bucket_word=word, connect_timeout=limits.connect_timeout,
        read_timeout=limits.read_timeout,
    )


def _construct(cls: type, url: str, options: dict[str, Any]) -> tuple[Any, str]:
    """What fsspec's url_to_fs does, with a class of ours (a bounded subclass)."""
    kwargs = {**cls._get_kwargs_from_urls(url), **options}  # type: ignore[attr-defined]
    fs = cls(**kwargs)
    return fs, fs._strip_protocol(url)


def _with_limits(scheme: str, options: dict[str, Any], limits: Limits) -> dict[str, Any]:
    """The backend's own options for gart's limits; options the user set win."""
    out = dict(options)
    if scheme in S3_SCHEMES:
        config = dict(out.get("config_kwargs") or {})
        config.setdefault("connect_timeout", limits.connect_timeout)
        config.setdefault("read_timeout", limits.read_timeout)
        config.setdefault("retries", {"total_max_attempts": limits.retries + 1, "mode": "standard"})
        out["config_kwargs"] = config
    elif scheme in GCS_SCHEMES:
        if out.get("requests_timeout") is None:
            out["requests_timeout"] = _aiohttp_timeout(limits)
    elif scheme in AZURE_SCHEMES:
        out.setdefault("connection_timeout", limits.connect_timeout)
        out.setdefault("read_timeout", limits.read_timeout)
    elif scheme in HTTP_SCHEMES:
        client = dict(out.get("client_kwargs") or {})
        client.setdefault("timeout", _aiohttp_timeout(limits))
        out["client_kwargs"] = client
    elif scheme in SSH_SCHEMES:
        out.setdefault("timeout", limits.connect_timeout)
        out.setdefault("banner_timeout", limits.read_timeout)
        out.setdefault("auth_timeout", limits.read_timeout)
    return out


def _aiohttp_timeout(limits: Limits) -> Any:
    import aiohttp

    return aiohttp.ClientTimeout(
        total=None, sock_connect=limits.connect_timeout, sock_read=limits.read_timeout
    )


@functools.lru_cache(maxsize=8)
def gcs_filesystem_class(attempts: int) -> type:
    """gcsfs's core GCSFileSystem with `attempts` tries per request.

    Not the class fsspec registers: gcsfs's experimental zonal/HNS subclass looks the
    bucket type up over gRPC first (28 s and 41 warnings for a no-op push on an emulator),
    and gcsfs binds 6 tries with up to 32 s of sleep into its request methods."""
    from gcsfs.core import GCSFileSystem
    from gcsfs.retry import retry_request

    body: dict[str, Any] = {"retries": attempts, "__module__": __name__}
    for name in ("_request", "_get_file_request", "_get_file_concurrent"):
        original = getattr(getattr(GCSFileSystem, name, None), "__wrapped__", None)
        if original is not None:
            body[name] = retry_request(retries=attempts)(original)
    return type("BoundedGCSFileSystem", (GCSFileSystem,), body)


@functools.lru_cache(maxsize=8)
def azure_filesystem_class(limits: Limits) -> type:
    """adlfs's AzureBlobFileSystem whose service client has gart's timeouts and retries.

    adlfs passes its timeouts only to blob uploads and downloads, not to listings, and the
    Azure SDK's defaults (300 s reads, 10 tries, 15 s+ backoff) would hold a push for an
    hour at a silent endpoint."""
    from adlfs import AzureBlobFileSystem

    def do_connect(self: Any) -> None:
        from azure.storage.blob.aio import BlobServiceClient

        AzureBlobFileSystem.do_connect(self)
        client = self.service_client
        self.service_client = BlobServiceClient(
            account_url=client.url, credential=client.credential,
            connection_timeout=limits.connect_timeout, read_timeout=limits.read_timeout,
            retry_total=limits.retries, retry_connect=limits.retries,
            retry_read=limits.retries, retry_status=limits.retries,
            initial_backoff=1, increment_base=2,
        )

    body = {"do_connect": do_connect, "__module__": __name__}
    return type("BoundedAzureBlobFileSystem", (AzureBlobFileSystem,), body)


def _quiet_libraries() -> None:
    """Backend libraries log their retries and give-ups as warnings with tracebacks; gart
    reports the failure itself, as one line. A NullHandler keeps Python's last-resort
    handler from printing them, while an application that configures logging (a verbose
    mode, a test run) still receives every record."""
    for name in _LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(logging.NullHandler())


# s3fs hands options it does not name to botocore's session, which only takes these; any
# other (a typo such as `endpoint`) would fail with a TypeError at the first request.
_S3_SESSION_OPTIONS = frozenset(
    {"profile", "session_vars", "event_hooks", "include_builtin_handlers",
     "use_listings_cache", "listings_expiry_time", "max_paths", "skip_instance_cache"}
)


def _check_s3_options(remote: RemoteConfig, options: dict[str, Any]) -> None:
    import difflib
    import inspect

    try:
        from s3fs import S3FileSystem
    except ImportError:
        return  # the install hint comes from url_to_fs below
    known = {
        name for name, p in inspect.signature(S3FileSystem.__init__).parameters.items()
        if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and name != "self"
    } | _S3_SESSION_OPTIONS
    for key in options:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known | {"region"}), n=1)
            raise ConfigError(
                f"remote {remote.name!r} has an option s3 does not accept: {key!r}"
                + (f" (did you mean {close[0]!r}?)" if close else ""),
                hint=f"remove it with `gart remote modify {remote.name} {key} --unset`",
            )


def _backend_options(scheme: str, options: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key.lower() in LIMIT_OPTIONS:
            continue  # gart's own limits: handed to the backend in its terms (_with_limits)
        if scheme in S3_SCHEMES:
            key = S3_OPTION_NAMES.get(key.lower(), key)
            if key == "region_name":
                out.setdefault("client_kwargs", {})["region_name"] = value
                continue
        out[key] = value
    if scheme in S3_SCHEMES:
        # Never pick up a stale listing: the remote may change under us between calls.
        out.setdefault("use_listings_cache", False)
    out.setdefault("skip_instance_cache", True)
    return out


_AWS_ENV = {
    "key": "AWS_ACCESS_KEY_ID", "aws_access_key_id": "AWS_ACCESS_KEY_ID",
    "access_key_id": "AWS_ACCESS_KEY_ID", "secret": "AWS_SECRET_ACCESS_KEY",
    "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY", "secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "token": "AWS_SESSION_TOKEN", "aws_session_token": "AWS_SESSION_TOKEN",
    "session_token": "AWS_SESSION_TOKEN",
}


def _env_hint(key: str) -> str:
    name = _AWS_ENV.get(key.lower())
    return f" (for S3: {name})" if name else ""
