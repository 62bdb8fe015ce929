"""The content-addressed store: loose objects, immutable packs with indexes, verification."""

from __future__ import annotations

import hashlib
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from gitartifacts.errors import CorruptObjectError, ObjectNotFoundError
from gitartifacts.objects import LIST_INSTEAD_OF_PROBE, TEMP_PREFIX, ObjectStore, loose_key
from gitartifacts.packformat import (
    INDEX_MAGIC,
    INDEX_MAGIC_V1,
    PACK_MAGIC,
    PackLocation,
    parse_index,
    serialize_index,
)

THRESHOLD = 1024  # objects below this size go into packs


def oid(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blobs(count: int, size: int, seed: int = 0) -> dict[str, bytes]:
    out = {}
    for i in range(count):
        data = hashlib.sha256(f"{seed}-{i}".encode()).digest() * (size // 32 + 1)
        out[oid(data[:size])] = data[:size]
    return out


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return ObjectStore.local(tmp_path / "cache", pack_threshold=THRESHOLD)


def fresh(store: ObjectStore) -> ObjectStore:
    """A second handle on the same directory: nothing cached in memory."""
    root = store.local_root
    assert root is not None
    return ObjectStore.local(root, pack_threshold=THRESHOLD)


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(data))


# ---- packs ------------------------------------------------------------------------------


def test_small_objects_go_into_one_pack_with_an_index(store: ObjectStore) -> None:
    small = blobs(50, 100)
    with store.writer() as writer:
        for key, data in small.items():
            writer.add_bytes(key, data)
    root = store.local_root
    assert root is not None
    written = files_under(root)
    assert len(written) == 2  # one pack and its index: not one file per object
    pack_file = next(root / n for n in written if n.startswith("packs/") and n.endswith(".pack"))
    idx_file = next(root / n for n in written if n.startswith("packs/") and n.endswith(".idx"))
    pack_id = pack_file.stem
    assert hashlib.sha256(idx_file.read_bytes()).hexdigest() == pack_id  # named by its index
    assert idx_file.stem == pack_id
    assert pack_file.read_bytes().startswith(PACK_MAGIC)
    table = parse_index(idx_file.read_bytes(), pack_id)
    assert set(table) == set(small)
    for key, loc in table.items():
        assert pack_file.read_bytes()[loc.offset : loc.offset + loc.length] == small[key]
    again = fresh(store)
    assert all(again.read(key) == data for key, data in small.items())
    assert again.missing(set(small)) == set()


def test_large_objects_are_loose_read_only_and_checkable_by_hand(store: ObjectStore) -> None:
    data = os.urandom(THRESHOLD * 3)
    key = oid(data)
    with store.writer() as writer:
        writer.add_bytes(key, data)
    root = store.local_root
    assert root is not None
    path = root / loose_key(key)
    assert path == root / "files" / "sha256" / key[:2] / key[2:]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == key  # what `sha256sum` would say
    assert stat.S_IMODE(path.stat().st_mode) & 0o222 == 0
    assert files_under(root) == [loose_key(key)]
    assert fresh(store).read(key) == data


def test_add_file_copies_hashes_and_leaves_no_temp_files(
    store: ObjectStore, tmp_path: Path
) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(5000))
    writer = store.writer()
    key, size = writer.add_file(source)
    assert (key, size) == (oid(source.read_bytes()), 5000)
    root = store.local_root
    assert root is not None
    assert files_under(root) == [loose_key(key)]
    assert stat.S_IMODE((root / loose_key(key)).stat().st_mode) & 0o222 == 0
    assert writer.add_file(source) == (key, 5000)  # again: no error, still one object
    assert files_under(root) == [loose_key(key)]


def test_add_file_with_a_wrong_expected_digest_stores_nothing(
    store: ObjectStore, tmp_path: Path
) -> None:
    source = tmp_path / "f.bin"
    source.write_bytes(b"actual bytes" * 200)
    with pytest.raises(CorruptObjectError):
        store.writer().add_file(source, oid=oid(b"expected bytes"))
    root = store.local_root
    assert root is not None
    assert files_under(root) == []


def test_writer_dedupes_within_and_across_packs(store: ObjectStore) -> None:
    data = b"same bytes"
    key = oid(data)
    with store.writer() as writer:
        writer.add_bytes(key, data)
        writer.add_bytes(key, data)
    assert writer.packed_written == 1
    with store.writer() as second:
        second.add_bytes(key, data)
    assert second.packed_written == 0 and second.packs_written == []
    root = store.local_root
    assert root is not None
    assert len(list((root / "packs").glob("*.pack"))) == 1
    # A fresh handle knows the object is packed already, from the index on disk.
    with fresh(store).writer() as third:
        third.add_bytes(key, data)
    assert third.packs_written == []


def test_an_empty_writer_writes_no_pack(store: ObjectStore) -> None:
    with store.writer() as writer:
        pass
    assert writer.packs_written == []
    root = store.local_root
    assert root is not None
    assert not root.exists() or files_under(root) == []


def test_pack_target_splits_packs(tmp_path: Path) -> None:
    store = ObjectStore.local(tmp_path / "c", pack_threshold=THRESHOLD, pack_target=2000)
    small = blobs(30, 500)
    with store.writer() as writer:
        for key, data in small.items():
            writer.add_bytes(key, data)
    assert len(writer.packs_written) > 1
    again = fresh(store)
    assert all(again.read(key) == data for key, data in small.items())


# ---- index format -----------------------------------------------------------------------


def test_index_round_trip_and_damage_is_refused() -> None:
    rows = [("a" * 64, 8, 3), ("b" * 64, 11, 5)]
    data = serialize_index(rows)
    assert data.startswith(INDEX_MAGIC)
    p = hashlib.sha256(data).hexdigest()  # a pack is named by its index
    assert parse_index(data, p) == {oid: PackLocation(p, o, n) for oid, o, n in rows}
    for offset in (0, 9, len(data) // 2, len(data) - 1):
        damaged = bytearray(data)
        damaged[offset] ^= 0x01
        with pytest.raises(CorruptObjectError, match=f"{p}.idx"):
            parse_index(bytes(damaged), p)
    for cut in (0, 10, len(data) - 1):
        with pytest.raises(CorruptObjectError):
            parse_index(data[:cut], p)


def test_an_index_that_is_not_the_one_its_pack_is_named_after_is_refused() -> None:
    """A well-formed index (valid checksum) put under another pack's name, e.g. a forged
    one with rows shifted, is refused before any of its rows is used."""
    real = serialize_index([("a" * 64, 8, 3)])
    forged = serialize_index([("a" * 64, 8, 3), ("b" * 64, 11, 5)])
    with pytest.raises(CorruptObjectError, match="does not hash to its name"):
        parse_index(forged, hashlib.sha256(real).hexdigest())


def test_format_1_packs_named_by_their_own_bytes_stay_readable(store: ObjectStore) -> None:
    """Stores written before pack ids came from the index: read, verified and installed,
    and a damaged one is still caught by its whole-pack hash."""
    small = blobs(5, 100)
    body = PACK_MAGIC + b"".join(small[k] for k in sorted(small))
    rows, offset = [], len(PACK_MAGIC)
    for key in sorted(small):
        rows.append((key, offset, len(small[key])))
        offset += len(small[key])
    pack_id = hashlib.sha256(body).hexdigest()
    root = store.local_root
    assert root is not None
    (root / "packs").mkdir(parents=True, exist_ok=True)
    (root / "packs" / f"{pack_id}.pack").write_bytes(body)
    (root / "packs" / f"{pack_id}.idx").write_bytes(serialize_index(rows, INDEX_MAGIC_V1))
    again = fresh(store)
    assert all(again.read(key) == data for key, data in small.items())
    assert again.verify() == []
    other = ObjectStore.local(root.parent / "other")
    download = root.parent / "download.pack"
    download.write_bytes(body)
    other.install_pack(pack_id, download, serialize_index(rows, INDEX_MAGIC_V1))
    assert all(other.read(key) == data for key, data in small.items())
    wrong = "0" * 64  # same bytes, but not the name they hash to
    download.write_bytes(body)
    with pytest.raises(CorruptObjectError, match="hash mismatch"):
        other.install_pack(wrong, download, serialize_index(rows, INDEX_MAGIC_V1))


def test_index_with_a_valid_checksum_but_wrong_layout_is_refused() -> None:
    data = serialize_index({"a" * 64: PackLocation("p", 8, 3)}, INDEX_MAGIC_V1)
    body = b"XXXXXX\x00\x01" + data[8:-32]
    with pytest.raises(CorruptObjectError, match="unknown format"):
        parse_index(body + hashlib.sha256(body).digest(), "p")
    body = data[:-32] + b"extra"
    with pytest.raises(CorruptObjectError, match="unknown format"):
        parse_index(body + hashlib.sha256(body).digest(), "p")


def test_a_damaged_index_on_disk_is_reported_not_misread(store: ObjectStore) -> None:
    with store.writer() as writer:
        writer.add_bytes(oid(b"x"), b"x")
    root = store.local_root
    assert root is not None
    idx = next((root / "packs").glob("*.idx"))
    flip_byte(idx, 20)
    # refused, not misread: its objects count as absent (a pull fetches them again)
    with pytest.raises(ObjectNotFoundError, match=idx.name):
        fresh(store).read(oid(b"x"))
    assert fresh(store).missing({oid(b"x")}) == {oid(b"x")}
    problems = fresh(store).verify()
    assert len(problems) == 1 and idx.name in problems[0]


# ---- reading verifies -------------------------------------------------------------------


def test_flipped_byte_in_a_loose_object_is_caught(store: ObjectStore) -> None:
    data = os.urandom(THRESHOLD * 2)
    key = oid(data)
    with store.writer() as writer:
        writer.add_bytes(key, data)
    root = store.local_root
    assert root is not None
    flip_byte(root / loose_key(key), 100)
    problems = fresh(store).verify()
    assert len(problems) == 1 and key in problems[0]
    reader = fresh(store)
    with pytest.raises(CorruptObjectError, match=key):
        reader.read(key)
    # the cache drops what it finds corrupt, so the next pull fetches it again
    assert reader.missing({key}) == {key} and fresh(store).verify() == []


def test_flipped_byte_in_a_pack_is_caught(store: ObjectStore) -> None:
    small = blobs(5, 64)
    with store.writer() as writer:
        for key, data in small.items():
            writer.add_bytes(key, data)
    reader = fresh(store)
    victim = sorted(small)[2]
    loc = reader.packed[victim]
    root = store.local_root
    assert root is not None
    flip_byte(root / "packs" / f"{loc.pack_id}.pack", loc.offset + 10)
    problems = fresh(store).verify()
    assert len(problems) == 1 and loc.pack_id in problems[0] and victim in problems[0]
    with pytest.raises(CorruptObjectError, match=victim):
        fresh(store).read(victim)
    # dropped from the cache; the pack's healthy objects were kept
    assert fresh(store).missing(set(small)) == {victim}
    others = [k for k in small if k != victim]
    assert dict(fresh(store).read_packed(others)) == {k: small[k] for k in others}
    assert fresh(store).verify() == []
    with pytest.raises(CorruptObjectError):  # a remote is only read: it raises, keeps
        remote = ObjectStore(fresh(store).backend)
        remote_loc = remote.packed[others[0]]
        flip_byte(root / "packs" / f"{remote_loc.pack_id}.pack", remote_loc.offset)
        list(remote.read_packed(others))
    assert fresh(store).missing(set(others)) == set()


def test_missing_pack_with_its_index_is_reported(store: ObjectStore) -> None:
    with store.writer() as writer:
        writer.add_bytes(oid(b"x"), b"x")
    root = store.local_root
    assert root is not None
    next((root / "packs").glob("*.pack")).unlink()
    problems = fresh(store).verify()
    assert len(problems) == 1 and "missing" in problems[0]


def test_verify_is_clean_on_a_healthy_store(store: ObjectStore) -> None:
    with store.writer() as writer:
        for key, data in {**blobs(10, 50), **blobs(2, THRESHOLD * 2, seed=1)}.items():
            writer.add_bytes(key, data)
    assert fresh(store).verify() == []


def test_absent_object_is_object_not_found(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFoundError) as info:
        store.read("0" * 64)
    assert isinstance(info.value, FileNotFoundError)
    assert "0" * 64 in str(info.value)


# ---- what is here -----------------------------------------------------------------------


@pytest.mark.parametrize("asked", [3, LIST_INSTEAD_OF_PROBE + 8])  # probe path, listing path
def test_missing_reports_exactly_the_absent_objects(store: ObjectStore, asked: int) -> None:
    packed = blobs(asked, 40, seed=1)
    loose = blobs(asked, THRESHOLD + 1, seed=2)
    absent = set(blobs(asked, 40, seed=3)) | set(blobs(asked, THRESHOLD + 1, seed=4))
    with store.writer() as writer:
        for key, data in {**packed, **loose}.items():
            writer.add_bytes(key, data)
    reader = fresh(store)
    assert reader.missing(set(packed) | set(loose) | absent) == absent
    assert reader.missing(set(loose)) == set()
    assert reader.missing(absent) == absent
    assert reader.all_oids() == set(packed) | set(loose)
    assert reader.has(next(iter(loose))) and not reader.has(next(iter(absent)))


def test_a_pack_written_by_another_handle_is_seen_after_refresh(store: ObjectStore) -> None:
    reader = fresh(store)
    assert reader.missing({oid(b"late")}) == {oid(b"late")}
    with store.writer() as writer:
        writer.add_bytes(oid(b"late"), b"late")
    reader.refresh()
    assert reader.read(oid(b"late")) == b"late"


# ---- housekeeping -----------------------------------------------------------------------


def test_stale_temp_files_are_removed_fresh_ones_kept(store: ObjectStore) -> None:
    root = store.local_root
    assert root is not None
    (root / "packs").mkdir(parents=True)
    old = root / "packs" / f"{TEMP_PREFIX}1-dead"
    new = root / "packs" / f"{TEMP_PREFIX}2-live"
    old.write_bytes(b"partial")
    new.write_bytes(b"partial")
    an_hour_ago = time.time() - 7200
    os.utime(old, (an_hour_ago, an_hour_ago))
    assert store.remove_stale_temp() == 1
    assert not old.exists() and new.exists()


def test_temp_files_are_not_mistaken_for_objects(store: ObjectStore) -> None:
    data = os.urandom(THRESHOLD * 2)
    with store.writer() as writer:
        writer.add_bytes(oid(data), data)
    root = store.local_root
    assert root is not None
    (root / "files" / "sha256" / oid(data)[:2] / f"{TEMP_PREFIX}9-x").write_bytes(b"junk")
    assert fresh(store).loose_oids() == {oid(data)}
    assert fresh(store).verify() == []


def test_reflink_clones_or_leaves_nothing_behind(tmp_path: Path) -> None:
    from gitartifacts.backends import reflink

    source = tmp_path / "source"
    source.write_bytes(b"block" * 1000)
    clone = tmp_path / "clone"
    if reflink(source, clone):  # XFS, btrfs: same bytes, no copy written
        assert clone.read_bytes() == source.read_bytes()
    else:  # ext4, tmpfs: the caller falls back to a copy; no stray file is left
        assert not clone.exists()
    large = tmp_path / "large"
    large.write_bytes(os.urandom(3 << 20))
    store = ObjectStore.local(tmp_path / "cache")
    with store.writer() as writer:
        oid, size = writer.add_file(large)  # reflink or copy: either way verified and whole
    assert size == 3 << 20 and store.read(oid) == large.read_bytes()


@pytest.mark.parametrize("rewrite", ["gc repack", "drop a corrupt object"])
def test_a_cache_fsyncs_a_pack_that_replaces_one_it_deletes(
    store: ObjectStore, rewrite: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Caches are not fsynced (docs/format.md §6.4), except where the old copy is deleted
    next: a crash after a repack must not lose the only copy of a live object."""
    from gitartifacts import storeops

    small = blobs(6, 100)
    with store.writer() as writer:
        for key, data in small.items():
            writer.add_bytes(key, data)
    (old,) = store.pack_sizes()
    keep, lose = sorted(small)[:3], sorted(small)[3:]
    events: list[tuple[str, str]] = []
    real_fsync, real_unlink = os.fsync, os.unlink

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def unlink(path: Any, *args: Any, **kwargs: Any) -> None:
        events.append(("delete", str(path)))
        real_unlink(path, *args, **kwargs)

    root = store.local_root
    assert root is not None
    if rewrite == "gc repack":
        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "unlink", unlink)
        found = storeops.survey(store)
        storeops.sweep(store, found, storeops.SweepPlan(repack={old: keep}))
    else:
        flip_byte(root / "packs" / f"{old}.pack", store.packed[lose[0]].offset)
        monkeypatch.setattr(os, "fsync", fsync)
        monkeypatch.setattr(os, "unlink", unlink)
        store.drop(lose[0])
    deleted = next(i for i, (kind, path) in enumerate(events)
                   if kind == "delete" and path.endswith(f"{old}.pack"))
    synced = {path for kind, path in events[:deleted] if kind == "fsync"}
    assert any("/packs/" in path for path in synced)  # the new pack, before the old goes
    again = fresh(store)
    assert {k: again.read(k) for k in keep} == {k: small[k] for k in keep}
