"""The working-tree side: scan files, hash them into the cache, compare, and check out."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from gitartifacts.errors import (
    ConflictError,
    CorruptObjectError,
    GartError,
    InvalidPathError,
    ManifestError,
    ObjectNotFoundError,
)
from gitartifacts.fsutil import TEMP_PREFIX, is_temp_name, temp_name
from gitartifacts.hashing import FileStat, StateCache, hash_file
from gitartifacts.ignore import IgnoreRules
from gitartifacts.manifest import Entry, Manifest
from gitartifacts.objects import (
    COPY_CHUNK,
    FICLONE,
    NO_REFLINK,
    ObjectStore,
    ObjectWriter,
)
from gitartifacts.paths import CONTROL_CHARS_RE

HASH_BATCH = 256

ProgressHook = Callable[[int], None]

class WorkFile(NamedTuple):
    """A regular file found in the working tree under an artifact's root."""

    path: str  # relative to the artifact root, '/'-separated
    abspath: str
    stat: FileStat


def scan(
    root: Path,
    include: Sequence[str] = (".",),
    ignore: IgnoreRules | None = None,
    allowed_link_roots: Sequence[Path] = (),
    temps: list[str] | None = None,
) -> dict[str, WorkFile]:
    """Every regular file under root/include, keyed by its path relative to root.

    gart's own temp files (`is_temp_name`) are never reported; their paths are appended to
    `temps` when given, for checkout to remove.

    Symlinks are followed only when they point at a file inside `root` (or inside one of
    `allowed_link_roots`, e.g. the cache for symlink checkouts); any other link is refused
    by name so data never silently comes from, or goes to, outside the artifact.
    """
    root_real = os.path.realpath(root)
    link_roots = [root_real] + [os.path.realpath(p) for p in allowed_link_roots]
    found: dict[str, WorkFile] = {}
    rules = ignore or IgnoreRules(())
    stack: list[tuple[str, str]] = []
    for item in include:
        start = str(root) if item == "." else os.path.join(root, item)
        prefix = "" if item == "." else item
        try:
            st = os.lstat(start)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode):
            stack.append((start, prefix))
        elif stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
            _add_file(found, start, prefix, st, link_roots)
    filtering = bool(rules)
    new = tuple.__new__  # this loop runs once per file: plain tuple construction is cheapest
    while stack:
        directory, prefix = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except PermissionError:
            raise InvalidPathError(f"cannot read directory {directory}: permission denied",
                                   hint="fix its permissions or --exclude it") from None
        lead = f"{prefix}/" if prefix else ""
        for entry in entries:
            name = entry.name
            if name == ".git":  # a nested repository, or the gitlink file of a submodule
                continue
            rel = lead + name
            is_dir = entry.is_dir(follow_symlinks=False)
            if name.startswith(TEMP_PREFIX) and is_temp_name(name):
                if temps is not None:
                    temps.append(rel)
                continue
            if filtering and rules.ignores(rel, is_dir):
                continue
            if is_dir:
                if name == ".gart" and not prefix:
                    continue
                stack.append((entry.path, rel))
            elif entry.is_file(follow_symlinks=False):
                st = entry.stat()
                found[rel] = new(
                    WorkFile, (rel, entry.path, new(FileStat, (st.st_ino, st.st_mtime_ns,
                                                               st.st_size)))
                )
            else:
                _add_file(found, entry.path, rel, entry.stat(follow_symlinks=False), link_roots)
    _check_names(found)  # after the rules: an odd name can be --exclude'd
    return found


def _check_names(found: dict[str, WorkFile]) -> None:
    """Refuse names a manifest cannot hold; one bulk check, then find the culprit."""
    joined = "/".join(found)
    try:
        joined.encode("utf-8")
        clean = CONTROL_CHARS_RE.search(joined) is None
    except UnicodeEncodeError:
        clean = False
    if not clean:
        for rel, wf in found.items():
            _check_name(rel, wf.abspath)


def _check_name(rel: str, abspath: str) -> None:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(abspath).decode("utf-8", "backslashreplace")
        raise InvalidPathError(
            f"file name is not valid UTF-8: {shown}",
            hint="rename the file (manifests store UTF-8 paths) or exclude it with --exclude",
        ) from None
    if CONTROL_CHARS_RE.search(rel):  # refused by the manifest: say so before hashing
        raise InvalidPathError(
            f"file name contains control characters: {abspath!r}",
            hint="rename the file or exclude it with --exclude",
        )


def _add_file(
    found: dict[str, WorkFile], abspath: str, rel: str, st: os.stat_result, link_roots: list[str]
) -> None:
    if stat.S_ISREG(st.st_mode):
        found[rel] = WorkFile(rel, abspath, FileStat.of(st))
        return
    if stat.S_ISLNK(st.st_mode):
        target = os.path.realpath(abspath)
        inside = any(target == r or target.startswith(r + os.sep) for r in link_roots)
        if inside and os.path.isfile(target):
            found[rel] = WorkFile(rel, abspath, FileStat.of(os.stat(abspath)))
            return
        raise InvalidPathError(
            f"symlink {abspath} points outside the data directory (or at a directory)",
            hint="replace the link with the file itself, or exclude it with --exclude",
        )
    raise InvalidPathError(f"{abspath} is not a regular file (fifo, socket or device)")


@dataclass
class HashResult:
    """Digests of scanned files, and what it cost to get them."""

    digests: dict[str, tuple[str, int]]  # relpath -> (oid, size)
    hashed: int = 0  # files actually read
    stored: int = 0  # objects newly written to the cache


def compute_digests(
    files: dict[str, WorkFile],
    state: StateCache,
    state_prefix: str,
    store: ObjectStore | None = None,
    progress: ProgressHook | None = None,
    jobs: int = 4,
) -> HashResult:
    """Digest every file, re-reading only files whose (inode, mtime, size) changed.

    With `store`, each object the store lacks is written into it in the same read: small
    files go into one new pack, large ones are copied in while hashed (one pass).
    """
    known = state.lookup_under(state_prefix)
    result = HashResult({})
    digests = result.digests
    to_read: list[WorkFile] = []
    lookup = known.get
    for rel, path, st in files.values():  # hot loop: one pass per file, locals only
        cached = lookup(path)
        if cached is not None and cached[0] == st:
            digests[rel] = (cached[1], st[2])
        else:
            to_read.append(WorkFile(rel, path, st))
    if store is not None:
        needed = {result.digests[rel][0] for rel in result.digests}
        absent = store.missing(needed)
        if absent:  # digests known but objects gone from the cache: read those files too
            keep = [wf for wf in files.values() if result.digests.get(wf.path, ("",))[0] in absent]
            to_read.extend(keep)
    if progress and len(files) > len(to_read):
        progress(len(files) - len(to_read))
    if not to_read:
        if not state.last_from_snapshot:
            _save_snapshot(state, state_prefix, files, digests)
        return result
    threshold = store.pack_threshold if store is not None else 1 << 20
    small = [wf for wf in to_read if wf.stat.size < threshold]
    large = [wf for wf in to_read if wf.stat.size >= threshold]
    from concurrent.futures import ThreadPoolExecutor  # only when something must be read

    fresh: list[tuple[str, FileStat, str]] = []
    writer = store.writer() if store is not None else None
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        batches = [small[i : i + HASH_BATCH] for i in range(0, len(small), HASH_BATCH)]
        for batch in pool.map(_read_batch, batches):
            for wf, oid, data in batch:
                result.digests[wf.path] = (oid, len(data))
                fresh.append((wf.abspath, _restat(wf, len(data)), oid))
                if writer is not None and store is not None:
                    writer.add_bytes(oid, data)
            if progress:
                progress(len(batch))
        hash_large = _store_large(writer) if writer is not None else _hash_only
        for wf, (oid, size) in zip(large, pool.map(hash_large, large), strict=True):
            result.digests[wf.path] = (oid, size)
            fresh.append((wf.abspath, _restat(wf, size), oid))
            if progress:
                progress(1)
    if writer is not None:
        writer.flush()
        result.stored = writer.objects_written
    result.hashed = len(to_read)
    state.record(fresh)
    _save_snapshot(state, state_prefix, files, digests)
    return result


def _save_snapshot(
    state: StateCache, prefix: str, files: dict[str, WorkFile], digests: dict[str, tuple[str, int]]
) -> None:
    """Keep this complete scan as the tree's snapshot, unless a file changed while read."""
    entries = {}
    for rel, path, st in files.values():
        digest = digests.get(rel)
        if digest is None or digest[1] != st[2]:
            return  # a file changed under us: do not remember this tree
        entries[path] = (st, digest[0])
    state.save_snapshot(prefix, entries)


def _restat(wf: WorkFile, size_read: int) -> FileStat:
    # A file that changed while we read it must not be remembered as hashed.
    return wf.stat if size_read == wf.stat.size else FileStat(-1, -1, -1)


def _read_batch(batch: list[WorkFile]) -> list[tuple[WorkFile, str, bytes]]:
    out = []
    for wf in batch:
        with open(wf.abspath, "rb") as handle:
            data = handle.read()
        out.append((wf, hashlib.sha256(data).hexdigest(), data))
    return out


def _hash_only(wf: WorkFile) -> tuple[str, int]:
    return hash_file(wf.abspath)


def _store_large(writer: ObjectWriter) -> Callable[[WorkFile], tuple[str, int]]:
    def store(wf: WorkFile) -> tuple[str, int]:
        return writer.add_file(Path(wf.abspath))

    return store


@dataclass
class Comparison:
    """Working tree vs manifest, path by path."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0

    @property
    def clean(self) -> bool:
        return not (self.added or self.changed or self.removed)


def compare(entries: Iterable[Entry], digests: dict[str, tuple[str, int]]) -> Comparison:
    """Classify each path as added, changed, removed or unchanged."""
    out = Comparison()
    seen = set()
    for entry in entries:
        seen.add(entry.path)
        current = digests.get(entry.path)
        if current is None:
            out.removed.append(entry.path)
        elif current[0] != entry.oid or current[1] != entry.size:
            out.changed.append(entry.path)  # a size the bytes do not have is no match
        else:
            out.unchanged += 1
    out.added = sorted(set(digests) - seen)
    return out


# -- checkout ------------------------------------------------------------------------------


@dataclass
class CheckoutPlan:
    """What a checkout will write and delete, and what it refuses to touch."""

    write: list[Entry] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    unchanged: int = 0
    temps: list[str] = field(default_factory=list)  # gart temp files left by killed runs


def plan_checkout(
    manifest: Manifest,
    current: dict[str, tuple[str, int]],
    recoverable: Callable[[set[str]], set[str]],
    force: bool,
) -> CheckoutPlan:
    """Decide per path.

    A path of the manifest whose file differs is replaced if its current bytes are
    recoverable (in the cache, or wherever `recoverable` looks) or with `force`. A file the
    manifest does not list is deleted only if its bytes are recoverable: it is then a file
    of another version of the artifact and nothing is lost. Any other file is not the
    artifact's: it is left alone, even with `force`, and never called a conflict.
    """
    plan = CheckoutPlan()
    wanted = manifest.by_path()
    at_risk: dict[str, str] = {}
    for path, entry in wanted.items():
        have = current.get(path)
        if have is None:
            plan.write.append(entry)
        elif have[0] == entry.oid and have[1] == entry.size:
            plan.unchanged += 1
        else:
            plan.write.append(entry)
            at_risk[path] = have[0]
    extras = {path: oid for path, (oid, _size) in current.items() if path not in wanted}
    asked = set(extras.values()) | (set() if force else set(at_risk.values()))
    safe = recoverable(asked) if asked else set()
    plan.delete = sorted(path for path, oid in extras.items() if oid in safe)
    if not force:
        plan.conflicts = sorted(p for p, oid in at_risk.items() if oid not in safe)
    return plan


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
            raise _size_error(entry, len(data))

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

    def _place(
        self, entry: Entry, fill: Callable[[int, str], None],
        done: Callable[[], bool] = lambda: True,
    ) -> None:
        key, name = self._key(entry.path)
        dfd = self._dir(key, create=True)
        assert dfd is not None
        tmp = os.path.basename(temp_name("."))
        try:
            fill(dfd, tmp)
            if not done():
                return
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
                raise _name_too_long(entry.path) from None
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


def _size_error(entry: Entry, actual: int) -> ManifestError:
    return ManifestError(
        f"{entry.path}: the manifest says {entry.size} bytes but its object {entry.oid[:12]}… "
        f"has {actual} bytes (wrong size in the manifest)",
        hint="the manifest was edited or is corrupt: restore it from git, "
        "e.g. `git checkout -- .gart/artifacts/`",
    )


def _name_too_long(path: str) -> InvalidPathError:
    return InvalidPathError(
        f"file name too long for this filesystem: {path[:80]}…",
        hint="shorten the path in the artifact, or check it out on a filesystem that allows it",
    )


def _preflight(plan: CheckoutPlan, store: ObjectStore, root: Path,
               loose_sources: dict[str, Path | None]) -> None:
    """Refuse, before anything is written, entries whose bytes cannot be placed as listed:
    a name too long, or a size that differs from its object's (the manifest lies)."""
    try:
        name_max = os.pathconf(root if root.exists() else root.parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    packed = store.packed
    for entry in plan.write:
        if any(len(os.fsencode(part)) > name_max for part in entry.path.split("/")):
            raise _name_too_long(entry.path)
        location = packed.get(entry.oid)
        if location is not None:
            if location.length != entry.size:
                raise _size_error(entry, location.length)
            continue
        source = loose_sources.get(entry.oid)
        if source is None:
            continue
        actual = os.stat(source).st_size
        if actual != entry.size and hash_file(source)[0] == entry.oid:
            raise _size_error(entry, actual)
        # a size mismatch with bytes that do not hash to the oid is a corrupt cache object:
        # the placer's hash check finds and drops it


def execute_checkout(
    plan: CheckoutPlan,
    root: Path,
    store: ObjectStore,
    link_types: Sequence[str],
    progress: ProgressHook | None = None,
    anchor: Path | None = None,
    placer: Placer | None = None,
) -> Placer:
    """Apply a conflict-free plan: check all objects first, then delete, then write.

    Objects found corrupt are not placed, removed from the cache, and reported together
    (CorruptObjectError) after everything else was placed; `placer.written` lists what was."""
    assert not plan.conflicts, "callers refuse plans with conflicts"
    packed = store.packed
    loose: list[Entry] = []
    in_pack: list[Entry] = []
    for entry in plan.write:
        (in_pack if entry.oid in packed else loose).append(entry)
    loose_sources = {e.oid: store.loose_path(e.oid) for e in loose}
    missing = [e.path for e in loose if loose_sources[e.oid] is None]
    if missing:
        raise ObjectNotFoundError(
            f"{len(missing)} file(s) are not in the cache: " + ", ".join(missing[:5])
            + (" …" if len(missing) > 5 else ""),
            hint="run `gart pull NAME` (or `gart fetch NAME`) to download them",
        )
    _preflight(plan, store, root, loose_sources)
    placer = placer or Placer(root, store, link_types, anchor)
    try:
        placer.make_root()
        for rel in plan.temps:
            placer.remove(rel)
        for rel in plan.delete:
            placer.remove(rel)
        by_oid: dict[str, list[Entry]] = {}
        for entry in in_pack:
            by_oid.setdefault(entry.oid, []).append(entry)
        for oid, data in store.read_packed(by_oid):
            for entry in by_oid[oid]:
                placer.put_bytes(entry, data)
                if progress:
                    progress(1)
        for entry in loose:
            source = loose_sources[entry.oid]
            assert source is not None
            placer.put_loose(entry, source)
            if progress:
                progress(1)
    finally:
        placer.close()
    return placer


def _corrupt_error(corrupt: list[tuple[str, str]], name: str) -> CorruptObjectError:
    shown = ", ".join(f"{path} ({oid[:12]}…)" for path, oid in corrupt[:5])
    more = " …" if len(corrupt) > 5 else ""
    return CorruptObjectError(
        f"{len(corrupt)} cache object(s) are corrupt and were not placed (removed from the "
        f"cache): {shown}{more}",
        hint=f"run `gart pull {name}` to download them again",
    )


def _check_target_root(root: Path) -> None:
    """A checkout root must not be, contain or sit inside a repository's .git or .gart."""
    absolute = os.path.abspath(root)
    for part in Path(absolute).parts:
        if part in (".git", ".gart"):
            raise InvalidPathError(
                f"refusing to check out into {root}: it is inside {part}",
                hint="check out into a data directory, e.g. --to exports/NAME",
            )
    for inner in (".git", ".gart"):
        if os.path.lexists(os.path.join(absolute, inner)):
            raise InvalidPathError(
                f"refusing to check out into {root}: it is a repository root (it holds {inner})",
                hint="check out into a data directory, e.g. --to exports/NAME",
            )


def checkout(
    manifest: Manifest,
    root: Path,
    store: ObjectStore,
    state: StateCache,
    link_types: Sequence[str],
    ignore: IgnoreRules,
    force: bool = False,
    progress: ProgressHook | None = None,
    dry_run: bool = False,
    allowed_link_roots: Sequence[Path] = (),
    anchor: Path | None = None,
    recoverable_elsewhere: Callable[[set[str]], set[str]] | None = None,
) -> CheckoutPlan:
    """Make `root` match the manifest from the store; refuses to lose unrecoverable edits.

    `anchor` is the directory the caller trusts (the repository root for an artifact's own
    path; default `root` itself): no component below it may be a symlink. A file's bytes
    count as recoverable when the cache has them, or `recoverable_elsewhere` says so (pull:
    the remote has them)."""
    _check_target_root(root)
    probe = Placer(root, store, link_types, anchor)
    try:
        exists = probe.root_exists()  # refuses a symlinked component before anything is read
    finally:
        probe.close()
    current: dict[str, tuple[str, int]] = {}
    temps: list[str] = []
    if exists:
        files = scan(root, manifest.include, ignore, allowed_link_roots, temps=temps)
        current = compute_digests(files, state, os.path.join(os.path.abspath(root), "")).digests

    def recoverable(oids: set[str]) -> set[str]:
        safe = oids - store.missing(oids)
        rest = oids - safe
        if rest and recoverable_elsewhere is not None:
            try:
                safe |= recoverable_elsewhere(rest)
            except GartError:
                pass  # cannot tell: treat as unrecoverable, the safe answer
        return safe

    plan = plan_checkout(manifest, current, recoverable, force)
    plan.temps = temps
    if dry_run:
        return plan
    if plan.conflicts:
        raise ConflictError(
            f"{len(plan.conflicts)} changed file(s) would be lost: "
            + ", ".join(plan.conflicts[:5]) + (" …" if len(plan.conflicts) > 5 else ""),
            hint=f"`gart add` them first, or re-run with --force to discard them "
            f"(gart checkout {manifest.name} --force)",
        )
    placer = Placer(root, store, link_types, anchor)
    try:
        execute_checkout(plan, root, store, link_types, progress, anchor, placer)
    finally:
        state.record(placer.written)  # what was placed is known, even after a failure
    if placer.corrupt:
        raise _corrupt_error(placer.corrupt, manifest.name)
    return plan
