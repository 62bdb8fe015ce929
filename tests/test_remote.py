"""remote.py: URL and option checks, install hints, backend options, error translation."""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path

import faultfs  # registers faulty://
import pytest
from gcs_server import GcsBucket
from s3_server import HttpFault, S3Bucket

from gitartifacts.backends import FsspecBackend, LocalBackend
from gitartifacts.config import RemoteConfig
from gitartifacts.errors import (
    BucketNotFoundError,
    ConfigError,
    ObjectNotFoundError,
    RemoteAccessError,
    RemoteError,
    RemoteUnreachableError,
    UsageError,
)
from gitartifacts.objects import ObjectStore
from gitartifacts.remote import (
    BACKEND_PACKAGES,
    Limits,
    check_option,
    check_url,
    local_path_of,
    open_store,
    remote_id,
    scheme_of,
)


def store_for(tmp_path: Path, url: str, **options: object) -> ObjectStore:
    return open_store(RemoteConfig("storage", url, dict(options)), tmp_path, tmp_path / "idx")


# -- credentials never reach a committed file --------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "s3://AKIAXXXX:wJalrXUtnFEMI@bucket/prefix",
        "https://user:pa55@example.com/data",
        "https://token@example.com/data",
        "gs://user@bucket/x",
    ],
)
def test_a_url_with_credentials_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="contains credentials") as info:
        check_url(url)
    assert "config.local.yaml" in info.value.hint and "--local" in info.value.hint


@pytest.mark.parametrize(
    "url", ["s3://bucket/prefix", "/mnt/shared/gart", "relative/dir", "ssh://git@host/srv/gart",
            "memory://x", "file:///srv/gart"],
)
def test_ordinary_urls_are_accepted(url: str) -> None:
    check_url(url)


@pytest.mark.parametrize("url", ["", " s3://bucket/x", "s3://bucket/x\n"])
def test_blank_or_padded_urls_are_refused(url: str) -> None:
    with pytest.raises(UsageError):
        check_url(url)


@pytest.mark.parametrize("key", ["secret", "key", "token", "Password", "aws_secret_access_key",
                                 "account_key", "sas_token", "connection_string"])
def test_secret_options_need_local(key: str) -> None:
    with pytest.raises(ConfigError, match="secret") as info:
        check_option(key, local=False)
    assert "--local" in info.value.hint
    check_option(key, local=True)


@pytest.mark.parametrize("key", ["endpoint_url", "profile", "region", "anon"])
def test_plain_options_may_be_committed(key: str) -> None:
    check_option(key, local=False)


# -- URL -> store ---------------------------------------------------------------------------


def test_scheme_and_local_paths(tmp_path: Path) -> None:
    assert scheme_of("S3://b/x") == "s3" and scheme_of("/a/b") == "file"
    assert scheme_of("file:///a") == "file"
    assert local_path_of("/srv/gart", tmp_path) == Path("/srv/gart")
    assert local_path_of("file:///srv/gart", tmp_path) == Path("/srv/gart")
    assert local_path_of("../shared", tmp_path) == tmp_path / "../shared"
    assert local_path_of("~/gart", tmp_path) == Path.home() / "gart"
    assert local_path_of("s3://b/x", tmp_path) is None


def test_a_local_directory_needs_no_fsspec_and_keeps_no_index_copy(tmp_path: Path) -> None:
    store = store_for(tmp_path, "shared/gart")
    assert isinstance(store.backend, LocalBackend) and store.index_cache is None
    assert store.local_root == tmp_path / "shared/gart"


def test_fsspec_remotes_keep_indexes_per_remote(tmp_path: Path) -> None:
    one = store_for(tmp_path, "memory://one")
    two = store_for(tmp_path, "memory://two")
    assert isinstance(one.backend, FsspecBackend)
    assert one.index_cache is not None and two.index_cache is not None
    assert one.index_cache != two.index_cache
    assert one.index_cache == tmp_path / "idx" / remote_id(RemoteConfig("x", "memory://one"))


def test_object_stores_put_whole_objects_others_write_then_rename(tmp_path: Path) -> None:
    memory = store_for(tmp_path, "memory://whole")
    faulty = store_for(tmp_path, f"faulty://{tmp_path}/renamed")
    assert isinstance(memory.backend, FsspecBackend) and memory.backend.atomic_put
    assert isinstance(faulty.backend, FsspecBackend) and not faulty.backend.atomic_put


def test_a_missing_backend_gets_a_one_line_install_hint(tmp_path: Path) -> None:
    # The test extras install gcsfs and adlfs: check the hint on a backend absent here.
    absent = [(scheme, package) for scheme, package in BACKEND_PACKAGES.items()
              if scheme in ("gs", "webdav", "hdfs") and importlib.util.find_spec(package) is None]
    if not absent:
        pytest.skip("gcsfs, webdav4 and pyarrow are all installed here")
    scheme, package = absent[0]
    with pytest.raises(RemoteError) as info:
        store_for(tmp_path, f"{scheme}://bucket/gart")
    assert f"{scheme}://" in info.value.message and "not installed" in info.value.message
    assert info.value.hint == f"pip install {package}"
    assert "\n" not in info.value.message + info.value.hint


def test_an_unknown_protocol_is_named(tmp_path: Path) -> None:
    with pytest.raises(RemoteError, match=r"unknown protocol nosuchproto://") as info:
        store_for(tmp_path, "nosuchproto://bucket/gart")
    assert "\n" not in info.value.message + info.value.hint and info.value.hint


def test_endpoint_url_and_region_reach_s3fs(tmp_path: Path) -> None:
    store = store_for(
        tmp_path, "s3://bucket/gart", endpoint_url="http://127.0.0.1:9", region="eu-west-1"
    )
    assert isinstance(store.backend, FsspecBackend)
    fs = store.backend.fs
    assert type(fs).__name__ == "S3FileSystem"
    assert fs.endpoint_url == "http://127.0.0.1:9"
    assert fs.client_kwargs["region_name"] == "eu-west-1"
    assert store.backend.root == "bucket/gart" and store.backend.atomic_put


def test_a_misspelt_s3_option_is_refused_before_any_request(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'endpoint'.*did you mean 'endpoint_url'") as info:
        store_for(tmp_path, "s3://bucket/gart", endpoint="http://127.0.0.1:9")
    assert "--unset" in info.value.hint


def test_an_s3_endpoint_really_is_used(tmp_path: Path, s3: S3Bucket) -> None:
    store = store_for(tmp_path, s3.url, **s3.process_options)
    store.backend.write("probe", b"hello")
    assert s3.get("probe") == b"hello"


# -- errors come back as gart errors naming the remote object --------------------------


def test_access_denied_names_the_object_and_suggests_credentials(
    tmp_path: Path, s3: S3Bucket
) -> None:
    store = store_for(tmp_path, s3.url, **s3.process_options)
    s3.put("packs/x.idx", b"index")
    s3.server.fail(HttpFault("GET", "/packs/x.idx"))
    where = r"s3://gart-test/gart/packs/x\.idx"
    with pytest.raises(RemoteError, match=f"access denied to {where}") as e:
        store.backend.read("packs/x.idx")
    assert "credentials" in e.value.hint


def test_a_missing_remote_object_is_object_not_found(tmp_path: Path, s3: S3Bucket) -> None:
    store = store_for(tmp_path, s3.url, **s3.process_options)
    with pytest.raises(ObjectNotFoundError, match=r"s3://gart-test/gart/files/x does not exist"):
        store.backend.read("files/x")
    assert store.backend.list("nothing/here") == []


def test_an_io_failure_is_a_remote_error(tmp_path: Path) -> None:
    store = store_for(tmp_path, f"faulty://{tmp_path}/r", fault_method="cat_file")
    store.backend.write("a/b", b"bytes")
    with pytest.raises(RemoteError, match=r"remote I/O failed on faulty://.*/r/a/b"):
        store.backend.read("a/b")
    assert isinstance(faultfs.FaultyFileSystem.instances[-1], faultfs.FaultyFileSystem)
    assert store.backend.read("a/b") == b"bytes"  # the fault was a one-off


# -- bounded waits and the backend error table (docs/security-backends.md) -------------


def test_limits_reach_s3fs_and_default_to_well_under_a_minute(tmp_path: Path) -> None:
    store = store_for(tmp_path, "s3://bucket/gart", endpoint_url="http://127.0.0.1:9",
                      connect_timeout=3, read_timeout="2.5", retries=0)
    assert isinstance(store.backend, FsspecBackend)
    config = store.backend.fs.config_kwargs
    assert (config["connect_timeout"], config["read_timeout"]) == (3.0, 2.5)
    assert config["retries"]["total_max_attempts"] == 1
    assert store.backend.fs.retries == 1  # s3fs's own retry loop: a single pass
    defaults = Limits()
    worst = (defaults.retries + 1) * (defaults.connect_timeout + defaults.read_timeout)
    assert worst < 45, "a dead endpoint must fail in well under a minute by default"


def test_gcs_uses_the_core_class_with_bounded_tries(tmp_path: Path) -> None:
    pytest.importorskip("gcsfs")
    store = store_for(tmp_path, "gs://bucket/gart", endpoint_url="http://127.0.0.1:9",
                      token="anon", read_timeout=2)
    fs = store.backend.fs
    assert type(fs).__name__ == "BoundedGCSFileSystem" and fs.retries == 2
    assert "Extended" not in " ".join(c.__name__ for c in type(fs).__mro__)
    assert fs.requests_timeout.sock_read == 2


def test_azure_listings_get_the_limits_too(tmp_path: Path) -> None:
    pytest.importorskip("adlfs")
    conn = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
            "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;")
    store = store_for(tmp_path, "az://container/gart", connection_string=conn,
                      read_timeout=2, retries=0)
    client = store.backend.fs.service_client
    assert client._config.retry_policy.total_retries == 0
    assert store.backend.site.endpoint == "http://127.0.0.1:9/devstoreaccount1"
    assert store.backend.site.bucket == "container"


@pytest.mark.parametrize("value", ["localhost:9000", "not a url", "ftp://host", "http://:9"])
def test_an_invalid_endpoint_url_is_a_config_error(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="endpoint_url") as info:
        store_for(tmp_path, "s3://bucket/gart", endpoint_url=value)
    assert "gart remote modify storage endpoint_url" in info.value.hint


def test_a_refused_connection_names_the_endpoint(tmp_path: Path, s3: S3Bucket) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    store = store_for(tmp_path, s3.url, endpoint_url=endpoint, session=s3.process_options[
        "session"], connect_timeout=1, read_timeout=1)
    with pytest.raises(RemoteUnreachableError, match="connection refused") as info:
        store.refresh()
    assert endpoint in info.value.message and "remote 'storage'" in info.value.message
    assert "endpoint_url" in info.value.hint


def test_a_missing_bucket_is_not_an_empty_remote(tmp_path: Path, s3: S3Bucket) -> None:
    store = store_for(tmp_path, "s3://no-such-bucket/gart", **s3.process_options)
    with pytest.raises(BucketNotFoundError, match="bucket 'no-such-bucket' does not exist"):
        store.missing({"0" * 64})
    # An empty prefix of a bucket that exists is an empty remote, at no extra request.
    empty = store_for(tmp_path, s3.url, **s3.process_options)
    s3.take()
    assert empty.missing({"0" * 64}) == {"0" * 64}
    requests = s3.take()
    assert not [r for r in requests if r.path.rstrip("/") == "/gart-test" and "prefix" not in
                r.query], requests  # the bucket itself was never asked about


def test_a_missing_gcs_bucket_is_not_an_empty_remote(tmp_path: Path, gcs: GcsBucket) -> None:
    store = store_for(tmp_path, "gs://no-such-bucket/gart", **gcs.options)
    with pytest.raises(BucketNotFoundError, match="bucket 'no-such-bucket' does not exist"):
        store.refresh()
    assert store_for(tmp_path, gcs.url, **gcs.options).backend.list("packs") == []


def test_refused_s3_credentials_are_not_access_to_an_object(tmp_path: Path, s3: S3Bucket) -> None:
    store = store_for(tmp_path, s3.url, **s3.process_options)
    s3.server.fail(HttpFault("GET", "/gart-test", status=403, code="SignatureDoesNotMatch"))
    with pytest.raises(RemoteAccessError, match="credentials of remote 'storage' were refused"):
        store.refresh()
    s3.server.clear_faults()
    s3.server.fail(HttpFault("GET", "/gart-test", status=403, code="AccessDenied"))
    with pytest.raises(RemoteAccessError, match="access denied to s3://gart-test/gart/packs"):
        store.refresh()
