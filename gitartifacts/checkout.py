"""Checkout: plan what to write and delete against the working tree, refuse to lose edits,
then place the files (placer) from the cache."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gitartifacts import chunking
from gitartifacts.errors import (
    ConflictError,
    CorruptObjectError,
    GartError,
    InvalidPathError,
    ObjectNotFoundError,
)
from gitartifacts.hashing import StateCache, hash_file
from gitartifacts.ignore import IgnoreRules
from gitartifacts.manifest import Entry, Manifest
from gitartifacts.objects import (
    ObjectStore,
)
from gitartifacts.placer import Placer, name_too_long, size_error
from gitartifacts.workspace import ProgressHook, compute_digests, scan


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
    exact: bool = False,
) -> CheckoutPlan:
    """Decide per path.

    A path of the manifest whose file differs is replaced if its current bytes are
    recoverable (in the cache, or wherever `recoverable` looks) or with `force`. A file the
    manifest does not list is deleted only if its bytes are recoverable: it is then a file
    of another version of the artifact and nothing is lost. Any other file is not the
    artifact's: it is left alone, even with `force`, and never called a conflict — unless
    the caller asked for `exact` (W&B's `Artifact.checkout`: root holds the artifact, nothing
    else), which deletes every file the manifest does not list.
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
    plan.delete = sorted(path for path, oid in extras.items() if exact or oid in safe)
    if not force:
        plan.conflicts = sorted(p for p, oid in at_risk.items() if oid not in safe)
    return plan


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
            raise name_too_long(entry.path)
        location = packed.get(entry.oid)
        if location is not None:
            if location.length != entry.size:
                raise size_error(entry, location.length)
            continue
        source = loose_sources.get(entry.oid)
        if source is None:
            continue
        actual = os.stat(source).st_size
        if actual != entry.size and hash_file(source)[0] == entry.oid:
            raise size_error(entry, actual)
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
    lists: dict[str, chunking.ChunkList] = {}
    for entry in loose:
        if loose_sources[entry.oid] is None and entry.oid not in lists:
            try:
                listing = chunking.chunk_list(store, entry.oid)
            except CorruptObjectError as exc:
                raise CorruptObjectError(
                    f"{entry.path}: {exc.message} (removed from the cache)",
                    hint="run `gart pull` again to download it") from None
            if listing is not None:
                lists[entry.oid] = listing
    chunked = [e for e in loose if e.oid in lists]
    loose = [e for e in loose if e.oid not in lists]
    missing = [e.path for e in loose if loose_sources[e.oid] is None]
    if missing:
        raise ObjectNotFoundError(
            f"{len(missing)} file(s) are not in the cache: " + ", ".join(missing[:5])
            + (" …" if len(missing) > 5 else ""),
            hint="run `gart pull NAME` (or `gart fetch NAME`) to download them",
        )
    for entry in chunked:
        if lists[entry.oid].size != entry.size:
            raise size_error(entry, lists[entry.oid].size)
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
        placer.put_chunked_many([(entry, lists[entry.oid]) for entry in chunked],
                                jobs=min(4, os.cpu_count() or 1), progress=progress)
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
    exact: bool = False,
    keep: Collection[str] = (),
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
        for rel in keep:  # references not fetched here: their files are left as they are
            files.pop(rel, None)
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

    plan = plan_checkout(manifest, current, recoverable, force, exact)
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
