"""Transfers retry what may clear (a flaky S3 answer) and never what cannot (corrupt bytes)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from s3_server import HttpFault, S3Bucket

from gitartifacts import transfer
from gitartifacts.config import RemoteConfig
from gitartifacts.objects import ObjectStore, loose_key
from gitartifacts.remote import open_store

BIG = 2 << 20  # above the pack threshold: a loose object, one GET per download


def cache_with(tmp_path: Path, data: bytes) -> tuple[ObjectStore, str]:
    cache = ObjectStore.local(tmp_path / "cache")
    oid = hashlib.sha256(data).hexdigest()
    with cache.writer() as writer:
        writer.add_bytes(oid, data)
    return cache, oid


def s3_store(s3: S3Bucket, tmp_path: Path) -> ObjectStore:
    remote = RemoteConfig("storage", s3.url, s3.process_options)
    return open_store(remote, tmp_path, tmp_path / "indexes")


def test_an_s3_fault_that_clears_on_retry_still_completes_push_and_pull(
        s3: S3Bucket, tmp_path: Path) -> None:
    data = b"x" * BIG
    cache, oid = cache_with(tmp_path, data)
    store = s3_store(s3, tmp_path)
    put = s3.server.fail(HttpFault("PUT", "/files/", status=503, code="SlowDown", remaining=1))
    assert transfer.push(cache, store, {oid}, jobs=2).ok
    assert put.hits == 1 and s3.get(loose_key(oid)) == data
    fresh = ObjectStore.local(tmp_path / "fresh")
    get = s3.server.fail(HttpFault("GET", "/files/", status=503, code="SlowDown", remaining=1))
    result = transfer.fetch(s3_store(s3, tmp_path), fresh, {oid}, jobs=2)
    assert result.ok and get.hits == 1 and fresh.read(oid) == data


@pytest.mark.parametrize("kind", ["s3", "local"])
def test_a_corrupt_remote_object_is_downloaded_once_and_reported(
        kind: str, s3: S3Bucket, tmp_path: Path) -> None:
    data = b"y" * BIG
    oid = hashlib.sha256(data).hexdigest()
    damaged = b"z" * BIG
    if kind == "s3":
        s3.put(loose_key(oid), damaged)
        store = s3_store(s3, tmp_path)
    else:
        path = tmp_path / "remote" / loose_key(oid)
        path.parent.mkdir(parents=True)
        path.write_bytes(damaged)
        store = ObjectStore.local(tmp_path / "remote")
    s3.take()
    fresh = ObjectStore.local(tmp_path / "fresh")
    result = transfer.fetch(store, fresh, {oid}, jobs=2)
    assert oid in result.failed and "corrupt" in result.failed[oid]
    assert fresh.missing({oid}) == {oid}
    if kind == "s3":
        gets = [r for r in s3.take() if r.method == "GET" and loose_key(oid) in r.path]
        assert len(gets) == 1, gets
