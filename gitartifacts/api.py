"""The Python API: `Repo` for a gart repository and W&B-shaped `Artifact` builders."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitartifacts import config as configmod
from gitartifacts import manifest as manifestmod
from gitartifacts import workspace
from gitartifacts.aliases import Registry, Resolved, Version, check_digest
from gitartifacts.errors import (
    ArtifactNotFoundError,
    ConfigError,
    GartError,
    InvalidPathError,
    ManifestError,
    UsageError,
)
from gitartifacts.fsutil import atomic_write
from gitartifacts.gitrepo import GitRepo, find_root
from gitartifacts.hashing import FileStat, StateCache
from gitartifacts.manifest import Entry, Manifest
from gitartifacts.objects import ObjectStore
from gitartifacts.paths import (
    VERSION_RE,
    check_relative_path,
    parse_spec,
    validate_alias,
    validate_name,
    validate_type,
)
from gitartifacts.workspace import (
    CheckoutPlan,
    Comparison,
    IgnoreRules,
    WorkFile,
    compare,
    compute_digests,
    read_ignore_file,
    scan,
)

if TYPE_CHECKING:  # imported only by the commands that need them, to keep start-up fast
    from gitartifacts.lineage import RunRecord
    from gitartifacts.transfer import TransferResult

ProgressHook = Callable[[int], None]
GART_GITIGNORE = "/cache/\n/tmp/\n/config.local.yaml\n"
IGNORE_FILE = ".gartignore"


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


@dataclass
class PushResult:
    """What `gart push` sent, for which artifacts, to where, and what it published."""

    manifests: list[Manifest]
    transfer: TransferResult
    remote: str
    versions: list[tuple[Version, bool]] = field(default_factory=list)  # (version, created)
    unpublished: list[str] = field(default_factory=list)  # working tree differs from HEAD
    tags_local_only: bool = False


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

    def _put(self, artifact_path: str, local: Path) -> None:
        check_relative_path(artifact_path, "artifact path")
        self.files[artifact_path] = local


class Repo:
    """A git repository with gart initialised in it."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.root = find_root(Path(path) if path is not None else None)
        self.config = configmod.load_config(self.root)
        self._git: GitRepo | None = None
        self._registry: Registry | None = None
        self._cache: ObjectStore | None = None
        self._state: StateCache | None = None

    # -- setup ----------------------------------------------------------------------------

    @classmethod
    def init(cls, path: str | os.PathLike[str] | None = None) -> tuple[Repo, bool]:
        """Create `.gart/` in the enclosing git repository; returns (repo, created)."""
        root = find_root(Path(path) if path is not None else None)
        gart_dir = root / configmod.GART_DIR
        created = not (gart_dir / configmod.CONFIG_FILE).exists()
        if created:
            (gart_dir / "artifacts").mkdir(parents=True, exist_ok=True)
            (gart_dir / "runs").mkdir(parents=True, exist_ok=True)
            configmod.write_raw(
                gart_dir / configmod.CONFIG_FILE, {"core": {"autostage": True}, "remotes": {}}
            )
            (gart_dir / ".gitignore").write_text(GART_GITIGNORE, encoding="utf-8")
        repo = cls(root)
        if created and repo.config.autostage:
            repo.git.stage(
                [f"{configmod.GART_DIR}/{n}" for n in (configmod.CONFIG_FILE, ".gitignore")]
            )
        return repo, created

    @property
    def git(self) -> GitRepo:
        if self._git is None:
            self._git = GitRepo(self.root)
        return self._git

    @property
    def cache(self) -> ObjectStore:
        if self._cache is None:
            self._cache = ObjectStore.local(
                self.config.cache_path, pack_threshold=self.config.pack_threshold
            )
        else:  # another process may have packed objects since this Repo last looked
            self._cache.revalidate()
        return self._cache

    @property
    def state(self) -> StateCache:
        if self._state is None:
            self._state = StateCache(self.config.tmp_path / "state.db")
        return self._state

    # -- manifests ------------------------------------------------------------------------

    @property
    def artifacts_dir(self) -> Path:
        return self.config.gart_dir / "artifacts"

    def manifest_path(self, name: str) -> Path:
        return self.artifacts_dir / f"{validate_name(name)}.yaml"

    def manifest_relpath(self, name: str) -> str:
        return f"{configmod.GART_DIR}/artifacts/{validate_name(name)}.yaml"

    def artifact_names(self) -> list[str]:
        base = self.artifacts_dir
        names = []
        for directory, _dirs, files in os.walk(base):
            for file in files:
                if file.endswith(".yaml") and not file.startswith("."):
                    rel = os.path.relpath(os.path.join(directory, file), base)
                    names.append(rel[: -len(".yaml")].replace(os.sep, "/"))
        return sorted(names)

    def load_manifest(self, name: str) -> Manifest:
        """The working-tree manifest of `name`."""
        path = self.manifest_path(name)
        try:
            text = path.read_bytes()
        except FileNotFoundError:
            raise ArtifactNotFoundError(
                f"no artifact named {name!r} in this repository",
                hint=self._known_hint(),
            ) from None
        return manifestmod.loads_cached(text, self.manifest_relpath(name), self._parsed_manifests)

    @property
    def _parsed_manifests(self) -> Path:
        return self.config.tmp_path / "parsed-manifests"

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = Registry(self.git)
        return self._registry

    def resolve(self, spec: str, offline: bool = False) -> Manifest:
        """`name` (working-tree manifest), `name@vN|latest|alias` (published), `name@<git rev>`.

        Versions and aliases are fetched from origin first (unless `offline`), so a fresh or
        shallow clone sees what others published and where aliases moved to."""
        return self.resolve_ref(spec, offline)[0]

    def resolve_ref(self, spec: str, offline: bool = False) -> tuple[Manifest, Resolved | None]:
        parsed = parse_spec(spec)
        if parsed.ref is None:
            return self.load_manifest(parsed.name), None
        return _resolve_in(self.git, self.registry, parsed.name, parsed.ref, offline)

    def write_manifest(self, manifest: Manifest) -> Path:
        path = self.manifest_path(manifest.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = manifestmod.dumps(manifest).encode("utf-8")
        atomic_write(path, data)
        manifestmod.remember(data, manifest, self._parsed_manifests)
        return path

    def _known_hint(self) -> str:
        names = self.artifact_names()
        if not names:
            return "add one with `gart add PATH --name NAME`"
        shown = ", ".join(names[:10]) + (" …" if len(names) > 10 else "")
        return f"known artifacts: {shown}"

    # -- add ------------------------------------------------------------------------------

    def ignore_rules(self, excludes: Sequence[str]) -> IgnoreRules:
        return IgnoreRules([*read_ignore_file(self.root / IGNORE_FILE), *excludes])

    def _repo_relative(self, path: str | os.PathLike[str]) -> str:
        absolute = os.path.abspath(path)
        real = os.path.realpath(absolute)
        root = os.path.realpath(self.root)
        if real != root and not real.startswith(root + os.sep):
            raise InvalidPathError(
                f"{path} is outside the repository {self.root}",
                hint="move or copy the data inside the repository first",
            )
        rel = os.path.relpath(real, root).replace(os.sep, "/")
        if rel == ".":
            raise InvalidPathError(
                f"{path} is the repository root", hint="add a data directory such as data/"
            )
        parts = rel.split("/")
        if ".git" in parts or parts[0] == configmod.GART_DIR:
            raise InvalidPathError(
                f"{path} is inside {parts[0] if parts[0] == '.gart' else '.git'}",
                hint="add data files, not repository internals",
            )
        if not os.path.lexists(absolute):
            raise InvalidPathError(f"{path} does not exist")
        return rel

    def add(
        self,
        paths: Sequence[str | os.PathLike[str]],
        name: str | None = None,
        type: str | None = None,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        excludes: Sequence[str] = (),
        progress: ProgressHook | None = None,
    ) -> AddResult:
        """Hash `paths` into the cache and write the manifest (staged in git if autostage)."""
        if not paths:
            raise UsageError("nothing to add", hint="give a file or directory, e.g. gart add data/")
        rels = [self._repo_relative(p) for p in paths]
        if name is None:
            if len(rels) > 1:
                raise UsageError(
                    "several paths need one --name", hint="e.g. gart add a/ b/ --name my-dataset"
                )
            name = default_name(rels[0])
        validate_name(name)
        if type is not None:
            validate_type(type)
        previous = self._existing_manifest(name)
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
            entries=tuple(Entry(rel, oid, size) for rel, (oid, size) in result.digests.items()),
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

    def save(self, artifact: Artifact, path: str | None = None) -> AddResult:
        """Store a W&B-style Artifact built with add_file/add_dir and write its manifest.

        Its working-tree location is `path`, else the directory it was gathered from when
        every file sits at <dir>/<artifact path>, else `artifacts/<name>`.
        """
        if not artifact.files:
            raise UsageError(f"artifact {artifact.name!r} has no files", hint="call add_file first")
        if path is None:
            path = _natural_root(self.root, artifact.files) or f"artifacts/{artifact.name}"
        gitignore = self._gitignore_update([path])
        files = {
            rel: WorkFile(rel, os.path.abspath(local), FileStat.of(os.stat(local)))
            for rel, local in artifact.files.items()
        }
        result = compute_digests(files, self.state, "/", store=self.cache, jobs=self.config.jobs)
        new = Manifest(
            name=artifact.name, type=artifact.type, description=artifact.description,
            metadata=artifact.metadata, path=path,
            entries=tuple(Entry(rel, oid, size) for rel, (oid, size) in result.digests.items()),
        )
        previous = self._existing_manifest(artifact.name)
        changed = previous is None or manifestmod.dumps(previous) != manifestmod.dumps(new)
        if changed:
            ignored = self._write_gitignore(gitignore)
            self.write_manifest(new)
            if self.config.autostage:
                self.git.stage([self.manifest_relpath(artifact.name), *ignored])
        return AddResult(new, changed, result.hashed, result.stored,
                         self.manifest_path(artifact.name))

    def _existing_manifest(self, name: str) -> Manifest | None:
        try:
            return self.load_manifest(name)
        except ArtifactNotFoundError:
            return None

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
        """Make the working tree (or `to`) match a manifest, from the cache."""
        manifest = spec if isinstance(spec, Manifest) else self.resolve(spec)
        root = Path(to) if to is not None else self.root / manifest.path
        if partial:  # only this path inside the artifact: leave everything else alone
            manifest = replace(manifest, include=(partial.strip("/"),))
        return workspace.checkout(
            manifest, root, self.cache, self.state, self.config.link_types,
            self.ignore_rules(manifest.exclude), force=force, progress=progress,
            dry_run=dry_run, allowed_link_roots=[self.config.cache_path],
            # no symlink below the repository root is followed on the way to the data
            anchor=self.root if to is None else None,
            recoverable_elsewhere=recoverable_elsewhere,
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

    # -- remotes --------------------------------------------------------------------------

    def remote_add(self, name: str, url: str, default: bool = False, local: bool = False) -> None:
        """Define a remote (in config.yaml, or config.local.yaml with `local`)."""
        from gitartifacts.remote import check_url

        if not configmod.REMOTE_NAME_RE.fullmatch(name):
            raise UsageError(f"invalid remote name {name!r}", hint="e.g. storage, s3-main")
        check_url(url)
        if name in self.config.remotes:
            raise UsageError(
                f"remote {name!r} already exists ({self.config.remotes[name].url})",
                hint=f"change it with `gart remote modify {name} url NEW_URL`",
            )

        def mutate(data: dict[str, Any]) -> None:
            data.setdefault("remotes", {})[name] = {"url": url}
            if default:
                data.setdefault("core", {})["remote"] = name

        self._update_config(mutate, local)

    def remote_modify(
        self, name: str, key: str, value: str | None, local: bool = False, unset: bool = False
    ) -> None:
        """Set (or unset) one option of a remote, e.g. endpoint_url or profile."""
        from gitartifacts.remote import check_option, check_options, check_url

        if name not in self.config.remotes:
            raise UsageError(f"no remote named {name!r}", hint=self._remotes_hint())
        if not unset:
            if value is None:
                raise UsageError(f"no value for {key!r}", hint="use --unset to remove an option")
            if key == "url":
                check_url(value)
            else:  # a misspelt option fails now (with a suggestion), not at the first push
                current = self.config.remotes[name]
                check_options(configmod.RemoteConfig(
                    name, current.url, {**current.options, key: _option_value(value)}))
            check_option(key, local, value)

        def mutate(data: dict[str, Any]) -> None:
            remotes = data.setdefault("remotes", {})
            body = remotes.setdefault(name, {})
            if unset:
                body.pop(key, None)
                if not body:
                    remotes.pop(name)
            else:
                body[key] = _option_value(value or "")

        self._update_config(mutate, local)

    def remote_remove(self, name: str) -> None:
        if name not in self.config.remotes:
            raise UsageError(f"no remote named {name!r}", hint=self._remotes_hint())
        def mutate(data: dict[str, Any]) -> None:
            (data.get("remotes") or {}).pop(name, None)
            if (data.get("core") or {}).get("remote") == name:
                data["core"].pop("remote")

        # Both files first, then one reload: half-removed (options without a url) never loads.
        configmod.update_config(self.root, mutate, local=True)
        self._update_config(mutate, local=False)

    def remote_default(self, name: str) -> None:
        if name not in self.config.remotes:
            raise UsageError(f"no remote named {name!r}", hint=self._remotes_hint())
        self._update_config(
            lambda data: data.setdefault("core", {}).__setitem__("remote", name), local=False
        )

    def _update_config(self, mutate: Callable[[dict[str, Any]], None], local: bool) -> None:
        """Change one config file, re-read the result, stage the committed file in git."""
        configmod.update_config(self.root, mutate, local=local)
        self.config = configmod.load_config(self.root)
        if not local and self.config.autostage:
            self.git.stage([f"{configmod.GART_DIR}/{configmod.CONFIG_FILE}"])

    def _remotes_hint(self) -> str:
        names = ", ".join(sorted(self.config.remotes))
        return f"known remotes: {names}" if names else "add one with `gart remote add NAME URL`"

    def remote_config(self, name: str | None = None) -> configmod.RemoteConfig:
        chosen = name or self.config.default_remote
        if chosen is None:
            if len(self.config.remotes) == 1:
                return next(iter(self.config.remotes.values()))
            raise UsageError(
                "no remote given and no default remote set",
                hint="run `gart remote add storage PATH_OR_URL --default`"
                if not self.config.remotes else "pass -r NAME or set one with --default",
            )
        if chosen not in self.config.remotes:
            raise UsageError(f"no remote named {chosen!r}", hint=self._remotes_hint())
        return self.config.remotes[chosen]

    def remote_store(self, name: str | None = None) -> ObjectStore:
        from gitartifacts.remote import open_store

        return open_store(
            self.remote_config(name), self.root, self.config.tmp_path / "remote-indexes"
        )

    # -- push / fetch / pull --------------------------------------------------------------

    def push(
        self,
        names: Sequence[str] | None = None,
        remote: str | None = None,
        jobs: int | None = None,
        progress: ProgressHook | None = None,
        publish: bool = True,
        aliases: Sequence[str] = (),
        force: bool = False,
    ) -> PushResult:
        """Upload what the named (default: all) artifacts need, then publish versions.

        Order matters (restic's rule): blobs are uploaded and confirmed first; only then are
        version tags created for committed manifests, so a published version never points
        at bytes the remote lacks."""
        from gitartifacts import transfer

        for alias in aliases:
            validate_alias(alias)
        names = list(names or self.artifact_names())
        working = [self.load_manifest(n) for n in names]
        head = self.git.head_commit()
        committed: dict[str, Manifest] = {}
        if head is not None:
            for name in names:
                data = self.git.read_file(head, self.manifest_relpath(name))
                if data is not None:
                    committed[name] = manifestmod.loads(data, f"HEAD:{self.manifest_relpath(name)}")
        every = working + [m for m in committed.values() if m not in working]
        oids = {e.oid for m in every for e in m.entries}
        store = self.remote_store(remote)
        result = transfer.push(self.cache, store, oids, jobs or self.config.jobs, progress)
        if result.failed:
            raise _transfer_error("push", result.failed, every, store.describe())
        out = PushResult(working, result, store.describe())
        if not publish:
            return out
        for manifest in working:
            published = committed.get(manifest.name)
            stale = published is None or published.digest != manifest.digest
            if stale:
                out.unpublished.append(manifest.name)
                if published is None:
                    continue
            assert head is not None
            version, created = self.registry.publish(manifest.name, published, head)
            out.versions.append((version, created))
            # Aliases name the content being pushed: never move them to an older commit.
            wanted = [] if stale else list(aliases)
            wanted += [a for a in self.requested_aliases(manifest.name, version.digest)
                       if a not in wanted]
            for alias in wanted:
                self.set_alias(manifest.name, version.label, alias, force=force)
            if wanted:
                version.aliases = sorted(set(version.aliases) | set(wanted))
        out.tags_local_only = self.registry.remote is None
        return out

    # -- runs -----------------------------------------------------------------------------

    @property
    def runs_dir(self) -> Path:
        return self.config.gart_dir / "runs"

    def load_runs(self) -> tuple[list[RunRecord], list[tuple[str, str]]]:
        """All run records, newest first, plus (file, problem) for every corrupt one."""
        from gitartifacts.lineage import load_runs

        return load_runs(self.runs_dir, self.config.tmp_path / "runs-index.json")

    def requested_aliases(self, name: str, digest: str) -> list[str]:
        """Aliases that runs asked for (log_artifact(aliases=…)) and that belong to this
        content: for each alias, the newest run requesting it decides where it points."""
        newest: dict[str, str] = {}  # alias -> digest its newest requester logged
        for run in self.load_runs()[0]:  # newest first
            for ref in run.outputs:
                if ref.name == name and ref.requested:
                    for alias in ref.requested.split(","):
                        newest.setdefault(alias, ref.digest)
        return sorted(alias for alias, wanted in newest.items() if wanted == digest)

    # -- versions and aliases -------------------------------------------------------------

    def versions(self, name: str, offline: bool = False) -> list[Version]:
        validate_name(name)
        if not offline:
            self.registry.sync(name)
        return self.registry.versions(name)

    def set_alias(self, name: str, ref: str, alias: str, force: bool = False) -> tuple[
            Version, str | None]:
        """Point `name@alias` at the version `ref` resolves to; returns (version, previous)."""
        version = self._published(name, ref)
        protected = alias in self.config.protected_aliases
        previous = self.registry.set_alias(name, version, alias, protected, force)
        return version, previous

    def delete_alias(self, name: str, alias: str, force: bool = False) -> str:
        protected = alias in self.config.protected_aliases
        return self.registry.delete_alias(name, alias, protected, force)

    def _published(self, name: str, ref: str) -> Version:
        manifest, resolved = _resolve_in(self.git, self.registry, name, ref, offline=False)
        if resolved is None or resolved.version is None:
            raise ArtifactNotFoundError(
                f"{name}@{ref} is not a published version",
                hint=self.registry.known_refs_hint(name),
            )
        return resolved.version

    def fetch(
        self,
        specs: Sequence[str | Manifest],
        remote: str | None = None,
        jobs: int | None = None,
        path_prefix: str | None = None,
        progress: ProgressHook | None = None,
    ) -> tuple[list[Manifest], TransferResult]:
        """Download into the cache what the given artifacts need; nothing is checked out."""
        from gitartifacts import transfer

        manifests = [
            _only_prefix(s if isinstance(s, Manifest) else self.resolve(s), path_prefix)
            for s in specs
        ]
        oids = {e.oid for m in manifests for e in m.entries}
        if not self.cache.missing(oids):  # all cached: no remote needed, none contacted
            return manifests, transfer.TransferResult(present=len(oids))
        store = self.remote_store(remote)
        result = transfer.fetch(store, self.cache, oids, jobs or self.config.jobs, progress)
        if result.failed:
            raise _transfer_error("pull", result.failed, manifests, store.describe())
        return manifests, result

    def pull(
        self,
        specs: Sequence[str | Manifest],
        remote: str | None = None,
        jobs: int | None = None,
        to: str | os.PathLike[str] | None = None,
        path_prefix: str | None = None,
        force: bool = False,
        progress: ProgressHook | None = None,
        dry_run: bool = False,
    ) -> list[tuple[Manifest, TransferResult, CheckoutPlan]]:
        """Fetch, verify, then check out each artifact (into `to` when given).

        With `dry_run`, only resolve and plan: the result's `transferred` counts the objects
        that would be downloaded, and the plan the files that would be written."""
        from gitartifacts.transfer import TransferResult

        if to is not None and len(specs) > 1:
            raise UsageError("--to takes one artifact", hint="pull them one at a time")
        out = []
        for spec in specs:
            if dry_run:
                manifest = _only_prefix(
                    spec if isinstance(spec, Manifest) else self.resolve(spec), path_prefix)
                oids = {e.oid for e in manifest.entries}
                absent = self.cache.missing(oids)
                result = TransferResult(transferred=len(absent), present=len(oids) - len(absent))
            else:
                (manifest,), result = self.fetch([spec], remote, jobs, path_prefix, progress)
            plan = self.checkout(manifest, force=force, to=to, partial=path_prefix,
                                 dry_run=dry_run,
                                 recoverable_elsewhere=self._on_remote(remote))
            out.append((manifest, result, plan))
        return out

    def _on_remote(self, remote: str | None) -> Callable[[set[str]], set[str]]:
        """For pull: which of these oids the remote has (their files are safe to replace)."""
        return lambda oids: oids - self.remote_store(remote).missing(oids)

    def fsck(self) -> list[str]:
        """Verify every object in the cache; also clears temp files of killed writers."""
        self.cache.remove_stale_temp()
        return self.cache.verify()


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


def _state_prefix(root: Path) -> str:
    return os.path.join(os.path.abspath(root), "")


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


def _option_value(text: str) -> Any:
    """Config values typed on the command line: true/false/numbers become YAML scalars."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        return text


def _only_prefix(manifest: Manifest, prefix: str | None) -> Manifest:
    if not prefix:
        return manifest
    clean = prefix.strip("/")
    entries = tuple(
        e for e in manifest.entries if e.path == clean or e.path.startswith(clean + "/")
    )
    if not entries:
        raise ArtifactNotFoundError(
            f"no files of {manifest.name!r} under {prefix!r}",
            hint=f"list them with `gart ls {manifest.name}`",
        )
    return replace(manifest, entries=entries)


def _transfer_error(
    action: str, failed: dict[str, str], manifests: Sequence[Manifest], remote: str
) -> GartError:
    from gitartifacts.errors import ObjectNotFoundError, RemoteError

    paths = [
        f"{m.name}:{e.path}" for m in manifests for e in m.entries if e.oid in failed
    ]
    first = failed[next(iter(failed))]
    listing = ", ".join(paths)  # every path: the user must know exactly what is missing
    if all("missing" in reason or "not in the local cache" in reason for reason in failed.values()):
        where = "the local cache" if action == "push" else remote
        hint = (
            "re-run `gart add` for those paths (their bytes are not in this cache)"
            if action == "push"
            else "push them from a clone that has them (`gart push`), then pull again"
        )
        return ObjectNotFoundError(f"{len(paths)} file(s) missing from {where}: {listing}", hint)
    return RemoteError(
        f"{action} failed for {len(paths)} file(s) ({first}): {listing}",
        hint=f"nothing partial was kept; re-run `gart {action}` to resume",
    )


def _resolve_in(
    git: GitRepo, registry: Registry, name: str, ref: str, offline: bool
) -> tuple[Manifest, Resolved | None]:
    """Resolve `ref` of artifact `name` in a git repository: version, alias, or revision."""
    from gitartifacts.gitrepo import RevisionNotFoundError

    relpath = f"{configmod.GART_DIR}/artifacts/{name}.yaml"
    if not offline:
        registry.sync(name)
    resolved = registry.resolve(name, ref)
    if resolved is None and (VERSION_RE.fullmatch(ref) or ref == "latest"):
        raise ArtifactNotFoundError(
            f"{name} has no version {ref}", hint=registry.known_refs_hint(name)
        )
    if resolved is None:
        try:
            commit = git.resolve_rev(ref)
        except RevisionNotFoundError:
            raise ArtifactNotFoundError(
                f"{name}@{ref} is neither a version, an alias nor a git revision",
                hint=registry.known_refs_hint(name),
            ) from None
        data = git.read_file(commit, relpath)
        if data is None:
            raise ArtifactNotFoundError(
                f"artifact {name!r} does not exist at {ref}",
                hint=f"check the revision with `git log -- {relpath}`",
            )
        return manifestmod.loads(data, what=f"{ref}:{relpath}"), None
    data = git.read_file(resolved.commit, relpath)
    if data is None:
        raise ManifestError(
            f"{name}@{ref} points at commit {resolved.commit[:12]}, which has no {relpath}",
            hint="the tag was not made by gart; inspect it with `git show`",
        )
    manifest = manifestmod.loads(data, what=f"{name}@{ref}:{relpath}")
    check_digest(resolved, manifest)
    return manifest, resolved


class ForeignRepo:
    """Another repository's artifacts, read without cloning it (the W&B `entity/project` case).

    Only the tags asked about are fetched, at depth 1, into a bare repository kept under the
    user cache; its committed `.gart/config.yaml` says where the blobs live.
    """

    def __init__(self, url: str) -> None:
        import hashlib

        from gitartifacts.gitrepo import init_bare

        self.url = url
        key = hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
        self.home = configmod.user_cache_dir()
        self.git_dir = self.home / "repos" / key
        self.git = init_bare(self.git_dir)
        self.registry = Registry(self.git, remote=None)

    def fetch_tags(self, name: str) -> None:
        self.git.fetch_tags(f"{validate_name(name)}@*", remote=self.url, depth=1)

    def versions(self, name: str) -> list[Version]:
        self.fetch_tags(name)
        return self.registry.versions(name)

    def resolve(self, spec: str) -> tuple[Manifest, str]:
        """(manifest, commit) for `name@ref`; a bare `name` means its latest version."""
        parsed = parse_spec(spec)
        ref = parsed.ref or "latest"
        self.fetch_tags(parsed.name)
        if self.registry.resolve(parsed.name, ref) is None and not (
            VERSION_RE.fullmatch(ref) or ref == "latest"
        ):
            from gitartifacts.gitrepo import RevisionNotFoundError, fetch_ref_shallow

            try:
                fetch_ref_shallow(self.url, ref, self.git_dir)  # a branch or full commit sha
            except RevisionNotFoundError:
                raise ArtifactNotFoundError(
                    f"{parsed.name}@{ref} is neither a version, an alias nor a branch of "
                    f"{self.url}",
                    hint=self.registry.known_refs_hint(parsed.name),
                ) from None
        manifest, resolved = _resolve_in(self.git, self.registry, parsed.name, ref, offline=True)
        commit = resolved.commit if resolved is not None else self.git.resolve_rev(ref)
        return manifest, commit

    def remote_store(self, commit: str, remote: str | None = None) -> ObjectStore:
        from gitartifacts.remote import local_path_of, open_store

        data = self.git.read_file(commit, f"{configmod.GART_DIR}/{configmod.CONFIG_FILE}")
        raw = {} if data is None else _foreign_config(data, self.url)
        config = configmod.parse_config(self.home, raw, source=f"{self.url}:.gart/config.yaml")
        chosen = remote or config.default_remote or next(iter(config.remotes), None)
        if chosen is None or chosen not in config.remotes:
            raise UsageError(
                f"{self.url} defines no remote {chosen or ''}".rstrip(),
                hint="ask its owners to `gart remote add NAME URL --default` and commit it",
            )
        remote_config = config.remotes[chosen]
        local_base = local_path_of(self.url, Path.cwd())
        if local_path_of(remote_config.url, Path("/")) is not None and not os.path.isabs(
            os.path.expanduser(remote_config.url.removeprefix("file://"))
        ) and local_base is None:
            raise UsageError(
                f"remote {chosen!r} of {self.url} is a relative path, usable only on its machine",
                hint="give it an absolute path or a URL in that repository's config",
            )
        return open_store(remote_config, local_base or Path.cwd(), self.home / "remote-indexes")

    def pull(
        self,
        spec: str,
        to: str | os.PathLike[str] | None = None,
        remote: str | None = None,
        jobs: int = configmod.DEFAULT_JOBS,
        path_prefix: str | None = None,
        force: bool = False,
        progress: ProgressHook | None = None,
        cache: ObjectStore | None = None,
    ) -> tuple[Manifest, TransferResult, CheckoutPlan]:
        """Download and verify an artifact version of this repository into `to`."""
        from gitartifacts import transfer

        manifest, commit = self.resolve(spec)
        manifest = _only_prefix(manifest, path_prefix)
        store = self.remote_store(commit, remote)
        cache = cache or ObjectStore.local(self.home / "objects")
        oids = {e.oid for e in manifest.entries}
        result = transfer.fetch(store, cache, oids, jobs, progress)
        if result.failed:
            raise _transfer_error("pull", result.failed, [manifest], store.describe())
        root = Path(to) if to is not None else Path.cwd() / manifest.path
        if path_prefix:
            manifest = replace(manifest, include=(path_prefix.strip("/"),))
        plan = workspace.checkout(
            manifest, root, cache, StateCache(self.home / "state.db"),
            configmod.DEFAULT_LINK_TYPES, IgnoreRules(manifest.exclude), force=force,
            progress=progress, anchor=Path.cwd() if to is None else None,
            recoverable_elsewhere=lambda oids: oids - store.missing(oids),
        )
        return manifest, result, plan


def _foreign_config(data: bytes, url: str) -> dict[str, Any]:
    from gitartifacts import safeyaml

    raw = safeyaml.load(data, what=f"{url}:.gart/config.yaml", max_bytes=1 << 20)
    return raw if isinstance(raw, dict) else {}
