"""Content-addressed object store — loose files plus immutable packs — over local disk or fsspec.

The same class serves the local cache and every remote. Layout (see docs/format.md):

    files/sha256/<2 hex>/<62 hex>    loose object (large files), verifiable with sha256sum
    chunks/sha256/<2 hex>/<62 hex>   chunk list of a file stored as chunks (see chunking.py)
    packs/<pack-id>.pack             small objects back to back after an 8-byte magic
    packs/<pack-id>.idx              sorted table oid -> offset, length; written after its pack

A pack's id is the sha256 of its index (format 2; format 1, still read, used the sha256 of
the whole pack file). The index fixes every byte of the pack (objects back to back, each
hashing to its oid), so the name still names the bytes, without a hash pass over them.
Packs never change once written, and an index only exists once its pack is complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any, NoReturn

from gitartifacts import testhooks
from gitartifacts.backends import (
    FsspecBackend,
    LocalBackend,
    copy_hashing,
    reflink,
    start_writeback,
)
from gitartifacts.errors import CorruptObjectError, ObjectNotFoundError
from gitartifacts.fsutil import TEMP_PREFIX, temp_name
from gitartifacts.hashing import hash_file
from gitartifacts.packformat import (
    PACK_MAGIC,
    PackLocation,
    check_index,
    check_pack_layout,
    index_rows,
    is_pack_id,
    names_by_pack_hash,
    pack_id_of,
    serialize_index,
    verify_pack_stream,
)
from gitartifacts.packtable import PackTable

ProgressHook = Callable[[int], None]
DEFAULT_PACK_THRESHOLD = 1 << 20
DEFAULT_PACK_TARGET = 64 << 20
# Listing a loose prefix directory beats probing each object once this many are asked about.
LIST_INSTEAD_OF_PROBE = 32
HASH_BATCH = 4 << 20  # bytes a BackgroundDigest queues before handing them to its thread
HASH_IN_FLIGHT = 2  # batches a BackgroundDigest lets its thread fall behind by, at most
READ_GROUP = 8 << 20  # bytes of packed objects a read_packed_parallel thread reads at a time
SPILL_BYTES = 8 << 20  # a local writer's pending pack bytes kept in memory at most


class BackgroundDigest:
    """A sha256 computed on a helper thread, fed in order.

    hashlib releases the GIL while it hashes more than 2 KiB, so the caller's own hashing
    (chunk oids, per-object checks) or I/O runs beside it on another core: two hash passes
    over the same bytes cost about one in wall time. Buffers are queued by reference and
    must not change until `hexdigest` returns.
    """

    def __init__(self, data: bytes = b"", batch: int = HASH_BATCH) -> None:
        self._hash = hashlib.sha256(data)
        self._batch = batch
        self._pending: list[Any] = []
        self._pending_bytes = 0
        self._pool: Any = None
        self._futures: list[Any] = []

    def update(self, data: Any) -> None:
        """Queue `data` (bytes, or a memoryview that stays valid) to be hashed next."""
        self._pending.append(data)
        self._pending_bytes += len(data)
        if self._pending_bytes >= self._batch:
            self._submit()

    def _submit(self) -> None:
        items, self._pending, self._pending_bytes = self._pending, [], 0
        if not items:
            return
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=1)  # one worker: updates stay in order
        update = self._hash.update
        self._futures = [f for f in self._futures if not f.done()]
        while len(self._futures) >= HASH_IN_FLIGHT:  # bounded memory: wait for the thread
            self._futures.pop(0).result()
        self._futures.append(self._pool.submit(lambda: [update(item) for item in items]))

    def wait(self) -> None:
        """Return once everything queued so far is hashed: its buffers may then change."""
        if self._pool is None:
            self._finish()
            return
        self._submit()
        for future in self._futures:
            future.result()
        self._futures = []

    def _finish(self) -> Any:
        if self._pool is not None:
            self.wait()
            self._pool.shutdown(wait=True)
            self._pool = None
        for item in self._pending:
            self._hash.update(item)
        self._pending, self._pending_bytes = [], 0
        return self._hash

    def hexdigest(self) -> str:
        """The digest of everything queued so far (waits for the helper thread)."""
        return self._finish().hexdigest()

    def digest(self) -> bytes:
        return self._finish().digest()

    def cancel(self) -> None:
        """Stop hashing (the digest is no longer wanted): queued work is dropped."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self._pending, self._futures = [], []


def loose_key(oid: str) -> str:
    """Where a loose object lives, relative to the store root."""
    return f"files/sha256/{oid[:2]}/{oid[2:]}"


CHUNK_LISTS = "chunks/sha256"


def chunk_list_key(oid: str) -> str:
    """Where the chunk list of a file stored as chunks lives (keyed by the file's oid)."""
    return f"{CHUNK_LISTS}/{oid[:2]}/{oid[2:]}"


# ObjectStore is the one class the cache and every remote share (design §4), ~440 lines:
# loose objects, chunk lists, verified reads, repair, adopting downloads. Its index table is
# PackTable (packtable.py), the formats are in packformat.py, the backends in backends.py.
class ObjectStore(PackTable):
    """A content-addressed store of sha256-named objects; the cache and remotes alike."""

    def __init__(
        self,
        backend: LocalBackend | FsspecBackend,
        *,
        index_cache: Path | None = None,
        pack_threshold: int = DEFAULT_PACK_THRESHOLD,
        pack_target: int = DEFAULT_PACK_TARGET,
        drop_corrupt: bool = False,
        chunk_threshold: int | None = None,
        chunk_avg: int = 64 << 10,
    ) -> None:
        super().__init__(backend, index_cache=index_cache, drop_corrupt=drop_corrupt)
        # Files at least this large are written as content-defined chunks (None: never).
        self.chunk_threshold = chunk_threshold
        self.chunk_avg = chunk_avg
        self.pack_threshold = pack_threshold
        self.pack_target = pack_target

    @classmethod
    def local(cls, root: Path, **options: Any) -> ObjectStore:
        """A local cache (drops corrupt objects on read; pass drop_corrupt=False for a
        local-directory remote)."""
        options.setdefault("drop_corrupt", True)
        return cls(LocalBackend(root, durable=not options["drop_corrupt"]), **options)

    def install_pack(self, pack_id: str, pack_file: Path, index: bytes) -> None:
        """Adopt a downloaded pack (local stores, i.e. a cache): check the index's layout
        against the pack and hash every object in it (and a format-1 pack whole, in the
        same read), then install the pack, then its index. Nothing is installed unless all
        of it verifies."""
        root = self.local_root
        assert root is not None, "packs are installed into local stores only"
        check_index(index, pack_id)
        with open(pack_file, "rb") as handle:
            rows = check_pack_layout(index, pack_id, os.fstat(handle.fileno()).st_size)
            bad, whole = verify_pack_stream(handle, pack_id, rows, names_by_pack_hash(index))
            # A cache (not durable: see LocalBackend) does not wait for the disk here.
            assert isinstance(self.backend, LocalBackend)
            self.backend.sync(handle.fileno())
        if not whole:
            raise CorruptObjectError(f"downloaded pack {pack_id} is corrupt (hash mismatch)")
        if bad:
            raise CorruptObjectError(
                f"object {bad[0]} is corrupt (pack {pack_id}: {len(bad)} of its index rows "
                "do not match the pack's bytes)")
        (root / "packs").mkdir(parents=True, exist_ok=True)
        testhooks.hit()
        os.replace(pack_file, root / "packs" / f"{pack_id}.pack")
        self.backend.write(f"packs/{pack_id}.idx", index)
        self._register_pack(pack_id, index)

    def install_loose(self, oid: str, file: Path) -> None:
        """Adopt a downloaded loose object (local stores) after checking its bytes."""
        root = self.local_root
        assert root is not None, "loose files are installed into local stores only"
        digest, _size = hash_file(file)
        if digest != oid:
            raise CorruptObjectError(f"object {oid} is corrupt (downloaded bytes hash to {digest})")
        final = root / loose_key(oid)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(file, 0o444)
        testhooks.hit()
        os.replace(file, final)

    def has(self, oid: str) -> bool:
        return (oid in self.packed_oids or self.backend.exists(loose_key(oid))
                or self.backend.exists(chunk_list_key(oid)))

    def missing(self, oids: Collection[str]) -> set[str]:
        """Which of `oids` the store lacks: packed lookups, then probes or prefix listings of
        loose objects, then of chunk lists (a file stored as chunks counts as present: its
        list is written only after its chunks)."""
        rest = set(oids) - self.packed_oids
        if not rest:
            return set()
        rest = self._absent_under("files/sha256", rest)
        return self._absent_under(CHUNK_LISTS, rest) if rest else rest

    def _absent_under(self, top: str, rest: set[str]) -> set[str]:
        """Which of `rest` have no file `top/<2 hex>/<62 hex>`: probes, or prefix listings."""
        if len(rest) < LIST_INSTEAD_OF_PROBE:
            return {oid for oid in rest if not self.backend.exists(f"{top}/{oid[:2]}/{oid[2:]}")}
        by_prefix: dict[str, set[str]] = {}
        for oid in rest:
            by_prefix.setdefault(oid[:2], set()).add(oid[2:])
        absent: set[str] = set()
        # One listing says which prefix directories exist at all; only those are listed
        # (2,000 oids span all 256 prefixes: without this a fresh S3 remote costs 512 GETs).
        prefixes = set(self.backend.list(top))
        for prefix, tails in by_prefix.items():
            if prefix not in prefixes:
                absent.update(prefix + tail for tail in tails)
                continue
            present = set(self.backend.list(f"{top}/{prefix}"))
            absent.update(prefix + tail for tail in tails - present)
        return absent

    def loose_oids(self) -> set[str]:
        out: set[str] = set()
        for prefix in self.backend.list("files/sha256"):
            if len(prefix) == 2:
                out.update(prefix + tail for tail in self.backend.list(f"files/sha256/{prefix}"))
        return out

    def all_oids(self) -> set[str]:
        return set(self.packed) | self.loose_oids()

    # -- reading ------------------------------------------------------------------------

    def loose_path(self, oid: str) -> Path | None:
        """The local file of a loose object (local stores only), for linking."""
        if isinstance(self.backend, LocalBackend):
            path = self.backend.path(loose_key(oid))
            if path.exists():
                return path
        return None

    def read(self, oid: str) -> bytes:
        """An object's bytes, verified against its name (a corrupt copy in the cache is
        dropped, so the next pull fetches it again)."""
        location = self.packed.get(oid)
        if location is not None:
            try:
                data = self.backend.read_range(
                    f"packs/{location.pack_id}.pack", location.offset,
                    location.offset + location.length,
                )
            except ObjectNotFoundError:
                self._lost_pack(location.pack_id)
                raise
            where = f"pack {location.pack_id}"
        else:
            try:
                data = self.backend.read(loose_key(oid))
            except ObjectNotFoundError:
                refused = "".join(f" ({r})" for r in sorted(self.refused.values())[:1])
                raise ObjectNotFoundError(
                    f"object {oid} is not in {self.describe()}{refused}"
                ) from None
            where = loose_key(oid)
        if hashlib.sha256(data).hexdigest() != oid:
            self._corrupt(oid, f"{self.describe()}: {where}")
        return data

    def read_packed(
        self, oids: Iterable[str], failed: dict[str, str] | None = None
    ) -> Iterator[tuple[str, bytes]]:
        """Packed objects, verified, one pass per pack in offset order.

        A corrupt object raises CorruptObjectError, or with `failed` is recorded there
        (oid -> reason) and skipped. Either way the cache drops it (keeping the pack's
        healthy objects)."""
        by_pack: dict[str, list[tuple[int, int, str]]] = {}
        packed = self.packed
        for oid in oids:
            loc = packed[oid]
            by_pack.setdefault(loc.pack_id, []).append((loc.offset, loc.length, oid))
        for pack_id, items in by_pack.items():
            items.sort()
            key = f"packs/{pack_id}.pack"
            where = f"{self.describe()}: pack {pack_id}"
            bad: list[str] = []
            if isinstance(self.backend, LocalBackend):
                try:
                    fd = os.open(self.backend.path(key), os.O_RDONLY)
                except FileNotFoundError:
                    self._lost_pack(pack_id)
                    raise ObjectNotFoundError(
                        f"pack {pack_id}.pack is missing from {self.describe()}",
                        hint="run `gart pull` again to download its objects",
                    ) from None
                try:
                    size = os.fstat(fd).st_size
                    for offset, length, oid in items:
                        data = os.pread(fd, length, offset) if offset + length <= size else b""
                        if hashlib.sha256(data).hexdigest() != oid:
                            bad.append(oid)
                            if failed is None:
                                break
                            continue
                        yield oid, data
                finally:
                    os.close(fd)
            else:
                for offset, length, oid in items:
                    data = self.backend.read_range(key, offset, offset + length)
                    if hashlib.sha256(data).hexdigest() != oid:
                        bad.append(oid)
                        if failed is None:
                            break
                        continue
                    yield oid, data
            if bad:
                if failed is None:
                    self._corrupt(bad[0], where)
                for oid in bad:
                    failed[oid] = self._corrupt_message(oid, where)
                self._drop_packed(pack_id)

    # ~85 lines: the thread pool's feeding, ordering and failure bookkeeping belong together.
    def read_packed_parallel(
        self, oids: Iterable[str], failed: dict[str, str] | None = None, jobs: int = 2,
    ) -> Iterator[tuple[str, bytes]]:
        """`read_packed` with the reads and hashes on `jobs` threads (local stores): objects
        go in groups of about READ_GROUP bytes, in pack order, and the caller consumes one
        group while the next ones are read and verified (hashlib releases the GIL). Same
        results and the same handling of corrupt objects: every object is verified before
        it is yielded, and a pack holding a corrupt one is dropped from the cache (after
        the threads are done with it)."""
        if jobs <= 1 or not isinstance(self.backend, LocalBackend):
            yield from self.read_packed(oids, failed)
            return
        from collections import deque
        from concurrent.futures import Future, ThreadPoolExecutor

        backend = self.backend
        packed = self.packed
        rows = sorted((packed[oid].pack_id, packed[oid].offset, packed[oid].length, oid)
                      for oid in oids)
        groups: list[list[tuple[str, int, int, str]]] = []
        size = 0
        for row in rows:
            if not groups or groups[-1][0][0] != row[0] or size >= READ_GROUP:
                groups.append([])
                size = 0
            groups[-1].append(row)
            size += row[2]

        def read(group: list[tuple[str, int, int, str]]) -> list[tuple[str, bytes | None]] | None:
            """(oid, verified bytes, or None if corrupt) per row; None if the pack is gone."""
            try:
                fd = os.open(backend.path(f"packs/{group[0][0]}.pack"), os.O_RDONLY)
            except FileNotFoundError:
                return None
            try:
                out: list[tuple[str, bytes | None]] = []
                for _pack, offset, length, oid in group:
                    data = os.pread(fd, length, offset)
                    ok = len(data) == length and hashlib.sha256(data).hexdigest() == oid
                    out.append((oid, data if ok else None))
                return out
            finally:
                os.close(fd)

        bad: dict[str, list[str]] = {}  # pack id -> its corrupt oids
        pending: deque[tuple[str, Future[Any]]] = deque()
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            try:
                queue = iter(groups)
                while True:
                    while len(pending) < jobs + 1:
                        group = next(queue, None)
                        if group is None:
                            break
                        pending.append((group[0][0], pool.submit(read, group)))
                    if not pending:
                        break
                    pack_id, future = pending.popleft()
                    result = future.result()
                    if result is None:
                        self._lost_pack(pack_id)
                        raise ObjectNotFoundError(
                            f"pack {pack_id}.pack is missing from {self.describe()}",
                            hint="run `gart pull` again to download its objects",
                        )
                    for oid, data in result:
                        if data is None:
                            bad.setdefault(pack_id, []).append(oid)
                            if failed is None:
                                break
                            continue
                        yield oid, data
                    if bad and failed is None:
                        break
            finally:
                for _pack, future in pending:
                    future.cancel()
        for pack_id, corrupt in bad.items():
            where = f"{self.describe()}: pack {pack_id}"
            if failed is None:
                self._corrupt(corrupt[0], where)
            for oid in corrupt:
                failed[oid] = self._corrupt_message(oid, where)
            self._drop_packed(pack_id)

    def _corrupt_message(self, oid: str, where: str) -> str:
        dropped = " (removed from the cache)" if self.drop_corrupt else ""
        return f"object {oid} is corrupt ({where}){dropped}"

    def _corrupt(self, oid: str, where: str) -> NoReturn:
        """Raise CorruptObjectError for `oid`, dropping the cache's copy first."""
        message = self._corrupt_message(oid, where)
        if not self.drop_corrupt:
            raise CorruptObjectError(message)
        self.drop(oid)
        raise CorruptObjectError(
            message, hint="run `gart pull` again to download it, or `gart add` its file")

    def drop(self, oid: str) -> None:
        """Remove a corrupt object from this (local cache) store so that it counts as absent
        and the next pull fetches it again. A packed object takes its pack with it, after
        the pack's healthy objects are written into a new pack."""
        if not self.drop_corrupt:
            return  # a remote is never changed by a reader
        location = self.packed.get(oid)
        if location is not None:
            self._drop_packed(location.pack_id)
        self.backend.delete(loose_key(oid))
        self.backend.delete(chunk_list_key(oid))

    def _lost_pack(self, pack_id: str) -> None:
        """A pack vanished under its index: stop using the index (cache only)."""
        if self.drop_corrupt:
            self._forget_pack(pack_id)
            self.backend.delete(f"packs/{pack_id}.idx")

    def _drop_packed(self, pack_id: str) -> None:
        """Replace a damaged pack by one holding its objects that still verify.

        Order keeps every healthy byte reachable at every instant: the new pack and its
        index first, then the old index, then the old pack."""
        if not self.drop_corrupt:
            return
        index = self._indexes.get(pack_id)
        try:
            pack = self.backend.read(f"packs/{pack_id}.pack")
        except ObjectNotFoundError:
            pack = b""
        good: list[tuple[int, str, bytes]] = []
        rows = index_rows(index, pack_id) if index is not None else {}
        for oid, loc in rows.items():
            data = pack[loc.offset : loc.offset + loc.length]
            if len(data) == loc.length and hashlib.sha256(data).hexdigest() == oid:
                good.append((loc.offset, oid, data))
        if index is not None and len(good) == len(rows):
            return  # nothing to drop: the pack is healthy
        self._forget_pack(pack_id)
        if good:
            with self.writer(durable=True) as writer:  # the old pack is deleted next
                for _offset, oid, data in sorted(good):
                    writer.add_bytes(oid, data)
        self.backend.delete(f"packs/{pack_id}.idx")
        self.backend.delete(f"packs/{pack_id}.pack")

    # -- writing ------------------------------------------------------------------------

    def writer(
        self, auto_flush: bool = True, pack_all: bool = False, durable: bool = False
    ) -> ObjectWriter:
        """A writer of new objects; `durable` fsyncs its packs even in a cache (for packs
        that replace others about to be deleted: a repack must not lose the only copy)."""
        return ObjectWriter(self, auto_flush=auto_flush, pack_all=pack_all, durable=durable)

    # -- maintenance --------------------------------------------------------------------

    def verify(
        self, progress: ProgressHook | None = None, corrupt: list[str] | None = None
    ) -> list[str]:
        """Re-hash every object and check every index row against its pack; returns one
        problem line per damaged index, pack or object (nothing is changed). The oids of
        objects whose bytes are wrong are also added to `corrupt`, if given."""
        corrupt = [] if corrupt is None else corrupt
        problems: list[str] = []
        self._packed = None
        self._pack_ids = set()
        self._indexes = {}
        self._oids = set()
        self._refreshed = False
        listing = self.backend.list_sizes("packs")
        for name in sorted(listing):
            if not name.endswith(".idx") or not is_pack_id(name[:-4]):
                continue
            pack_id = name[:-4]
            try:
                index = self.backend.read(f"packs/{pack_id}.idx")
                check_index(index, pack_id)
            except (CorruptObjectError, ObjectNotFoundError) as exc:
                problems.append(exc.message)
                continue
            pack_size = listing.get(f"{pack_id}.pack")
            if pack_size is None:
                problems.append(f"pack {pack_id}.pack is missing but its index exists")
                continue
            try:
                rows = check_pack_layout(index, pack_id, pack_size)
                with self._open(f"packs/{pack_id}.pack") as handle:
                    bad, whole = verify_pack_stream(handle, pack_id, rows,
                                                    names_by_pack_hash(index))
            except CorruptObjectError as exc:
                problems.append(exc.message)
                continue
            except (OSError, ObjectNotFoundError):
                problems.append(f"pack {pack_id}.pack is missing but its index exists")
                continue
            problems.extend(f"object {oid} is corrupt (pack {pack_id}.pack)" for oid in bad)
            corrupt.extend(bad)
            if not whole and not bad:
                problems.append(f"pack {pack_id}.pack is damaged")
        try:
            self.refresh()
        except CorruptObjectError as exc:  # pragma: no cover - refresh refuses, not raises
            problems.append(exc.message)
        for oid in sorted(self.loose_oids()):
            try:
                check_bytes(oid, self.backend.read(loose_key(oid)), loose_key(oid))
            except CorruptObjectError as exc:
                problems.append(str(exc))
                corrupt.append(oid)
            if progress:
                progress(1)
        return problems

    def _open(self, key: str) -> Any:
        if isinstance(self.backend, LocalBackend):
            return open(self.backend.path(key), "rb")
        return self.backend.fs.open(self.backend.path(key), "rb")

    def remove_stale_temp(self, older_than: float = 3600.0) -> int:
        """Delete temp files left by killed writers (local stores); returns how many."""
        root = self.local_root
        if root is None or not root.exists():
            return 0
        removed = 0
        cutoff = time.time() - older_than
        for directory, _dirs, files in os.walk(root):
            for name in files:
                if name.startswith(TEMP_PREFIX):
                    path = os.path.join(directory, name)
                    try:
                        if os.stat(path).st_mtime < cutoff:
                            os.unlink(path)
                            removed += 1
                    except FileNotFoundError:
                        pass
        return removed


def check_bytes(oid: str, data: bytes, where: str) -> None:
    """Raise CorruptObjectError unless `data` hashes to `oid`."""
    if hashlib.sha256(data).hexdigest() != oid:
        raise CorruptObjectError(f"object {oid} is corrupt ({where})")


class ObjectWriter:
    """Adds objects to a store: small ones into a new pack, large ones as loose files.

    Use as a context manager; the pack (then its index) is written on exit or when it
    reaches the target size. Objects already in the store are skipped by callers via
    `store.missing`, and duplicates within one writer are dropped here.

    In a local store a growing pack is written out as it fills, to a temp file in packs/
    (every SPILL_BYTES): memory stays bounded by that, not by the pack, and the disk
    starts on the bytes early. On flush the index is made, which gives the pack its id; the
    temp file is fsynced and renamed to that id, then the index is written. The temp file is
    removed if the writer fails or is discarded.
    """

    def __init__(
        self, store: ObjectStore, auto_flush: bool = True, pack_all: bool = False,
        durable: bool = False,
    ) -> None:
        self.store = store
        self.durable = durable
        self.auto_flush = auto_flush
        self.pack_all = pack_all  # chunks are always packed, whatever pack_threshold says
        self._chunks: list[bytes] = [PACK_MAGIC]
        self._entries: dict[str, PackLocation] = {}
        self._offset = len(PACK_MAGIC)
        self._unspilled = 0  # bytes in _chunks not yet written to the temp pack
        self._tmp: Path | None = None  # the pack being written (local stores)
        self._tmp_file: Any = None
        self._written: str | None = None  # pack id already under its final name (retries)
        self.packs_written: list[str] = []
        self.loose_written = 0
        self.packed_written = 0

    @property
    def pending_bytes(self) -> int:
        """Bytes added but not yet written out in a pack."""
        return self._offset - len(PACK_MAGIC)

    def __enter__(self) -> ObjectWriter:
        return self

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            self.flush()
        else:
            self.discard()

    def add_bytes(self, oid: str, data: bytes | memoryview) -> None:
        """Store an object whose bytes are in memory (the caller has verified `oid`). A
        packed object is kept by reference until its pack is written: `data` (bytes, or a
        memoryview of a buffer nobody changes) is not copied."""
        if oid in self._entries or oid in self.store.packed_oids:
            return
        if len(data) >= self.store.pack_threshold and not self.pack_all:
            self.store.backend.write(loose_key(oid), data)
            self._make_read_only(oid)
            self.loose_written += 1
            return
        self._entries[oid] = PackLocation("", self._offset, len(data))
        self._chunks.append(data)
        self._offset += len(data)
        self._unspilled += len(data)
        if self.auto_flush and self._offset >= self.store.pack_target:
            self.flush()
        elif self._unspilled >= SPILL_BYTES and isinstance(self.store.backend, LocalBackend):
            self._spill()

    def _spill(self) -> None:
        """Append the pending bytes to the temp pack file (created on first use)."""
        if self._tmp_file is None:
            backend = self.store.backend
            assert isinstance(backend, LocalBackend)
            (backend.root / "packs").mkdir(parents=True, exist_ok=True)
            self._tmp = Path(temp_name(str(backend.root / "packs")))
            self._tmp_file = open(self._tmp, "xb")  # noqa: SIM115 - closed by flush/discard
        self._tmp_file.writelines(self._chunks)
        self._tmp_file.flush()
        start_writeback(self._tmp_file.fileno())
        self._chunks = []
        self._unspilled = 0

    def release(self) -> bool:
        """Write out the pending bytes and finish hashing them, so that the caller may reuse
        the buffers it handed to `add_bytes`; False where the writer must keep them (a
        remote store's pack is sent whole on flush)."""
        if not isinstance(self.store.backend, LocalBackend):
            return not self._unspilled
        if self._unspilled:
            self._spill()
        return True

    def add_file(self, source: Path, oid: str | None = None) -> tuple[str, int]:
        """Copy a local file in as a loose object, hashing while copying; returns (oid, size).

        With `oid` None the digest is computed on the way; the copy lands under its
        final name only after the bytes are known to hash to it.
        """
        backend = self.store.backend
        if not isinstance(backend, LocalBackend):
            digest, size = hash_file(source)
            if oid is not None and digest != oid:
                raise CorruptObjectError(f"{source} changed while being stored")
            backend.put_file(source, loose_key(digest))
            self.loose_written += 1
            return digest, size
        tmp_dir = backend.root / "files" / "sha256"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(temp_name(str(tmp_dir)))
        try:
            if reflink(source, tmp):  # blocks shared: hash the clone, nothing is written
                hexdigest, size = hash_file(tmp)
            else:
                hexdigest, size = copy_hashing(source, tmp, backend.sync)
            if oid is not None and hexdigest != oid:
                raise CorruptObjectError(f"{source} changed while being stored")
            final = backend.path(loose_key(hexdigest))
            if final.exists():
                tmp.unlink()
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(tmp, 0o444)
                testhooks.hit()
                os.replace(tmp, final)
                self.loose_written += 1
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return hexdigest, size

    @property
    def objects_written(self) -> int:
        return self.loose_written + self.packed_written

    def _make_read_only(self, oid: str) -> None:
        root = self.store.local_root
        if root is not None:
            path = root / loose_key(oid)
            mode = os.stat(path).st_mode
            os.chmod(path, mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))

    def discard(self) -> None:
        """Forget the pending pack (after its upload failed for good)."""
        self._close_tmp(unlink=True)
        self._written = None
        self._chunks = [PACK_MAGIC]
        self._entries = {}
        self._offset = len(PACK_MAGIC)
        self._unspilled = 0

    def _close_tmp(self, unlink: bool) -> None:
        if self._tmp_file is not None:
            with contextlib.suppress(OSError):
                self._tmp_file.close()
            self._tmp_file = None
        if self._tmp is not None and unlink:
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)
        self._tmp = None

    def _write_pack(self, pack_id: str) -> None:
        """Write the pending pack under its id: the spilled temp file completed, fsynced
        and renamed (local stores), or all of it at once."""
        if self._written == pack_id:
            return  # a retried flush: the pack is in place, its index was not
        backend = self.store.backend
        key = f"packs/{pack_id}.pack"
        if self._tmp_file is None:
            if isinstance(backend, LocalBackend):
                backend.write(key, self._chunks, self.durable)
            else:  # an object store's put is atomic and durable
                backend.write(key, b"".join(self._chunks))
            self._written = pack_id
            return
        assert isinstance(backend, LocalBackend) and self._tmp is not None
        self._spill()
        self._tmp_file.flush()
        backend.sync(self._tmp_file.fileno(), self.durable)
        testhooks.hit()  # crash suite: killed after the bytes, before the rename
        os.replace(self._tmp, backend.path(key))
        self._written = pack_id
        self._close_tmp(unlink=False)

    def flush(self) -> str | None:
        """Write the pending pack, then its index; returns the pack id (None if empty)."""
        if not self._entries:
            return None
        index = serialize_index(self._entries)
        pack_id = pack_id_of(index)
        entries = {
            oid: PackLocation(pack_id, loc.offset, loc.length) for oid, loc in self._entries.items()
        }
        backend = self.store.backend
        self._write_pack(pack_id)
        backend.write(f"packs/{pack_id}.idx", index, self.durable)
        if self.store.index_cache is not None:
            self.store.index_cache.mkdir(parents=True, exist_ok=True)
            tmp = Path(temp_name(str(self.store.index_cache)))
            tmp.write_bytes(index)
            os.replace(tmp, self.store.index_cache / f"{pack_id}.idx")
        self.store._register_pack(pack_id, index)
        self.packs_written.append(pack_id)
        self.packed_written += len(entries)
        self.discard()
        return pack_id
