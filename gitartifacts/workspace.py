"""The working-tree side: scan files, hash them into the cache, compare, and check out."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from gitartifacts.errors import ConflictError, InvalidPathError, ObjectNotFoundError
from gitartifacts.hashing import FileStat, StateCache, hash_file
from gitartifacts.ignore import IgnoreRules
from gitartifacts.ignore import read_ignore_file as read_ignore_file  # moved to ignore.py
from gitartifacts.manifest import Entry, Manifest
from gitartifacts.objects import (
    NO_REFLINK,
    ObjectStore,
    ObjectWriter,
    check_bytes,
    reflink,
    temp_name,
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
) -> dict[str, WorkFile]:
    """Every regular file under root/include, keyed by its path relative to root.

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
        elif current[0] != entry.oid:
            out.changed.append(entry.path)
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


def plan_checkout(
    manifest: Manifest,
    current: dict[str, tuple[str, int]],
    recoverable: Callable[[set[str]], set[str]],
    force: bool,
) -> CheckoutPlan:
    """Decide per path; a file is only replaced or deleted if its bytes are recoverable
    (already in the cache) or `force` is given."""
    plan = CheckoutPlan()
    wanted = manifest.by_path()
    at_risk: dict[str, str] = {}
    for path, entry in wanted.items():
        have = current.get(path)
        if have is None:
            plan.write.append(entry)
        elif have[0] == entry.oid:
            plan.unchanged += 1
        else:
            plan.write.append(entry)
            at_risk[path] = have[0]
    for path, (oid, _size) in current.items():
        if path not in wanted:
            plan.delete.append(path)
            at_risk[path] = oid
    if at_risk and not force:
        safe = recoverable(set(at_risk.values()))
        plan.conflicts = sorted(p for p, oid in at_risk.items() if oid not in safe)
    return plan


class Placer:
    """Puts verified object bytes at working-tree paths, atomically, never outside `root`."""

    def __init__(self, root: Path, store: ObjectStore, link_types: Sequence[str]) -> None:
        self.root = Path(root)
        self.root_real = os.path.realpath(root)
        self.store = store
        self.link_types = list(link_types)
        self._checked_dirs: set[str] = set()
        self.written: list[tuple[str, FileStat, str]] = []

    def target(self, rel: str) -> str:
        path = os.path.join(self.root, rel)
        parent = os.path.dirname(path)
        if parent not in self._checked_dirs:
            os.makedirs(parent, exist_ok=True)
            real = os.path.realpath(parent)
            if real != self.root_real and not real.startswith(self.root_real + os.sep):
                raise InvalidPathError(
                    f"refusing to write {rel}: {os.path.dirname(rel)} leads outside {self.root}",
                    hint="remove the symlinked directory from the data directory",
                )
            self._checked_dirs.add(parent)
        return path

    def put_bytes(self, entry: Entry, data: bytes) -> None:
        path = self.target(entry.path)
        tmp = temp_name(os.path.dirname(path))
        with open(tmp, "xb") as handle:
            handle.write(data)
        os.replace(tmp, path)
        self.written.append((path, FileStat.of(os.stat(path)), entry.oid))

    def put_loose(self, entry: Entry, source: Path) -> None:
        path = self.target(entry.path)
        tmp = temp_name(os.path.dirname(path))
        for kind in list(self.link_types):
            try:
                if _link(kind, source, tmp, entry.oid):
                    break
            except OSError as exc:
                if exc.errno not in NO_REFLINK and exc.errno != errno.EMLINK:
                    raise
            # This link type does not work on this filesystem: stop trying it.
            self.link_types.remove(kind)
            if os.path.lexists(tmp):
                os.unlink(tmp)
        else:
            raise OSError(f"no configured link type works for {path}")
        os.replace(tmp, path)
        self.written.append((path, FileStat.of(os.stat(path)), entry.oid))


def _link(kind: str, source: Path, tmp: str, oid: str) -> bool:
    if kind == "reflink":
        if not reflink(source, tmp):
            raise OSError(errno.EOPNOTSUPP, "reflink not supported here", str(source))
        return True
    if kind == "hardlink":
        os.link(source, tmp)
        return True
    if kind == "symlink":
        os.symlink(source, tmp)
        return True
    # copy: verify while copying so a damaged cache object never reaches the tree
    digest = hashlib.sha256()
    with open(source, "rb") as src, open(tmp, "xb") as dst:
        while chunk := src.read(1 << 20):
            digest.update(chunk)
            dst.write(chunk)
    if digest.hexdigest() != oid:
        os.unlink(tmp)
        check_bytes(oid, b"", str(source))
    return True


def execute_checkout(
    plan: CheckoutPlan,
    root: Path,
    store: ObjectStore,
    link_types: Sequence[str],
    progress: ProgressHook | None = None,
) -> Placer:
    """Apply a conflict-free plan: check all objects exist first, then delete, then write."""
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
    for rel in plan.delete:
        path = os.path.join(root, rel)
        os.unlink(path)
        _prune_empty_dirs(Path(path).parent, Path(root))
    placer = Placer(root, store, link_types)
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
    return placer


def _prune_empty_dirs(directory: Path, stop: Path) -> None:
    while directory != stop and stop in directory.parents:
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent


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
) -> CheckoutPlan:
    """Make `root` match the manifest from the store; refuses to lose unrecoverable edits."""
    current: dict[str, tuple[str, int]] = {}
    if root.exists():
        files = scan(root, manifest.include, ignore, allowed_link_roots)
        current = compute_digests(files, state, os.path.join(os.path.abspath(root), "")).digests

    def recoverable(oids: set[str]) -> set[str]:
        return oids - store.missing(oids)

    plan = plan_checkout(manifest, current, recoverable, force)
    if dry_run:
        return plan
    if plan.conflicts:
        raise ConflictError(
            f"{len(plan.conflicts)} changed file(s) would be lost: "
            + ", ".join(plan.conflicts[:5]) + (" …" if len(plan.conflicts) > 5 else ""),
            hint=f"`gart add` them first, or re-run with --force to discard them "
            f"(gart checkout {manifest.name} --force)",
        )
    root.mkdir(parents=True, exist_ok=True)
    placer = execute_checkout(plan, root, store, link_types, progress)
    state.record(placer.written)
    return plan
