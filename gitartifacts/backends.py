"""Where a store's bytes live: a local directory or any fsspec filesystem, behind one protocol.

The few byte-level operations ObjectStore needs, with backend errors translated into gart
errors and bounded uploads, and the local helpers (reflink, writeback, hashed copy)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from gitartifacts import testhooks
from gitartifacts.backenderrors import Site, bucket_not_found, missing_bucket, translate
from gitartifacts.errors import CorruptObjectError, GartError, ObjectNotFoundError
from gitartifacts.fsutil import temp_name
from gitartifacts.hashing import hash_file

COPY_CHUNK = 1 << 20


def check_file(oid: str, path: Path) -> None:
    """Raise CorruptObjectError unless the file at `path` hashes to `oid` (one read)."""
    if hash_file(path)[0] != oid:
        raise CorruptObjectError(f"object {oid} is corrupt ({path})")


FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)
# errnos meaning "this filesystem (or pair of filesystems) cannot clone": fall back to a copy.
NO_REFLINK = frozenset({errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY,
                        errno.ENOSYS, errno.EBADF, errno.EPERM})


_SYNC_FILE_RANGE_WRITE = 2  # linux/fs.h: start writeback of dirty pages, do not wait
_sync_file_range: Any = None  # libc's sync_file_range, looked up on first use; False: none


def start_writeback(fd: int) -> None:
    """Ask the kernel to start writing `fd`'s dirty pages to disk now, without waiting
    (Linux sync_file_range; nothing elsewhere). The fsync before a file is published then
    finds most of it on disk: the disk works while the caller hashes. Not a durability
    promise by itself: callers still fsync."""
    global _sync_file_range
    if _sync_file_range is None:
        _sync_file_range = False
        try:
            import ctypes

            call = ctypes.CDLL(None, use_errno=True).sync_file_range
            call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
            _sync_file_range = call
        except (AttributeError, OSError):
            pass
    if _sync_file_range:
        _sync_file_range(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)


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


class Backend(Protocol):
    """The few byte-level operations the store needs; keys are '/'-paths under the root."""

    def exists(self, key: str) -> bool: ...
    def read(self, key: str) -> bytes: ...
    def read_range(self, key: str, start: int, end: int) -> bytes: ...
    def write(self, key: str, data: bytes, durable: bool = False) -> None: ...
    def put_file(self, source: Path, key: str, oid: str | None = None) -> None: ...
    def get_file(self, key: str, destination: Path) -> None: ...
    def list(self, directory: str) -> list[str]: ...
    def list_sizes(self, directory: str) -> dict[str, int]: ...
    def delete(self, key: str) -> None: ...
    def describe(self) -> str: ...


class LocalBackend:
    """Plain os calls on a directory: no fsspec import on the hot local paths.

    `durable` (remotes): every file is fsynced before it is renamed into place, so nothing
    a version is published on can be lost by a crash. A cache is not durable: its files
    are handed to the disk (writeback starts at once) but not waited for, as git does not
    fsync loose objects. That is safe because a cache publishes nothing, every read out of
    it is verified, and what a crash cut short or zeroed is dropped and fetched again
    (docs/format.md §6.4); push re-reads and re-hashes every byte it sends."""

    def __init__(self, root: Path, durable: bool = True) -> None:
        self.root = Path(root)
        self.durable = durable

    def sync(self, fd: int, durable: bool = False) -> None:
        """Make a file written into this store durable (fsync), or, in a cache, start its
        writeback without waiting, unless `durable` (it replaces bytes about to be deleted)."""
        if self.durable or durable:
            os.fsync(fd)
        else:
            start_writeback(fd)

    def path(self, key: str) -> Path:
        return self.root / key

    def describe(self) -> str:
        return str(self.root)

    def exists(self, key: str) -> bool:
        return os.path.exists(self.root / key)

    def _temp_dir(self, key: str, final: Path) -> Path:
        """Loose objects are written under files/sha256/ (format.md §6.4), so a killed
        writer's temporaries sit in one known directory; everything else beside its file."""
        return self.root / "files" / "sha256" if key.startswith("files/sha256/") else final.parent

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
            # Never allocate more than the file holds, whatever length an index claims.
            end = min(end, os.fstat(fd).st_size)
            return os.pread(fd, end - start, start) if end > start else b""
        finally:
            os.close(fd)

    def write(self, key: str, data: bytes | list[bytes], durable: bool = False) -> None:
        """Write `data` (or its parts, back to back: no joined copy) under `key`, durably in
        a durable store or when asked (see `sync`)."""
        final = self.root / key
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(temp_name(str(self._temp_dir(key, final))))
        with open(tmp, "xb") as handle:
            if isinstance(data, list):
                handle.writelines(data)
            else:
                handle.write(data)
            handle.flush()
            self.sync(handle.fileno(), durable)
        testhooks.hit()  # crash suite: killed after the bytes, before the rename
        os.replace(tmp, final)

    def put_file(self, source: Path, key: str, oid: str | None = None) -> None:
        """Copy `source` in; with `oid`, the copy is hashed on the way and lands under its
        final name only if it hashes to `oid` (CorruptObjectError otherwise)."""
        import shutil

        final = self.root / key
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(temp_name(str(self._temp_dir(key, final))))
        try:
            if reflink(source, tmp):
                digest = hash_file(tmp)[0] if oid is not None else None
            elif oid is not None:
                digest = copy_hashing(source, tmp, self.sync)[0]
            else:
                shutil.copyfile(source, tmp)
                digest = None
            if digest != oid:
                raise CorruptObjectError(f"object {oid} is corrupt ({source})")
            with open(tmp, "rb+") as handle:
                self.sync(handle.fileno())
            os.chmod(tmp, 0o444)
            testhooks.hit()
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

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

    def list_sizes(self, directory: str) -> dict[str, int]:
        """name -> size of the regular files in `directory` (one scandir)."""
        out: dict[str, int] = {}
        try:
            with os.scandir(self.root / directory) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    with contextlib.suppress(OSError):
                        if entry.is_file(follow_symlinks=False):
                            out[entry.name] = entry.stat(follow_symlinks=False).st_size
        except (FileNotFoundError, NotADirectoryError):
            pass
        return out

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

    def _bounded(self, size: int) -> dict[str, Any]:
        """A deadline for one upload on an async filesystem (fsspec's `timeout=`).

        The libraries' read timeouts do not cover an upload whose answer never comes (an
        endpoint that accepts and stays silent held a PUT forever): give it the time the
        limits allow for the request and its retries, plus the bytes at a crawl."""
        if not getattr(self.fs, "async_impl", False) or self.site.read_timeout is None:
            return {}
        per_try = (self.site.connect_timeout or 0) + self.site.read_timeout
        return {"timeout": per_try * 2 + size / _SLOWEST_UPLOAD}

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

    def write(self, key: str, data: bytes, durable: bool = False) -> None:  # noqa: ARG002
        """Put `data` under `key` (as durable as the object store makes a put: `durable` is
        for local caches)."""
        testhooks.hit()
        with _translate(self, key):
            if self.atomic_put:
                self.fs.pipe_file(self.path(key), data, **self._bounded(len(data)))
                return
            parent = self.path(key).rpartition("/")[0]
            self.fs.makedirs(parent, exist_ok=True)
            tmp = temp_name(parent)
            self.fs.pipe_file(tmp, data)
            self.fs.mv(tmp, self.path(key))

    def put_file(self, source: Path, key: str, oid: str | None = None) -> None:
        """Upload `source`; with `oid` it is hashed first and refused unless it matches."""
        if oid is not None:
            check_file(oid, source)
        testhooks.hit()
        with _translate(self, key):
            if self.atomic_put:
                self.fs.put_file(str(source), self.path(key),
                                 **self._bounded(source.stat().st_size))
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

    def list_sizes(self, directory: str) -> dict[str, int]:
        """name -> size of the files in `directory` (the same one listing request)."""
        with _translate(self, directory):
            try:
                infos = self.fs.ls(self.path(directory), detail=True)
            except FileNotFoundError as exc:
                self._check_bucket(exc)  # a missing bucket is an error, not an empty remote
                return {}
            self._bucket_seen = True
        out: dict[str, int] = {}
        for info in infos:
            name = str(info.get("name", "")).rstrip("/").rpartition("/")[2]
            if name and not name.startswith(".") and info.get("type", "file") == "file":
                with contextlib.suppress(TypeError, ValueError):
                    out[name] = int(info.get("size") or 0)
        return out

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


_SLOWEST_UPLOAD = 256 << 10  # bytes/s an upload may crawl at before it counts as hung


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
        if isinstance(exc, FileNotFoundError):  # a missing bucket first (a lock, a write)
            self.backend._check_bucket(exc)
        error = translate(exc, self.backend.site, self.key)
        if error is None:
            return False  # a programming error: let it surface as itself
        raise error from exc




def copy_hashing(
    source: Path, destination: Path, sync: Callable[[int], None]
) -> tuple[str, int]:
    """Copy into a new file while hashing (one read of the source), then `sync` it."""
    digest = hashlib.sha256()
    size = 0
    with open(source, "rb") as src, open(destination, "xb") as dst:
        while chunk := src.read(COPY_CHUNK):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
        dst.flush()
        sync(dst.fileno())
    return digest.hexdigest(), size
