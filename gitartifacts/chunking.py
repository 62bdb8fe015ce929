"""Large files as content-defined chunks: cut with FastCDC, stored in packs, reassembled.

A file at least `store.chunk_threshold` bytes long is cut by FastCDC into chunks of about
`store.chunk_avg` bytes. Each chunk is an ordinary object (sha256-named) kept in a pack;
the file's *chunk list* lives at `chunks/sha256/<2 hex>/<62 hex>`, keyed by the oid of the
whole file, which stays the sha256 of the file's bytes (docs/format.md §6.6):

    offset 0    8 bytes   magic "GARTCL\\x00\\x01"
    offset 8    8 bytes   uint64 file size
    offset 16   4 bytes   uint32 count
    offset 20   36·count  rows in file order: 32-byte raw sha256 of the chunk, uint32 length
    then        32 bytes  sha256 of every preceding byte

An edit then changes only the chunks around it, so a new version stores and sends about
what changed. A list is written only after all its chunks, so its presence proves them.
Readers trust nothing in it: a file is reassembled into a temporary file and placed only
if the whole reassembled file hashes to its oid.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from gitartifacts.backends import LocalBackend
from gitartifacts.errors import CorruptObjectError, ObjectNotFoundError
from gitartifacts.objects import BackgroundDigest, ObjectStore, chunk_list_key

CHUNK_LIST_MAGIC = b"GARTCL\x00\x01"
_HEADER = struct.Struct(">8sQI")
_ROW = struct.Struct(">32sI")
MIN_THRESHOLD = 1 << 20  # cache.chunk_threshold's floor: smaller files are never chunked
MAX_CHUNK = 16 << 20  # FastCDC's own limit on max_size: no row may claim more
WINDOW = 16 << 20  # bytes of a file read at a time when it is cut (at least 2 chunks' max)


@dataclass(frozen=True)
class ChunkList:
    """How a file is cut: (chunk oid, length) in file order, and the file's size."""

    oid: str
    size: int
    chunks: tuple[tuple[str, int], ...]

    def serialize(self) -> bytes:
        body = bytearray(_HEADER.pack(CHUNK_LIST_MAGIC, self.size, len(self.chunks)))
        for oid, length in self.chunks:
            body += _ROW.pack(bytes.fromhex(oid), length)
        body += hashlib.sha256(body).digest()
        return bytes(body)

    @classmethod
    def parse(cls, data: bytes, oid: str) -> ChunkList:
        """Read a chunk list, refusing a damaged or inconsistent one whole."""
        where = f"chunk list of {oid}"
        if len(data) < _HEADER.size + 32 or hashlib.sha256(data[:-32]).digest() != data[-32:]:
            raise CorruptObjectError(f"{where} is damaged (checksum mismatch)")
        magic, size, count = _HEADER.unpack_from(data)
        if magic != CHUNK_LIST_MAGIC or len(data) != _HEADER.size + count * _ROW.size + 32:
            raise CorruptObjectError(f"{where} has an unknown format")
        chunks = tuple(
            (raw.hex(), length) for raw, length in _ROW.iter_unpack(data[_HEADER.size : -32])
        )
        if sum(length for _, length in chunks) != size or any(
                not 0 < length <= MAX_CHUNK for _, length in chunks):
            raise CorruptObjectError(f"{where}: its chunk lengths do not add up to {size} bytes")
        return cls(oid, size, chunks)

    @property
    def chunk_oids(self) -> list[str]:
        """Distinct chunk oids, in first-use order."""
        return list(dict.fromkeys(oid for oid, _ in self.chunks))


def _cdc(avg: int):  # noqa: ANN202 - pyfastcdc's FastCDC (imported lazily)
    from pyfastcdc import FastCDC

    # pyfastcdc's mean chunk is avg_size + min_size: ask for 3/4 so chunks average `avg`.
    low = max(64, avg // 4)
    return FastCDC(avg - low, min_size=low, max_size=min(MAX_CHUNK, avg * 4))


def is_chunked(store: ObjectStore, size: int) -> bool:
    """Whether a file of `size` bytes is written into `store` as chunks."""
    return store.chunk_threshold is not None and size >= store.chunk_threshold


def store_file(store: ObjectStore, source: Path, expected: str | None = None) -> tuple[str, int]:
    """Cut `source` into chunks, add the chunks the store lacks (in new packs), then the
    chunk list; returns (oid of the whole file, size).

    One read of the file, in windows, into one reused buffer (memory stays bounded by a
    window plus the pending pack, never the file). The two hashes it needs run side by
    side: the whole file's on a helper thread (BackgroundDigest), each chunk's here."""
    st = os.stat(source)
    whole = BackgroundDigest()
    rows: list[tuple[str, int]] = []
    packed = store.packed_oids
    cdc = _cdc(store.chunk_avg)
    window = max(WINDOW, 2 * cdc.max_size)
    size = 0
    buf: bytearray | None = None
    with open(source, "rb", buffering=0) as handle, store.writer(pack_all=True) as writer:
        carry = b""
        while True:
            # One buffer, refilled once the pending pack and the helper thread are done with
            # it (a fresh 16 MiB buffer per window costs more in page faults than a hash
            # pass). The last chunk of a window may be cut short by the window's end, so its
            # bytes start the next window (FastCDC decides a cut from the chunk's own start,
            # so the chunks are those of the whole file, cut at once).
            if buf is None or not writer.release():
                buf = bytearray(window + cdc.max_size)
            else:
                whole.wait()
            buf[: len(carry)] = carry
            got = _read_into(handle, memoryview(buf)[len(carry) : len(carry) + window])
            size += got
            end = len(carry) + got
            last = got == 0
            if not end:
                break
            view = memoryview(buf)[:end]
            if got:
                whole.update(view[len(carry):])
            chunks = list(cdc.cut_buf(view))
            keep = chunks if last else chunks[:-1]
            for chunk in keep:
                data = chunk.data
                oid = hashlib.sha256(data).hexdigest()
                rows.append((oid, chunk.length))
                if oid not in packed:
                    writer.add_bytes(oid, data)
            carry = b"" if last else bytes(chunks[-1].data)
            del chunks, keep, view
            if last:
                break
    after = os.stat(source)
    if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns) or size != st.st_size:
        whole.cancel()
        raise CorruptObjectError(f"{source} changed while being stored",
                                 hint="re-run `gart add` once it is no longer being written")
    oid = whole.hexdigest()
    if expected is not None and oid != expected:
        raise CorruptObjectError(f"{source} changed while being stored")
    key = chunk_list_key(oid)
    if not store.backend.exists(key):
        store.backend.write(key, ChunkList(oid, size, tuple(rows)).serialize())
    return oid, size


def _read_into(handle: BinaryIO, view: memoryview) -> int:
    """Fill `view` from `handle` (short only at the end of the file); returns bytes read."""
    got = 0
    while got < len(view):
        n = handle.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def chunk_list(store: ObjectStore, oid: str) -> ChunkList | None:
    """The chunk list of `oid` in `store`; None if the file is not stored as chunks there.
    A damaged list raises CorruptObjectError (and is removed from the local cache)."""
    try:
        data = store.backend.read(chunk_list_key(oid))
    except (ObjectNotFoundError, FileNotFoundError):
        return None
    try:
        return ChunkList.parse(data, oid)
    except CorruptObjectError:
        if store.drop_corrupt:
            store.backend.delete(chunk_list_key(oid))
        raise


def chunk_oids(store: ObjectStore, oid: str) -> list[str]:
    """The chunk oids the file `oid` refers to in `store` (empty if it is not stored as
    chunks there). The one answer `gc` and `fsck --remote` need: these stay alive with it."""
    listed = chunk_list(store, oid)
    return listed.chunk_oids if listed is not None else []


def listed(store: ObjectStore, oids: set[str]) -> set[str]:
    """Which of `oids` have a chunk list in `store` (probes, or prefix listings)."""
    return oids - store._absent_under("chunks/sha256", set(oids)) if oids else set()


class ChunkReader:
    """Reads chunks out of a store in file order, keeping pack files open (local stores)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._fds: dict[str, int] = {}

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def __enter__(self) -> ChunkReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def raw(self, oid: str, length: int) -> bytes:
        """A chunk's bytes, not verified (the caller verifies the whole file or the chunk)."""
        location = self.store.packed.get(oid)
        backend = self.store.backend
        if location is None:  # not packed (a store may hold it loose): read it, verified
            data = self.store.read(oid)
            if len(data) != length:
                raise CorruptObjectError(f"chunk {oid} has {len(data)} bytes, not {length}")
            return data
        if location.length != length:
            raise CorruptObjectError(f"chunk {oid}: its list and its pack disagree on its size")
        key = f"packs/{location.pack_id}.pack"
        if isinstance(backend, LocalBackend):
            fd = self._fds.get(location.pack_id)
            if fd is None:
                try:
                    fd = os.open(backend.path(key), os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
                except FileNotFoundError:
                    raise ObjectNotFoundError(
                        f"chunk {oid}: pack {location.pack_id} is missing") from None
                self._fds[location.pack_id] = fd
            data = os.pread(fd, length, location.offset)
        else:
            data = backend.read_range(key, location.offset, location.offset + length)
        if len(data) != length:
            raise CorruptObjectError(f"chunk {oid} is truncated in pack {location.pack_id}")
        return data

    def verified(self, oid: str, length: int) -> bytes:
        data = self.raw(oid, length)
        if hashlib.sha256(data).hexdigest() != oid:
            raise CorruptObjectError(f"chunk {oid} is corrupt ({self.store.describe()})")
        return data


def assemble(store: ObjectStore, listing: ChunkList, fd: int) -> str:
    """Write the file described by `listing` to `fd` (from its current position); returns
    the sha256 of what was written. Chunks are not hashed one by one: the caller compares
    the result with the file's oid, and calls `find_bad_chunks` only when it differs.
    Hashed here, chunk by chunk, while each is in the CPU's cache (a helper thread or
    larger reads were measured slower: benchmarks in docs/benchmarks.md)."""
    digest = hashlib.sha256()
    with ChunkReader(store) as reader:
        for oid, length in listing.chunks:
            data = reader.raw(oid, length)
            digest.update(data)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
    return digest.hexdigest()


def find_bad_chunks(store: ObjectStore, listing: ChunkList) -> list[str]:
    """The chunks of `listing` that are missing from the store or do not hash to their oid."""
    bad: list[str] = []
    with ChunkReader(store) as reader:
        for oid in listing.chunk_oids:
            length = next(n for o, n in listing.chunks if o == oid)
            try:
                reader.verified(oid, length)
            except (CorruptObjectError, ObjectNotFoundError):
                bad.append(oid)
    return bad


def drop_chunked(store: ObjectStore, listing: ChunkList) -> list[str]:
    """A chunked file did not reassemble to its oid: remove its list and its bad chunks from
    the (cache) store, so that the next pull fetches them again. Returns the bad chunks."""
    bad = find_bad_chunks(store, listing)
    for oid in bad:
        if oid in store.packed_oids:
            store.drop(oid)
    if store.drop_corrupt:
        store.backend.delete(chunk_list_key(listing.oid))
    return bad


def read_range(store: ObjectStore, oid: str, start: int, end: int) -> bytes:
    """Bytes [start, end) of the file `oid`, every byte verified: for a file stored as
    chunks only the chunks overlapping the range are read (each hashed); otherwise the
    object is read whole and verified."""
    listing = chunk_list(store, oid)
    if listing is None:
        return store.read(oid)[start:end]
    end = min(end, listing.size)
    out: list[bytes] = []
    offset = 0
    with ChunkReader(store) as reader:
        for chunk, length in listing.chunks:
            if offset >= end:
                break
            if offset + length > start:
                data = reader.verified(chunk, length)
                out.append(data[max(0, start - offset) : end - offset])
            offset += length
    return b"".join(out)


def iter_file(store: ObjectStore, oid: str) -> Iterator[bytes]:
    """The bytes of a chunked file in order, each chunk verified."""
    listing = chunk_list(store, oid)
    if listing is None:
        raise ObjectNotFoundError(f"{oid} is not stored as chunks in {store.describe()}")
    with ChunkReader(store) as reader:
        for chunk, length in listing.chunks:
            yield reader.verified(chunk, length)


def verify_lists(store: ObjectStore) -> list[str]:
    """One problem line per chunk list that is damaged or names a chunk the store lacks
    (fsck; nothing is changed). Chunks themselves are verified with every packed object."""
    problems: list[str] = []
    packed = store.packed_oids
    for prefix in store.backend.list("chunks/sha256"):
        if len(prefix) != 2:
            continue
        for tail in store.backend.list(f"chunks/sha256/{prefix}"):
            oid = prefix + tail
            try:
                listing = ChunkList.parse(store.backend.read(chunk_list_key(oid)), oid)
            except (CorruptObjectError, ObjectNotFoundError) as exc:
                problems.append(exc.message)
                continue
            lacking = [c for c in listing.chunk_oids if c not in packed]
            if lacking:
                problems.append(f"chunk list of {oid} names {len(lacking)} chunk(s) missing "
                                f"from the store, e.g. {lacking[0]}")
    return problems
