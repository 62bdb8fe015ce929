"""Placing files safely: every directory opened without following symlinks, files created
beside their final name and renamed, cache bytes hashed before they are placed."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

from gitartifacts import chunking
from gitartifacts.backends import COPY_CHUNK, FICLONE, NO_REFLINK
from gitartifacts.errors import (
    CorruptObjectError,
    InvalidPathError,
    ManifestError,
    ObjectNotFoundError,
)
from gitartifacts.fsutil import temp_name
from gitartifacts.hashing import FileStat, hash_file
from gitartifacts.manifest import Entry
from gitartifacts.objects import ObjectStore

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_NEW_FILE = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
_ANCHOR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)  # trusted: may follow
_MAX_OPEN_DIRS = 128  # directory descriptors kept open at once (the fd limit is often 1024)


class Placer:
    """Puts verified object bytes at working-tree paths, atomically, never outside `root`.

    Every directory from `anchor` (a directory the caller trusts: the repository root, or
    the user's `--to` directory) down to each file is opened component by component with
    O_NOFOLLOW, and created with mkdirat when missing, so no symlink is ever followed or
    written through. Files are created O_EXCL|O_NOFOLLOW under a temp name beside their
    final name, filled, verified, then renamed into place; a failure removes the temp file.
    Bytes read out of a loose cache object are hashed before they are placed (hardlinked
    and symlinked objects once per checkout); a corrupt object is removed from the cache.
    """

    def __init__(
        self, root: Path, store: ObjectStore, link_types: Sequence[str],
        anchor: Path | None = None,
    ) -> None:
        self.root = Path(root)
        self.anchor = Path(anchor) if anchor is not None else self.root
        self.root_real = os.path.realpath(root)
        self.store = store
        self.link_types = list(link_types)
        self.written: list[tuple[str, FileStat, str]] = []
        self.corrupt: list[tuple[str, str]] = []  # (path, oid) not placed: the object was bad
        self._root_parts = _relative_parts(self.anchor, self.root)
        self._dirs: dict[str, int] = {}
        self._verified: set[str] = set()  # loose oids hashed once in this checkout
        self._bad: set[str] = set()

    # -- directories -----------------------------------------------------------------------

    def close(self) -> None:
        for fd in self._dirs.values():
            os.close(fd)
        self._dirs.clear()

    def __enter__(self) -> Placer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _shown(self, key: str) -> str:
        return os.path.join(self.anchor, key) if key else str(self.anchor)

    def _dir(self, key: str, create: bool) -> int | None:
        """Descriptor of the directory `key` (relative to the anchor), never via a symlink.

        None when it does not exist and `create` is false."""
        fd = self._dirs.get(key)
        if fd is not None:
            return fd
        if not key:
            if create:
                os.makedirs(self.anchor, exist_ok=True)
            try:
                fd = os.open(self.anchor, _ANCHOR_FLAGS)
            except FileNotFoundError:
                if create:
                    raise
                return None
            self._dirs[key] = fd
            return fd
        parent_key, _, name = key.rpartition("/")
        parent = self._dir(parent_key, create)
        if parent is None:
            return None
        while True:
            try:
                fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
                break
            except FileNotFoundError:
                if not create:
                    return None
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o777, dir_fd=parent)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                    raise
                st = os.stat(name, dir_fd=parent, follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    raise InvalidPathError(
                        f"refusing to write through {self._shown(key)}: it is a symlink",
                        hint="remove the symlink (gart never writes through one), then re-run",
                    ) from None
                raise InvalidPathError(
                    f"{self._shown(key)} is a file where a directory is needed",
                    hint="move the file away, then re-run",
                ) from None
        if len(self._dirs) >= _MAX_OPEN_DIRS:
            self.close()
            return self._dir(key, create)  # re-walk: every component is checked again
        self._dirs[key] = fd
        return fd

    def _key(self, rel: str) -> tuple[str, str]:
        """(directory key relative to the anchor, file name) of a path under the root."""
        parts = self._root_parts + rel.split("/")
        return "/".join(parts[:-1]), parts[-1]

    def root_exists(self) -> bool:
        """Does the root exist, reached without following any symlink below the anchor?"""
        return self._dir("/".join(self._root_parts), create=False) is not None

    def make_root(self) -> None:
        self._dir("/".join(self._root_parts), create=True)

    def target(self, rel: str) -> str:
        """Create (safely) the directory of `rel`; return the file's path."""
        key, _name = self._key(rel)
        self._dir(key, create=True)
        return os.path.join(self.root, rel)

    # -- files -----------------------------------------------------------------------------

    def remove(self, rel: str) -> None:
        """Delete the file `rel` (never through a symlinked directory), then empty parents."""
        key, name = self._key(rel)
        fd = self._dir(key, create=False)
        if fd is None:
            return
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
            os.unlink(name, dir_fd=fd)  # a directory of that name is not gart's: left alone
        parts = rel.split("/")[:-1]
        while parts:  # prune directories the removal emptied, up to (not including) the root
            key, name = self._key("/".join(parts))
            parent = self._dir(key, create=False)
            if parent is None:
                return
            try:
                os.rmdir(name, dir_fd=parent)
            except OSError:
                return
            stale = self._dirs.pop(key + "/" + name if key else name, None)
            if stale is not None:
                os.close(stale)
            parts.pop()

    def put_bytes(self, entry: Entry, data: bytes) -> None:
        """Place already verified bytes (packed objects are hashed when read from packs)."""
        if len(data) != entry.size:
            raise size_error(entry, len(data))

        def fill(dfd: int, tmp: str) -> None:
            fd = os.open(tmp, _NEW_FILE, 0o666, dir_fd=dfd)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)

        self._place(entry, fill)

    def put_loose(self, entry: Entry, source: Path) -> None:
        """Place a loose cache object by the first link type that works, verified."""
        if entry.oid in self._bad:
            self.corrupt.append((entry.path, entry.oid))
            return
        placed = False

        def fill(dfd: int, tmp: str) -> None:
            nonlocal placed
            for kind in list(self.link_types):
                try:
                    ok = self._link(kind, source, dfd, tmp, entry.oid)
                except OSError as exc:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp, dir_fd=dfd)
                    if exc.errno not in NO_REFLINK and exc.errno != errno.EMLINK:
                        raise
                    # This link type does not work on this filesystem: stop trying it.
                    self.link_types.remove(kind)
                    continue
                if not ok:  # the object is corrupt: nothing is placed
                    with contextlib.suppress(OSError):
                        os.unlink(tmp, dir_fd=dfd)
                    self._drop(entry)
                    return
                placed = True
                return
            where = os.path.join(self.root, entry.path)
            raise OSError(f"no configured link type works for {where}")

        self._place(entry, fill, lambda: placed)

    def put_chunked(self, entry: Entry, listing: chunking.ChunkList) -> None:
        """Reassemble a file stored as chunks into a temp file beside its final name, and
        rename it into place only if the whole file hashes to its oid. A missing or corrupt
        chunk leaves nothing at the final path: the file's list and its bad chunks are
        removed from the cache (so a pull fetches them again) and the path is reported."""
        self.put_chunked_many([(entry, listing)], jobs=1)

    def put_chunked_many(
        self, items: Sequence[tuple[Entry, chunking.ChunkList]], jobs: int = 2,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """`put_chunked` for several files, up to `jobs` reassembled at once on threads
        (pread, sha256 and write release the GIL: two 256 MiB files take about the time of
        one on two cores). Directories, temp names, checks and renames stay on this thread,
        in order; each file is placed only once its own whole-file hash matched."""
        from collections import deque
        from concurrent.futures import Future, ThreadPoolExecutor

        pending: deque[tuple[Entry, chunking.ChunkList, str, str, int, Future[str]]] = deque()
        failed: list[chunking.ChunkList] = []  # dropped from the cache once no thread reads it

        def assemble(listing: chunking.ChunkList, fd: int) -> str:
            try:
                return chunking.assemble(self.store, listing, fd)
            except (CorruptObjectError, ObjectNotFoundError):
                return ""

        def discard(key: str, tmp: str) -> None:
            dfd = self._dirs.get(key)
            if dfd is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=dfd)

        def finish() -> None:
            entry, listing, key, tmp, fd, future = pending.popleft()
            try:
                digest = future.result()
            except BaseException:
                discard(key, tmp)
                raise
            finally:
                os.close(fd)
            dfd = self._dir(key, create=True)
            assert dfd is not None
            if digest != entry.oid:
                with contextlib.suppress(OSError):
                    os.unlink(tmp, dir_fd=dfd)
                self._bad.add(entry.oid)
                self.corrupt.append((entry.path, entry.oid))
                failed.append(listing)
            else:
                self._rename(entry, dfd, tmp)
            if progress:
                progress(1)

        try:
            with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
                try:
                    for entry, listing in items:
                        if entry.oid in self._bad:
                            self.corrupt.append((entry.path, entry.oid))
                            if progress:
                                progress(1)
                            continue
                        if listing.size != entry.size:
                            raise size_error(entry, listing.size)
                        key, tmp, fd = self._open_temp(entry)
                        future = pool.submit(assemble, listing, fd)
                        pending.append((entry, listing, key, tmp, fd, future))
                        while len(pending) > max(1, jobs) or (pending and pending[0][5].done()):
                            finish()
                    while pending:
                        finish()
                finally:
                    while pending:  # a failure: wait for the rest and remove their temp files
                        _entry, _listing, key, tmp, fd, future = pending.popleft()
                        with contextlib.suppress(BaseException):
                            future.result()
                        os.close(fd)
                        discard(key, tmp)
        finally:
            for listing in failed:  # the pool is done: nothing reads the cache's packs
                with contextlib.suppress(OSError, CorruptObjectError):
                    chunking.drop_chunked(self.store, listing)

    def _open_temp(self, entry: Entry) -> tuple[str, str, int]:
        """Create a new temp file beside `entry`'s final name: (directory key, its name, fd)."""
        key, _name = self._key(entry.path)
        dfd = self._dir(key, create=True)
        assert dfd is not None
        tmp = os.path.basename(temp_name("."))
        try:
            fd = os.open(tmp, _NEW_FILE, 0o666, dir_fd=dfd)
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:
                raise name_too_long(entry.path) from None
            raise
        return key, tmp, fd

    def _place(
        self, entry: Entry, fill: Callable[[int, str], None],
        done: Callable[[], bool] = lambda: True,
    ) -> None:
        key, _name = self._key(entry.path)
        dfd = self._dir(key, create=True)
        assert dfd is not None
        tmp = os.path.basename(temp_name("."))
        try:
            fill(dfd, tmp)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:
                raise name_too_long(entry.path) from None
            raise
        if done():
            self._rename(entry, dfd, tmp)

    def _rename(self, entry: Entry, dfd: int, tmp: str) -> None:
        """Rename the filled temp file `tmp` to `entry`'s name (both in `dfd`) and record it;
        on failure the temp file is removed."""
        _key, name = self._key(entry.path)
        try:
            try:
                os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            except IsADirectoryError:
                raise InvalidPathError(
                    f"{os.path.join(self.root, entry.path)} is a directory where a file is needed",
                    hint="move the directory away, then re-run",
                ) from None
            st = os.stat(name, dir_fd=dfd)  # a symlink checkout records its target's stat
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:
                raise name_too_long(entry.path) from None
            raise
        self.written.append((os.path.join(self.root, entry.path), FileStat.of(st), entry.oid))

    def _link(self, kind: str, source: Path, dfd: int, tmp: str, oid: str) -> bool:
        """Make `tmp` hold the object by `kind`; False if its bytes do not hash to `oid`."""
        if kind == "hardlink":
            os.link(source, tmp, dst_dir_fd=dfd)
            return self._verify_once(oid, lambda: _hash_at(dfd, tmp))
        if kind == "symlink":
            ok = self._verify_once(oid, lambda: hash_file(source)[0])
            if ok:
                os.symlink(os.fspath(source), tmp, dir_fd=dfd)
            return ok
        fd = os.open(tmp, _NEW_FILE, 0o666, dir_fd=dfd)
        try:
            with open(source, "rb") as src:
                if kind == "reflink":
                    import fcntl

                    fcntl.ioctl(fd, FICLONE, src.fileno())
                    return _hash_fd(fd) == oid  # what is placed is what was hashed
                digest = hashlib.sha256()  # copy: verify while copying, one pass
                while chunk := src.read(COPY_CHUNK):
                    digest.update(chunk)
                    _write_all(fd, chunk)
                return digest.hexdigest() == oid
        finally:
            os.close(fd)

    def _verify_once(self, oid: str, digest: Callable[[], str]) -> bool:
        if oid in self._verified:
            return True
        if digest() != oid:
            return False
        self._verified.add(oid)
        return True

    def _drop(self, entry: Entry) -> None:
        """A cache object that does not hash to its name: remove it so a pull re-fetches it."""
        self._bad.add(entry.oid)
        self.corrupt.append((entry.path, entry.oid))
        with contextlib.suppress(OSError):
            self.store.drop(entry.oid)


def _relative_parts(anchor: Path, root: Path) -> list[str]:
    rel = os.path.relpath(os.path.abspath(root), os.path.abspath(anchor))
    if rel == ".":
        return []
    parts = rel.split(os.sep)
    if ".." in parts:
        raise InvalidPathError(f"{root} is not inside {anchor}")
    return parts


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _hash_fd(fd: int) -> str:
    digest = hashlib.sha256()
    offset = 0
    while chunk := os.pread(fd, COPY_CHUNK, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


def _hash_at(dfd: int, name: str) -> str:
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), dir_fd=dfd)
    try:
        return _hash_fd(fd)
    finally:
        os.close(fd)


def size_error(entry: Entry, actual: int) -> ManifestError:
    return ManifestError(
        f"{entry.path}: the manifest says {entry.size} bytes but its object {entry.oid[:12]}… "
        f"has {actual} bytes (wrong size in the manifest)",
        hint="the manifest was edited or is corrupt: restore it from git, "
        "e.g. `git checkout -- .gart/artifacts/`",
    )


def name_too_long(path: str) -> InvalidPathError:
    return InvalidPathError(
        f"file name too long for this filesystem: {path[:80]}…",
        hint="shorten the path in the artifact, or check it out on a filesystem that allows it",
    )
