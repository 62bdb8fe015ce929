"""Drafts: a new version built from a published manifest plus and minus entries.

W&B's `new_draft()` / `remove()` and the CLI's `gart add --incremental` / `gart rm`. The new
manifest is the base's entry list with files added (hashed into the cache) and paths or
prefixes removed: no old byte is read, hashed, downloaded or uploaded, so it works in a fresh
clone holding only manifests and tags, and the artifact's working folder is never touched.

A draft remembers where it started (`.gart/tmp/.../drafts/`, a local cache): the base version
and the newest version this clone knew of. Publishing a draft after someone else published a
newer version is refused, with both ways out spelled out: rebase the draft onto the new
latest (`gart rebase NAME`, `draft.rebase()`), or publish anyway as the old base's content
plus your changes (`gart push --publish-anyway`, `draft.publish_anyway()`).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitartifacts.aliases import Version
from gitartifacts.errors import ArtifactNotFoundError, ConflictError, GartError, UsageError
from gitartifacts.fsutil import atomic_write
from gitartifacts.hashing import FileStat
from gitartifacts.ignore import IgnoreRules
from gitartifacts.integrity import Integrity
from gitartifacts.manifest import Entry, Manifest
from gitartifacts.paths import check_relative_path
from gitartifacts.storeops import StoreLock
from gitartifacts.sync import _transfer_error
from gitartifacts.tracking import Artifact
from gitartifacts.workspace import WorkFile, compute_digests, scan

if TYPE_CHECKING:
    from gitartifacts.objects import ObjectStore
    from gitartifacts.repocore import ProgressHook
    from gitartifacts.transfer import TransferResult

__all__ = ["BaseMovedError", "Draft", "DraftRecord", "DraftResult", "Drafts",
           "MissingPathError", "apply_removals", "upload_objects"]


class MissingPathError(GartError, FileNotFoundError):
    """A path or prefix to remove is not in the artifact (W&B raises FileNotFoundError)."""


class BaseMovedError(ConflictError):
    """A draft's base is no longer the latest version: someone published meanwhile."""


@dataclass
class DraftRecord:
    """Where a draft started: its base version (None: an unpublished manifest), the newest
    version number this clone knew of then (-1: none), and the digest the draft last wrote."""

    name: str
    base: str | None
    base_digest: str
    seen_latest: int
    digest: str

    def dumps(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode("utf-8")

    @classmethod
    def loads(cls, data: bytes) -> DraftRecord | None:
        try:
            raw = json.loads(data)
            return cls(name=str(raw["name"]), base=raw["base"] and str(raw["base"]),
                       base_digest=str(raw["base_digest"]), seen_latest=int(raw["seen_latest"]),
                       digest=str(raw["digest"]))
        except (ValueError, KeyError, TypeError):
            return None  # a damaged cache file counts as absent


@dataclass
class DraftResult:
    """What a draft command did to the working-tree manifest."""

    manifest: Manifest
    record: DraftRecord
    added: int = 0  # new paths
    replaced: int = 0  # paths whose content changed
    removed: int = 0
    hashed: int = 0
    stored: int = 0
    changed: bool = True
    overridden: list[str] = field(default_factory=list)  # rebase: paths both sides changed
    new_oids: set[str] | None = None  # objects new to the published base (None: unknown)


def apply_removals(entries: dict[str, Entry], paths: Iterable[str]) -> tuple[set[str], list[str]]:
    """Which entry paths `paths` remove (each a file path, or a directory prefix with or
    without a trailing '/'), and which of `paths` match nothing."""
    ordered = sorted(entries)
    gone: set[str] = set()
    missing: list[str] = []
    for raw in paths:
        clean = raw.strip("/")
        if not clean:
            missing.append(raw)
            continue
        if clean in entries and not raw.endswith("/"):
            gone.add(clean)
            continue
        prefix = clean + "/"
        start = bisect.bisect_left(ordered, prefix)
        end = bisect.bisect_left(ordered, prefix[:-1] + chr(ord("/") + 1))
        if start == end:
            missing.append(raw)
        gone.update(ordered[start:end])
    return gone, missing


def _missing_error(name: str, missing: Sequence[str]) -> MissingPathError:
    listing = ", ".join(missing)
    return MissingPathError(
        f"{len(missing)} path(s) not in {name}: {listing}; nothing was changed",
        hint=f"list its files with `gart ls {name}` (a directory removes everything under it)",
    )


def upload_objects(cache: ObjectStore, store: ObjectStore, oids: Collection[str],
                   jobs: int) -> TransferResult:
    """Upload objects known to be new (a draft's additions, a worker's part).

    Small objects go straight into new packs: one listing of the remote's pack indexes
    (to skip objects already packed there), then one pack and one index per 64 MiB, and no
    probe per object, so the requests do not grow with the file count. Large ones go through
    `transfer.push`, which asks the remote what it lacks."""
    from gitartifacts import transfer
    from gitartifacts.retry import RetryPolicy

    wanted = set(oids)
    packed = cache.packed
    small = sorted(oid for oid in wanted if oid in packed)
    large = wanted - set(small)
    result = transfer.push(cache, store, large, jobs) if large else transfer.TransferResult()
    if not small:
        return result
    retry = RetryPolicy(attempts=3, backoff=0.2)
    writer = store.writer(auto_flush=False)
    pending: list[tuple[str, int]] = []

    def flush() -> None:
        try:
            retry.call(writer.flush)
        except (GartError, OSError) as exc:
            reason = exc.message if isinstance(exc, GartError) else f"{type(exc).__name__}: {exc}"
            result.failed.update({oid: reason for oid, _ in pending})
            writer.discard()
        else:
            result.transferred += len(pending)
            result.bytes += sum(size for _, size in pending)
        pending.clear()

    present = store.packed_oids
    for oid, data in cache.read_packed(small, failed=result.failed):
        if oid in present:
            result.present += 1
            continue
        writer.add_bytes(oid, data)
        pending.append((oid, len(data)))
        if writer.pending_bytes >= store.pack_target:
            flush()
    flush()
    return result


class Drafts(Integrity):
    """Incremental versions: add to / remove from a manifest without touching old bytes.

    Over `integrity`: hashing into the cache and uploading take the locks `add` and `push`
    take, so a concurrent `gart gc` never collects what a draft is about to publish."""

    # -- the local record of a draft ---------------------------------------------------

    def _draft_path(self, name: str) -> Path:
        key = hashlib.sha256(name.encode("utf-8")).hexdigest()[:24]
        return self.config.tmp_path / "drafts" / f"{key}.json"

    def draft_record(self, name: str) -> DraftRecord | None:
        try:
            record = DraftRecord.loads(self._draft_path(name).read_bytes())
        except OSError:
            return None
        return record if record is not None and record.name == name else None

    def _write_draft_record(self, record: DraftRecord) -> None:
        path = self._draft_path(record.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, record.dumps())

    def _latest_number(self, name: str) -> tuple[int, list[Version]]:
        versions = self.registry.versions(name)  # local tags: a draft is an offline edit
        return (versions[-1].number if versions else -1), versions

    def start_draft(self, name: str) -> tuple[Manifest, DraftRecord]:
        """The working-tree manifest of `name` and the record of the draft it is (a new one
        when the manifest is not the draft gart last wrote)."""
        manifest = self.load_manifest(name)
        record = self.draft_record(name)
        latest, versions = self._latest_number(name)
        base = next((v for v in reversed(versions) if v.digest == manifest.digest), None)
        if record is not None and record.digest == manifest.digest and base is None:
            return manifest, record  # the unpublished draft gart last wrote: keep its base
        return manifest, DraftRecord(name, base.label if base else None, manifest.digest,
                                     latest, manifest.digest)

    def _write_draft(self, before: Manifest, after: Manifest, record: DraftRecord,
                     stage: bool = True) -> bool:
        """Write the draft's manifest (staged when autostage) and its record."""
        record = replace(record, digest=after.digest)
        changed = after != before
        if changed:
            self.write_manifest(after)
            if stage and self.config.autostage:
                self.git.stage([self.manifest_relpath(after.name)])
        self._write_draft_record(record)
        return changed

    # -- building drafts ---------------------------------------------------------------

    def hash_into_cache(self, files: dict[str, Path],
                        progress: ProgressHook | None = None) -> tuple[dict[str, Entry], int, int]:
        """{artifact path: Entry} of local files, their bytes stored in the cache; plus how
        many files were read and how many objects were new."""
        work = {rel: WorkFile(rel, os.path.abspath(local), FileStat.of(os.stat(local)))
                for rel, local in files.items()}
        with self.cache_locked():
            result = compute_digests(work, self.state, "/", store=self.cache,
                                     progress=progress, jobs=self.config.jobs)
        entries = {rel: Entry(rel, oid, size) for rel, (oid, size) in result.digests.items()}
        return entries, result.hashed, result.stored

    def add_incremental(
        self,
        paths: Sequence[str | os.PathLike[str]],
        name: str,
        prefix: str | None = None,
        progress: ProgressHook | None = None,
        stage: bool = True,
    ) -> DraftResult:
        """Add files to the artifact's manifest (under `prefix`), keeping every other entry:
        a file lands at `prefix/<its name>`, a directory's files at `prefix/<path inside>`.
        `stage=False` leaves git's index alone (a commit follows at once)."""
        if not paths:
            raise UsageError("nothing to add", hint="give a file or directory, e.g. "
                             f"gart add batch/ --name {name} --incremental")
        base, record = self.start_draft(name)
        files = gather_files(paths, prefix, self.ignore_rules(()))
        if not files:
            raise UsageError(f"no files under {', '.join(map(str, paths))}",
                             hint="add a directory that holds files")
        for rel in files:
            check_relative_path(rel, "artifact path")
        entries, hashed, stored = self.hash_into_cache(files, progress)
        return self._apply(base, record, entries, (), hashed, stored, stage)

    def remove_paths(self, name: str, paths: Sequence[str], stage: bool = True) -> DraftResult:
        """Remove files or whole directories (prefixes) from the artifact's manifest; every
        path must match something, or nothing changes."""
        if not paths:
            raise UsageError("nothing to remove", hint=f"e.g. gart rm {name} old/file.txt tmp/")
        base, record = self.start_draft(name)
        return self._apply(base, record, {}, paths, stage=stage)

    def _apply(self, base: Manifest, record: DraftRecord, added: dict[str, Entry],
               removals: Sequence[str], hashed: int = 0, stored: int = 0,
               stage: bool = True) -> DraftResult:
        entries = base.by_path()
        gone, missing = apply_removals(entries, removals)
        if missing:
            raise _missing_error(base.name, missing)
        for path in gone:
            del entries[path]
        new = sum(1 for p in added if p not in entries)
        changed = sum(1 for p, e in added.items() if p in entries and entries[p].oid != e.oid)
        entries.update(added)
        after = replace(base, entries=tuple(entries.values()))
        wrote = self._write_draft(base, after, record, stage)
        new_oids = None
        if record.base is not None and base.digest == record.base_digest:
            new_oids = {e.oid for e in added.values()} - {e.oid for e in base.entries}
        return DraftResult(after, replace(record, digest=after.digest), new, changed, len(gone),
                           hashed, stored, wrote, new_oids=new_oids)

    def rebase_draft(self, name: str) -> DraftResult:
        """Re-apply the draft's changes (relative to its base) onto the latest version."""
        current, record = self.start_draft(name)
        self.registry.sync(name)
        latest_n, versions = self._latest_number(name)
        if not versions:
            raise ArtifactNotFoundError(f"{name} has no published versions to rebase onto",
                                        hint="publish it with `gart push`")
        latest = versions[-1]
        base_entries: dict[str, Entry] = {}
        if record.base is not None:
            base_entries = self.resolve(f"{name}@{record.base}", offline=True).by_path()
        onto = self.resolve(f"{name}@{latest.label}", offline=True)
        mine = current.by_path()
        added = {p: e for p, e in mine.items() if base_entries.get(p) != e}
        removed = [p for p in base_entries if p not in mine]
        entries = onto.by_path()
        overridden = sorted(p for p, e in added.items()
                            if p in entries and p in base_entries
                            and entries[p] != base_entries[p] and entries[p] != e)
        for path in removed:
            entries.pop(path, None)
        entries.update(added)
        after = replace(current, entries=tuple(entries.values()))
        moved = DraftRecord(name, latest.label, latest.digest, latest_n, after.digest)
        wrote = self._write_draft(current, after, moved)
        return DraftResult(after, moved, len(added), 0, len(removed), changed=wrote,
                           overridden=overridden)

    # -- publishing drafts -------------------------------------------------------------

    def check_publishable(self, manifest: Manifest, anyway: bool = False) -> None:
        """Refuse to publish a draft whose base moved (a newer version appeared since it
        was started), unless `anyway`; other manifests pass (`gart push` asks this)."""
        record = self.draft_record(manifest.name)
        if anyway or record is None or record.digest != manifest.digest:
            return
        self._refuse_moved(manifest.name, record.base, record.seen_latest, manifest.digest)

    def check_draft(self, draft: Draft) -> None:
        """W&B's `log_artifact(draft)`: the same refusal, before anything is written."""
        if not draft.anyway:
            self._refuse_moved(draft.name, draft.base_version, draft.seen_latest, None, api=True)

    def _refuse_moved(self, name: str, base_label: str | None, seen_latest: int,
                      digest: str | None, api: bool = False) -> None:
        self.registry.sync(name)
        latest, versions = self._latest_number(name)
        if latest <= seen_latest or any(v.digest == digest for v in versions):
            return
        base = f"{name}@{base_label}" if base_label else "an unpublished manifest"
        if api:
            hint = (f"rebase it onto {name}@v{latest}: `run.log_artifact(draft.rebase())`; or "
                    f"publish anyway as {base}'s content plus your changes: "
                    "`run.log_artifact(draft.publish_anyway())`")
        else:
            hint = (f"rebase it onto {name}@v{latest} with `gart rebase {name}`, then commit "
                    f"and push; or publish anyway as {base}'s content plus your changes: "
                    f"commit it, then `gart push {name} --publish-anyway`")
        raise BaseMovedError(
            f"{name}: this draft starts from {base}, but {name}@v{latest} was published "
            f"since; publishing it would drop what v{latest} changed, so nothing was published",
            hint=hint,
        )

    def new_objects(self, manifest: Manifest) -> set[str]:
        """The objects a draft adds to its base (all of them when its base is unpublished):
        a published base's objects are on the default remote already."""
        record = self.draft_record(manifest.name)
        oids = {e.oid for e in manifest.entries}
        if record is None or record.base is None or record.digest != manifest.digest:
            return oids
        base = self.resolve(f"{manifest.name}@{record.base}", offline=True)
        return oids - {e.oid for e in base.entries}

    def publish_draft(self, name: str, aliases: Sequence[str] = (), anyway: bool = False,
                      extra_paths: Sequence[str] = (), message: str | None = None,
                      new_oids: set[str] | None = None) -> tuple[Version, bool]:
        """Commit the draft's manifest (only gart's files), upload what it adds (`new_oids`
        when the caller knows them), publish."""
        manifest = self.load_manifest(name)
        self.check_publishable(manifest, anyway)
        self.gitmeta.commit_paths([self.manifest_relpath(name), *extra_paths],
                                  message or f"gart: draft of {name}")
        head = self.git.head_commit()
        assert head is not None
        oids = new_oids if new_oids is not None else self.new_objects(manifest)
        return self.publish_uploaded(manifest, head, oids, aliases)

    def publish_uploaded(self, manifest: Manifest, commit: str, oids: Collection[str],
                         aliases: Sequence[str] = ()) -> tuple[Version, bool]:
        """Upload `oids` to the default remote (the rest are there already), then publish
        through the one publish step of `gart push`."""
        store = self.remote_store(None)
        with self.cache_locked(), StoreLock(store, exclusive=False, command="publish"):
            result = upload_objects(self.cache, store, oids, self.config.jobs)
            if result.failed:
                raise _transfer_error("push", result.failed, [manifest], store.describe())
            self.record_pushed(None, [manifest.digest])
            return self.publish_version(self.registry, manifest, commit, aliases)

    def publish_logged_draft(self, manifest: Manifest, commit: str,
                             aliases: Sequence[str] = ()) -> tuple[Version, bool, bool]:
        """W&B's `log_artifact(draft)` after its commit: as `publish_logged`, uploading only
        what the draft adds. Returns (version, created, shared)."""
        try:
            self.remote_config(None)
        except UsageError:
            return self.publish_logged(manifest, commit, aliases)  # local-only tags
        version, created = self.publish_uploaded(manifest, commit, self.new_objects(manifest),
                                                 aliases)
        return version, created, self.registry.remote is not None

    # -- W&B's drafts ------------------------------------------------------------------

    def save_draft(self, draft: Draft, progress: ProgressHook | None = None) -> DraftResult:
        """Write the manifest of a W&B draft: its base's entries, minus what it removed,
        plus its files (hashed into the cache). Nothing is committed here."""
        base = draft.base
        record = DraftRecord(base.name, draft.base_version, base.digest, draft.seen_latest,
                             base.digest)
        try:
            before = self.load_manifest(base.name)
        except (ArtifactNotFoundError, GartError):
            before = base
        entries, hashed, stored = self.hash_into_cache(draft.files, progress)
        start = replace(base, description=draft.description, metadata=dict(draft.metadata),
                        type=draft.type)
        current = start.by_path()
        # remove() checked each path; after a rebase one may be gone already: nothing to do
        gone, _missing = apply_removals(current, draft.removed)
        for path in gone:
            del current[path]
        added = sum(1 for p in entries if p not in current)
        current.update(entries)
        after = replace(start, entries=tuple(current.values()))
        wrote = self._write_draft(before, after, record)
        return DraftResult(after, replace(record, digest=after.digest), added, 0, len(gone),
                           hashed, stored, wrote)


class Draft(Artifact):
    """W&B's draft of a logged version (`new_draft()`): its files plus `add_file`/`add_dir`/
    `new_file`, minus `remove(path_or_prefix)`; `run.log_artifact(draft)` publishes it."""

    def __init__(self, base: Manifest, base_version: str | None, seen_latest: int,
                 repo: Any = None) -> None:
        super().__init__(base.name, base.type, base.description, dict(base.metadata))
        self.base = base
        self.base_version = base_version
        self.seen_latest = seen_latest
        self.removed: list[str] = []
        self.anyway = False
        self._repo = repo

    def is_draft(self) -> bool:
        return True

    def remove(self, item: str | os.PathLike[str] | Any) -> None:
        """Remove a file, or every file under a directory, from the draft: one added to
        the draft, or one of its base. FileNotFoundError (MissingPathError) when none match."""
        path = str(getattr(item, "path", item)).replace(os.sep, "/")
        clean = path.strip("/")
        mine = [p for p in self.files if p == clean or p.startswith(clean + "/")] if clean else []
        for p in mine:
            del self.files[p]
        remaining = {p: e for p, e in self.base.by_path().items()}
        _gone, missing = apply_removals(remaining, [path])
        if missing and not mine:
            raise _missing_error(self.name, missing)
        if not missing:
            self.removed.append(path)

    def rebase(self) -> Draft:
        """Move the draft onto the newest version of its artifact, keeping its changes (its
        files, removals, description and metadata)."""
        if self._repo is None:
            raise UsageError("this draft has no repository to rebase in",
                             hint="make it with artifact.new_draft()")
        self._repo.registry.sync(self.name)
        versions = self._repo.registry.versions(self.name)
        if versions:
            latest = versions[-1]
            self.base = self._repo.resolve(f"{self.name}@{latest.label}", offline=True)
            self.base_version, self.seen_latest = latest.label, latest.number
        return self

    def publish_anyway(self) -> Draft:
        """Publish even though a newer version appeared: the base's content plus changes."""
        self.anyway = True
        return self


def gather_files(paths: Sequence[str | os.PathLike[str]], prefix: str | None,
                 ignore: IgnoreRules) -> dict[str, Path]:
    """artifact path -> local file for files and directories given on the command line: a
    file lands at `prefix/<its name>`, a directory's files at `prefix/<path inside it>`."""
    clean = (prefix or "").strip("/")
    if clean:
        check_relative_path(clean, "--prefix")
    files: dict[str, Path] = {}
    for raw in paths:
        local = Path(raw)
        if local.is_dir():
            for rel, wf in scan(local, (".",), ignore).items():
                files[f"{clean}/{rel}" if clean else rel] = Path(wf.abspath)
        elif local.is_file():
            files[f"{clean}/{local.name}" if clean else local.name] = local
        else:
            raise ArtifactNotFoundError(f"{raw} does not exist",
                                        hint="give an existing file or directory")
    return files
