"""One remote contract, run against a local directory, memory://, S3 (moto over HTTP), GCS
(gcp-storage-emulator over HTTP) and Azure Blob (azurite over HTTP)."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faultfs  # registers faulty://
import fsspec
import pytest
from azure_server import AzureContainer
from gcs_server import GcsBucket
from s3_server import HttpFault, Request, S3Bucket

from gitartifacts import transfer
from gitartifacts.config import RemoteConfig
from gitartifacts.errors import CorruptObjectError
from gitartifacts.fsutil import TEMP_PREFIX
from gitartifacts.objects import ObjectStore, loose_key
from gitartifacts.remote import gcs_filesystem_class, open_store

SMALL = 40  # small objects: packed on both sides
LARGE = 2  # large objects: loose files on both sides
THRESHOLD = 4096  # the test cache's pack threshold


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Remote:
    """A remote of one kind: its URL and options, plus raw access that bypasses gart."""

    kind: str
    url: str
    tmp: Path
    options: dict[str, Any] = field(default_factory=dict)
    s3: S3Bucket | None = None
    bucket: GcsBucket | AzureContainer | None = None  # GCS or Azure: raw access through it

    def open(self, url: str | None = None, indexes: str = "indexes", **options: Any) -> ObjectStore:
        """A fresh ObjectStore through the normal URL path (remote.open_store).

        `indexes` names the directory of locally kept pack indexes (one per clone)."""
        config = RemoteConfig("r", url or self.url, {**self.options, **options})
        return open_store(config, self.tmp, self.tmp / indexes)

    # -- raw access to the remote's bytes, independent of gart --------------------------

    def _fs(self) -> tuple[Any, str]:
        if self.kind == "local":
            return fsspec.filesystem("file"), self.url
        if self.bucket is not None:
            return self.bucket.fs(), self.url.partition("://")[2]
        protocol = self.options.get("target_protocol", "memory")
        return fsspec.filesystem(protocol), self.url.partition("://")[2]

    def keys(self) -> list[str]:
        if self.s3 is not None:
            return self.s3.keys()
        fs, root = self._fs()
        root = fs._strip_protocol(root)
        return sorted(p[len(root) + 1 :] for p in fs.find(root))

    def read(self, key: str) -> bytes:
        if self.s3 is not None:
            return self.s3.get(key)
        fs, root = self._fs()
        return bytes(fs.cat_file(f"{root}/{key}"))

    def write(self, key: str, data: bytes) -> None:
        if self.s3 is not None:
            return self.s3.put(key, data)
        fs, root = self._fs()
        if self.kind == "local":
            path = Path(root) / key
            path.chmod(0o644)
            path.write_bytes(data)
        else:
            fs.pipe_file(f"{root}/{key}", data)

    def delete(self, key: str) -> None:
        if self.s3 is not None:
            return self.s3.delete(key)
        fs, root = self._fs()
        fs.rm_file(f"{root}/{key}")

    def flip_byte(self, key: str, at: int) -> None:
        data = bytearray(self.read(key))
        data[at] ^= 0xFF
        self.write(key, bytes(data))

    def requests(self) -> list[Request] | None:
        """S3 requests since the last call (None for kinds that cannot count)."""
        return self.s3.take() if self.s3 is not None else None

    @contextmanager
    def failing_uploads(self, what: str) -> Iterator[ObjectStore]:
        """A store on this remote on which every upload of a pack (or loose object) fails.

        S3 answers those PUTs with 403. Other remotes are reached as faulty:// over the same
        bytes: half of each failing upload lands, then the connection drops.
        """
        if self.s3 is not None:
            self.s3.server.fail(HttpFault("PUT", ".pack" if what == "pack" else "/files/"))
            try:
                yield self.open()
            finally:
                self.s3.server.clear_faults()
            return
        target = {"local": "file", "memory": "memory", "gcs": GCS_CORE, "azure": "abfs"}
        yield self.open(
            f"faulty://{self._fs()[1]}",
            target_protocol=target[self.kind],
            target_options={k: v for k, v in self.options.items() if k != "target_protocol"},
            fault_method="pipe_file" if what == "pack" else "put_file",
            fault_count=0, fault_mode="partial",
        )


# faulty:// over GCS wraps the gcsfs class gart uses (not fsspec's experimental gs:// class);
# a single try per request, because the emulator answers gcsfs's rename (moveTo) with 501.
GCS_CORE = "gcs-gart"


def _register_gcs_core() -> None:
    try:
        fsspec.register_implementation(GCS_CORE, gcs_filesystem_class(1), clobber=True)
    except ImportError:
        pass  # no gcsfs: the gcs fixture says so


_register_gcs_core()


@pytest.fixture(params=["local", "memory", "s3", "gcs", "azure"])
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Remote]:
    kind = request.param
    if kind == "local":
        yield Remote(kind, str(tmp_path / "remote"), tmp_path)
    elif kind == "memory":
        root = f"/gart-{uuid.uuid4().hex[:12]}"
        yield Remote(kind, f"memory://{root}", tmp_path)
        fs = fsspec.filesystem("memory")
        if fs.exists(root):
            fs.rm(root, recursive=True)
    elif kind == "s3":
        bucket: S3Bucket = request.getfixturevalue("s3")
        yield Remote(kind, bucket.url, tmp_path, bucket.process_options, s3=bucket)
    else:
        other: GcsBucket | AzureContainer = request.getfixturevalue(kind)
        yield Remote(kind, other.url, tmp_path, other.options, bucket=other)


@dataclass
class Dataset:
    """Objects in a local cache: `small` packed there, `large` loose."""

    cache: ObjectStore
    small: dict[str, bytes]
    large: dict[str, bytes]

    @property
    def all(self) -> dict[str, bytes]:
        return {**self.small, **self.large}


def make_cache(root: Path) -> ObjectStore:
    return ObjectStore.local(root, pack_threshold=THRESHOLD)


@pytest.fixture
def dataset(tmp_path: Path) -> Dataset:
    cache = make_cache(tmp_path / "cache")
    small = {}
    large = {}
    with cache.writer() as writer:
        for i in range(SMALL):
            data = f"small object {i}\n".encode() * (i + 1)
            small[sha(data)] = data
            writer.add_bytes(sha(data), data)
        for i in range(LARGE):
            data = os.urandom(THRESHOLD * 2 + i)
            source = tmp_path / f"large{i}"
            source.write_bytes(data)
            oid, _ = writer.add_file(source)
            large[oid] = data
    assert set(cache.packed) == set(small)
    return Dataset(cache, small, large)


def pushed(remote: Remote, dataset: Dataset) -> ObjectStore:
    """Push the whole dataset to the remote; returns the store used."""
    store = remote.open()
    result = transfer.push(dataset.cache, store, set(dataset.all), jobs=4)
    assert result.ok, result.failed
    assert (result.transferred, result.present) == (SMALL + LARGE, 0)
    remote.requests()
    return store


def temp_files(root: Path) -> list[str]:
    return [p.name for p in root.rglob(f"{TEMP_PREFIX}*")]


def pack_keys(remote: Remote, suffix: str) -> list[str]:
    return [k for k in remote.keys() if k.startswith("packs/") and k.endswith(suffix)]


# -- put / get / list -------------------------------------------------------------------


def test_push_writes_the_store_layout(remote: Remote, dataset: Dataset) -> None:
    pushed(remote, dataset)
    keys = remote.keys()
    assert sorted(k for k in keys if k.startswith("files/")) == sorted(
        loose_key(oid) for oid in dataset.large
    )
    packs, indexes = pack_keys(remote, ".pack"), pack_keys(remote, ".idx")
    assert len(packs) == 1 and [k.replace(".idx", ".pack") for k in indexes] == packs
    assert not [k for k in keys if TEMP_PREFIX in k]
    # Loose objects are checkable by hand (sha256sum); a pack is named by its index's hash.
    for oid in dataset.large:
        assert sha(remote.read(loose_key(oid))) == oid
    assert sha(remote.read(indexes[0])) == packs[0][len("packs/") : -len(".pack")]


def test_read_from_a_fresh_store_is_verified(remote: Remote, dataset: Dataset) -> None:
    pushed(remote, dataset)
    store = remote.open()
    for oid, data in dataset.all.items():
        assert store.read(oid) == data
    assert store.all_oids() == set(dataset.all)
    assert store.loose_oids() == set(dataset.large)
    assert set(store.packed) == set(dataset.small)


def test_missing_by_probes_and_by_listing(remote: Remote, dataset: Dataset) -> None:
    pushed(remote, dataset)
    store = remote.open()
    store.refresh()
    absent = {sha(f"absent {i}".encode()) for i in range(50)}
    large = set(dataset.large)
    remote.requests()
    few = {*sorted(absent)[:3], *large, *sorted(dataset.small)[:3]}  # < 32: probe each
    assert store.missing(few) == set(sorted(absent)[:3])
    probes = remote.requests()
    many = absent | set(dataset.all)  # >= 32: list prefixes instead
    assert store.missing(many) == absent
    listings = remote.requests()
    if probes is not None and listings is not None:
        assert all(r.method == "HEAD" or "list-type" in r.query for r in probes)
        assert not [r for r in listings if r.method != "GET" or "list-type" not in r.query]
        # files/sha256 once, then only the prefixes that exist (the large objects' ones),
        # then chunks/sha256 (chunk lists of files stored as chunks) once for what is left
        assert len(listings) <= 1 + len({oid[:2] for oid in large}) + 1 + 2, listings


def test_missing_on_an_empty_remote_costs_a_listing_or_two(remote: Remote) -> None:
    store = remote.open()
    oids = {sha(str(i).encode()) for i in range(2000)}
    assert store.missing(oids) == oids
    requests = remote.requests()
    if requests is not None:
        print(f"\nmissing(2000) on an empty S3 remote: {len(requests)} requests")
        # packs/ and files/sha256/ (a listing or two each), and chunks/sha256/ for the
        # chunk lists of files stored as chunks
        assert len(requests) <= 6, requests


def test_second_push_sends_nothing(remote: Remote, dataset: Dataset) -> None:
    pushed(remote, dataset)
    keys = remote.keys()
    store = remote.open()
    remote.requests()
    result = transfer.push(dataset.cache, store, set(dataset.all))
    requests = remote.requests()  # before keys(): listing through boto3 resets the log
    assert (result.transferred, result.present, result.failed) == (0, SMALL + LARGE, {})
    assert remote.keys() == keys
    if requests is not None:
        print(f"\nno-op push of {SMALL + LARGE} objects: {len(requests)} S3 requests")
        assert len(requests) <= 1 + LARGE, requests  # listing packs/, one HEAD per loose


def test_push_of_new_objects_adds_a_pack(remote: Remote, dataset: Dataset, tmp_path: Path) -> None:
    pushed(remote, dataset)
    more = {sha(f"more {i}".encode()): f"more {i}".encode() for i in range(5)}
    with dataset.cache.writer() as writer:
        for oid, data in more.items():
            writer.add_bytes(oid, data)
    result = transfer.push(dataset.cache, remote.open(), set(dataset.all) | set(more))
    assert (result.transferred, result.present) == (5, SMALL + LARGE)
    assert len(pack_keys(remote, ".idx")) == 2
    assert remote.open().missing(set(more) | set(dataset.all)) == set()


# -- fetch: whole packs, ranges, verification ------------------------------------------


def test_fetch_everything_takes_whole_packs(
    remote: Remote, dataset: Dataset, tmp_path: Path
) -> None:
    pushed(remote, dataset)
    pack_id = pack_keys(remote, ".pack")[0][len("packs/") : -len(".pack")]
    cache = make_cache(tmp_path / "clone-cache")
    result = transfer.fetch(remote.open(), cache, set(dataset.all), jobs=4)
    assert result.ok and result.transferred == SMALL + LARGE
    assert (tmp_path / "clone-cache" / "packs" / f"{pack_id}.pack").exists()
    for oid, data in dataset.all.items():
        assert cache.read(oid) == data
    assert cache.verify() == [] and not temp_files(tmp_path / "clone-cache")
    requests = remote.requests()
    if requests is not None:
        pack_gets = [r for r in requests if r.path.endswith(".pack")]
        assert len(pack_gets) == 1 and pack_gets[0].range == "", pack_gets
    again = transfer.fetch(remote.open(), cache, set(dataset.all))
    assert (again.transferred, again.present) == (0, SMALL + LARGE)


def test_fetch_of_a_few_uses_byte_ranges(remote: Remote, dataset: Dataset, tmp_path: Path) -> None:
    pushed(remote, dataset)
    pack_id = pack_keys(remote, ".pack")[0][len("packs/") : -len(".pack")]
    wanted = sorted(dataset.small)[:3]
    cache = make_cache(tmp_path / "clone-cache")
    result = transfer.fetch(remote.open(), cache, set(wanted), jobs=4)
    assert result.ok and result.transferred == 3
    assert not (tmp_path / "clone-cache" / "packs" / f"{pack_id}.pack").exists()
    assert cache.all_oids() == set(wanted)
    for oid in wanted:
        assert cache.read(oid) == dataset.small[oid]
    requests = remote.requests()
    if requests is not None:
        ranged = [r for r in requests if r.path.endswith(".pack")]
        assert len(ranged) == 3 and all(r.range.startswith("bytes=") for r in ranged), ranged


def assert_nothing_placed(cache: ObjectStore, oids: set[str]) -> None:
    assert cache.missing(oids) == oids
    root = cache.local_root
    assert root is not None
    assert not temp_files(root), temp_files(root)


def test_corrupt_loose_object_is_refused(remote: Remote, dataset: Dataset, tmp_path: Path) -> None:
    pushed(remote, dataset)
    bad = sorted(dataset.large)[0]
    remote.flip_byte(loose_key(bad), 100)
    cache = make_cache(tmp_path / "clone-cache")
    result = transfer.fetch(remote.open(), cache, set(dataset.all))
    assert list(result.failed) == [bad]
    assert "corrupt" in result.failed[bad] and loose_key(bad) in result.failed[bad]
    assert_nothing_placed(cache, {bad})
    assert cache.missing(set(dataset.all)) == {bad}
    with pytest.raises(CorruptObjectError):
        remote.open().read(bad)


def test_corrupt_pack_fetched_whole_is_refused(
    remote: Remote, dataset: Dataset, tmp_path: Path
) -> None:
    pushed(remote, dataset)
    pack = pack_keys(remote, ".pack")[0]
    remote.flip_byte(pack, 20)
    cache = make_cache(tmp_path / "clone-cache")
    result = transfer.fetch(remote.open(), cache, set(dataset.small))
    assert set(result.failed) == set(dataset.small)
    reason = next(iter(result.failed.values()))
    assert "corrupt" in reason and pack[len("packs/") : -len(".pack")] in reason
    assert_nothing_placed(cache, set(dataset.small))


def test_corrupt_object_fetched_by_range_is_refused(
    remote: Remote, dataset: Dataset, tmp_path: Path
) -> None:
    pushed(remote, dataset)
    store = remote.open()
    wanted = sorted(dataset.small)[:3]
    bad = wanted[1]
    loc = store.packed[bad]
    remote.flip_byte(f"packs/{loc.pack_id}.pack", loc.offset + loc.length // 2)
    cache = make_cache(tmp_path / "clone-cache")
    result = transfer.fetch(remote.open(), cache, set(wanted))
    assert list(result.failed) == [bad] and "corrupt" in result.failed[bad]
    assert loc.pack_id in result.failed[bad]
    assert_nothing_placed(cache, {bad})
    assert cache.missing(set(wanted)) == {bad}


def test_missing_objects_are_all_listed(remote: Remote, dataset: Dataset, tmp_path: Path) -> None:
    pushed(remote, dataset)
    gone = sorted(dataset.large)[0]
    remote.delete(loose_key(gone))
    never = sha(b"never pushed")
    cache = make_cache(tmp_path / "clone-cache")
    result = transfer.fetch(remote.open(), cache, set(dataset.all) | {never})
    assert set(result.failed) == {gone, never}
    for oid in (gone, never):
        assert "missing" in result.failed[oid] and loose_key(oid) in result.failed[oid]
    assert cache.missing(set(dataset.all)) == {gone}
    assert not temp_files(tmp_path / "clone-cache")


def test_pack_without_its_file_fails_cleanly(
    remote: Remote, dataset: Dataset, tmp_path: Path
) -> None:
    pushed(remote, dataset)
    pack = pack_keys(remote, ".pack")[0]
    remote.delete(pack)
    few = set(sorted(dataset.small)[:2])
    for wanted in (set(dataset.all), few):  # whole-pack download, then byte ranges
        cache = make_cache(tmp_path / f"clone-cache-{len(wanted)}")
        result = transfer.fetch(remote.open(), cache, wanted)
        assert set(result.failed) == wanted & set(dataset.small)
        assert {f"missing on the remote ({remote.url}/{pack})"} == set(result.failed.values())
        assert_nothing_placed(cache, set(result.failed))
        assert cache.missing(wanted & set(dataset.large)) == set()


# -- interrupted transfers -------------------------------------------------------------


def test_interrupted_pack_upload_leaves_no_index(remote: Remote, dataset: Dataset) -> None:
    with remote.failing_uploads("pack") as store:
        result = transfer.push(dataset.cache, store, set(dataset.all))
    assert set(result.failed) == set(dataset.small)  # the loose objects went through
    assert result.transferred == LARGE
    assert pack_keys(remote, ".idx") == []  # no index: whatever landed of the pack is unseen
    assert remote.open().missing(set(dataset.all)) == set(dataset.small)
    again = transfer.push(dataset.cache, remote.open(), set(dataset.all))
    assert again.ok and (again.transferred, again.present) == (SMALL, LARGE)
    assert len(pack_keys(remote, ".idx")) == 1
    fresh = remote.open()
    for oid, data in dataset.all.items():
        assert fresh.read(oid) == data


def test_interrupted_loose_upload_is_resumed(remote: Remote, dataset: Dataset) -> None:
    with remote.failing_uploads("loose") as store:
        result = transfer.push(dataset.cache, store, set(dataset.all))
    assert set(result.failed) == set(dataset.large)
    assert result.transferred == SMALL
    # Nothing half-written is taken for an object: the re-run sends the loose ones again.
    assert remote.open().missing(set(dataset.all)) == set(dataset.large)
    again = transfer.push(dataset.cache, remote.open(), set(dataset.all))
    assert again.ok and (again.transferred, again.present) == (LARGE, SMALL)
    fresh = remote.open()
    for oid, data in dataset.large.items():
        assert fresh.read(oid) == data


def test_known_pack_indexes_are_not_read_again(
    s3: S3Bucket, dataset: Dataset, tmp_path: Path
) -> None:
    remote = Remote("s3", s3.url, tmp_path, s3.process_options, s3=s3)
    pushed(remote, dataset)
    first = remote.open()
    first.refresh()  # the pusher kept the index it wrote, so nothing but a listing here
    second = remote.open()
    second.refresh()
    second.refresh()
    requests = remote.requests()
    assert requests is not None
    assert not [r for r in requests if r.path.endswith(".idx")], requests
    assert len(requests) == 3  # one listing of packs/ per refresh()
    assert set(second.packed) == set(dataset.small)


# -- fault injection through faulty:// ---------------------------------------------------


@pytest.fixture(params=["file", "memory"])
def faulty(request: pytest.FixtureRequest, tmp_path: Path, dataset: Dataset) -> Iterator[Remote]:
    """A faulty:// remote (over disk or memory) holding the pushed dataset."""
    target = request.param
    root = str(tmp_path / "faulty") if target == "file" else f"/gart-{uuid.uuid4().hex[:12]}"
    remote = Remote("faulty", f"faulty://{root}", tmp_path, {"target_protocol": target})
    pushed(remote, dataset)
    yield remote
    if target == "memory":
        fsspec.filesystem("memory").rm(root, recursive=True)


def last_faulty() -> faultfs.FaultyFileSystem:
    return faultfs.FaultyFileSystem.instances[-1]


@pytest.mark.parametrize("method", ["get_file", "cat_file"])
def test_a_transient_read_error_is_retried(
    faulty: Remote, dataset: Dataset, tmp_path: Path, method: str
) -> None:
    store = faulty.open(fault_method=method, fault_path=".pack", fault_mode="error")
    wanted = set(dataset.all) if method == "get_file" else set(sorted(dataset.small)[:2])
    cache = make_cache(tmp_path / "clone-cache")
    result = transfer.fetch(store, cache, wanted)
    assert result.ok and result.transferred == len(wanted)
    assert len(last_faulty().faults) == 1
    assert cache.verify() == []


@pytest.mark.parametrize("mode", ["truncate", "corrupt", "partial"])
def test_a_damaged_whole_pack_download_is_never_placed(
    faulty: Remote, dataset: Dataset, tmp_path: Path, mode: str
) -> None:
    store = faulty.open(fault_method="get_file", fault_path=".pack", fault_mode=mode, fault_count=0)
    cache = make_cache(tmp_path / "clone-cache")
    result = transfer.fetch(store, cache, set(dataset.all))
    assert set(result.failed) == set(dataset.small)
    assert_nothing_placed(cache, set(dataset.small))
    assert cache.missing(set(dataset.large)) == set()
    again = transfer.fetch(faulty.open(), cache, set(dataset.all))  # re-run completes
    assert again.ok and again.transferred == SMALL
    assert cache.verify() == []


@pytest.mark.parametrize("mode", ["truncate", "corrupt"])
def test_a_damaged_range_or_loose_download_is_never_placed(
    faulty: Remote, dataset: Dataset, tmp_path: Path, mode: str
) -> None:
    few = set(sorted(dataset.small)[:3])
    cache = make_cache(tmp_path / "clone-cache")
    store = faulty.open(fault_method="cat_file", fault_path=".pack", fault_mode=mode, fault_call=2)
    result = transfer.fetch(store, cache, few)
    assert len(result.failed) == 1 and "corrupt" in next(iter(result.failed.values()))
    assert_nothing_placed(cache, set(result.failed))
    store = faulty.open(fault_method="get_file", fault_path="files/", fault_mode=mode)
    result = transfer.fetch(store, cache, set(dataset.large))
    assert len(result.failed) == 1 and "corrupt" in next(iter(result.failed.values()))
    assert_nothing_placed(cache, set(result.failed))


def test_a_transient_upload_error_is_retried(faulty: Remote, dataset: Dataset) -> None:
    more = {sha(f"more {i}".encode()): f"more {i}".encode() for i in range(3)}
    with dataset.cache.writer() as writer:
        for oid, data in more.items():
            writer.add_bytes(oid, data)
    store = faulty.open(fault_method="pipe_file", fault_mode="partial")
    result = transfer.push(dataset.cache, store, set(more))
    assert result.ok and result.transferred == 3
    assert len(last_faulty().faults) == 1
    fresh = faulty.open()
    assert [fresh.read(oid) for oid in more] == list(more.values())


def test_a_damaged_pack_index_is_refused(faulty: Remote, dataset: Dataset, tmp_path: Path) -> None:
    idx = pack_keys(faulty, ".idx")[0]
    faulty.flip_byte(idx, 12)
    # refused whole: its objects count as absent, each failure says why; the rest arrive
    cache = make_cache(tmp_path / "clone-cache")
    result = transfer.fetch(faulty.open(indexes="clone-indexes"), cache, set(dataset.all))
    assert set(result.failed) == set(dataset.small)
    assert all(".idx is damaged" in reason for reason in result.failed.values())
    assert cache.missing(set(dataset.all)) == set(dataset.small) and cache.verify() == []
