"""W&B's `Artifact` as seen once logged or used: one published version, its files, downloads
into `./artifacts/<name>:<version>/`, verification, and edits after logging.

`download()` adds and overwrites only the artifact's own files and never deletes anything;
`checkout()` is the one call that makes a directory exact. Edits (`aliases`, `description`,
`metadata`, then `save()`) never change the version's digest or number: aliases are tags
(compare-and-swap), description and metadata a per-version record shared through origin.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitartifacts.aliases import Version
from gitartifacts.api import Repo
from gitartifacts.checkout import CheckoutPlan
from gitartifacts.errors import ArtifactNotFoundError, GartError, UsageError
from gitartifacts.foreign import default_download_root
from gitartifacts.hashing import FileStat
from gitartifacts.ignore import IgnoreRules
from gitartifacts.manifest import Entry, Manifest, Reference
from gitartifacts.repocore import _state_prefix
from gitartifacts.runs import lineage_graph
from gitartifacts.versioning import VersionMeta
from gitartifacts.workspace import WorkFile, compute_digests

if TYPE_CHECKING:
    from gitartifacts.drafts import Draft
    from gitartifacts.foreign import ForeignRepo
    from gitartifacts.objects import ObjectStore
    from gitartifacts.runrecord import RunRecord


class VerifyError(GartError, ValueError):
    """A directory does not hold exactly an artifact version's files (W&B raises ValueError)."""


@dataclass(frozen=True)
class Collection:
    """W&B's artifact collection, reduced to what a version knows: its name and type."""

    name: str
    type: str


class ArtifactEntry:
    """One file of a version (W&B's ArtifactManifestEntry): path, sha256 digest, size."""

    def __init__(self, artifact: ArtifactVersion, entry: Entry | Reference) -> None:
        self._artifact = artifact
        self.path = entry.path
        self._reference: Reference | None = None
        if isinstance(entry, Reference):  # bytes at a URI (add_reference)
            self._reference = entry
            pins = entry.pins
            self.digest = entry.sha256 or pins.get("etag") or pins.get("md5") or entry.uri
            self.size: int | None = entry.size
            self.ref: str | None = entry.uri
            self.extra = pins
        else:
            self.digest = entry.oid
            self.size = entry.size
            self.ref = None  # stored, not a reference
            self.extra = {}

    def ref_target(self) -> str:
        """The URI a reference entry points at (W&B); ValueError for a stored file."""
        if self.ref is None:
            raise ValueError(f"{self.path} is not a reference entry")
        return self.ref

    @property
    def name(self) -> str:
        return self.path

    def download(self, root: str | os.PathLike[str] | None = None,
                 skip_cache: bool | None = None) -> str:
        """Fetch this one file into `root` (default: the artifact's download directory);
        returns the file's path."""
        del skip_cache  # the cache is content-addressed: it is always safe to use
        if self._reference is not None:
            entries = self._artifact._resolve_references((self._reference,), False)
        else:
            entries = [Entry(self.path, self.digest, self.size or 0)]
        base = self._artifact._place(entries, root)
        return str(base / self.path)

    def __repr__(self) -> str:
        return f"ArtifactEntry({self.path!r}, size={self.size})"


class ArtifactVersion:
    """A logged or used artifact version, with W&B's attributes and methods.

    `name` is W&B's `"<name>:<version>"`; `collection.name` is the bare artifact name."""

    def __init__(
        self,
        repo: Repo,
        manifest: Manifest,
        version: Version | None,
        project: str | None = None,
        foreign: ForeignRepo | None = None,
        foreign_commit: str | None = None,
    ) -> None:
        self.repo = repo
        self.manifest = manifest
        self._version = version
        self.project = project
        self._foreign = foreign
        self._foreign_commit = foreign_commit
        self._meta: VersionMeta | None = None
        if version is not None and foreign is None:
            self._meta = repo.version_meta(version)
        self._saved_aliases = list(version.aliases) if version is not None else []
        self.aliases: list[str] = list(self._saved_aliases)
        self.description: str = self._current_description()
        self.metadata: dict[str, Any] = copy.deepcopy(self._current_metadata())

    # -- identity --------------------------------------------------------------------------

    @property
    def version(self) -> str | None:
        return self._version.label if self._version is not None else None

    @property
    def source_name(self) -> str:
        return self.manifest.name

    @property
    def name(self) -> str:
        return f"{self.manifest.name}:{self.version}" if self.version else self.manifest.name

    @property
    def qualified_name(self) -> str:
        return f"{self.project}/{self.name}" if self.project else self.name

    @property
    def collection(self) -> Collection:
        return Collection(self.manifest.name, self.manifest.type)

    @property
    def type(self) -> str:
        return self.manifest.type

    @property
    def digest(self) -> str:
        return self.manifest.digest

    @property
    def size(self) -> int:
        return self.manifest.size

    @property
    def file_count(self) -> int:
        return self.manifest.count

    @property
    def path(self) -> Path:
        """Where `gart pull` would place it in this working tree (the manifest's path)."""
        return self.repo.root / self.manifest.path

    @property
    def state(self) -> str:
        return "DELETED" if self._meta is not None and self._meta.deleted else "COMMITTED"

    @property
    def created_at(self) -> int | None:
        return self._version.time if self._version is not None else None

    @property
    def commit_hash(self) -> str | None:
        return self._version.commit if self._version is not None else None

    def is_draft(self) -> bool:
        return False

    def new_draft(self) -> Draft:
        """W&B's `new_draft()`: a new version's builder that starts from this version's files
        (add_file/add_dir/new_file/remove, then `run.log_artifact(draft)`): no old byte is
        read, downloaded or uploaded again."""
        from gitartifacts.drafts import Draft

        if self._version is None or self._foreign is not None:
            raise UsageError(f"{self.name} is not a published version of this repository",
                             hint="draft from a logged or used version, e.g. "
                             "run.use_artifact('name:latest').new_draft()")
        versions = self.repo.registry.versions(self.manifest.name)
        seen = versions[-1].number if versions else -1
        base = replace(self.manifest, description=self.description,
                       metadata=copy.deepcopy(self.metadata))
        return Draft(base, self.version, seen, self.repo)

    def wait(self, timeout: int | None = None) -> ArtifactVersion:
        """W&B waits for the upload to finish; here `log_artifact` has already published."""
        del timeout
        return self

    # -- files -----------------------------------------------------------------------------

    def files(self, names: Sequence[str] | None = None, per_page: int = 50) -> list[ArtifactEntry]:
        """The version's files (only `names` when given), in path order."""
        del per_page  # one list: the manifest is already local
        wanted = set(names) if names is not None else None
        every = sorted([*self.manifest.entries, *self.manifest.references],
                       key=lambda e: e.path)
        return [ArtifactEntry(self, e) for e in every if wanted is None or e.path in wanted]

    def get_entry(self, name: str) -> ArtifactEntry:
        """The file at `name`; KeyError when the version has no such file (as W&B)."""
        entry: Entry | Reference | None = self.manifest.by_path().get(name.strip("/"))
        if entry is None:
            entry = next((r for r in self.manifest.references if r.path == name.strip("/")),
                         None)
        if entry is None:
            raise KeyError(f"{self.name} has no file {name!r}")
        return ArtifactEntry(self, entry)

    get_path = get_entry

    def download(
        self,
        root: str | os.PathLike[str] | None = None,
        allow_missing_references: bool = False,
        skip_cache: bool | None = None,
        path_prefix: str | None = None,
        multipart: bool | None = None,
    ) -> str:
        """Fetch the files (those whose path starts with `path_prefix`, a plain string prefix as
        in W&B) into `root`, default `./artifacts/<name>:<version>/`; returns that directory.

        Only the artifact's own files are written (an existing identical file is left alone);
        nothing else in `root` is touched or deleted."""
        del skip_cache, multipart  # the cache is content-addressed: always safe
        entries = [e for e in self.manifest.entries
                   if not path_prefix or e.path.startswith(path_prefix)]
        refs = [r for r in self.manifest.references
                if not path_prefix or r.path.startswith(path_prefix)]
        if refs:  # fetched from their sources, verified (references.materialize)
            entries += self._resolve_references(refs, allow_missing_references)
        if path_prefix and not entries and not refs:
            raise ArtifactNotFoundError(
                f"no files of {self.name} start with {path_prefix!r}",
                hint=f"list them with `gart ls {self.manifest.name}@{self.version}`",
            )
        return str(self._place(entries, root))

    def checkout(self, root: str | os.PathLike[str] | None = None) -> str:
        """Make `root` hold exactly this version: files written, and every other file under
        `root` deleted (W&B's warning applies: this is the one call that deletes)."""
        target = self._root(root)
        self._fetch(self.manifest.entries)
        from gitartifacts import checkout as checkoutmod

        resolved = self._resolve_references(self.manifest.references, False)
        manifest = replace(self.manifest, entries=self.manifest.entries + tuple(resolved),
                           references=())
        checkoutmod.checkout(
            replace(manifest, include=(".",), exclude=()), target, self.repo.cache,
            self.repo.state, self.repo.config.link_types, IgnoreRules([]), force=True,
            exact=True,
        )
        return str(target)

    def verify(self, root: str | os.PathLike[str] | None = None) -> None:
        """Re-hash every file under `root` against the manifest; VerifyError (a ValueError)
        names what differs: changed, missing or extra files."""
        target = self._root(root)
        found = _scan_all(target)
        digests = compute_digests(found, self.repo.state, _state_prefix(target),
                                  jobs=self.repo.config.jobs).digests
        wanted = self.manifest.by_path()
        memo = self.repo._ref_memo()
        for ref in self.manifest.references:  # known bytes are checked, the rest exist
            oid = memo.get(ref)
            wanted[ref.path] = Entry(ref.path, oid or digests.get(ref.path, ("",))[0],
                                     ref.size or 0)
        changed = sorted(p for p, e in wanted.items() if p in digests and digests[p][0] != e.oid)
        missing = sorted(set(wanted) - set(digests))
        extra = sorted(set(digests) - set(wanted))
        if changed or missing or extra:
            parts = [f"{len(v)} {k} ({', '.join(v[:3])}{' …' if len(v) > 3 else ''})"
                     for k, v in (("changed", changed), ("missing", missing), ("extra", extra))
                     if v]
            raise VerifyError(f"{target} does not match {self.name}: " + "; ".join(parts),
                              hint=f"restore it exactly with `checkout({str(target)!r})`")

    # -- lineage ---------------------------------------------------------------------------

    def logged_by(self) -> RunRecord | None:
        """The run that logged this content (the first one, as W&B), or None."""
        graph, _bad = lineage_graph(self.repo)
        runs = graph.producers_of(self.manifest.name, self.digest)
        return min(runs, key=lambda r: r.started) if runs else None

    def used_by(self) -> list[RunRecord]:
        graph, _bad = lineage_graph(self.repo)
        return graph.consumers_of(self.manifest.name, self.digest)

    # -- edits -----------------------------------------------------------------------------

    def save(self) -> None:
        """Apply edits made since it was loaded: aliases added or removed (tags, compare-and-
        swap), description and metadata (this version's record; digest and number unchanged)."""
        version = self._editable()
        name = self.manifest.name
        wanted = [a for a in dict.fromkeys(self.aliases) if a != "latest"]
        had = [a for a in self._saved_aliases if a != "latest"]
        for alias in wanted:
            if alias not in had:
                self.repo.check_alias_case(name, alias)
                self.repo.registry.set_alias(
                    name, version, alias, alias in self.repo.config.protected_aliases)
        for alias in had:
            if alias not in wanted:
                self.repo.delete_alias(name, alias)
        meta = self._meta or VersionMeta(name, version.label, version.digest)
        description = None if self.description == self.manifest.description else self.description
        metadata = None if self.metadata == self.manifest.metadata else self.metadata
        if (description, metadata) != (meta.description, meta.metadata):
            meta = replace(meta, description=description, metadata=copy.deepcopy(metadata))
            self._meta = self.repo.write_version_meta(meta)
        self._refresh()

    def delete(self, delete_aliases: bool = False) -> None:
        """Delete this version (W&B): its aliases go with `delete_aliases=True` (refused
        otherwise), its number is never reused, `versions` and `Api.artifacts` hide it."""
        version = self._editable()
        self.repo.delete_version(self.manifest.name, version.label, delete_aliases)
        self._refresh()

    # -- internals -------------------------------------------------------------------------

    def _editable(self) -> Version:
        if self._version is None:
            raise UsageError(f"{self.name} is not a published version",
                             hint="log it with run.log_artifact first")
        if self._foreign is not None:
            raise UsageError(f"{self.qualified_name} belongs to another repository",
                             hint="edit it from a clone of that repository")
        return self._version

    def _refresh(self) -> None:
        assert self._version is not None
        every = self.repo.versions(self.manifest.name, offline=True, include_deleted=True)
        found = {v.label: v for v in every}
        self._version = found.get(self._version.label, self._version)
        mark_latest(self._version, self.repo.versions(self.manifest.name, offline=True))
        self._meta = self.repo.version_meta(self._version)
        self._saved_aliases = list(self._version.aliases)
        if self._meta.deleted:
            self._saved_aliases = []
        self.aliases = list(self._saved_aliases)
        self.description = self._current_description()
        self.metadata = copy.deepcopy(self._current_metadata())

    def _current_description(self) -> str:
        if self._meta is not None and self._meta.description is not None:
            return self._meta.description
        return self.manifest.description

    def _current_metadata(self) -> dict[str, Any]:
        if self._meta is not None and self._meta.metadata is not None:
            return self._meta.metadata
        return self.manifest.metadata

    def _root(self, root: str | os.PathLike[str] | None) -> Path:
        if root is not None:
            return Path(root).absolute()
        label = self.version or self.digest[7:19]
        path = default_download_root(self.manifest.name, label)
        if os.name == "nt":  # ':' is not allowed in Windows file names
            path = path.with_name(path.name.replace(":", "-"))
        return path

    def _cache(self) -> ObjectStore:
        return self.repo.cache

    def _fetch(self, entries: Sequence[Entry]) -> None:
        """Bring the entries' objects into the cache (no remote contacted when all are)."""
        subset = replace(self.manifest, entries=tuple(entries))
        oids = {e.oid for e in entries}
        if not self.repo.cache.missing(oids):
            return
        if self._foreign is None:
            self.repo.fetch([subset])
            return
        from gitartifacts import transfer
        from gitartifacts.sync import _transfer_error

        assert self._foreign_commit is not None
        store = self._foreign.remote_store(self._foreign_commit)
        result = transfer.fetch(store, self.repo.cache, oids, self.repo.config.jobs)
        if result.failed:
            raise _transfer_error("pull", result.failed, [subset], store.describe())

    def _resolve_references(self, refs: Sequence[Reference],
                            allow_missing: bool) -> list[Entry]:
        """References as cache entries: fetched from their sources and verified (W&B's
        download of a reference); allow_missing skips vanished ones (warned)."""
        if not refs:
            return []
        subset = replace(self.manifest, entries=(), references=tuple(refs))
        resolved, _count = self.repo.fetch_references(subset, allow_missing=allow_missing)
        return list(resolved.entries)

    def _place(self, entries: Sequence[Entry], root: str | os.PathLike[str] | None) -> Path:
        """Write `entries` under the root, skipping files already identical; never deletes."""
        from gitartifacts.checkout import execute_checkout

        target = self._root(root)
        self._fetch(entries)
        present: dict[str, WorkFile] = {}
        for entry in entries:
            path = os.path.join(target, entry.path)
            try:
                st = os.lstat(path)
            except (FileNotFoundError, NotADirectoryError):
                continue
            if os.path.isfile(path) and not os.path.islink(path):
                present[entry.path] = WorkFile(entry.path, path, FileStat.of(st))
        current = compute_digests(present, self.repo.state, _state_prefix(target),
                                  jobs=self.repo.config.jobs).digests if present else {}
        plan = CheckoutPlan(write=[e for e in entries if current.get(e.path, ("",))[0] != e.oid],
                            unchanged=sum(1 for e in entries
                                          if current.get(e.path, ("",))[0] == e.oid))
        if plan.write:
            target.mkdir(parents=True, exist_ok=True)
            placer = execute_checkout(plan, target, self.repo.cache, self.repo.config.link_types)
            self.repo.state.record(placer.written)
        return target

    def __repr__(self) -> str:
        return f"<Artifact {self.qualified_name}>"


def mark_latest(version: Version, live: Sequence[Version]) -> None:
    """W&B lists 'latest' among the aliases of the newest live (not deleted) version."""
    version.aliases = [a for a in version.aliases if a != "latest"]
    if live and version.label == live[-1].label:
        version.aliases.insert(0, "latest")


def _scan_all(root: Path) -> dict[str, WorkFile]:
    """Every regular file under `root` (symlinks count as files that cannot match)."""
    from gitartifacts.workspace import scan

    if not root.is_dir():
        return {}
    return scan(root)


__all__ = ["ArtifactEntry", "ArtifactVersion", "Collection", "VerifyError", "mark_latest"]
