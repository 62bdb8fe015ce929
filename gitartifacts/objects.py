"""Content-addressed object store — loose files plus immutable packs — over local disk or fsspec.

The same class serves the local cache and every remote. Layout (see docs/format.md):

    files/sha256/<2 hex>/<62 hex>    loose object (large files), verifiable with sha256sum
    packs/<pack-id>.pack             small objects back to back after an 8-byte magic
    packs/<pack-id>.idx              sorted table oid -> offset, length; written after its pack

A pack's id is the sha256 of the whole pack file, so packs never change once written, and
an index only exists once its pack is complete: seeing an .idx proves the .pack is whole.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import struct
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from gitartifacts.backenderrors import Site, bucket_not_found, missing_bucket, translate
from gitartifacts.errors import CorruptObjectError, GartError, ObjectNotFoundError
from gitartifacts.hashing import hash_file

PACK_MAGIC = b"GARTPK\x00\x01"
INDEX_MAGIC = b"GARTIX\x00\x01"
_INDEX_HEADER = struct.Struct(">8sI")
_INDEX_ENTRY = struct.Struct(">32sQQ")
DEFAULT_PACK_THRESHOLD = 1 << 20
DEFAULT_PACK_TARGET = 64 << 20
TEMP_PREFIX = ".tmp-"
COPY_CHUNK = 1 << 20
# Listing a loose prefix directory beats probing each object once this many are asked about.
LIST_INSTEAD_OF_PROBE = 32
RACY = -1  # a pack-directory stamp too recent to trust


FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)
# errnos meaning "this filesystem (or pair of filesystems) cannot clone": fall back to a copy.
NO_REFLINK = frozenset({errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY,
                        errno.ENOSYS, errno.EBADF, errno.EPERM})


def reflink(source: str | Path, destination: str | Path) -> bool:
    """Make `destination` (new) share `source`'s blocks copy-on-write (XFS, btrfs): no data
    is written. False, with nothing left behind, where the filesystem cannot."""
    import fcntl

    try:
        with open(source, "rb") as src, open(destination, "xb") as dst:
            fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
        return True
    except OSError as exc:
        if exc.errno not in NO_REFLINK:
            raise
        with contextlib.suppress(FileNotFoundError):
            os.unlink(destination)
        return False


def loose_key(oid: str) -> str:
    """Where a loose object lives, relative to the store root."""
    return f"files/sha256/{oid[:2]}/{oid[2:]}"


def temp_name(directory: str) -> str:
    """A unique temporary name beside the final one, so a rename into place is atomic."""
    return f"{directory}/{TEMP_PREFIX}{os.getpid()}-{os.urandom(6).hex()}"


class PackLocation(NamedTuple):
    """Where a packed object sits: which pack, at what offset, how long."""

    pack_id: str
    offset: int
    length: int


class Backend(Protocol):
    """The few byte-level operations the store needs; keys are '/'-paths under the root."""

    def exists(self, key: str) -> bool: ...
    def read(self, key: str) -> bytes: ...
    def read_range(self, key: str, start: int, end: int) -> bytes: ...
    def write(self, key: str, data: bytes) -> None: ...
    def put_file(self, source: Path, key: str) -> None: ...
    def get_file(self, key: str, destination: Path) -> None: ...
    def list(self, directory: str) -> list[str]: ...
    def delete(self, key: str) -> None: ...
    def describe(self) -> str: ...


class LocalBackend:
    """Plain os calls on a directory: no fsspec import on the hot local paths."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key

    def describe(self) -> str:
        return str(self.root)

    def exists(self, key: str) -> bool:
        return os.path.exists(self.root / key)

    def read(self, key: str) -> bytes:
        try:
            with open(self.root / key, "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            raise ObjectNotFoundError(f"{key} not found in {self.root}") from None

    def read_range(self, key: str, start: int, end: int) -> bytes:
        try:
            fd = os.open(self.root / key, os.O_RDONLY)
        except FileNotFoundError:
            raise ObjectNotFoundError(f"{key} not found in {self.root}") from None
        try:
            return os.pread(fd, end - start, start)
        finally:
            os.close(fd)

    def write(self, key: str, data: bytes) -> None:
        final = self.root / key
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(temp_name(str(final.parent)))
        with open(tmp, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)

    def put_file(self, source: Path, key: str) -> None:
        import shutil

        final = self.root / key
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(temp_name(str(final.parent)))
        if not reflink(source, tmp):
            shutil.copyfile(source, tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o444)
        os.replace(tmp, final)

    def get_file(self, key: str, destination: Path) -> None:
        import shutil

        try:
            shutil.copyfile(self.root / key, destination)
        except FileNotFoundError:
            raise ObjectNotFoundError(f"{key} not found in {self.root}") from None

    def list(self, directory: str) -> list[str]:
        try:
            return [n for n in os.listdir(self.root / directory) if not n.startswith(".")]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def delete(self, key: str) -> None:
        try:
            os.unlink(self.root / key)
        except FileNotFoundError:
            pass


class FsspecBackend:
    """Any fsspec filesystem; errors come back as gart errors naming the remote object."""

    def __init__(
        self, fs: Any, root: str, url: str | None = None, site: Site | None = None
    ) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self.url = url or root
        # Where requests go (remote name, endpoint, bucket, limits): for error messages.
        self.site = site or Site(url=self.url)
        self._bucket_seen = False  # the bucket answered once: an empty listing means empty
        # Object stores (s3, gcs, azure) have no rename, but a whole-object put is atomic
        # there. Anywhere else (sftp, hdfs, webdav, ...) an interrupted put can leave a
        # truncated object under its final name, which the next push would take as present:
        # write a temp name and rename it into place.
        self.atomic_put = _has_atomic_put(fs)

    def path(self, key: str) -> str:
        return f"{self.root}/{key}"

    def describe(self) -> str:
        return self.url

    def exists(self, key: str) -> bool:
        with _translate(self, key):
            return bool(self.fs.exists(self.path(key)))

    def read(self, key: str) -> bytes:
        with _translate(self, key):
            return bytes(self.fs.cat_file(self.path(key)))

    def read_range(self, key: str, start: int, end: int) -> bytes:
        with _translate(self, key):
            return bytes(self.fs.cat_file(self.path(key), start=start, end=end))

    def write(self, key: str, data: bytes) -> None:
        with _translate(self, key):
            if self.atomic_put:
                self.fs.pipe_file(self.path(key), data)
                return
            parent = self.path(key).rpartition("/")[0]
            self.fs.makedirs(parent, exist_ok=True)
            tmp = temp_name(parent)
            self.fs.pipe_file(tmp, data)
            self.fs.mv(tmp, self.path(key))

    def put_file(self, source: Path, key: str) -> None:
        with _translate(self, key):
            if self.atomic_put:
                self.fs.put_file(str(source), self.path(key))
                return
            parent = self.path(key).rpartition("/")[0]
            self.fs.makedirs(parent, exist_ok=True)
            tmp = temp_name(parent)
            self.fs.put_file(str(source), tmp)
            self.fs.mv(tmp, self.path(key))

    def get_file(self, key: str, destination: Path) -> None:
        with _translate(self, key):
            self.fs.get_file(self.path(key), str(destination))

    def list(self, directory: str) -> list[str]:
        with _translate(self, directory):
            try:
                names = self.fs.ls(self.path(directory), detail=False)
            except FileNotFoundError as exc:
                self._check_bucket(exc)  # a missing bucket is an error, not an empty remote
                return []
            self._bucket_seen = True
        out = [str(n).rstrip("/").rpartition("/")[2] for n in names]
        return [n for n in out if n and not n.startswith(".")]

    def delete(self, key: str) -> None:
        with _translate(self, key):
            try:
                self.fs.rm_file(self.path(key))
            except FileNotFoundError:
                pass

    def _check_bucket(self, exc: FileNotFoundError) -> None:
        """Raise BucketNotFoundError if `exc` (an empty listing) came from a missing bucket.

        s3 and azure say so in the exception; where it cannot tell (gcs), the bucket is
        asked about once per store."""
        bucket = self.site.bucket
        if bucket is None or self._bucket_seen:
            return
        missing = missing_bucket(exc, self.site.scheme)
        if missing is None:
            missing = not self.fs.exists(bucket)
        if missing:
            raise bucket_not_found(self.site) from None
        self._bucket_seen = True


ATOMIC_PUT_PROTOCOLS = frozenset(
    {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss", "memory"}
)


def _has_atomic_put(fs: Any) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return bool(ATOMIC_PUT_PROTOCOLS.intersection(protocol))


class _translate:
    """Backend exceptions become gart errors naming the remote object (backenderrors.py)."""

    def __init__(self, backend: FsspecBackend, key: str) -> None:
        self.backend = backend
        self.key = key

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or isinstance(exc, GartError):
            return False
        if not isinstance(exc, Exception):
            return False  # KeyboardInterrupt, SystemExit: never translated
        error = translate(exc, self.backend.site, self.key)
        if error is None:
            return False  # a programming error: let it surface as itself
        raise error from exc


def serialize_index(entries: dict[str, PackLocation] | Iterable[tuple[str, int, int]]) -> bytes:
    """The binary .idx: magic, count, sorted (oid, offset, length) rows, then a checksum."""
    if isinstance(entries, dict):
        rows = sorted((oid, loc.offset, loc.length) for oid, loc in entries.items())
    else:
        rows = sorted(entries)
    body = bytearray(_INDEX_HEADER.pack(INDEX_MAGIC, len(rows)))
    for oid, offset, length in rows:
        body += _INDEX_ENTRY.pack(bytes.fromhex(oid), offset, length)
    body += hashlib.sha256(body).digest()
    return bytes(body)


def check_index(data: bytes, pack_id: str) -> None:
    """Refuse a damaged or foreign .idx (checksum, magic, length)."""
    if len(data) < _INDEX_HEADER.size + 32 or hashlib.sha256(data[:-32]).digest() != data[-32:]:
        raise CorruptObjectError(f"pack index {pack_id}.idx is damaged (checksum mismatch)")
    magic, count = _INDEX_HEADER.unpack_from(data)
    if magic != INDEX_MAGIC or len(data) != _INDEX_HEADER.size + count * _INDEX_ENTRY.size + 32:
        raise CorruptObjectError(f"pack index {pack_id}.idx has an unknown format")


def parse_index(data: bytes, pack_id: str) -> dict[str, PackLocation]:
    """Read a .idx, checking its magic and checksum; a damaged index is refused whole."""
    check_index(data, pack_id)
    return _index_rows(data, pack_id)


def _index_rows(data: bytes, pack_id: str) -> dict[str, PackLocation]:
    new = tuple.__new__
    return {
        raw.hex(): new(PackLocation, (pack_id, offset, length))
        for raw, offset, length in _INDEX_ENTRY.iter_unpack(data[_INDEX_HEADER.size : -32])
    }


ProgressHook = Callable[[int], None]


class ObjectStore:
    """A content-addressed store of sha256-named objects; the cache and remotes alike."""

    def __init__(
        self,
        backend: LocalBackend | FsspecBackend,
        *,
        index_cache: Path | None = None,
        pack_threshold: int = DEFAULT_PACK_THRESHOLD,
        pack_target: int = DEFAULT_PACK_TARGET,
    ) -> None:
        self.backend = backend
        self.index_cache = index_cache
        self.pack_threshold = pack_threshold
        self.pack_target = pack_target
        self._packed: dict[str, PackLocation] | None = None  # built on first need
        self._pack_ids: set[str] = set()
        self._indexes: dict[str, bytes] = {}  # pack id -> its validated .idx bytes
        self._oids: set[str] = set()  # every packed oid: membership without locations
        self._refreshed = False
        self._packs_stamp: int | None = None  # local stores: packs/ mtime when last listed

    @classmethod
    def local(cls, root: Path, **options: Any) -> ObjectStore:
        return cls(LocalBackend(root), **options)

    @property
    def local_root(self) -> Path | None:
        return self.backend.root if isinstance(self.backend, LocalBackend) else None

    def describe(self) -> str:
        return self.backend.describe()

    # -- what is here -------------------------------------------------------------------

    @property
    def packed(self) -> dict[str, PackLocation]:
        """oid -> location for every packed object (indexes read once, then kept)."""
        if not self._refreshed:
            self.refresh()
        if self._packed is None:
            packed: dict[str, PackLocation] = {}
            for pack_id, data in self._indexes.items():
                packed.update(_index_rows(data, pack_id))
            self._packed = packed
        return self._packed

    @property
    def packed_oids(self) -> set[str]:
        """Every packed oid; cheaper than `packed` when only membership matters (status)."""
        if not self._refreshed:
            self.refresh()
        return self._oids

    def revalidate(self) -> None:
        """Re-list a local store's packs if its packs/ directory changed since the last listing,
        so a long-lived store sees packs another process wrote. Callers do it once per
        operation (not per object); a remote store keeps its one listing."""
        if self._refreshed and self._packs_stamp is not None and (
                self._packs_stamp == RACY or self._packs_stamp != self._local_packs_stamp()):
            self.refresh()

    def _local_packs_stamp(self) -> int | None:
        root = self.local_root
        if root is None:
            return None
        try:
            mtime = os.stat(root / "packs").st_mtime_ns
        except OSError:
            return 0
        # A directory changed within the last second may change again inside the same clock
        # tick without its mtime moving: keep listing it until it has settled (git's "racy" rule).
        return RACY if time.time_ns() - mtime < 1_000_000_000 else mtime

    def refresh(self) -> None:
        """Re-list the pack indexes; indexes never change, so only new ones are read."""
        self._packs_stamp = self._local_packs_stamp()  # before listing: a later change shows
        for name in self.backend.list("packs"):
            if not name.endswith(".idx"):
                continue
            pack_id = name[:-4]
            if pack_id not in self._pack_ids:
                self._add_index(pack_id, self._read_index(pack_id))
        self._refreshed = True

    def _add_index(self, pack_id: str, data: bytes) -> None:
        self._indexes[pack_id] = data
        hexed = data[_INDEX_HEADER.size : -32].hex()
        step = _INDEX_ENTRY.size * 2
        self._oids.update(hexed[i : i + 64] for i in range(0, len(hexed), step))
        if self._packed is not None:
            for oid, loc in _index_rows(data, pack_id).items():
                self._packed.setdefault(oid, loc)
        self._pack_ids.add(pack_id)

    def _read_index(self, pack_id: str) -> bytes:
        cached = self.index_cache / f"{pack_id}.idx" if self.index_cache else None
        if cached is not None:
            try:
                data = cached.read_bytes()
                check_index(data, pack_id)
                return data
            except (OSError, CorruptObjectError):
                pass
        data = self.backend.read(f"packs/{pack_id}.idx")
        check_index(data, pack_id)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(temp_name(str(cached.parent)))
            tmp.write_bytes(data)
            os.replace(tmp, cached)
        return data

    def index_bytes(self, pack_id: str) -> bytes:
        """The raw .idx of a pack (from the local index cache when kept)."""
        return self._read_index(pack_id)

    def pack_sizes(self) -> dict[str, int]:
        """pack id -> bytes its objects span, derived from the indexes (no request)."""
        sizes: dict[str, int] = {}
        for loc in self.packed.values():
            end = loc.offset + loc.length
            if end > sizes.get(loc.pack_id, 0):
                sizes[loc.pack_id] = end
        return sizes

    def install_pack(self, pack_id: str, pack_file: Path, index: bytes) -> None:
        """Adopt a downloaded pack (local stores): verify it whole, then pack, then index."""
        root = self.local_root
        assert root is not None, "packs are installed into local stores only"
        digest = hashlib.sha256()
        with open(pack_file, "rb") as handle:
            while chunk := handle.read(COPY_CHUNK):
                digest.update(chunk)
        if digest.hexdigest() != pack_id:
            raise CorruptObjectError(f"downloaded pack {pack_id} is corrupt (hash mismatch)")
        check_index(index, pack_id)
        (root / "packs").mkdir(parents=True, exist_ok=True)
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
        os.replace(file, final)

    def has(self, oid: str) -> bool:
        return oid in self.packed_oids or self.backend.exists(loose_key(oid))

    def missing(self, oids: Collection[str]) -> set[str]:
        """Which of `oids` the store lacks: packed lookups, then probes or prefix listings."""
        rest = set(oids) - self.packed_oids
        if not rest:
            return set()
        if len(rest) < LIST_INSTEAD_OF_PROBE:
            return {oid for oid in rest if not self.backend.exists(loose_key(oid))}
        by_prefix: dict[str, set[str]] = {}
        for oid in rest:
            by_prefix.setdefault(oid[:2], set()).add(oid[2:])
        absent: set[str] = set()
        # One listing says which prefix directories exist at all; only those are listed
        # (2,000 oids span all 256 prefixes: without this a fresh S3 remote costs 512 GETs).
        prefixes = set(self.backend.list("files/sha256"))
        for prefix, tails in by_prefix.items():
            if prefix not in prefixes:
                absent.update(prefix + tail for tail in tails)
                continue
            present = set(self.backend.list(f"files/sha256/{prefix}"))
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
        """An object's bytes, verified against its name."""
        location = self.packed.get(oid)
        if location is not None:
            data = self.backend.read_range(
                f"packs/{location.pack_id}.pack", location.offset, location.offset + location.length
            )
            where = f"pack {location.pack_id}"
        else:
            try:
                data = self.backend.read(loose_key(oid))
            except ObjectNotFoundError:
                raise ObjectNotFoundError(
                    f"object {oid} is not in {self.describe()}"
                ) from None
            where = loose_key(oid)
        check_bytes(oid, data, f"{self.describe()}: {where}")
        return data

    def read_packed(self, oids: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """Packed objects, verified, one pass per pack in offset order (local stores)."""
        by_pack: dict[str, list[tuple[int, int, str]]] = {}
        packed = self.packed
        for oid in oids:
            loc = packed[oid]
            by_pack.setdefault(loc.pack_id, []).append((loc.offset, loc.length, oid))
        for pack_id, items in by_pack.items():
            items.sort()
            key = f"packs/{pack_id}.pack"
            if isinstance(self.backend, LocalBackend):
                fd = os.open(self.backend.path(key), os.O_RDONLY)
                try:
                    for offset, length, oid in items:
                        data = os.pread(fd, length, offset)
                        check_bytes(oid, data, f"{self.describe()}: pack {pack_id}")
                        yield oid, data
                finally:
                    os.close(fd)
            else:
                for offset, length, oid in items:
                    data = self.backend.read_range(key, offset, offset + length)
                    check_bytes(oid, data, f"{self.describe()}: pack {pack_id}")
                    yield oid, data

    # -- writing ------------------------------------------------------------------------

    def writer(self, auto_flush: bool = True) -> ObjectWriter:
        return ObjectWriter(self, auto_flush=auto_flush)

    def _register_pack(self, pack_id: str, index: bytes) -> None:
        if not self._refreshed:
            return  # nothing loaded yet: the next refresh() reads this pack's index too
        self._add_index(pack_id, index)

    # -- maintenance --------------------------------------------------------------------

    def verify(self, progress: ProgressHook | None = None) -> list[str]:
        """Re-hash every object; returns one problem line per damaged object or pack."""
        problems: list[str] = []
        self._packed = None
        self._pack_ids = set()
        self._indexes = {}
        self._oids = set()
        self._refreshed = False
        try:
            self.refresh()
        except CorruptObjectError as exc:
            problems.append(str(exc))
            return problems
        for pack_id in sorted(self._pack_ids):
            try:
                data = self.backend.read(f"packs/{pack_id}.pack")
            except ObjectNotFoundError:
                problems.append(f"pack {pack_id}.pack is missing but its index exists")
                continue
            if hashlib.sha256(data).hexdigest() != pack_id:
                problems.append(f"pack {pack_id}.pack is damaged")
        for oid in sorted(self.loose_oids()):
            try:
                check_bytes(oid, self.backend.read(loose_key(oid)), loose_key(oid))
            except CorruptObjectError as exc:
                problems.append(str(exc))
            if progress:
                progress(1)
        return problems

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
    """

    def __init__(self, store: ObjectStore, auto_flush: bool = True) -> None:
        self.store = store
        self.auto_flush = auto_flush
        self._chunks: list[bytes] = [PACK_MAGIC]
        self._entries: dict[str, PackLocation] = {}
        self._offset = len(PACK_MAGIC)
        self._hash = hashlib.sha256(PACK_MAGIC)
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

    def add_bytes(self, oid: str, data: bytes) -> None:
        """Store an object whose bytes are in memory (the caller has verified `oid`)."""
        if oid in self._entries or oid in self.store.packed_oids:
            return
        if len(data) >= self.store.pack_threshold:
            self.store.backend.write(loose_key(oid), data)
            self._make_read_only(oid)
            self.loose_written += 1
            return
        self._entries[oid] = PackLocation("", self._offset, len(data))
        self._chunks.append(data)
        self._hash.update(data)
        self._offset += len(data)
        if self.auto_flush and self._offset >= self.store.pack_target:
            self.flush()

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
                hexdigest, size = _copy_hashing(source, tmp)
            if oid is not None and hexdigest != oid:
                raise CorruptObjectError(f"{source} changed while being stored")
            final = backend.path(loose_key(hexdigest))
            if final.exists():
                tmp.unlink()
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(tmp, 0o444)
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
        self._chunks = [PACK_MAGIC]
        self._entries = {}
        self._offset = len(PACK_MAGIC)
        self._hash = hashlib.sha256(PACK_MAGIC)

    def flush(self) -> str | None:
        """Write the pending pack, then its index; returns the pack id (None if empty)."""
        if not self._entries:
            return None
        pack_id = self._hash.hexdigest()
        entries = {
            oid: PackLocation(pack_id, loc.offset, loc.length) for oid, loc in self._entries.items()
        }
        backend = self.store.backend
        backend.write(f"packs/{pack_id}.pack", b"".join(self._chunks))
        index = serialize_index(entries)
        backend.write(f"packs/{pack_id}.idx", index)
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


def _copy_hashing(source: Path, destination: Path) -> tuple[str, int]:
    """Copy into a new file while hashing (one read of the source), then fsync it."""
    digest = hashlib.sha256()
    size = 0
    with open(source, "rb") as src, open(destination, "xb") as dst:
        while chunk := src.read(COPY_CHUNK):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    return digest.hexdigest(), size
