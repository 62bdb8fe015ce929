"""Integrity room: `gart gc` (cache and remote) and `gart fsck --remote`, and the locks that make
them safe beside add, pull and push.

What is live (docs/reliability.md): every manifest in the working tree, in any commit
reachable from a local or remote-tracking branch, and at every version and alias tag. With
`keep_versions=N` only the branch tips, the aliases and the newest N versions of each
artifact count; versions older than that lose their bytes and are recorded on the remote
under `pruned/<digest>` so fsck reports them as pruned, not broken.

Safety against concurrent commands:
- the local cache: commands that write or read objects hold a shared flock on
  the cache directory, gc an exclusive one (the kernel drops it when a process dies);
- a remote: `gart push` holds a shared lock object `locks/shared-…`, `gart gc --remote` an
  exclusive `locks/exclusive-…` (storeops.StoreLock), so gc never decides while a push sits
  between "the remote already has this object" and publishing the version; a push that
  waited for a gc re-checks what the remote has and uploads again what gc removed;
- a grace period (default 1 h): nothing written more recently is deleted, which covers
  writers that take no lock (older gart versions, `--no-publish` uploads waiting for a commit).
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from gitartifacts import manifest as manifestmod
from gitartifacts import testhooks
from gitartifacts.aliases import Registry, Resolved, check_digest
from gitartifacts.config import GART_DIR
from gitartifacts.errors import (
    CorruptObjectError,
    GartError,
    ManifestError,
    ObjectNotFoundError,
    UsageError,
)
from gitartifacts.manifest import Manifest
from gitartifacts.objects import ObjectStore, loose_key
from gitartifacts.packformat import PACK_MAGIC, names_by_pack_hash
from gitartifacts.paths import VERSION_RE
from gitartifacts.storeops import (
    CacheLock,
    StoreLock,
    Survey,
    plan_sweep,
    read_objects,
    remove_dead_temps,
    survey,
    sweep,
    with_chunks,
)
from gitartifacts.sync import PushResult, Sync

PRUNED = "pruned"
DEFAULT_GRACE = 3600.0
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """`90`, `30s`, `15m`, `1h`, `2d`, `1w` -> seconds."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise UsageError(f"bad duration {text!r}", hint="use e.g. 0, 90s, 15m, 1h, 2d")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_sample(text: str | None) -> tuple[float | None, int | None]:
    """`5%` -> (0.05, None); `200` -> (None, 200); None -> everything."""
    if text is None:
        return None, None
    value = text.strip()
    try:
        if value.endswith("%"):
            share = float(value[:-1]) / 100
            if not 0 < share <= 1:
                raise ValueError(value)
            return share, None
        count = int(value)
        if count < 1:
            raise ValueError(value)
        return None, count
    except ValueError:
        raise UsageError(f"bad --sample {text!r}", hint="use a share such as 5% or a count "
                         "such as 200") from None


def parse_keep(text: str | None) -> int | None:
    """`all`/None -> None (keep every version); `N` -> N >= 1."""
    if text is None or text.strip().lower() == "all":
        return None
    if not text.strip().isdigit() or int(text) < 1:
        raise UsageError(f"bad --keep-versions {text!r}", hint="use a number >= 1, or all")
    return int(text)


@dataclass
class Roots:
    """The manifests that keep objects alive, and where each oid is referenced from."""

    manifests: dict[str, Manifest] = field(default_factory=dict)  # "where" -> manifest
    pruned: dict[str, Manifest] = field(default_factory=dict)  # versions dropped (keep-versions)
    problems: list[str] = field(default_factory=list)  # tags that lie about their manifest

    def live(self) -> set[str]:
        return {e.oid for m in self.manifests.values() for e in m.entries}

    def referenced(self) -> dict[str, str]:
        """oid -> the first `where:path` that refers to it."""
        out: dict[str, str] = {}
        for where, m in sorted(self.manifests.items(), key=lambda i: (" " in i[0], i[0])):
            for e in m.entries:
                out.setdefault(e.oid, f"{where}:{e.path}")
        return out


@dataclass
class StoreGc:
    """What gc did (or, dry, would do) to one store."""

    store: str
    objects: int = 0
    bytes: int = 0
    packs_deleted: int = 0
    packs_repacked: int = 0
    loose_deleted: int = 0
    orphans: int = 0
    kept_young: int = 0
    items: list[str] = field(default_factory=list)  # keys removed (or to remove)


@dataclass
class GcResult:
    dry_run: bool
    live_manifests: int
    live_objects: int
    stores: list[StoreGc] = field(default_factory=list)
    pruned_versions: list[str] = field(default_factory=list)


@dataclass
class FsckReport:
    """`gart fsck --remote`: what was checked, what is wrong, what was repaired."""

    remote: str
    referenced: int = 0
    present: int = 0
    verified: int = 0
    verified_bytes: int = 0
    packs: int = 0
    problems: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    found: list[str] = field(default_factory=list)  # with repair: the problems before it


class Integrity(Sync):
    """gc, remote fsck, and the locks that keep them from racing add, pull and push."""

    _cache_lock_obj: CacheLock | None = None

    # -- locking around the commands that touch objects ----------------------------------

    @contextlib.contextmanager
    def cache_locked(self, exclusive: bool = False) -> Iterator[None]:
        """Hold the cache's flock (shared: add, pull, push, checkout; exclusive: gc)."""
        if self._cache_lock_obj is None:
            self._cache_lock_obj = CacheLock(self.config.cache_path)
        lock = self._cache_lock_obj
        lock.acquire(exclusive)
        if lock.depth == 1 and self.config.cache_path.is_dir():
            remove_dead_temps(self.cache)  # a killed command's temporaries go now
        try:
            yield
        finally:
            lock.release()

    def add(self, *args: Any, **kwargs: Any) -> Any:
        with self.cache_locked():
            return super().add(*args, **kwargs)

    def save(self, *args: Any, **kwargs: Any) -> Any:
        with self.cache_locked():
            return super().save(*args, **kwargs)

    def fetch(self, *args: Any, **kwargs: Any) -> Any:
        with self.cache_locked():
            return super().fetch(*args, **kwargs)

    def pull(self, *args: Any, **kwargs: Any) -> Any:
        with self.cache_locked():
            return super().pull(*args, **kwargs)

    def checkout(self, *args: Any, **kwargs: Any) -> Any:
        with self.cache_locked():
            return super().checkout(*args, **kwargs)

    def push(
        self,
        names: Sequence[str] | None = None,
        remote: str | None = None,
        jobs: int | None = None,
        progress: Callable[[int], None] | None = None,
        publish: bool = True,
        aliases: Sequence[str] = (),
        force: bool = False,
        publish_anyway: bool = False,
    ) -> PushResult:
        """Sync.push under a shared lock on the cache and on the remote, so a gc can never
        delete an object between "the remote has it" and the version being published."""
        store = self.remote_store(remote)
        with self.cache_locked(), StoreLock(store, exclusive=False, command="push"):
            remove_dead_temps(store)
            return super().push(names, remote, jobs, progress, publish, aliases, force,
                                publish_anyway)

    # -- what is live ----------------------------------------------------------------------

    def roots(self, keep_versions: int | None = None, fetch: bool = True,
              working: bool = True, history: bool = True) -> Roots:
        """The live manifests (module docstring). `fetch` first updates tags and
        remote-tracking branches from origin; a manifest that does not parse stops gc."""
        out = Roots()
        registry = Registry(self.git)
        if fetch and registry.remote is not None:
            self.git.fetch_tags("*", remote=registry.remote)
            with contextlib.suppress(GartError):  # tags are what must be current
                self.git.fetch_branches(registry.remote)
        if working:
            for name in self.artifact_names():
                out.manifests[f"{name} (working tree)"] = self.load_manifest(name)
        prefix = f"{GART_DIR}/artifacts"
        blobs = self.git.files_under(prefix, history=history and keep_versions is None)
        for sha, paths in blobs.items():
            path = sorted(paths)[0]
            manifest = self._parse(self.git.read_blob(sha), f"{path} (blob {sha[:12]})")
            out.manifests[f"{manifest.name} (branch, blob {sha[:12]})"] = manifest
        for name in self._tagged_names():
            versions = registry.versions(name)
            kept = versions if keep_versions is None else versions[-keep_versions:]
            kept_labels = {v.label for v in kept}
            aliases = registry.aliases(name)
            for alias in sorted(aliases):
                resolved = registry.resolve(name, alias)
                if resolved is not None:
                    self._tag_root(out, name, alias, resolved)
                    if resolved.version is not None:
                        kept_labels.add(resolved.version.label)
            for version in versions:
                resolved = Resolved(name, version.label, version.commit, version)
                if version.label in kept_labels:
                    self._tag_root(out, name, version.label, resolved)
                else:
                    manifest = self._tag_manifest(out, name, version.label, resolved)
                    if manifest is not None:
                        out.pruned[f"{name}@{version.label}"] = manifest
        return out

    def _parse(self, data: bytes, what: str) -> Manifest:
        """Parse a manifest once per content (tags and branches share most of them), through
        the machine-private parse cache keyed by the bytes' sha256."""
        memo: dict[bytes, Manifest] = self.__dict__.setdefault("_parse_memo", {})
        key = hashlib.sha256(data).digest()
        if key not in memo:
            memo[key] = manifestmod.loads_cached(data, what, self._parsed_manifests)
        return memo[key]

    def _tagged_names(self) -> list[str]:
        names = set()
        for tag in self.git.list_tags(""):
            name, at, ref = tag.rpartition("@")
            if at and name and "/" not in ref:
                names.add(name)
        return sorted(names)

    def _tag_root(self, out: Roots, name: str, ref: str, resolved: Resolved) -> None:
        manifest = self._tag_manifest(out, name, ref, resolved)
        if manifest is not None:
            out.manifests[f"{name}@{ref}"] = manifest

    def _tag_manifest(self, out: Roots, name: str, ref: str, resolved: Resolved
                      ) -> Manifest | None:
        relpath = f"{GART_DIR}/artifacts/{name}.yaml"
        try:
            data = self.git.read_file(resolved.commit, relpath)
        except GartError as exc:
            out.problems.append(f"{name}@{ref}: {exc.message}")
            return None
        if data is None:
            out.problems.append(
                f"{name}@{ref}: its commit {resolved.commit[:12]} has no {relpath}")
            return None
        manifest = self._parse(data, f"{name}@{ref}:{relpath}")
        try:
            check_digest(resolved, manifest)
        except ManifestError as exc:
            out.problems.append(exc.message)
        return manifest

    # -- gc ----------------------------------------------------------------------------------

    def gc(
        self,
        remote: str | None = None,
        dry_run: bool = False,
        keep_versions: int | None = None,
        grace: float = DEFAULT_GRACE,
        cache: bool = True,
        progress: Callable[[int], None] | None = None,
    ) -> GcResult:
        """Remove objects no live manifest refers to from the cache and, when `remote` is
        given, from that remote. Packs that are partly garbage are repacked. Nothing written
        less than `grace` seconds ago is deleted."""
        store = self.remote_store(remote) if remote is not None else None
        with contextlib.ExitStack() as stack:
            if not dry_run:
                if cache:
                    stack.enter_context(self.cache_locked(exclusive=True))
                if store is not None:
                    stack.enter_context(StoreLock(store, exclusive=True, command="gc"))
            # Roots are read only now, under the locks: every push that saw an object on
            # the remote has published its version (or not started).
            roots = self.roots(keep_versions=keep_versions, fetch=store is not None)
            if roots.problems:
                raise ManifestError(
                    f"gc stopped: {roots.problems[0]}"
                    + (f" (and {len(roots.problems) - 1} more)" if len(roots.problems) > 1 else ""),
                    hint="run `gart fsck --remote` for the full list; nothing was deleted")
            live = roots.live()
            cutoff = time.time() - grace
            result = GcResult(dry_run, len(roots.manifests), len(live))
            result.pruned_versions = sorted(roots.pruned)
            if cache:
                result.stores.append(self._gc_store(self.cache, live, cutoff, dry_run, progress))
            if store is not None:
                if not dry_run:
                    self._record_pruned(store, roots)
                result.stores.append(self._gc_store(store, live, cutoff, dry_run, progress))
        return result

    def _gc_store(self, store: ObjectStore, live: set[str], cutoff: float, dry_run: bool,
                  progress: Callable[[int], None] | None) -> StoreGc:
        found = survey(store)
        live = set(with_chunks(store, found, dict.fromkeys(live, "")))
        plan = plan_sweep(found, live, cutoff)
        out = StoreGc(store.describe(), plan.objects_freed, plan.bytes_freed,
                      len(plan.packs), len(plan.repack), len(plan.loose), len(plan.orphans),
                      plan.kept_young)
        out.items = ([f"packs/{p}.pack" for p in [*plan.packs, *plan.repack]]
                     + [loose_key(o) for o in plan.loose] + plan.orphans)
        if dry_run:
            return out
        testhooks.pause("gc-sweep" if store is not self.cache else "gc-sweep-cache")
        if plan.empty:
            return out
        sweep(store, found, plan, progress)
        return out

    def _record_pruned(self, store: ObjectStore, roots: Roots) -> None:
        """Mark versions whose bytes gc drops (keep-versions), so fsck tells them apart."""
        live_digests = {m.digest for m in roots.manifests.values()}
        for manifest in roots.pruned.values():
            if manifest.digest not in live_digests:
                testhooks.hit()
                store.backend.write(f"{PRUNED}/{manifest.digest.partition(':')[2]}", b"")

    # -- fsck --remote -----------------------------------------------------------------------

    def fsck_remote(
        self,
        remote: str | None = None,
        sample: str | None = None,
        repair: bool = False,
        jobs: int | None = None,
        seed: int | None = None,
    ) -> FsckReport:
        """Check a remote against what is published: every object referenced by a version,
        alias or remote-tracking branch exists; all of them (or a random sample) re-read and
        re-hashed, packs by byte ranges; tags agree with their manifests; indexes agree with
        their packs. `repair` re-uploads what the local cache still has."""
        share, count = parse_sample(sample)
        store = self.remote_store(remote)
        report = FsckReport(store.describe())
        roots = self.roots(fetch=True, working=False, history=False)
        report.problems += roots.problems
        pruned_digests = set(store.backend.list(PRUNED))
        for where, manifest in sorted(roots.manifests.items()):
            ref = where.rpartition("@")[2]
            if VERSION_RE.fullmatch(ref) and manifest.digest.partition(":")[2] in pruned_digests:
                del roots.manifests[where]  # gc --keep-versions let its bytes go, on purpose
                report.pruned.append(where)
        found = survey(store)
        referenced = with_chunks(store, found, roots.referenced())
        report.packs = len(found.packs)
        report.problems += [why for _pack, why in sorted(found.refused.items())]
        report.referenced = len(referenced)
        present = found.present()
        missing = sorted(set(referenced) - present)
        report.present = len(referenced) - len(missing)
        report.problems += [f"object {oid} is missing ({referenced[oid]})" for oid in missing]
        # a chunk list is checked through its chunks (they are referenced too), not as bytes
        chosen = sorted(set(referenced) & present - set(found.chunk_lists))
        if share is not None or count is not None:
            rng = random.Random(seed)
            size = max(1, round(len(chosen) * share)) if share is not None else count or 0
            chosen = sorted(rng.sample(chosen, min(size, len(chosen))))
        corrupt = self._verify_objects(store, found, chosen, share is None and count is None,
                                       jobs or self.config.jobs, report)
        report.problems += [f"object {oid} is corrupt on the remote ({reason}; "
                            f"{referenced.get(oid, 'unreferenced')})"
                            for oid, reason in sorted(corrupt.items())]
        if repair and (missing or corrupt):
            self._repair(store, found, set(missing) | set(corrupt), corrupt, report)
            again = self.fsck_remote(remote, sample=sample, jobs=jobs, seed=seed)
            again.repaired, again.found = report.repaired, report.problems
            return again
        return report

    def _verify_objects(self, store: ObjectStore, found: Survey, oids: list[str],
                        everything: bool, jobs: int, report: FsckReport) -> dict[str, str]:
        """Re-read and re-hash `oids` (every pack whole when `everything`); returns the
        corrupt ones (oid -> reason) and adds unusable packs to the report's problems."""
        where = found.where()
        by_pack: dict[str, list[str]] = {}
        loose: list[str] = []
        for oid in oids:
            loc = where.get(oid)
            if loc is not None:
                by_pack.setdefault(loc.pack_id, []).append(oid)
            else:
                loose.append(oid)
        if everything:
            for pack_id in found.rows:
                by_pack.setdefault(pack_id, [])
        corrupt: dict[str, str] = {}

        def check_pack(pack_id: str) -> tuple[int, int, dict[str, str], list[str]]:
            rows = found.rows[pack_id]
            key = f"packs/{pack_id}.pack"
            bad: dict[str, str] = {}
            if everything:
                data = store.backend.read(key)
                # A format-2 pack's name is its index's hash (checked when the index was
                # read), and the layout and the objects are checked here.
                whole = (data.startswith(PACK_MAGIC)
                         and (not names_by_pack_hash(store.index_bytes(pack_id))
                              or hashlib.sha256(data).hexdigest() == pack_id))
                notes = [] if whole else [
                    f"pack {pack_id}.pack is damaged (its header, or its whole-pack hash)"]
                for oid, loc in rows.items():
                    piece = data[loc.offset: loc.offset + loc.length]
                    if hashlib.sha256(piece).hexdigest() != oid:
                        bad[oid] = f"{key}"
                return len(rows), len(data), bad, notes
            total = 0
            try:
                for _oid, piece in read_objects(store, rows, by_pack[pack_id]):
                    total += len(piece)
            except CorruptObjectError:  # find each bad one: re-read the span object by object
                for oid in by_pack[pack_id]:
                    try:
                        list(read_objects(store, rows, [oid]))
                    except CorruptObjectError:
                        bad[oid] = key
            return len(by_pack[pack_id]), total, bad, []

        def check_loose(oid: str) -> tuple[int, int, dict[str, str], list[str]]:
            data = store.backend.read(loose_key(oid))
            if hashlib.sha256(data).hexdigest() != oid:
                return 1, len(data), {oid: loose_key(oid)}, []
            return 1, len(data), {}, []

        tasks: list[Callable[[], tuple[int, int, dict[str, str], list[str]]]] = [
            (lambda p=p: check_pack(p)) for p in sorted(by_pack)]
        tasks += [(lambda o=o: check_loose(o)) for o in loose]
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = [pool.submit(task) for task in tasks]
            for future in futures:
                try:
                    n, size, bad, notes = future.result()
                except ObjectNotFoundError as exc:
                    report.problems.append(f"{exc.message} (deleted while fsck ran?)")
                    continue
                report.verified += n - len(bad)
                report.verified_bytes += size
                corrupt.update(bad)
                report.problems += notes
        return corrupt

    def _repair(self, store: ObjectStore, found: Survey, wanted: set[str],
                corrupt: dict[str, str], report: FsckReport) -> None:
        """Put back what the cache has: damaged packs are rewritten without their bad
        objects (healthy ones move to a new pack), corrupt loose objects deleted, then the
        missing objects uploaded from the cache (verified on the way out)."""
        from gitartifacts import transfer
        from gitartifacts.storeops import SweepPlan

        available = wanted - self.cache.missing(wanted)
        if not available:
            report.problems.append(
                f"--repair: none of the {len(wanted)} damaged object(s) is in the local cache; "
                "push them from a clone that has them")
            return
        with self.cache_locked(), StoreLock(store, exclusive=True, command="fsck --repair"):
            plan = SweepPlan()
            for oid in corrupt:
                if oid not in available:
                    continue
                loc = found.where().get(oid)
                if loc is None:
                    plan.loose.append(oid)
                    continue
                rows = found.rows[loc.pack_id]
                keep = [o for o in rows if o not in corrupt]
                plan.repack.setdefault(loc.pack_id, keep)
            empty = [p for p, keep in plan.repack.items() if not keep]
            for pack_id in empty:
                del plan.repack[pack_id]
                plan.packs.append(pack_id)
            if not plan.empty:
                sweep(store, found, plan)
            store.refresh()
            result = transfer.push(self.cache, store, available, self.config.jobs)
        for oid in sorted(available):
            if oid not in result.failed:
                report.repaired.append(oid)
        report.problems += [f"--repair: {oid}: {why}" for oid, why in sorted(result.failed.items())]
