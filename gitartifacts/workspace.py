"""The working-tree side: scan files, hash them into the cache, compare with a manifest."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from gitartifacts import chunking
from gitartifacts.errors import (
    InvalidPathError,
)
from gitartifacts.fsutil import TEMP_PREFIX, is_temp_name
from gitartifacts.hashing import FileStat, StateCache, hash_file
from gitartifacts.ignore import IgnoreRules
from gitartifacts.manifest import Entry
from gitartifacts.objects import (
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
        hash_large = (_store_large(writer, store) if writer is not None and store is not None
                      else _hash_only)
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


def _store_large(
    writer: ObjectWriter, objects: ObjectStore
) -> Callable[[WorkFile], tuple[str, int]]:
    def store(wf: WorkFile) -> tuple[str, int]:
        if chunking.is_chunked(objects, wf.stat.size):
            return chunking.store_file(objects, Path(wf.abspath))
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
