"""Working-tree rooms of a repository: add/save into the cache, status, checkout, diff."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from gitartifacts import checkout as checkoutmod
from gitartifacts import manifest as manifestmod
from gitartifacts.checkout import CheckoutPlan
from gitartifacts.errors import (
    ConfigError,
    GartError,
    InvalidNameError,
    InvalidPathError,
    ManifestError,
    UsageError,
)
from gitartifacts.fsutil import atomic_write
from gitartifacts.hashing import FileStat
from gitartifacts.manifest import Entry, Manifest, Reference
from gitartifacts.paths import case_clash, check_relative_path, validate_name, validate_type
from gitartifacts.repocore import ProgressHook, RepoCore, _state_prefix
from gitartifacts.workspace import (
    Comparison,
    WorkFile,
    compare,
    compute_digests,
    scan,
)

if TYPE_CHECKING:  # imported only by the commands that need them, to keep start-up fast
    from gitartifacts.references import RefCheck, Sources


@dataclass
class AddResult:
    """What `gart add` did."""

    manifest: Manifest
    changed: bool  # False: identical content and fields, nothing written
    hashed: int  # files actually read
    stored: int  # objects newly written to the cache
    manifest_path: Path


@dataclass
class ArtifactStatus:
    """One artifact's working tree compared with its manifest and the cache."""

    name: str
    path: str
    comparison: Comparison
    missing_from_cache: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        if not self.comparison.clean:
            if not (self.comparison.added or self.comparison.changed) and (
                self.comparison.unchanged == 0
            ):
                return "not checked out"
            return "modified"
        return "missing from cache" if self.missing_from_cache else "clean"


@dataclass(frozen=True)
class RefRequest:
    """One add_reference() / `gart add --ref`: what to list and how to record it."""

    uri: str
    name: str | None = None
    checksum: bool = True
    max_objects: int | None = None
    upload: bool = False  # --to-remote: copy the bytes into gart's store (stored entries)
    read_bytes: bool | None = None  # also record sha256 (default: file and http sources)


@dataclass
class DiffResult:
    """Two versions of an artifact compared path by path."""

    name: str
    old_label: str
    new_label: str
    added: list[Entry]
    removed: list[Entry]
    changed: list[tuple[Entry, Entry]]

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


class Artifact:
    """A W&B-style artifact under construction: files gathered, then saved by a Repo."""

    def __init__(
        self,
        name: str,
        type: str = "dataset",
        description: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.name = validate_name(name)
        self.type = validate_type(type)
        self.description = description
        self.metadata = dict(metadata or {})
        self.files: dict[str, Path] = {}  # artifact path -> local file
        self.excludes: list[str] = []
        self._staging: Path | None = None  # new_file()'s directory
        self.logged: Any = None  # the published version, once run.log_artifact stored it
        self.references: list[RefRequest] = []  # add_reference() calls, listed at save

    def add_reference(self, uri: str, name: str | None = None, checksum: bool = True,
                      max_objects: int | None = None, upload: bool = False) -> None:
        """Record bytes that stay at `uri` (W&B's add_reference): s3://, gs://, az://,
        http(s):// or file://; a prefix expands to its objects when the artifact is saved.
        `upload=True` copies them into gart's remote instead (stored entries)."""
        from gitartifacts.references import SCHEMES, scheme_of

        if scheme_of(uri) not in SCHEMES or "://" not in uri:
            raise UsageError(f"{uri!r} is not an s3://, gs://, az://, http(s):// or file:// URI",
                             hint="for a local file use add_file, or a file:///absolute/path")
        if name is not None:
            check_relative_path(name.strip("/"), "reference name")
        self.references.append(RefRequest(uri, name, checksum, max_objects, upload))

    def add_file(self, local_path: str | os.PathLike[str], name: str | None = None) -> None:
        path = Path(local_path)
        if not path.is_file():
            raise InvalidPathError(f"{path} is not a file")
        self._put(name or path.name, path)

    def add_dir(self, local_path: str | os.PathLike[str], name: str | None = None) -> None:
        root = Path(local_path)
        if not root.is_dir():
            raise InvalidPathError(f"{root} is not a directory")
        for rel, wf in scan(root).items():
            self._put(f"{name.strip('/')}/{rel}" if name else rel, Path(wf.abspath))

    @property
    def version(self) -> str | None:
        """'v3' once logged (W&B reads it from the artifact it logged), else None."""
        return self.logged.version if self.logged is not None else None

    def wait(self, timeout: int | None = None) -> Any:
        """W&B waits for the upload; `log_artifact` here has already published: the version."""
        del timeout
        if self.logged is None:
            raise UsageError(f"artifact {self.name!r} has not been logged",
                             hint="log it first: run.log_artifact(artifact)")
        return self.logged

    @contextlib.contextmanager
    def new_file(
        self, name: str, mode: str = "x", encoding: str | None = None
    ) -> Iterator[IO[Any]]:
        """Open a new file that becomes part of the artifact at `name` once closed (W&B's
        `new_file`); it is written to a private staging directory, not the working tree."""
        check_relative_path(name, "artifact path")
        if name in self.files:
            raise UsageError(f"artifact {self.name!r} already has a file {name!r}",
                             hint="pick another name for the new file")
        if self._staging is None:
            self._staging = Path(tempfile.mkdtemp(prefix="gart-artifact-"))
        local = self._staging / name
        local.parent.mkdir(parents=True, exist_ok=True)
        if "b" not in mode and encoding is None:
            encoding = "utf-8"
        with open(local, mode, encoding=encoding) as handle:
            yield handle
        self._put(name, local)

    def _put(self, artifact_path: str, local: Path) -> None:
        check_relative_path(artifact_path, "artifact path")
        self.files[artifact_path] = local


class Tracking(RepoCore):
    """Working-tree work: add, save, status, checkout, diff."""

    def add(
        self,
        paths: Sequence[str | os.PathLike[str]],
        name: str | None = None,
        type: str | None = None,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        excludes: Sequence[str] = (),
        progress: ProgressHook | None = None,
        refs: Sequence[RefRequest] = (),
        ref_options: str | None = None,
    ) -> AddResult:
        """Hash `paths` into the cache and write the manifest (staged in git if autostage).

        `refs` are recorded as references (listed at their source, never copied unless a
        request says `upload`); without them a re-add keeps the artifact's references."""
        if not paths and not refs:
            raise UsageError("nothing to add", hint="give a file or directory, e.g. gart add data/")
        rels = [self._repo_relative(p) for p in paths]
        if name is None:
            if len(rels) > 1 or (rels and refs) or len(refs) > 1:
                raise UsageError(
                    "several paths need one --name", hint="e.g. gart add a/ b/ --name my-dataset"
                )
            name = default_name(rels[0] if rels else refs[0].uri.rstrip("/").rpartition("/")[2])
        validate_name(name)
        if type is not None:
            validate_type(type)
        previous = self._existing_manifest(name)
        if previous is None:
            self._check_case(name)
        if not rels:  # references only: keep the stored files, re-record the references
            return self._add_references_only(name, previous, type, description, metadata,
                                             refs, ref_options)
        if len(rels) == 1 and os.path.isdir(self.root / rels[0]):
            root_rel, include = rels[0], ["."]
        elif len(rels) == 1:
            root_rel, _, leaf = rels[0].rpartition("/")
            root_rel, include = root_rel or ".", [leaf]
        else:
            root_rel = _common_dir(rels)
            include = sorted(r if root_rel == "." else r[len(root_rel) + 1 :] for r in rels)
        self._check_not_tracked(rels)
        self._check_overlap(name, root_rel, include)
        root = self.root / root_rel
        gitignore = self._gitignore_update([_join(root_rel, i) for i in include])
        if not excludes and previous is not None and previous.path == root_rel:
            excludes = previous.exclude  # a re-add keeps the artifact's exclusions
        files = scan(root, include, self.ignore_rules(excludes),
                     allowed_link_roots=[self.config.cache_path])
        references, uploaded = self._record_references(refs, ref_options, previous)
        ref_paths = {r.path for r in references} | {e.path for e in uploaded}
        for rel in ref_paths:  # a reference's pulled copy is not a stored file
            files.pop(rel, None)
        result = compute_digests(
            files, self.state, _state_prefix(root), store=self.cache, progress=progress,
            jobs=self.config.jobs,
        )
        new = Manifest(
            name=name,
            type=type or (previous.type if previous else "dataset"),
            description=description if description is not None else (
                previous.description if previous else ""),
            metadata=metadata if metadata is not None else (previous.metadata if previous else {}),
            path=root_rel,
            include=tuple(include),
            exclude=tuple(excludes),
            entries=tuple([*uploaded, *(Entry(rel, oid, size)
                                        for rel, (oid, size) in result.digests.items())]),
            references=tuple(references),
        )
        new_text = manifestmod.dumps(new)
        path = self.manifest_path(name)
        if previous is not None and path.read_text(encoding="utf-8") == new_text:
            return AddResult(new, False, result.hashed, result.stored, path)
        ignored = self._write_gitignore(gitignore)
        self.write_manifest(new)
        if self.config.autostage:
            self.git.stage([self.manifest_relpath(name), *ignored])
        return AddResult(new, True, result.hashed, result.stored, path)

    # -- references (issue 12) -------------------------------------------------------------

    def reference_sources(self, ref_options: str | None = None) -> Sources:
        """Where references are read from, with which remote's options (references.py)."""
        from gitartifacts.references import Sources

        return Sources(self.config.remotes, ref_options)

    def _ref_memo(self) -> Any:
        from gitartifacts.references import Memo

        return Memo(self.config.tmp_path / "refs")

    def _record_references(
        self, requests: Sequence[RefRequest], ref_options: str | None,
        previous: Manifest | None,
    ) -> tuple[list[Reference], list[Entry]]:
        """List the requested URIs: (references, stored entries of `upload` requests). With
        no requests, the previous manifest's references are kept as recorded."""
        from gitartifacts import references as refsmod

        if not requests:
            return (list(previous.references) if previous is not None else []), []
        sources = self.reference_sources(ref_options)
        recorded: list[Reference] = []
        uploaded: list[Entry] = []
        for request in requests:
            found = refsmod.expand(sources, request.uri, request.name, request.checksum,
                                   request.max_objects, request.read_bytes, self.config.jobs)
            if request.upload:
                done = refsmod.materialize(sources, found, self.cache, refsmod.Memo(None),
                                           jobs=self.config.jobs, name=request.uri)
                uploaded.extend(done.entries)
            else:
                recorded.extend(found)
        seen: dict[str, str] = {}
        for path, uri in [*((r.path, r.uri) for r in recorded),
                          *((e.path, "--to-remote") for e in uploaded)]:
            if path in seen:
                raise UsageError(f"two references would be named {path!r} ({seen[path]}, {uri})",
                                 hint="give them different names (add_reference(uri, name=...))")
            seen[path] = uri
        return recorded, uploaded

    def _add_references_only(
        self, name: str, previous: Manifest | None, type: str | None,
        description: str | None, metadata: dict[str, Any] | None,
        requests: Sequence[RefRequest], ref_options: str | None,
    ) -> AddResult:
        references, uploaded = self._record_references(requests, ref_options, previous)
        root_rel = previous.path if previous is not None else f"artifacts/{name}"
        include = previous.include if previous is not None else (".",)
        new_paths = {r.path for r in references} | {e.path for e in uploaded}
        kept = [e for e in (previous.entries if previous is not None else ())
                if e.path not in new_paths]
        if previous is None:
            self._check_not_tracked([root_rel])
            self._check_overlap(name, root_rel, include)
        gitignore = self._gitignore_update([_join(root_rel, i) for i in include])
        new = Manifest(
            name=name,
            type=type or (previous.type if previous else "dataset"),
            description=description if description is not None else (
                previous.description if previous else ""),
            metadata=metadata if metadata is not None else (previous.metadata if previous else {}),
            path=root_rel, include=tuple(include),
            exclude=previous.exclude if previous is not None else (),
            entries=tuple([*kept, *uploaded]), references=tuple(references),
        )
        return self._write_added(new, previous, gitignore, 0, len(uploaded))

    def _write_added(self, new: Manifest, previous: Manifest | None, gitignore: str | None,
                     hashed: int, stored: int) -> AddResult:
        new_text = manifestmod.dumps(new)
        path = self.manifest_path(new.name)
        if previous is not None and path.read_text(encoding="utf-8") == new_text:
            return AddResult(new, False, hashed, stored, path)
        ignored = self._write_gitignore(gitignore)
        self.write_manifest(new)
        if self.config.autostage:
            self.git.stage([self.manifest_relpath(new.name), *ignored])
        return AddResult(new, True, hashed, stored, path)

    def check_references(self, names: Iterable[str] | None = None,
                         ref_options: str | None = None) -> dict[str, list[RefCheck]]:
        """`gart status --check-refs`: each artifact's references compared with their
        sources (one listing per prefix), by artifact name."""
        from gitartifacts import references as refsmod

        sources = self.reference_sources(ref_options)
        out = {}
        for name in names or self.artifact_names():
            manifest = self.load_manifest(name)
            if manifest.references:
                out[name] = refsmod.check(sources, manifest.references, deep=True)
        return out

    def cached_references(self, manifest: Manifest) -> tuple[Manifest, set[str]]:
        """The manifest with every reference whose bytes the cache holds as a stored entry
        (no source asked), and the paths of the others, which a checkout leaves alone."""
        if not manifest.references:
            return manifest, set()
        from gitartifacts.references import from_cache

        entries, rest = from_cache(manifest.references, self.cache, self._ref_memo())
        return (replace(manifest, entries=manifest.entries + tuple(entries), references=()),
                {r.path for r in rest})

    def save(self, artifact: Artifact, path: str | None = None) -> AddResult:
        """Store a W&B-style Artifact built with add_file/add_dir and write its manifest.

        Its working-tree location is `path`, else the directory it was gathered from when
        every file sits at <dir>/<artifact path>, else `artifacts/<name>`.
        """
        if not artifact.files and not artifact.references:
            raise UsageError(f"artifact {artifact.name!r} has no files", hint="call add_file first")
        previous = self._existing_manifest(artifact.name)
        if previous is None:
            self._check_case(artifact.name)
        if path is None:
            path = _natural_root(self.root, artifact.files) or f"artifacts/{artifact.name}"
        check_relative_path(path, "artifact path")
        # The checks of `gart add`: git must not own the bytes, nor another artifact the path.
        self._check_not_tracked([path])
        self._check_overlap(artifact.name, path, ["."])
        gitignore = self._gitignore_update([path])
        files = {
            rel: WorkFile(rel, os.path.abspath(local), FileStat.of(os.stat(local)))
            for rel, local in artifact.files.items()
        }
        result = compute_digests(files, self.state, "/", store=self.cache, jobs=self.config.jobs)
        references, uploaded = self._record_references(artifact.references, None, None)
        new = Manifest(
            name=artifact.name, type=artifact.type, description=artifact.description,
            metadata=artifact.metadata, path=path,
            entries=tuple([*uploaded, *(Entry(rel, oid, size)
                                        for rel, (oid, size) in result.digests.items())]),
            references=tuple(references),
        )
        changed = previous is None or manifestmod.dumps(previous) != manifestmod.dumps(new)
        if changed:
            ignored = self._write_gitignore(gitignore)
            self.write_manifest(new)
            if self.config.autostage:
                self.git.stage([self.manifest_relpath(artifact.name), *ignored])
        return AddResult(new, changed, result.hashed, result.stored,
                         self.manifest_path(artifact.name))

    def _check_case(self, name: str) -> None:
        """Refuse a new name that differs from an existing one only in case."""
        clash = case_clash(name, self.artifact_names())
        if clash is not None:
            raise InvalidNameError(
                f"artifact name {name!r} differs from the existing {clash!r} only in case",
                hint=f"use {clash!r}, or a name that differs in more than case "
                "(case-insensitive filesystems would merge them)",
            )

    def _check_overlap(self, name: str, root_rel: str, include: Sequence[str]) -> None:
        mine = [_join(root_rel, i) for i in include]
        for other in self.artifact_names():
            if other == name:
                continue
            try:
                manifest = self.load_manifest(other)
            except ManifestError:
                continue
            for theirs in (_join(manifest.path, i) for i in manifest.include):
                for path in mine:
                    if _overlaps(path, theirs):
                        raise UsageError(
                            f"{path} overlaps artifact {other!r} ({theirs})",
                            hint=f"add it to {other!r} with --name {other}, or pick another path",
                        )

    def _check_not_tracked(self, rels: Sequence[str]) -> None:
        tracked = self.git.tracked_files(list(rels))
        if tracked:
            raise UsageError(
                f"{tracked[0]} is tracked by git; gart and git must not both own the bytes",
                hint=f"run `git rm -r --cached {rels[0]}` first, then gart add again",
            )

    def _gitignore_update(self, rels: Sequence[str]) -> str | None:
        """The root .gitignore's new text once it ignores the data paths (None: no change).

        Read before anything is hashed or written, so an unreadable file stops `add` early."""
        gitignore = self.root / ".gitignore"
        try:
            text = gitignore.read_bytes().decode("utf-8")
        except FileNotFoundError:
            text = ""
        except UnicodeDecodeError:
            raise ConfigError(
                f"{gitignore} is not valid UTF-8; gart cannot add its data paths to it",
                hint="re-save .gitignore as UTF-8, then run gart add again",
            ) from None
        lines = set(text.splitlines())
        wanted = [f"/{r}" for r in rels if f"/{r}" not in lines and f"/{r}/" not in lines]
        if not wanted:
            return None
        if text and not text.endswith("\n"):
            text += "\n"
        return text + "".join(f"{line}\n" for line in wanted)

    def _write_gitignore(self, text: str | None) -> list[str]:
        """Write the planned .gitignore (before the manifest); returns the files to stage."""
        if text is None:
            return []
        atomic_write(self.root / ".gitignore", text.encode("utf-8"))
        return [".gitignore"]

    # -- status / checkout ----------------------------------------------------------------

    def workspace_digests(
        self, manifest: Manifest, root: Path | None = None, progress: ProgressHook | None = None
    ) -> dict[str, tuple[str, int]]:
        """Digests of the files currently under the artifact's location."""
        root = root or self.root / manifest.path
        files = scan(root, manifest.include, self.ignore_rules(manifest.exclude),
                     allowed_link_roots=[self.config.cache_path])
        return compute_digests(files, self.state, _state_prefix(root), progress=progress,
                               jobs=self.config.jobs).digests

    def status(self, names: Iterable[str] | None = None) -> list[ArtifactStatus]:
        out = []
        for name in names or self.artifact_names():
            manifest = self.load_manifest(name)
            digests = self.workspace_digests(manifest)
            for ref in manifest.references:  # pulled copies of references: not stored files
                digests.pop(ref.path, None)
            comparison = compare(manifest.entries, digests)
            absent = self.cache.missing({e.oid for e in manifest.entries})
            missing = [e.path for e in manifest.entries if e.oid in absent]
            out.append(ArtifactStatus(name, manifest.path, comparison, missing))
        return out

    def checkout(
        self,
        spec: str | Manifest,
        force: bool = False,
        to: str | os.PathLike[str] | None = None,
        progress: ProgressHook | None = None,
        dry_run: bool = False,
        partial: str | None = None,
        recoverable_elsewhere: Callable[[set[str]], set[str]] | None = None,
    ) -> CheckoutPlan:
        """Make the working tree (or `to`) match a manifest, from the cache.

        `recoverable_elsewhere(oids)` says which of those objects can be fetched again (pull
        asks the remote): a changed file whose bytes are there may be replaced."""
        manifest = spec if isinstance(spec, Manifest) else self.resolve(spec)
        root = Path(to) if to is not None else self.root / manifest.path
        if partial:  # only this path inside the artifact: leave everything else alone
            manifest = replace(manifest, include=(partial.strip("/"),))
        manifest, keep = self.cached_references(manifest)
        return checkoutmod.checkout(
            manifest, root, self.cache, self.state, self.config.link_types,
            self.ignore_rules(manifest.exclude), force=force, progress=progress,
            dry_run=dry_run, allowed_link_roots=[self.config.cache_path],
            # no symlink below the repository root is followed on the way to the data
            anchor=self.root if to is None else None,
            recoverable_elsewhere=recoverable_elsewhere, keep=keep,
        )

    def diff(self, name: str, old: str | None = None, new: str | None = None) -> DiffResult:
        """Compare two committed versions, or a committed one with the working tree."""
        if old is None:
            old_manifest = self.load_manifest(name)
            old_entries = old_manifest.by_path()
            current = self.workspace_digests(old_manifest)
            new_entries = {p: Entry(p, oid, size) for p, (oid, size) in current.items()}
            labels = (f"{name} (manifest)", f"{name} (working tree)")
        else:
            old_entries = self.resolve(f"{name}@{old}").by_path()
            if new is None:
                new_entries = self.load_manifest(name).by_path()
                labels = (f"{name}@{old}", f"{name} (manifest)")
            else:
                new_entries = self.resolve(f"{name}@{new}").by_path()
                labels = (f"{name}@{old}", f"{name}@{new}")
        added = [new_entries[p] for p in sorted(set(new_entries) - set(old_entries))]
        removed = [old_entries[p] for p in sorted(set(old_entries) - set(new_entries))]
        changed = [
            (old_entries[p], new_entries[p])
            for p in sorted(set(old_entries) & set(new_entries))
            if old_entries[p].oid != new_entries[p].oid
        ]
        return DiffResult(name, labels[0], labels[1], added, removed, changed)


def default_name(rel: str) -> str:
    """An artifact name from a path's base name: lower-cased, odd characters to '-'."""
    import re

    base = rel.rstrip("/").rpartition("/")[2].lower()
    candidate = re.sub(r"[^a-z0-9._-]+", "-", base).strip("-.") or "artifact"
    if not candidate[0].isalnum():
        candidate = "a" + candidate
    try:
        return validate_name(candidate)
    except GartError:
        raise UsageError(
            f"cannot derive an artifact name from {rel!r}", hint="pass --name NAME"
        ) from None


def _join(root: str, item: str) -> str:
    if item == ".":
        return root
    return item if root == "." else f"{root}/{item}"


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def _common_dir(rels: Sequence[str]) -> str:
    common = os.path.commonpath(rels).replace(os.sep, "/")
    if common in rels:  # one path contains the others: its parent is the root
        common = common.rpartition("/")[0]
    return common or "."


def _natural_root(repo_root: Path, files: dict[str, Path]) -> str | None:
    roots = set()
    for rel, local in files.items():
        absolute = os.path.abspath(local)
        suffix = os.sep + rel.replace("/", os.sep)
        if not absolute.endswith(suffix):
            return None
        roots.add(absolute[: -len(suffix)])
    if len(roots) != 1:
        return None
    root = roots.pop()
    real_repo = os.path.realpath(repo_root)
    if root != real_repo and not root.startswith(real_repo + os.sep):
        return None
    rel = os.path.relpath(root, real_repo).replace(os.sep, "/")
    return None if rel == "." else rel


