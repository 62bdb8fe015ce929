"""Remote URL -> object store: fsspec filesystems, install hints, credential hygiene."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from gitartifacts.config import SAFE_OPTIONS, RemoteConfig, is_safe_option, url_has_credentials
from gitartifacts.errors import ConfigError, RemoteError, UsageError
from gitartifacts.objects import FsspecBackend, LocalBackend, ObjectStore

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
    backend = FsspecBackend(fs, root, url=remote.url)
    return ObjectStore(backend, index_cache=index_cache, pack_target=REMOTE_PACK_TARGET)


def check_options(remote: RemoteConfig) -> None:
    """Refuse option names the remote's backend would not accept, before they are saved."""
    scheme = scheme_of(remote.url)
    if scheme in ("s3", "s3a"):
        _check_s3_options(remote, _backend_options(scheme, remote.options))


def filesystem(remote: RemoteConfig) -> tuple[Any, str]:
    """fsspec filesystem and root path for a remote URL, with install hints on failure."""
    scheme = scheme_of(remote.url)
    try:
        import fsspec
        from fsspec.core import url_to_fs
    except ImportError:  # pragma: no cover - a declared dependency
        raise RemoteError("fsspec is not installed", hint="pip install fsspec") from None
    options = _backend_options(scheme, remote.options)
    if scheme in ("s3", "s3a"):
        _check_s3_options(remote, options)
    try:
        fs, root = url_to_fs(remote.url, **options)
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
        if scheme in ("s3", "s3a"):
            key = S3_OPTION_NAMES.get(key.lower(), key)
            if key == "region_name":
                out.setdefault("client_kwargs", {})["region_name"] = value
                continue
        out[key] = value
    if scheme in ("s3", "s3a"):
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
