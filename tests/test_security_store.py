"""Store security: no unverified byte is published, installed or trusted twice.

Each test failed before its fix (see docs/security-store.md): a corrupt cache object was
uploaded and published, a hostile remote index poisoned the cache for good, a damaged cache
object could never be re-downloaded, and a cached remote index kept a pull failing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import GartResult, World, build_dataset, git, read_tree
from s3_server import S3Bucket

from gitartifacts import transfer
from gitartifacts.config import RemoteConfig
from gitartifacts.objects import ObjectStore, loose_key
from gitartifacts.packformat import INDEX_MAGIC_V1, PackLocation, parse_index, serialize_index
from gitartifacts.remote import open_store

Gart = Callable[..., GartResult]
LARGE = (1 << 20) + 4096  # above the default pack threshold: stored loose
THRESHOLD = 1024


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(data))


def rewrite_index(idx: Path, change: Callable[[dict[str, PackLocation]], None]) -> bytes:
    """Edit an index's rows and write it back with a valid checksum, as format 1 (whose
    name is not its hash, so the rows are what is checked); returns the original."""
    original = idx.read_bytes()
    pack_id = idx.name[:-4]
    rows = parse_index(original, pack_id)
    change(rows)
    idx.chmod(0o644)
    idx.write_bytes(serialize_index(rows, INDEX_MAGIC_V1))
    return original


def raw_index(rows: list[tuple[str, int, int]]) -> bytes:
    """An index with rows exactly as given (unsorted, duplicated…), valid checksum."""
    body = bytearray(struct.pack(">8sI", INDEX_MAGIC_V1, len(rows)))
    for oid, offset, length in rows:
        body += struct.pack(">32sQQ", bytes.fromhex(oid), offset, length)
    return bytes(body + hashlib.sha256(body).digest())


def small_objects(count: int = 6) -> dict[str, bytes]:
    out = {}
    for i in range(count):
        data = f"small object {i}\n".encode() * (i + 3)
        out[sha(data)] = data
    return out


def cache_with(root: Path, objects: dict[str, bytes]) -> ObjectStore:
    cache = ObjectStore.local(root, pack_threshold=THRESHOLD)
    with cache.writer() as writer:
        for oid, data in objects.items():
            writer.add_bytes(oid, data)
    return cache


def no_traceback(result: GartResult) -> None:
    assert "Traceback" not in result.err, result.err
    assert result.err.startswith("gart: error:"), result.err


def tags(root: Path) -> list[str]:
    return git(root, "tag", "-l").split()


# ---- 1. push hashes what it reads out of the cache ---------------------------------------


@pytest.fixture
def unpushed(repo: Path, gart: Gart, tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """`ds` committed (one loose file, several packed ones), a local-dir remote, not pushed."""
    storage = tmp_path / "storage"
    assert gart("remote", "add", "storage", str(storage), "--default").rc == 0
    files = build_dataset(repo / "data", files=4, seed=3, max_size=500, dirs=0)
    big = os.urandom(LARGE)
    (repo / "data" / "big.bin").write_bytes(big)
    files["big.bin"] = big
    assert gart("add", "data", "--name", "ds").rc == 0
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "ds")
    return storage, files


@pytest.mark.parametrize("where", ["loose", "packed"])
def test_push_refuses_a_corrupt_cache_object_and_publishes_nothing(
        repo: Path, gart: Gart, unpushed: tuple[Path, dict[str, bytes]], where: str) -> None:
    storage, files = unpushed
    cache = ObjectStore.local(repo / ".gart" / "cache")
    victim = "big.bin" if where == "loose" else "f0001.bin"
    oid = sha(files[victim])
    if where == "loose":
        flip_byte(repo / ".gart" / "cache" / loose_key(oid), 1000)
    else:
        loc = cache.packed[oid]
        flip_byte(repo / ".gart" / "cache" / "packs" / f"{loc.pack_id}.pack", loc.offset + 1)
    result = gart("push")
    assert result.rc != 0
    no_traceback(result)
    assert f"ds:{victim}" in result.err and "corrupt" in result.err
    assert "gart add" in result.err  # the way out: re-add the file (or pull it)
    assert tags(repo) == []  # nothing published
    remote = ObjectStore.local(storage)
    assert remote.missing({oid}) == {oid}
    assert not any(storage.rglob(oid[2:]))
    # the corrupt copy is gone from the cache, the healthy objects are not
    fresh = ObjectStore.local(repo / ".gart" / "cache")
    assert fresh.missing({sha(d) for d in files.values()}) == {oid}
    assert fresh.verify() == []
    # re-adding the file repairs the cache; the push then publishes v0
    (repo / "data" / victim).chmod(0o644)
    (repo / "data" / victim).write_bytes(files[victim])
    assert gart("add", "data", "--name", "ds").rc == 0
    result = gart("push")
    assert result.rc == 0, result.err
    assert "ds@v0" in tags(repo)
    assert ObjectStore.local(storage).read(oid) == files[victim]


def test_push_to_s3_hashes_a_loose_object_once_and_never_uploads_it(
        s3: S3Bucket, tmp_path: Path) -> None:
    data = os.urandom(LARGE)
    oid = sha(data)
    cache = cache_with(tmp_path / "cache", {oid: data})
    flip_byte(tmp_path / "cache" / loose_key(oid), 7)
    store = open_store(RemoteConfig("storage", s3.url, s3.process_options), tmp_path,
                       tmp_path / "indexes")
    s3.take()
    result = transfer.push(cache, store, {oid}, jobs=2)
    assert list(result.failed) == [oid] and "corrupt" in result.failed[oid]
    assert str(tmp_path / "cache") in result.failed[oid]  # names the damaged file
    assert not [r for r in s3.take() if r.method in ("PUT", "POST")]  # never uploaded
    assert cache.missing({oid}) == {oid}  # dropped: the next pull may fetch it again


# ---- 2. a hostile remote index poisons nothing -------------------------------------------


@pytest.fixture
def local_remote(tmp_path: Path) -> tuple[ObjectStore, dict[str, bytes], Path]:
    """A local-directory remote holding one pack of small objects; returns its .idx path."""
    objects = small_objects()
    cache = cache_with(tmp_path / "origin-cache", objects)
    remote = ObjectStore(ObjectStore.local(tmp_path / "remote").backend)
    assert transfer.push(cache, remote, set(objects)).ok
    idx = next((tmp_path / "remote" / "packs").glob("*.idx"))
    return remote, objects, idx


def _outside(rows: dict[str, PackLocation]) -> None:
    first = sorted(rows)[0]
    loc = rows[first]
    rows[first] = PackLocation(loc.pack_id, loc.offset + 10_000, loc.length)


def _huge(rows: dict[str, PackLocation]) -> None:
    first = sorted(rows)[0]
    loc = rows[first]
    rows[first] = PackLocation(loc.pack_id, loc.offset, 1 << 40)


@pytest.mark.parametrize("tamper", [_outside, _huge], ids=["outside", "huge"])
@pytest.mark.parametrize("share", ["whole", "few"])
def test_a_hostile_index_is_refused_and_the_cache_heals_once_the_remote_is_repaired(
        local_remote: tuple[ObjectStore, dict[str, bytes], Path], tmp_path: Path,
        tamper: Callable[[dict[str, PackLocation]], None], share: str) -> None:
    remote, objects, idx = local_remote
    wanted = set(objects) if share == "whole" else set(sorted(objects)[:2])
    original = rewrite_index(idx, tamper)
    cache = ObjectStore.local(tmp_path / "clone-cache", pack_threshold=THRESHOLD)
    result = transfer.fetch(ObjectStore(remote.backend), cache, wanted)
    assert not result.ok
    assert all("idx" in reason for reason in result.failed.values()), result.failed
    assert cache.verify() == []  # nothing poisoned was installed
    assert cache.missing(wanted) == wanted - (set(objects) - set(result.failed))
    idx.write_bytes(original)  # the remote is repaired
    cache = ObjectStore.local(tmp_path / "clone-cache", pack_threshold=THRESHOLD)
    assert transfer.fetch(ObjectStore(remote.backend), cache, wanted).ok
    assert all(cache.read(oid) == objects[oid] for oid in wanted)
    assert cache.verify() == []


def test_install_verifies_every_object_of_a_pack(
        local_remote: tuple[ObjectStore, dict[str, bytes], Path], tmp_path: Path) -> None:
    """Two rows swapped: every row lies inside the pack, the pack hashes to its id, but the
    bytes at each row belong to another object."""
    remote, objects, idx = local_remote

    def swap(rows: dict[str, PackLocation]) -> None:
        a, b = sorted(rows)[:2]
        rows[a], rows[b] = rows[b], rows[a]

    rewrite_index(idx, swap)
    cache = ObjectStore.local(tmp_path / "clone-cache", pack_threshold=THRESHOLD)
    result = transfer.fetch(ObjectStore(remote.backend), cache, set(objects))
    assert not result.ok and all("corrupt" in r for r in result.failed.values())
    assert cache.verify() == [] and cache.missing(set(objects)) == set(objects)


def test_fsck_checks_every_index_row_against_its_pack(tmp_path: Path) -> None:
    objects = small_objects()
    cache = cache_with(tmp_path / "cache", objects)
    idx = next((tmp_path / "cache" / "packs").glob("*.idx"))
    rows = sorted((oid, loc.offset, loc.length)
                  for oid, loc in parse_index(idx.read_bytes(), idx.name[:-4]).items())
    oid, offset, length = rows[0]
    idx.chmod(0o644)
    # an extra row past the pack's end, and a second copy of a row overlapping the first
    idx.write_bytes(raw_index(rows + [("f" * 64, offset + 5_000, length)]))
    problems = ObjectStore.local(tmp_path / "cache").verify()
    assert problems and all(idx.name in p for p in problems), problems
    idx.write_bytes(raw_index(sorted(rows + [("0" * 64, offset, length)])))
    problems = ObjectStore.local(tmp_path / "cache").verify()
    assert problems and any("0" * 64 in p or "overlap" in p for p in problems), problems
    del cache


def test_cli_pull_from_a_hostile_remote_then_a_repaired_one(
        published: World, gart: Gart) -> None:
    root = published.root
    idx = next((published.storage / "packs").glob("*.idx"))
    original = rewrite_index(idx, _huge)
    shutil.rmtree(root / ".gart" / "cache")
    shutil.rmtree(root / "raw")
    result = gart("pull", "raw@v0")
    assert result.rc != 0
    no_traceback(result)
    assert not (root / "raw").exists() or read_tree(root / "raw") == {}
    idx.write_bytes(original)
    result = gart("pull", "raw@v0")
    assert result.rc == 0, result.err
    assert read_tree(root / "raw") == published.raw
    assert gart("fsck").rc == 0


def test_a_poisoned_cached_remote_index_does_not_keep_a_pull_failing(
        s3: S3Bucket, tmp_path: Path) -> None:
    objects = small_objects()
    cache = cache_with(tmp_path / "cache", objects)
    config = RemoteConfig("storage", s3.url, s3.process_options)
    indexes = tmp_path / "indexes"
    assert transfer.push(cache, open_store(config, tmp_path, indexes), set(objects)).ok
    kept = list(indexes.rglob("*.idx"))
    assert len(kept) == 1  # the remote index is kept locally

    def swap(rows: dict[str, PackLocation]) -> None:
        a, b = sorted(rows)[:2]
        rows[a], rows[b] = rows[b], rows[a]

    rewrite_index(kept[0], swap)  # e.g. left by a hostile remote since repaired
    for wanted in (set(sorted(objects)[:2]), set(objects)):  # byte ranges, whole pack
        fresh = ObjectStore.local(tmp_path / f"fresh-{len(wanted)}", pack_threshold=THRESHOLD)
        result = transfer.fetch(open_store(config, tmp_path, indexes), fresh, wanted)
        assert result.ok, result.failed
        assert all(fresh.read(oid) == objects[oid] for oid in wanted)
        assert fresh.verify() == []
        rewrite_index(next(indexes.rglob("*.idx")), swap)


# ---- 3. a damaged cache is repaired by the next pull -------------------------------------


def _flip_in_pack(root: Path, oid: str) -> None:
    cache = ObjectStore.local(root / ".gart" / "cache")
    loc = cache.packed[oid]
    flip_byte(root / ".gart" / "cache" / "packs" / f"{loc.pack_id}.pack", loc.offset)


def _delete_pack(root: Path, oid: str) -> None:
    for pack in (root / ".gart" / "cache" / "packs").glob("*.pack"):
        pack.unlink()


def _delete_index(root: Path, oid: str) -> None:
    for idx in (root / ".gart" / "cache" / "packs").glob("*.idx"):
        idx.unlink()


@pytest.mark.parametrize("damage", [_flip_in_pack, _delete_pack, _delete_index],
                         ids=["pack-bytes", "pack-deleted", "index-deleted"])
def test_a_damaged_cache_is_repaired_by_the_next_pull(
        published: World, gart: Gart, damage: Callable[[Path, str], None]) -> None:
    root = published.root
    victim = sorted(published.raw)[0]
    damage(root, sha(published.raw[victim]))
    shutil.rmtree(root / "raw")
    first = gart("pull", "raw@v0")
    if first.rc != 0:  # found on read: dropped, and the message says how to get it back
        no_traceback(first)
        assert "gart pull" in first.err
    second = gart("pull", "raw@v0")
    assert second.rc == 0, second.err
    assert read_tree(root / "raw") == published.raw
    fsck = gart("fsck")
    assert fsck.rc == 0, fsck.out + fsck.err


def test_a_damaged_loose_object_is_dropped_on_read_and_fetched_again(tmp_path: Path) -> None:
    data = os.urandom(LARGE)
    oid = sha(data)
    remote = cache_with(tmp_path / "remote", {oid: data})
    for damage in ("truncate", "edit"):
        cache = cache_with(tmp_path / "cache", {oid: data})
        path = tmp_path / "cache" / loose_key(oid)
        path.chmod(0o644)
        if damage == "truncate":
            path.write_bytes(data[:100])
        else:
            flip_byte(path, 5)
        with pytest.raises(Exception, match="corrupt") as info:
            cache.read(oid)
        assert "gart pull" in getattr(info.value, "hint", "")
        assert cache.missing({oid}) == {oid}
        result = transfer.fetch(ObjectStore(remote.backend), cache, {oid})
        assert result.ok and cache.read(oid) == data


def test_a_pack_that_no_longer_matches_its_index_keeps_its_healthy_objects(
        tmp_path: Path) -> None:
    objects = small_objects()
    cache = cache_with(tmp_path / "cache", objects)
    victim = sorted(objects)[2]
    loc = cache.packed[victim]
    flip_byte(tmp_path / "cache" / "packs" / f"{loc.pack_id}.pack", loc.offset + 1)
    reader = ObjectStore.local(tmp_path / "cache", pack_threshold=THRESHOLD)
    with pytest.raises(Exception, match="corrupt"):
        dict(reader.read_packed(sorted(objects)))
    assert reader.missing(set(objects)) == {victim}
    again = ObjectStore.local(tmp_path / "cache", pack_threshold=THRESHOLD)
    assert again.missing(set(objects)) == {victim} and again.verify() == []
    assert {o: again.read(o) for o in objects if o != victim} == {
        o: d for o, d in objects.items() if o != victim}


# ---- 4. corrupt and missing objects are never retried ------------------------------------


def test_a_corrupt_pack_on_s3_is_fetched_once(s3: S3Bucket, tmp_path: Path) -> None:
    objects = small_objects()
    cache = cache_with(tmp_path / "cache", objects)
    config = RemoteConfig("storage", s3.url, s3.process_options)
    assert transfer.push(cache, open_store(config, tmp_path, tmp_path / "i"), set(objects)).ok
    pack = next(k for k in s3.keys() if k.endswith(".pack"))
    data = bytearray(s3.get(pack))
    data[-1] ^= 0xFF
    s3.put(pack, bytes(data))
    s3.take()
    fresh = ObjectStore.local(tmp_path / "fresh", pack_threshold=THRESHOLD)
    result = transfer.fetch(open_store(config, tmp_path, tmp_path / "i"), fresh, set(objects))
    assert set(result.failed) == set(objects)
    gets = [r for r in s3.take() if r.method == "GET" and r.path.endswith(".pack")]
    assert len(gets) == 1, gets
