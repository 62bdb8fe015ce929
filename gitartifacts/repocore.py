"""RepoCore: one repository's config, git, cache, hash state and manifests; resolving `name@ref`."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from gitartifacts import config as configmod
from gitartifacts import manifest as manifestmod
from gitartifacts import testhooks
from gitartifacts.aliases import Registry, Resolved, check_digest
from gitartifacts.errors import ArtifactNotFoundError, InvalidPathError, ManifestError
from gitartifacts.fsutil import atomic_write
from gitartifacts.gitrepo import GitRepo, find_root, index_may_track
from gitartifacts.hashing import StateCache
from gitartifacts.ignore import IGNORE_FILE, IgnoreRules, read_ignore_file
from gitartifacts.manifest import Manifest
from gitartifacts.objects import ObjectStore
from gitartifacts.paths import VERSION_RE, parse_spec, validate_name

if TYPE_CHECKING:  # imported only by the commands that need them, to keep start-up fast
    from gitartifacts.runrecord import RunRecord

ProgressHook = Callable[[int], None]

R = TypeVar("R", bound="RepoCore")
GART_GITIGNORE = "/cache/\n/tmp/\n/config.local.yaml\n"


class RepoCore:
    """One repository's state: root, config, git, cache, hash state, manifests, `name@ref`.

    The rooms (tracking, remoteconfig, versioning, sync) build on it; `api.Repo` joins them."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.root = find_root(Path(path) if path is not None else None)
        self.config = configmod.load_config(self.root)
        self._git: GitRepo | None = None
        self._registry: Registry | None = None
        self._cache: ObjectStore | None = None
        self._state: StateCache | None = None

    # -- setup ----------------------------------------------------------------------------

    @classmethod
    def init(cls: type[R], path: str | os.PathLike[str] | None = None) -> tuple[R, bool]:
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
                self.config.cache_path, pack_threshold=self.config.pack_threshold,
                chunk_threshold=self.config.chunk_threshold, chunk_avg=self.config.chunk_avg,
            )
        else:  # another process may have packed objects since this Repo last looked
            self._cache.revalidate()
        return self._cache

    @property
    def state(self) -> StateCache:
        if self._state is None:
            self._state = StateCache(self.config.tmp_path / "state.db")
        return self._state

    def tracked_private_files(self) -> list[str]:
        """Files git tracks under .gart/tmp or .gart/cache (someone force-added them).

        gart never reads them (its caches live under a secret name; cache objects are
        hashed whenever they are read), but their presence is worth a warning."""
        prefixes = (f"{configmod.GART_DIR}/tmp/", f"{configmod.GART_DIR}/cache/")
        if not index_may_track(self.root, prefixes):
            return []
        return self.git.tracked_files([p.rstrip("/") for p in prefixes])

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
        # A file this large is stored as chunks: version-1 readers must refuse the manifest.
        chunked = any(e.size >= self.config.chunk_threshold for e in manifest.entries)
        fmt = manifestmod.CHUNKED_FORMAT_VERSION if chunked else manifestmod.FORMAT_VERSION
        if manifest.format != fmt:
            manifest = replace(manifest, format=fmt)
        path = self.manifest_path(manifest.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = manifestmod.dumps(manifest).encode("utf-8")
        testhooks.hit()
        atomic_write(path, data)
        manifestmod.remember(data, manifest, self._parsed_manifests)
        return path

    def _known_hint(self) -> str:
        names = self.artifact_names()
        if not names:
            return "add one with `gart add PATH --name NAME`"
        shown = ", ".join(names[:10]) + (" …" if len(names) > 10 else "")
        return f"known artifacts: {shown}"

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

    def _existing_manifest(self, name: str) -> Manifest | None:
        """The working-tree manifest, if any; a conflicted one counts as its "ours" side
        (re-adding is one way out of a merge conflict)."""
        try:
            return self.load_manifest(name)
        except ArtifactNotFoundError:
            return None
        except manifestmod.MergeConflictError:
            from gitartifacts.mergedriver import OURS, resolve_conflicted

            return resolve_conflicted(self.manifest_path(name).read_bytes(), OURS,
                                      self.manifest_relpath(name))

    @property
    def runs_dir(self) -> Path:
        return self.config.gart_dir / "runs"

    def load_runs(self) -> tuple[list[RunRecord], list[tuple[str, str]]]:
        """All run records, newest first, plus (file, problem) for every corrupt one."""
        from gitartifacts.runrecord import load_runs

        return load_runs(self.runs_dir, self.config.tmp_path / "runs-index.json")


def _state_prefix(root: Path) -> str:
    return os.path.join(os.path.abspath(root), "")


def _only_prefix(manifest: Manifest, prefix: str | None) -> Manifest:
    if not prefix:
        return manifest
    clean = prefix.strip("/")
    entries = tuple(
        e for e in manifest.entries if e.path == clean or e.path.startswith(clean + "/")
    )
    refs = tuple(
        r for r in manifest.references if r.path == clean or r.path.startswith(clean + "/")
    )
    if not entries and not refs:
        raise ArtifactNotFoundError(
            f"no files of {manifest.name!r} under {prefix!r}",
            hint=f"list them with `gart ls {manifest.name}`",
        )
    return replace(manifest, entries=entries, references=refs)


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


